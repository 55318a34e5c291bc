"""Symmetrizing a user's TorchForce module: against the analytic rotational average of a
hand-written non-invariant module (tests/torchforce_models.py), in Python, through
openmmtorch.TorchForce and in MD; detection of model files and refusal of bad modules."""

import numpy as np
import openmm
import pytest
import torch

from omm_symbreak.cli import main
from omm_symbreak.export import symmetrized_module
from omm_symbreak.grids import parse_grid
from omm_symbreak.model import save_model
from omm_symbreak.model_kinds import detect_kind, load_energy_model
from omm_symbreak.potential import torch_force
from omm_symbreak.rundir import read_diagnostics
from omm_symbreak.settings import RunSettings
from omm_symbreak.simulate import run
from omm_symbreak.systems import load_structure
from omm_symbreak.units import as_nm_array
from conftest import tiny_model
from torchforce_models import isotropic_energy, write_module


def _system(name):
    topology, positions = load_structure(name)
    numbers = [atom.element.atomic_number for atom in topology.atoms()]
    box = topology.getPeriodicBoxVectors()
    return (topology, numbers, as_nm_array(positions),
            None if box is None else as_nm_array(box))


def _energy(module, positions_nm, box_nm):
    with torch.no_grad():
        return float(module(torch.tensor(positions_nm),
                            None if box_nm is None else torch.tensor(box_nm)))


@pytest.mark.parametrize("name", ["water-monomer", "liquid-64"])
def test_grid_exact_to_3_gives_the_analytic_average(tmp_path, name):
    _, numbers, positions, box = _system(name)
    model = load_energy_model(write_module(tmp_path / "user.pt", numbers))
    isotropic = isotropic_energy(positions, box, numbers)
    raw = _energy(model.module, positions, box)
    assert abs(raw - isotropic) > 1e-3 * abs(isotropic)  # the module breaks the symmetry
    for spec in ("Ti", "2i", "I"):
        averaged = _energy(symmetrized_module(model, "full", parse_grid(spec)), positions, box)
        assert averaged == pytest.approx(isotropic, rel=1e-12), spec
    correction = _energy(symmetrized_module(model, "mts", parse_grid("Ti")), positions, box)
    assert correction == pytest.approx(isotropic - raw, rel=1e-9)


def test_a_grid_not_exact_to_3_leaves_the_odd_term():
    # T holds u_x u_y u_z (degree 3) invariant: its average keeps it, Ti's does not
    _, numbers, positions, box = _system("liquid-64")
    module = torch.jit.script(__import__("torchforce_models").AnisotropicMorse(numbers))
    from omm_symbreak.model_kinds.torchforce import TorchForceModel

    model = TorchForceModel(module)
    isotropic = isotropic_energy(positions, box, numbers)
    averaged = _energy(symmetrized_module(model, "full", parse_grid("T")), positions, box)
    assert abs(averaged - isotropic) > 1e-4 * abs(isotropic)


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_symmetrized_file_runs_in_torchforce_with_analytic_forces(tmp_path, platform):
    _, numbers, positions, _ = _system("water-monomer")
    write_module(tmp_path / "user.pt", numbers)
    assert main(["symmetrize", str(tmp_path / "user.pt"), "--strategy", "full", "--grid", "Ti",
                 "-o", str(tmp_path / "full.pt")]) == 0
    system = openmm.System()
    for mass in (15.999, 1.008, 1.008):
        system.addParticle(mass)
    system.addForce(torch_force(str(tmp_path / "full.pt")))
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3),
                             openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(
        openmm.unit.kilojoule_per_mole / openmm.unit.nanometer)
    assert energy == pytest.approx(isotropic_energy(positions, None, numbers), rel=1e-6)
    step = 1e-6
    for atom in range(3):
        for axis in range(3):
            shifted = [positions.copy(), positions.copy()]
            shifted[0][atom, axis] += step
            shifted[1][atom, axis] -= step
            expected = -(isotropic_energy(shifted[0], None, numbers)
                         - isotropic_energy(shifted[1], None, numbers)) / (2 * step)
            assert forces[atom, axis] == pytest.approx(expected, rel=1e-4, abs=1e-3)


def test_nve_angular_momentum_wander_falls_1000_times_with_ti(tmp_path):
    _, numbers, _, _ = _system("water-monomer")
    path = write_module(tmp_path / "user.pt", numbers, anisotropy=0.1)
    wander = {}
    for strategy, grid in (("none", None), ("full", "Ti")):
        settings = RunSettings(system="water-monomer", model=str(path), strategy=strategy,
                               grid=grid, ensemble="nve", steps=200, timestep_fs=0.25,
                               platform="Reference", precision="double", state_interval=20,
                               trajectory_interval=200, diagnostics_interval=20,
                               checkpoint_interval=200, diagnostic_grid="none")
        directory = run(settings, tmp_path / strategy, progress=False)
        diagnostics = read_diagnostics(directory / "diagnostics.csv")
        momentum = np.stack([diagnostics[f"L_{axis}"] for axis in "xyz"])
        wander[strategy] = np.abs(momentum - momentum[:, :1]).max()
    assert wander["full"] * 1000 < wander["none"], wander


def test_detection_names_the_three_kinds_for_anything_else(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("not a model")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.ckpt")
    save_model(tiny_model(), tmp_path / "model.ckpt")
    assert detect_kind(tmp_path / "model.ckpt") == "built-in"
    assert detect_kind(write_module(tmp_path / "user.pt", [8, 1, 1])) == "torchforce"
    for name, message in (("empty.pt", "empty"), ("text.pt", "not a torch archive"),
                          ("other.ckpt", "not an omm-symbreak model file")):
        with pytest.raises(ValueError, match=message) as error:
            load_energy_model(tmp_path / name)
        if name != "other.ckpt":
            assert "TorchForce" in str(error.value) and "metatomic" in str(error.value)
    with pytest.raises(FileNotFoundError):
        load_energy_model(tmp_path / "missing.pt")


class _WithParameter(torch.nn.Module):
    def forward(self, positions: torch.Tensor, scale: float) -> torch.Tensor:
        return scale * positions.sum()


class _ReturnsForces(torch.nn.Module):
    def forward(self, positions: torch.Tensor):
        return positions.sum(), -torch.ones_like(positions)


@pytest.mark.parametrize("module, message", [(_WithParameter, "global parameters"),
                                             (_ReturnsForces, "does not return one energy")])
def test_modules_outside_the_contract_are_refused(tmp_path, capsys, module, message):
    torch.jit.script(module()).save(str(tmp_path / "bad.pt"))
    with pytest.raises(ValueError, match=message):
        load_energy_model(tmp_path / "bad.pt")
    assert main(["symmetrize", str(tmp_path / "bad.pt"), "--strategy", "full",
                 "-o", str(tmp_path / "out.pt")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()


def test_symmetrize_refuses_a_builtin_model_and_an_existing_output(tmp_path, capsys):
    save_model(tiny_model(), tmp_path / "model.ckpt")
    assert main(["symmetrize", str(tmp_path / "model.ckpt"), "--strategy", "mts",
                 "-o", str(tmp_path / "out.pt")]) == 2
    assert "omm-symbreak export --model" in capsys.readouterr().err
    write_module(tmp_path / "user.pt", [8, 1, 1])
    (tmp_path / "out.pt").write_text("keep me")
    assert main(["symmetrize", str(tmp_path / "user.pt"), "--strategy", "mts",
                 "-o", str(tmp_path / "out.pt")]) == 2
    assert (tmp_path / "out.pt").read_text() == "keep me"


def test_a_module_made_for_other_atoms_fails_with_a_message_before_md(tmp_path, capsys):
    write_module(tmp_path / "monomer.pt", [8, 1, 1])  # its pair tables are 3 x 3
    assert main(["simulate", "liquid-64", "--model", str(tmp_path / "monomer.pt"),
                 "--steps", "10", "-o", str(tmp_path / "run")]) == 2
    assert "made for this system's atoms" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
