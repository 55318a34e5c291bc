"""Reference sampling, augmentation, batching, training, checkpoints and exact resumption."""

import json
from dataclasses import replace

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from conftest import TINY_MODEL, tiny_model, water_positions_angstrom, water_topology
from omm_symbreak.cli import main
from omm_symbreak.data import Frame, read_frames, rotate_frame, write_frames
from omm_symbreak.grids import NO_ROTATION, random_rotations
from omm_symbreak.model import model_metadata, load_model
from omm_symbreak.reference import add_virtual_sites, create_qtip4pf_system
from omm_symbreak.reference.sample import density_g_cm3, frames_per_state, sample_states, scale_to_density
from omm_symbreak.symmetrize import averaged
from omm_symbreak.predict import energies_and_forces
from omm_symbreak.train import _loss, dataset_statistics, refit_baseline, resume_path, train
from omm_symbreak.train_settings import TrainSettings
from omm_symbreak.units import KJ_PER_MOL_PER_EV, angstrom_to_nm

HYPERPARAMETERS = {key: value for key, value in TINY_MODEL.items() if key != "atomic_numbers"}
SIZE_OPTIONS = [item for name, value in HYPERPARAMETERS.items()
                for item in ("--" + name.replace("_", "-"), str(value))]  # the same, for the CLI
CELL = np.eye(3) * 6.2
QUIET = dict(progress=False, log=lambda line: None)


@pytest.fixture(scope="module")
def reference_frames():
    """8 q-TIP4P/F molecules in a 6.2 Angstrom box, two densities, 8 frames."""
    topology = water_topology(8, CELL)
    positions_nm = angstrom_to_nm(water_positions_angstrom(2, 3.1, seed=1))
    return sample_states(topology, positions_nm, angstrom_to_nm(CELL), [300.0], [0.95, 1.0], n_frames=8,
                         spacing_ps=0.01, equilibration_ps=0.02, seed=4, threads=1)


def _qtip4pf_energy_ev(frame: Frame) -> float:
    topology = water_topology(8, frame.cell_angstrom)
    site_topology, site_positions = add_virtual_sites(topology, angstrom_to_nm(frame.positions_angstrom))
    system = create_qtip4pf_system(site_topology)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(site_positions)
    energy = context.getState(getEnergy=True).getPotentialEnergy()
    return energy.value_in_unit(unit.kilojoule_per_mole) / KJ_PER_MOL_PER_EV


def test_reference_frames(reference_frames):
    frames = reference_frames
    assert len(frames) == 8 and frames_per_state(8, 2) == [4, 4]
    assert [f.info["density_g_cm3"] for f in frames] == [0.95] * 4 + [1.0] * 4
    assert all(f.info["spacing_ps"] == 0.01 and f.info["reference"] == "q-TIP4P/F" for f in frames)
    topology = water_topology(8, CELL)
    for frame in frames[::4]:
        assert density_g_cm3(topology, angstrom_to_nm(frame.cell_angstrom)) == pytest.approx(
            frame.info["density_g_cm3"], rel=1e-6)
        molecules = frame.positions_angstrom.reshape(-1, 3, 3)
        assert np.linalg.norm(molecules[:, 1:] - molecules[:, :1], axis=-1).max() < 1.3  # whole
        assert np.abs(frame.forces_ev_per_angstrom.sum(axis=0)).max() < 1e-3
    # labels in eV and eV/Angstrom of the real atoms: forces are minus the energy gradient
    frame = frames[0]
    assert _qtip4pf_energy_ev(frame) == pytest.approx(frame.energy_ev, abs=1e-5)
    step = 1e-4
    for atom, axis in ((0, 0), (4, 2)):  # an oxygen (carries the M-site force), a hydrogen
        shifted = []
        for sign in (1, -1):
            positions = frame.positions_angstrom.copy()
            positions[atom, axis] += sign * step
            shifted.append(_qtip4pf_energy_ev(Frame(frame.atomic_numbers, positions,
                                                    frame.cell_angstrom)))
        numeric = -(shifted[0] - shifted[1]) / (2 * step)
        assert numeric == pytest.approx(frame.forces_ev_per_angstrom[atom, axis], abs=2e-4)


def test_scale_to_density_keeps_molecules():
    topology = water_topology(8, CELL)
    positions = angstrom_to_nm(water_positions_angstrom(2, 3.1, seed=1))
    scaled, box = scale_to_density(topology, positions, angstrom_to_nm(CELL), 0.8)
    assert density_g_cm3(topology, box) == pytest.approx(0.8)
    internal = lambda p: p.reshape(-1, 3, 3) - p.reshape(-1, 3, 3)[:, :1]  # noqa: E731
    assert np.allclose(internal(scaled), internal(positions))


def test_rotation_augmentation_rotates_forces_and_keeps_the_lattice():
    rng = np.random.default_rng(3)
    cell = np.array([[6.2, 0, 0], [0.7, 6.0, 0], [0.4, -0.3, 6.4]])
    frame = Frame(np.tile([8, 1, 1], 8), water_positions_angstrom(2, 3.1, seed=1), cell,
                  -1.0, rng.normal(size=(24, 3)))
    model = tiny_model()
    energy, (forces,) = energies_and_forces(model, [frame])
    rotations = random_rotations(6, rng)
    assert (np.linalg.det(rotations) < 0).any() and (np.linalg.det(rotations) > 0).any()
    for rotation in rotations:
        rotated = rotate_frame(frame, rotation)
        assert np.allclose(rotated.forces_ev_per_angstrom, frame.forces_ev_per_angstrom @ rotation.T)
        assert np.allclose(rotated.positions_angstrom, frame.positions_angstrom @ rotation.T)
        assert np.linalg.det(rotated.cell_angstrom) > 0  # right-handed, same lattice
        lattice = np.linalg.solve(rotation.T.T, rotated.cell_angstrom.T).T  # back-rotated rows
        assert np.allclose(np.abs(np.linalg.solve(cell.T, lattice.T)), np.eye(3), atol=1e-9)
        # a model evaluated on the rotated frame equals the model on the rotated displacements
        module = averaged(model, NO_ROTATION)
        species = model.species_of(frame.atomic_numbers.tolist())
        expected = module.kernel(species, torch.tensor(frame.positions_angstrom),
                                 torch.tensor(cell), torch.tensor(rotation)[None])
        got, (rotated_forces,) = energies_and_forces(model, [rotated])
        assert float(got.detach()) == pytest.approx(float(expected.detach()), abs=1e-9)
    # an invariant quantity: the rotated frame's energy of an identity rotation
    identity, _ = energies_and_forces(model, [rotate_frame(frame, np.eye(3))])
    assert float(identity.detach()) == pytest.approx(float(energy.detach()))


def test_batched_energies_and_forces_match_the_averaged_module(water_box, water_cluster):
    model = tiny_model()
    _, positions, cell = water_box
    _, cluster = water_cluster
    frames = [Frame(np.tile([8, 1, 1], 8), positions, cell),
              Frame(np.tile([8, 1, 1], 8), cluster),
              Frame([8, 1, 1], cluster[:3])]
    energies, forces = energies_and_forces(model, frames)
    module = averaged(model, NO_ROTATION)
    for frame, energy, force in zip(frames, energies, forces):
        x = torch.tensor(frame.positions_angstrom, requires_grad=True)
        cell_tensor = None if frame.cell_angstrom is None else torch.tensor(frame.cell_angstrom)
        expected = module(model.species_of(frame.atomic_numbers.tolist()), x, cell_tensor)
        gradient, = torch.autograd.grad(expected, x)
        assert float(energy.detach()) == pytest.approx(float(expected.detach()), abs=1e-10)
        assert torch.allclose(force, -gradient, atol=1e-10)


def test_dataset_statistics(reference_frames):
    statistics = dataset_statistics(reference_frames, [1, 8])
    baseline = np.array(statistics["energy_baseline_ev"])
    energies = np.array([f.energy_ev for f in reference_frames])
    assert 16 * baseline[0] + 8 * baseline[1] == pytest.approx(energies.mean())
    assert statistics["sigma_energy_ev_per_atom"] == pytest.approx(np.std(energies / 24))
    forces = np.concatenate([f.forces_ev_per_angstrom for f in reference_frames])
    assert statistics["sigma_force_ev_per_angstrom"] == pytest.approx(np.sqrt(np.mean(forces ** 2)))
    assert statistics["energy_scale_ev"] == statistics["sigma_force_ev_per_angstrom"]


def _state(path):
    return {name: tensor.clone() for name, tensor in load_model(path).state_dict().items()}


def test_train_checkpoint_and_exact_resume(reference_frames, tmp_path):
    torch.set_num_threads(1)
    train_frames, valid_frames = reference_frames[:6], reference_frames[6:]
    settings = TrainSettings(epochs=3, lr=2e-3, batch_size=4, seed=7,
                             hyperparameters=HYPERPARAMETERS)
    report = train(train_frames, valid_frames, tmp_path / "a.ckpt", settings, **QUIET)
    metadata = model_metadata(tmp_path / "a.ckpt")
    history = metadata["history"]
    assert [record["epoch"] for record in history] == [1, 2, 3]
    assert all(np.isfinite(record["train_loss"]) and np.isfinite(record["valid_loss"])
               for record in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert metadata["final"] == json.loads(json.dumps(report))
    assert set(report) == {"epoch", "train", "valid"}
    assert report["valid"]["force_rmse_mev_per_angstrom"] > 0
    # both files are plain tensors and numbers: weights_only loading works
    model = load_model(tmp_path / "a.ckpt")
    assert model.energy_scale.item() == pytest.approx(metadata["config"]["energy_scale_ev"])
    assert model.atomic_numbers.tolist() == [1, 8]
    # the baseline was refit after the last epoch: a second least-squares refit moves nothing
    assert abs(refit_baseline(model, train_frames)) < 1e-6
    torch.load(resume_path(tmp_path / "a.ckpt"), weights_only=True)

    train(train_frames, valid_frames, tmp_path / "b.ckpt", replace(settings, epochs=1), **QUIET)
    lines = []
    train(train_frames, valid_frames, tmp_path / "b.ckpt", replace(settings, seed=99, lr=1.0),
          resume=True, progress=False, log=lines.append)  # stored settings win
    assert lines[0].startswith("resuming") and "after epoch 1 of 3" in lines[0]
    resumed = model_metadata(tmp_path / "b.ckpt")["history"]
    assert [record["epoch"] for record in resumed] == [1, 2, 3]
    first, second = _state(tmp_path / "a.ckpt"), _state(tmp_path / "b.ckpt")
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert resumed[-1]["train_loss"] == history[-1]["train_loss"]


def test_cosine_schedule_without_refit_and_fine_tuning(reference_frames, tmp_path):
    torch.set_num_threads(1)
    options = dict(batch_size=2, seed=3, refit=False)
    train(reference_frames, None, tmp_path / "a.ckpt",
          TrainSettings(epochs=3, lr=1e-3, schedule="cosine", warmup_epochs=0.5,
                        hyperparameters=HYPERPARAMETERS, **options), **QUIET)
    metadata = model_metadata(tmp_path / "a.ckpt")
    rates = [record["lr"] for record in metadata["history"]]
    assert rates[0] > rates[1] > rates[2] == pytest.approx(1e-5)  # lr/100 at the last step
    model = load_model(tmp_path / "a.ckpt")
    config = metadata["config"]  # without refit: reference fit minus the initial network's mean
    assert model.energy_baseline.tolist() == pytest.approx(
        (np.array(config["energy_baseline_ev"]) - config["network_offset_ev"]).tolist(), abs=1e-5)

    # fine-tuning at a vanishing learning rate keeps the starting checkpoint, sizes included
    other_sizes = dict(HYPERPARAMETERS, width=2 * HYPERPARAMETERS["width"])
    train(reference_frames, None, tmp_path / "b.ckpt",
          TrainSettings(epochs=1, lr=1e-12, init_from=tmp_path / "a.ckpt",
                        hyperparameters=other_sizes, **options), **QUIET)
    start, tuned = _state(tmp_path / "a.ckpt"), _state(tmp_path / "b.ckpt")
    assert all(torch.allclose(start[name], tuned[name], atol=1e-9) for name in start)
    assert model_metadata(tmp_path / "b.ckpt")["config"]["init_from"] == str(tmp_path / "a.ckpt")


def test_train_refuses_bad_inputs(reference_frames, tmp_path):
    settings = TrainSettings(epochs=1, hyperparameters=HYPERPARAMETERS)
    with pytest.raises(FileNotFoundError, match="resume"):
        train(reference_frames, None, tmp_path / "m.ckpt", settings, resume=True, **QUIET)
    (tmp_path / "m.ckpt").write_text("")
    with pytest.raises(FileExistsError, match="--force"):
        train(reference_frames, None, tmp_path / "m.ckpt", settings, **QUIET)
    odd = Frame([8, 1, 6], np.eye(3) * 2, None, 0.0, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"atomic numbers \[6\]"):
        train(reference_frames, [odd], tmp_path / "n.ckpt", settings, **QUIET)
    crowded = dict(HYPERPARAMETERS, max_neighbors=2)
    with pytest.raises(ValueError, match="--max-neighbors"):
        train(reference_frames, None, tmp_path / "n.ckpt",
              replace(settings, hyperparameters=crowded), **QUIET)
    unlabelled = Frame([8, 1, 1], np.eye(3))
    with pytest.raises(ValueError, match="no energy or no forces"):
        train([unlabelled], None, tmp_path / "n.ckpt", settings, **QUIET)
    for bad, flag in ((dict(epochs=0), "--epochs"), (dict(batch_size=0), "--batch-size"),
                      (dict(lr=0.0), "--lr"), (dict(lr=float("nan")), "--lr"),
                      (dict(warmup_epochs=-1.0), "--warmup-epochs"),
                      (dict(schedule="linear"), "--schedule")):
        with pytest.raises(ValueError, match=flag):
            train(reference_frames, None, tmp_path / "n.ckpt", replace(settings, **bad), **QUIET)
    assert not (tmp_path / "n.ckpt").exists()


def test_settings_of_an_older_resume_file():
    """Resume files written before warmup_epochs, schedule and refit_baseline were stored ran
    without warm-up, with the plateau schedule and without refit; epochs is the new total."""
    config = dict(lr=1e-3, batch_size=4, seed=0, weight_decay=0.0, patience=10, energy_weight=1.0)
    assert TrainSettings.from_config(config, 5) == TrainSettings(
        epochs=5, warmup_epochs=0.0, refit=False)
    stored = TrainSettings(epochs=7, lr=2e-4, schedule="cosine", refit=False, warmup_epochs=0.5)
    assert TrainSettings.from_config(stored.config(), 7) == stored


def test_cli_train_and_reference(reference_frames, tmp_path, capsys):
    write_frames(tmp_path / "train.extxyz", reference_frames[:4])
    write_frames(tmp_path / "valid.extxyz", reference_frames[4:6])
    command = ["train", str(tmp_path / "train.extxyz"), "--valid", str(tmp_path / "valid.extxyz"),
               "-o", str(tmp_path / "m.ckpt"), "--epochs", "1", "--batch-size", "2", "--quiet",
               *SIZE_OPTIONS]
    assert main(command) == 0
    assert "final report" in capsys.readouterr().out
    assert load_model(tmp_path / "m.ckpt").hyperparameters["width"] == HYPERPARAMETERS["width"]
    assert main(command) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "nothing.extxyz"), "-o", str(tmp_path / "x.ckpt")]) == 2
    assert "no dataset file" in capsys.readouterr().err

    output = tmp_path / "ice.extxyz"
    sample = ["reference", "sample", "--system", "ice-ih", "--temperatures", "100",
              "--frames", "1", "--spacing-ps", "0.005", "--equilibration-ps", "0",
              "--threads", "1", "--quiet", "-o", str(output)]
    assert main(sample) == 0
    frame, = read_frames(output)
    assert frame.n_atoms == 384 and frame.info["system"] == "ice-ih"
    assert main(sample) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["reference", "sample", "--system", "water-monomer", "-o",
                 str(tmp_path / "gas.extxyz")]) == 2
    assert "bulk" in capsys.readouterr().err


def test_centred_energy_loss_ignores_a_constant_offset_per_atom(reference_frames):
    model = tiny_model()
    batch = reference_frames[:4]
    weight, sigma, shift = 100.0, 0.8, 0.05  # shift: eV per atom on every species
    losses, errors = {}, {}
    for offset in (0.0, shift):
        model.energy_baseline += offset
        for centred in (True, False):
            loss, errors[offset], _ = _loss(model, batch, weight, sigma, centred)
            losses[offset, centred] = float(loss)
    assert losses[0.0, True] == pytest.approx(losses[shift, True], rel=1e-9)
    # uncentred: mean((e + s)^2) - mean(e^2) = 2 s mean(e) + s^2, times the weight / sigma^2
    mean_error = float(errors[0.0].mean())
    assert losses[shift, False] - losses[0.0, False] == pytest.approx(
        weight * (2 * shift * mean_error + shift ** 2) / sigma ** 2, rel=1e-6)


def test_weighted_loss_against_its_analytic_value(reference_frames):
    """Labels set to the model's own predictions, then a known offset on one structure: the loss
    follows by hand, and a weight of 2 equals that structure taken twice."""
    model = tiny_model()
    frames = reference_frames[:3]
    energies, forces = energies_and_forces(model, frames)
    labelled = [Frame(frame.atomic_numbers, frame.positions_angstrom, frame.cell_angstrom,
                      float(energy), force.detach().double().numpy())
                for frame, energy, force in zip(frames, energies.detach(), forces)]
    offset_ev, offset_force = 0.6, 0.3  # on the first structure's energy and force components
    first = labelled[0]
    a = Frame(first.atomic_numbers, first.positions_angstrom, first.cell_angstrom,
              first.energy_ev + offset_ev, first.forces_ev_per_angstrom + offset_force)
    b, c = labelled[1:]
    d = offset_ev / a.n_atoms  # energy error per atom of a (others 0); equal sizes
    sigma, energy_weight = 0.8, 100.0
    # weights (2, 1, 1): energy errors (d, 0, 0); centred around the weighted mean d/2, the
    # weighted mean square is d^2/4, uncentred d^2/2; force components: 2/4 of them off by 0.3.
    # unweighted: centred 2 d^2/9, uncentred d^2/3; force 1/3 of the components off
    expected = {(True, 2.0): (d * d / 4, offset_force ** 2 / 2),
                (False, 2.0): (d * d / 2, offset_force ** 2 / 2),
                (True, 1.0): (2 * d * d / 9, offset_force ** 2 / 3),
                (False, 1.0): (d * d / 3, offset_force ** 2 / 3)}
    for (centred, weight_of_a), (energy_term, force_term) in expected.items():
        loss, _, _ = _loss(model, [a, b, c], energy_weight, sigma, centred, [weight_of_a, 1.0, 1.0])
        assert float(loss.detach()) == pytest.approx(
            (energy_weight * energy_term + force_term) / sigma ** 2, rel=1e-4)
        if weight_of_a == 2.0:
            repeated, _, _ = _loss(model, [a, a, b, c], energy_weight, sigma, centred)
            assert float(loss.detach()) == pytest.approx(float(repeated.detach()), rel=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loss_and_baseline_refit_on_cuda_match_cpu(reference_frames):
    """The loss and its gradients, and the baseline refit, on a model moved to the GPU."""
    batch = reference_frames[:3]
    results = {}
    for device in ("cpu", "cuda"):
        model = tiny_model().to(device)
        loss, energy_error, force_error = _loss(model, batch, 100.0, 0.8, True, [2.0, 1.0, 1.0])
        loss.backward()
        assert loss.device.type == energy_error.device.type == force_error.device.type == device
        gradients = [p.grad.cpu() for p in model.parameters() if p.grad is not None]
        shift = refit_baseline(model, batch)
        results[device] = (float(loss), gradients, shift, model.energy_baseline.cpu())
    (cpu_loss, cpu_grad, cpu_shift, cpu_base), (gpu_loss, gpu_grad, gpu_shift, gpu_base) = (
        results["cpu"], results["cuda"])
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-4)
    for on_cpu, on_gpu in zip(cpu_grad, gpu_grad):
        torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-3, atol=1e-6)
    assert gpu_shift == pytest.approx(cpu_shift, rel=1e-4, abs=1e-6)
    torch.testing.assert_close(gpu_base, cpu_base, rtol=1e-5, atol=1e-6)


def test_file_weights_are_checked_and_bind_a_resumed_run(reference_frames, tmp_path, capsys):
    write_frames(tmp_path / "a.extxyz", reference_frames[:2])
    write_frames(tmp_path / "b.extxyz", reference_frames[2:4])
    command = ["train", str(tmp_path / "a.extxyz"), str(tmp_path / "b.extxyz"), "-o",
               str(tmp_path / "m.ckpt"), "--batch-size", "2", "--quiet", *SIZE_OPTIONS]
    assert main(command + ["--weights", "1"]) == 2
    assert "one loss weight per training file (2), got 1" in capsys.readouterr().err
    assert main(command + ["--weights", "1", "0"]) == 2
    assert "positive" in capsys.readouterr().err
    assert not (tmp_path / "m.ckpt").exists()
    assert main(command + ["--weights", "1", "0.1", "--epochs", "1"]) == 0
    metadata = model_metadata(tmp_path / "m.ckpt")
    assert metadata["config"]["sources"]["train_weights"] == [1.0, 0.1]
    assert main(command + ["--weights", "1", "0.2", "--epochs", "2", "--resume"]) == 2
    assert "loss weights of the first run" in capsys.readouterr().err
    assert main(command + ["--epochs", "2", "--resume"]) == 2
    assert main(command + ["--weights", "1", "0.1", "--epochs", "2", "--resume"]) == 0
    assert model_metadata(tmp_path / "m.ckpt")["epoch"] == 2
