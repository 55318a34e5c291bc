"""Metatomic models in OpenMM (openmm.PythonForce): the grid average against metatomic's own
ASE calculator on rotated structures, the analytic average of a hand-written non-invariant
model (tests/metatomic_models.py), every strategy in a Context, MD, and bad input. The models
are built here (a tiny PET trained by metatrain in about 20 s); nothing is downloaded."""

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

pytest.importorskip("metatomic.torch")
# metatomic-ase computes a stress for the molecule too (NaN without a cell): not used here
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
from metatomic_ase import MetatomicCalculator  # noqa: E402

from metatomic_models import (handwritten_energy_ev, write_handwritten_model,  # noqa: E402
                              write_model_without_energy, write_model_without_hydrogen,
                              write_tiny_pet)
from omm_symbreak.cli import main  # noqa: E402
from omm_symbreak.export import openmm_module  # noqa: E402
from omm_symbreak.grids import parse_grid  # noqa: E402
from omm_symbreak.model_kinds import detect_kind, load_energy_model  # noqa: E402
from omm_symbreak.potential import create_system  # noqa: E402
from omm_symbreak.strategies import SLOW_GROUP  # noqa: E402
from omm_symbreak.rundir import read_diagnostics  # noqa: E402
from omm_symbreak.settings import RunSettings  # noqa: E402
from omm_symbreak.simulate import run  # noqa: E402
from omm_symbreak.systems import load_structure  # noqa: E402
from omm_symbreak.units import KJ_PER_MOL_PER_EV, as_nm_array, nm_to_angstrom  # noqa: E402


@pytest.fixture(scope="module")
def tiny_pet(tmp_path_factory):
    return write_tiny_pet(tmp_path_factory.mktemp("pet") / "pet.pt")


@pytest.fixture
def handwritten(tmp_path):
    return write_handwritten_model(tmp_path / "handwritten.pt", anisotropy=0.05)


def _structure(name):
    topology, positions = load_structure(name)
    box = topology.getPeriodicBoxVectors()
    return (topology, as_nm_array(positions), None if box is None else as_nm_array(box),
            [atom.element.atomic_number for atom in topology.atoms()])


def _energy_kj_mol(module, positions_nm, box_nm):
    with torch.no_grad():
        return float(module(torch.tensor(positions_nm),
                            None if box_nm is None else torch.tensor(box_nm)))


def _calculator_average_ev(path, positions_nm, box_nm, numbers, grid):
    """sum_g w_g E(R_g x) by metatomic's ASE calculator on each rotated structure (about the
    centroid; cell rows rotated), eV."""
    import ase

    calculator = MetatomicCalculator(str(path))
    positions = nm_to_angstrom(positions_nm)
    centred = positions - positions.mean(axis=0)
    total = 0.0
    for rotation, weight in zip(grid.rotations, grid.weights):
        atoms = ase.Atoms(numbers=numbers, positions=centred @ rotation.T,
                          cell=None if box_nm is None else nm_to_angstrom(box_nm) @ rotation.T,
                          pbc=box_nm is not None)
        atoms.calc = calculator
        total += weight * atoms.get_potential_energy()
    return total


@pytest.mark.parametrize("name", ["water-monomer", "liquid-64"])
def test_full_equals_the_calculators_average_over_the_rotated_structures(
        tmp_path, tiny_pet, name):
    topology, positions, box, numbers = _structure(name)
    model = load_energy_model(tiny_pet)
    assert detect_kind(tiny_pet) == "metatomic" and not model.scriptable
    for spec in ("Ti", "2i"):
        grid = parse_grid(spec)
        expected = _calculator_average_ev(tiny_pet, positions, box, numbers, grid)
        module = openmm_module(topology, model, "full", grid, positions)
        energy_ev = _energy_kj_mol(module, positions, box) / KJ_PER_MOL_PER_EV
        assert energy_ev == pytest.approx(expected, rel=1e-6), spec


def test_the_average_removes_the_handwritten_models_anisotropy(handwritten):
    # its anisotropic term is of degree 2 and 3: a grid exact to 3 averages it to zero
    topology, positions, box, numbers = _structure("liquid-64")
    model = load_energy_model(handwritten)
    box_angstrom = nm_to_angstrom(box)
    raw = _energy_kj_mol(openmm_module(topology, model), positions, box) / KJ_PER_MOL_PER_EV
    assert raw == pytest.approx(handwritten_energy_ev(
        nm_to_angstrom(positions), box_angstrom, numbers), rel=1e-10)
    isotropic = handwritten_energy_ev(nm_to_angstrom(positions), box_angstrom, numbers,
                                      anisotropy=0.0)
    assert abs(raw - isotropic) > 1e-3
    averaged = openmm_module(topology, model, "full", parse_grid("Ti"))
    assert _energy_kj_mol(averaged, positions, box) / KJ_PER_MOL_PER_EV == pytest.approx(
        isotropic, rel=1e-10)


@pytest.mark.parametrize("strategy, grid", [("none", None), ("full", "Ti"), ("mts", "Ti"),
                                            ("random", None)])
def test_every_strategy_runs_in_a_context(handwritten, strategy, grid):
    topology, positions, _, numbers = _structure("water-monomer")
    model = load_energy_model(handwritten)
    grid = None if grid is None else parse_grid(grid)
    system = create_system(topology, model, strategy, grid, positions)
    assert all(isinstance(system.getForce(i), openmm.PythonForce)
               for i in range(system.getNumForces()))
    context = openmm.Context(system, openmm.VerletIntegrator(1e-4),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    anisotropy = 0.0 if strategy in ("full", "mts") else 0.05
    angstrom = nm_to_angstrom(positions)
    if strategy != "random":
        assert energy / KJ_PER_MOL_PER_EV == pytest.approx(
            handwritten_energy_ev(angstrom, None, numbers, anisotropy), rel=1e-9)
        step = 1e-5  # Angstrom
        shifted = angstrom.copy()
        shifted[1, 0] += step
        plus = handwritten_energy_ev(shifted, None, numbers, anisotropy)
        shifted[1, 0] -= 2 * step
        minus = handwritten_energy_ev(shifted, None, numbers, anisotropy)
        expected = -(plus - minus) / (2 * step) * KJ_PER_MOL_PER_EV * 10  # kJ/mol/nm
        assert forces[1, 0] == pytest.approx(expected, rel=1e-5)
    assert np.abs(forces.sum(axis=0)).max() < 1e-8  # translation invariance
    if strategy == "mts":
        slow = context.getState(getEnergy=True, groups={SLOW_GROUP}).getPotentialEnergy()
        correction = (handwritten_energy_ev(angstrom, None, numbers, 0.0)
                      - handwritten_energy_ev(angstrom, None, numbers, 0.05))
        assert slow.value_in_unit(unit.kilojoule_per_mole) / KJ_PER_MOL_PER_EV == (
            pytest.approx(correction, rel=1e-8))


def test_nve_angular_momentum_wander_falls_1000_times_with_ti(tmp_path, handwritten):
    wander = {}
    for strategy, grid in (("none", None), ("full", "Ti")):
        settings = RunSettings(system="water-monomer", model=str(handwritten),
                               strategy=strategy, grid=grid, ensemble="nve", steps=200,
                               timestep_fs=0.25, platform="Reference", state_interval=20,
                               trajectory_interval=200, diagnostics_interval=20,
                               checkpoint_interval=200, diagnostic_grid="Ti")
        directory = run(settings, tmp_path / strategy, progress=False)
        diagnostics = read_diagnostics(directory / "diagnostics.csv")
        momentum = np.stack([diagnostics[f"L_{axis}"] for axis in "xyz"])
        wander[strategy] = np.abs(momentum - momentum[:, :1]).max()
        if strategy == "none":  # Delta is measured for a metatomic model too
            assert np.abs(diagnostics["delta_kj_mol"]).max() > 1e-3
    assert wander["full"] * 1000 < wander["none"], wander


def test_mts_md_with_the_tiny_pet(tmp_path, tiny_pet):
    settings = RunSettings(system="water-monomer", model=str(tiny_pet), strategy="mts",
                           grid="Ti", mts_stride=2, steps=8, state_interval=4,
                           trajectory_interval=4, diagnostics_interval=4, checkpoint_interval=8,
                           platform="CPU")
    directory = run(settings, tmp_path / "run", progress=False)
    assert len(read_diagnostics(directory / "diagnostics.csv")["step"]) == 3


def test_bad_models_are_refused_before_any_md(tmp_path, capsys):
    with pytest.raises(ValueError, match="no 'energy' output"):
        load_energy_model(write_model_without_energy(tmp_path / "features.pt"))
    oxygen_only = load_energy_model(write_model_without_hydrogen(tmp_path / "oxygen.pt"))
    topology, positions, _, _ = _structure("water-monomer")
    with pytest.raises(ValueError, match=r"knows the elements O \(oxygen\), not H \(hydrogen\)"):
        create_system(topology, oxygen_only, "none", None, positions)
    handwritten = write_handwritten_model(tmp_path / "handwritten.pt")
    for command in (["export", "--model", str(handwritten), "--system", "water-monomer"],
                    ["symmetrize", str(handwritten), "--strategy", "full"]):
        assert main(command + ["-o", str(tmp_path / "out.pt")]) == 2
        assert "PythonForce" in capsys.readouterr().err
    assert main(["simulate", "water-monomer", "--model", str(tmp_path / "oxygen.pt"),
                 "--steps", "10", "-o", str(tmp_path / "run")]) == 2
    assert "not H" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_evaluate_reports_a_metatomic_models_errors_and_rotational_spread(tmp_path, handwritten):
    from omm_symbreak.data import read_frames
    from omm_symbreak.evaluate import evaluate_files
    from metatomic_models import LIQUID_FRAMES

    frames = read_frames(LIQUID_FRAMES)[:2]
    result = evaluate_files(handwritten, LIQUID_FRAMES, grids=[parse_grid("Ti")], n_rotations=3,
                            max_structures=2)
    expected = [handwritten_energy_ev(frame.positions_angstrom, frame.cell_angstrom,
                                      frame.atomic_numbers) for frame in frames]
    errors = [(e - frame.energy_ev) / frame.n_atoms for e, frame in zip(expected, frames)]
    raw, averaged = result["grids"]["none"], result["grids"]["Ti"]
    assert raw["accuracy"]["energy_mae_mev_per_atom"] == pytest.approx(
        1000 * np.mean(np.abs(errors)), rel=1e-9)
    assert raw["rotational"]["energy_std_mev_per_structure"] > 1.0
    assert averaged["rotational"]["energy_std_mev_per_structure"] < 1e-6
    assert averaged["rotational"]["force_std_mev_per_angstrom"] < 1e-6
