"""The network and its symmetrization, checked against physics and independent evaluations."""

import threading

import numpy as np
import pytest
import torch

from conftest import WATER_ANGSTROM, random_rotation, tiny_model
from omm_symbreak.grids import parse_grid
from omm_symbreak.model import UnconstrainedPET, load_model, model_fingerprint, save_model
from omm_symbreak.symmetrize import averaged, correction, randomly_rotated

SPECIES_WATER = [1, 0, 0]  # model species indices of O, H, H (atomic numbers [1, 8])


def species_for(n_atoms):
    return torch.tensor(SPECIES_WATER * (n_atoms // 3))


def energy(module, positions, cell=None, requires_grad=False):
    """(energy eV, forces eV/Angstrom or None) of a symmetrize module, float64."""
    x = torch.tensor(positions, dtype=torch.float64, requires_grad=requires_grad)
    c = None if cell is None else torch.tensor(cell, dtype=torch.float64)
    e = module(species_for(len(positions)), x, c)
    if not requires_grad:
        return e.item(), None
    (gradient,) = torch.autograd.grad(e, x)
    return e.item(), -gradient.numpy()


def test_forces_are_minus_the_finite_difference_gradient(model, water_box):
    _, positions, cell = water_box
    for module in (averaged(model, parse_grid("none")), averaged(model, parse_grid("2i")),
                   correction(model, parse_grid("1i"))):
        _, forces = energy(module, positions, cell, requires_grad=True)
        rng = np.random.default_rng(0)
        for atom, axis in zip(rng.integers(0, len(positions), 4), rng.integers(0, 3, 4)):
            step = np.zeros_like(positions)
            step[atom, axis] = 1e-5
            e_plus, _ = energy(module, positions + step, cell)
            e_minus, _ = energy(module, positions - step, cell)
            numeric = -(e_plus - e_minus) / 2e-5
            assert forces[atom, axis] == pytest.approx(numeric, rel=1e-5, abs=1e-7)


def test_energy_invariant_under_translation_and_image_shifts(model, water_box):
    _, positions, cell = water_box
    module = averaged(model, parse_grid("none"))
    reference, _ = energy(module, positions, cell)
    translated, _ = energy(module, positions + np.array([0.7, -1.3, 2.9]), cell)
    shifted = positions.copy()
    shifted[:6] += cell[0] - 2 * cell[2]  # two molecules moved to other periodic images
    imaged, _ = energy(module, shifted, cell)
    assert translated == pytest.approx(reference, rel=1e-12)
    assert imaged == pytest.approx(reference, rel=1e-12)


def test_energy_is_not_rotationally_invariant_but_its_2i_average_nearly_is(model, water_cluster):
    _, positions = water_cluster
    rng = np.random.default_rng(3)
    rotations = [random_rotation(rng) for _ in range(12)]
    spread = {}
    for spec in ("none", "2i"):
        module = averaged(model, parse_grid(spec))
        spread[spec] = np.std([energy(module, positions @ r.T)[0] for r in rotations])
    assert spread["none"] > 1e-4  # the raw model breaks the symmetry
    assert spread["2i"] < spread["none"] / 10


def test_batched_grid_average_equals_loop_over_rotated_structures(model, water_box):
    """The in-graph batch (rotated displacement vectors) against rotating the whole periodic
    structure, cell included, and calling the raw model once per rotation."""
    _, positions, cell = water_box
    grid = parse_grid("2i")
    raw = averaged(model, parse_grid("none"))
    # an improper R maps the cell to a left-handed one; negating its rows spans the same lattice
    loop = sum(w * energy(raw, positions @ r.T, np.linalg.det(r) * cell @ r.T)[0]
               for r, w in zip(grid.rotations, grid.weights))
    batched, _ = energy(averaged(model, grid), positions, cell)
    assert batched == pytest.approx(loop, rel=1e-12)
    chunked_module = averaged(model, grid)
    chunked_module.kernel.cpu_batch_atoms = 5 * len(positions)  # 36 copies in batches of 5
    assert energy(chunked_module, positions, cell)[0] == pytest.approx(loop, rel=1e-12)
    delta, _ = energy(correction(model, grid), positions, cell)
    assert delta == pytest.approx(loop - energy(raw, positions, cell)[0], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("spec, copies", [("Ti", 24), ("O", 24), ("I", 60), ("1i", 3),
                                           ("2i", 37), ("T+random", 13)])
def test_correction_evaluates_the_identity_once(model, water_box, spec, copies):
    """A fixed grid holding the identity (every group) folds the raw term into it; the
    Legendre-Euler grids hold none (1i is a rotation by 90 degrees about x and its negative),
    nor does a turned grid."""
    _, positions, cell = water_box
    grid = parse_grid(spec)
    module = correction(model, grid)
    assert module.rotations.shape[0] == module.weights.shape[0] == copies
    if not grid.randomized:
        average, _ = energy(averaged(model, grid), positions, cell)
        raw, _ = energy(averaged(model, parse_grid("none")), positions, cell)
        delta, _ = energy(module, positions, cell)
        assert delta == pytest.approx(average - raw, rel=1e-9, abs=1e-12)


def invariant_model() -> UnconstrainedPET:
    """The same architecture made exactly rotation invariant: edge tokens see only |r|."""
    model = tiny_model(seed=5)
    with torch.no_grad():
        for block in model.blocks:
            block.edge_geometry.weight[:, :3] = 0.0
    return model


def test_invariant_model_has_zero_correction_and_random_equals_raw(water_cluster):
    _, positions = water_cluster
    model = invariant_model()
    raw, _ = energy(averaged(model, parse_grid("none")), positions)
    delta, _ = energy(correction(model, parse_grid("2i")), positions)
    random, _ = energy(randomly_rotated(model), positions)
    assert abs(delta) < 1e-12 * abs(raw)
    assert random == pytest.approx(raw, rel=1e-13)


def test_random_rotation_is_a_function_of_the_configuration_alone(model, water_cluster):
    """The same configuration gives the same energy in every module and thread, whatever was
    drawn before; configurations 1e-5 Angstrom apart are turned differently (their energies
    differ by far more than the raw model's do)."""
    _, positions = water_cluster
    first = [energy(randomly_rotated(model), positions)[0] for _ in range(2)]
    torch.rand(5)  # torch's generator moved: nothing depends on it
    results = []
    thread = threading.Thread(target=lambda: results.append(
        energy(randomly_rotated(model), positions)[0]))
    thread.start()
    thread.join()
    assert first == [results[0]] * 2
    raw = averaged(model, parse_grid("none"))
    nudged = positions + 1e-5
    raw_change = abs(energy(raw, nudged)[0] - energy(raw, positions)[0])
    assert abs(energy(randomly_rotated(model), nudged)[0] - first[0]) > 1e3 * raw_change


def test_energy_and_forces_continuous_across_the_cutoff():
    """Two molecules pulled apart so that their closest pairs cross r_cut: with a C1 switch the
    energy jump is O(eps^2) and the force jump O(eps * f_c'') = O(20 eps) in eV/Angstrom."""
    model = tiny_model(seed=2)
    module = averaged(model, parse_grid("none"))
    # the O-O pair is the closest inter-molecular pair along z: it crosses the cutoff at z = r_cut
    results = []
    for z in (model.cutoff - 1e-8, model.cutoff + 1e-8):
        positions = np.concatenate([WATER_ANGSTROM, WATER_ANGSTROM + np.array([0.0, 0.0, z])])
        results.append(energy(module, positions, requires_grad=True))
    (e_in, f_in), (e_out, f_out) = results
    assert e_in == pytest.approx(e_out, abs=1e-12)
    np.testing.assert_allclose(f_in, f_out, rtol=0, atol=1e-6)


def test_model_scripts_and_matches_eager(model, water_box):
    _, positions, cell = water_box
    module = averaged(model, parse_grid("2i"))
    scripted = torch.jit.script(module)
    x = torch.tensor(positions)
    c = torch.tensor(cell)
    species = species_for(len(positions))
    assert scripted(species, x, c).item() == pytest.approx(module(species, x, c).item(), rel=1e-14)


def test_checkpoint_round_trip_and_safe_loading(tmp_path, water_box):
    _, positions, cell = water_box
    model = tiny_model(seed=4, dtype=torch.float32)
    path = tmp_path / "model.ckpt"
    save_model(model, path, {"note": "test"})
    loaded = load_model(path).double()
    expected, _ = energy(averaged(model.double(), parse_grid("none")), positions, cell)
    assert energy(averaged(loaded, parse_grid("none")), positions, cell)[0] == pytest.approx(expected, rel=1e-12)
    # the fingerprint follows the weights, not the file or the precision
    save_model(load_model(path), tmp_path / "copy.ckpt", {"note": "other metadata"})
    assert model_fingerprint(load_model(tmp_path / "copy.ckpt")) == model_fingerprint(loaded)
    with torch.no_grad():
        loaded.energy_baseline[0] += 1e-3
    assert model_fingerprint(loaded) != model_fingerprint(load_model(path))

    class Payload:
        def __reduce__(self):
            return (print, ("arbitrary code ran",))

    evil = tmp_path / "evil.ckpt"
    torch.save({"format": "omm-symbreak-pet-1", "payload": Payload()}, evil)
    with pytest.raises(ValueError, match="could run arbitrary code"):
        load_model(evil)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.ckpt")


def test_too_many_neighbours_is_a_clear_error(water_box):
    _, positions, cell = water_box
    model = tiny_model()
    model.max_neighbors = 4
    with pytest.raises(Exception, match="max_neighbors"):
        energy(averaged(model, parse_grid("none")), positions, cell)


def test_unknown_species_is_an_error(model):
    with pytest.raises(ValueError, match=r"elements H \(hydrogen\), O \(oxygen\), not "
                                         r"Na \(sodium\)$"):
        model.species_of([8, 1, 1, 11])
