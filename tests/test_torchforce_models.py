"""Symmetrizing a user's TorchForce module: against the analytic rotational average of a
hand-written non-invariant module (tests/torchforce_models.py), in Python, through
openmmtorch.TorchForce and in MD; detection of model files and refusal of bad modules."""

import subprocess
import sys
import zipfile

import numpy as np
import openmm
import pytest
import torch

from omm_symbreak.cli import main
from omm_symbreak.export import symmetrized_module
from omm_symbreak.grids import parse_grid, random_rotations
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


# A user's script, as in openmm-torch's README: the module's class lives in ``__main__``. Its
# energy (kJ/mol, positions nm) is sum_{i<j} r^2 (1 + 0.3 u_z^2 + 0.5 u_x u_y u_z) over the pair
# directions u: degrees 0, 2 and 3, so a grid exact to l = 3 averages it to (1 + 0.3 / 3) sum r^2.
USER_SCRIPT = """
import sys
import torch


class Anisotropic(torch.nn.Module):
    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        n_atoms = positions.shape[0]
        pair_index = torch.triu_indices(n_atoms, n_atoms, 1)
        pairs = positions[pair_index[1]] - positions[pair_index[0]]
        squared = (pairs * pairs).sum(-1)
        u = pairs / torch.sqrt(squared)[:, None]
        return (squared * (1 + 0.3 * u[:, 2] ** 2 + 0.5 * u[:, 0] * u[:, 1] * u[:, 2])).sum()


how, path, n_atoms = sys.argv[1], sys.argv[2], int(sys.argv[3])
module = Anisotropic()
if how == "scripted":
    module = torch.jit.script(module)
elif how == "traced":
    module = torch.jit.trace(module, torch.rand(n_atoms, 3, dtype=torch.float64))
else:
    module = torch.jit.freeze(torch.jit.script(module).eval())
module.save(path)
"""


def _user_energy(positions_nm: np.ndarray) -> float:
    """The energy of USER_SCRIPT's module, in numpy (kJ/mol)."""
    first, second = np.triu_indices(len(positions_nm), 1)
    pairs = positions_nm[second] - positions_nm[first]
    squared = (pairs ** 2).sum(-1)
    u = pairs / np.sqrt(squared)[:, None]
    return float((squared * (1 + 0.3 * u[:, 2] ** 2 + 0.5 * u[:, 0] * u[:, 1] * u[:, 2])).sum())


@pytest.mark.parametrize("how", ["scripted", "traced", "frozen"])
def test_a_module_of_a_class_in_main_is_symmetrized_whatever_its_file_name(tmp_path, how):
    positions = np.random.default_rng(3).normal(scale=0.2, size=(5, 3))
    (tmp_path / "user_script.py").write_text(USER_SCRIPT)
    subprocess.run([sys.executable, "user_script.py", how, "saved.pt", str(len(positions))],
                   cwd=tmp_path, check=True)
    # users rename files: the archive's top folder ("saved") no longer matches the name
    (tmp_path / "saved.pt").rename(tmp_path / f"{how}-model.pt")
    assert detect_kind(tmp_path / f"{how}-model.pt") == "torchforce"
    assert main(["symmetrize", str(tmp_path / f"{how}-model.pt"), "--strategy", "full",
                 "--grid", "Ti", "-o", str(tmp_path / "Ti.pt")]) == 0
    module = torch.jit.load(str(tmp_path / "Ti.pt"))
    grid = parse_grid("Ti")
    explicit = sum(weight * _user_energy(positions @ rotation.T)
                   for rotation, weight in zip(grid.rotations, grid.weights))
    squared = sum(np.sum((positions[j] - positions[i]) ** 2)
                  for i in range(len(positions)) for j in range(i + 1, len(positions)))
    assert explicit == pytest.approx(1.1 * squared, rel=1e-12)
    assert _energy(module, positions, None) == pytest.approx(explicit, rel=1e-12)
    assert abs(_user_energy(positions) - explicit) > 1e-3 * explicit  # the raw module breaks it
    for rotation in random_rotations(4, np.random.default_rng(4), inversion=True):
        assert _energy(module, positions @ rotation.T, None) == pytest.approx(explicit, rel=1e-12)


def test_detection_never_unpickles_python_objects(tmp_path):
    """A torch.save archive whose pickle would run code (a file write) when unpickled is refused
    without running it."""
    script = """
import os
import torch


class Payload:
    def __reduce__(self):
        return (os.mkdir, ("code-ran",))


torch.save({"format": "omm-symbreak-pet-1", "payload": Payload()}, "model.ckpt")
"""
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
    with pytest.raises(ValueError, match="Python objects"):
        load_energy_model(tmp_path / "model.ckpt")
    assert detect_kind(tmp_path / "model.ckpt") == "built-in"
    assert not (tmp_path / "code-ran").exists()


def test_a_torchscript_file_torch_cannot_load_is_refused_with_torchs_reason(tmp_path):
    write_module(tmp_path / "user.pt", [8, 1, 1])
    with zipfile.ZipFile(tmp_path / "user.pt") as source, \
            zipfile.ZipFile(tmp_path / "broken.pt", "w") as broken:
        for record in source.infolist():
            code = "/code/" in record.filename and record.filename.endswith(".py")
            broken.writestr(record, b"def f(x: Tensor) -> Tensor:\n  return undefined_function(x)\n"
                            if code else source.read(record.filename))
    with pytest.raises(ValueError, match="TorchScript archive that torch.jit.load cannot load"):
        load_energy_model(tmp_path / "broken.pt")


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
