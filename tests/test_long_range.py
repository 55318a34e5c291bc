"""The long-range head of UnconstrainedPET: learned, neutral charges whose Ewald (or direct)
energy is added to the short-range energy. Against OpenMM's NonbondedForce with the model's
charges, against explicitly rotated structures for the grid average, and through TorchForce."""

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from conftest import TINY_MODEL, water_positions_angstrom, water_topology
from omm_symbreak.export import openmm_module
from omm_symbreak.grids import parse_grid
from omm_symbreak.model_kinds import as_energy_model
from omm_symbreak.model_kinds.builtin import PETAdapter
from omm_symbreak.model import UnconstrainedPET
from omm_symbreak.model.neighbors import neighbor_list
from omm_symbreak.potential import create_system
from omm_symbreak.units import KJ_PER_MOL_PER_EV, angstrom_to_nm

EWALD_CUTOFF = 4.0  # Angstrom: below half of the 10 Angstrom box, as OpenMM requires


def long_range_model(seed: int = 0) -> UnconstrainedPET:
    torch.manual_seed(seed)
    model = UnconstrainedPET(**TINY_MODEL, long_range=True, ewald_cutoff=EWALD_CUTOFF,
                             ewald_tolerance=1e-7).double()
    with torch.no_grad():  # charges of a realistic size (about 0.5 e)
        model.charge_head[2].weight.mul_(20.0)
    return model.eval()


@pytest.fixture
def box():
    """27 water molecules in a periodic 10 Angstrom cubic box (topology, positions, cell)."""
    cell = np.eye(3) * 10.0
    return water_topology(27, cell), water_positions_angstrom(3, 10.0 / 3, seed=3), cell


def _short_range_and_charges(model, positions, cell):
    species = model.species_of([8, 1, 1] * (len(positions) // 3))
    x = torch.tensor(positions)
    neighbors = neighbor_list(x, None if cell is None else torch.tensor(cell), model.cutoff,
                              model.max_neighbors)
    energies, charges = model.energies_and_charges(species, neighbors.vectors[None],
                                                   neighbors.index, neighbors.reverse,
                                                   neighbors.mask)
    return float(energies.sum().detach()), charges[0].detach().numpy()


def _openmm_coulomb_ev(charges, positions, cell):
    system = openmm.System()
    force = openmm.NonbondedForce()
    for charge in charges:
        system.addParticle(1.0)
        force.addParticle(float(charge), 0.1, 0.0)
    if cell is None:
        force.setNonbondedMethod(openmm.NonbondedForce.NoCutoff)
    else:
        force.setNonbondedMethod(openmm.NonbondedForce.Ewald)
        force.setCutoffDistance(angstrom_to_nm(EWALD_CUTOFF))
        force.setEwaldErrorTolerance(1e-7)
        system.setDefaultPeriodicBoxVectors(*angstrom_to_nm(cell))
    system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(angstrom_to_nm(positions))
    energy = context.getState(getEnergy=True).getPotentialEnergy()
    return energy.value_in_unit(unit.kilojoule_per_mole) / KJ_PER_MOL_PER_EV


@pytest.mark.parametrize("periodic", [True, False])
def test_energy_is_short_range_plus_openmms_coulomb_of_the_charges(box, periodic):
    _, positions, cell = box
    cell = cell if periodic else None
    model = long_range_model()
    short, charges = _short_range_and_charges(model, positions, cell)
    assert abs(charges.sum()) < 1e-12 and np.abs(charges).max() > 0.05
    species = model.species_of([8, 1, 1] * 27)
    total = as_energy_model(model).rotated_copies()(species, torch.tensor(positions),
                                  None if cell is None else torch.tensor(cell),
                                  torch.eye(3, dtype=torch.float64)[None])
    expected = short + _openmm_coulomb_ev(charges, positions, cell)
    assert float(total[0].detach()) == pytest.approx(expected, rel=1e-6)


def test_grid_average_equals_the_average_over_explicitly_rotated_structures(box):
    _, positions, cell = box
    model = long_range_model()
    grid = parse_grid("Ti")
    species = model.species_of([8, 1, 1] * 27)
    kernel = as_energy_model(model).rotated_copies()
    averaged = kernel(species, torch.tensor(positions), torch.tensor(cell),
                      torch.tensor(grid.rotations)) @ torch.tensor(grid.weights)
    # an improper copy's cell negated: the same lattice, right-handed as the neighbour search
    # wants it
    explicit = sum(weight * float(kernel(species, torch.tensor(positions @ rotation.T),
                                         torch.tensor(np.linalg.det(rotation) * cell
                                                      @ rotation.T),
                                         torch.eye(3, dtype=torch.float64)[None])[0])
                   for rotation, weight in zip(grid.rotations, grid.weights))
    assert float(averaged) == pytest.approx(explicit, rel=1e-10)
    raw = float(kernel(species, torch.tensor(positions), torch.tensor(cell),
                       torch.eye(3, dtype=torch.float64)[None])[0])
    assert abs(raw - explicit) > 1e-6  # the charges break the symmetry too


def test_long_range_model_runs_in_torchforce_as_evaluated_directly(box):
    topology, positions, cell = box
    model = long_range_model()
    module = openmm_module(topology, model, "full", parse_grid("Ti"))
    x = torch.tensor(angstrom_to_nm(positions), requires_grad=True)
    direct = module(x, torch.tensor(angstrom_to_nm(cell)))
    (gradient,) = torch.autograd.grad(direct, x)
    system = create_system(topology, model, "full", parse_grid("Ti"))
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(angstrom_to_nm(positions))
    state = context.getState(getEnergy=True, getForces=True)
    assert state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) == pytest.approx(
        float(direct.detach()), rel=1e-10)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    np.testing.assert_allclose(forces, -gradient.numpy(), rtol=1e-8, atol=1e-8)
    assert PETAdapter(model).model.long_range


def test_train_a_long_range_model_from_the_command_line(tmp_path, capsys):
    from omm_symbreak.cli import main
    from omm_symbreak.data import read_frames, write_frames
    from omm_symbreak.model import load_model
    from pathlib import Path

    frames = read_frames(Path(__file__).resolve().parents[1] / "analysis" / "data"
                         / "valid.extxyz")[:3]
    write_frames(tmp_path / "train.extxyz", frames[:2])
    write_frames(tmp_path / "valid.extxyz", frames[2:])
    assert main(["train", str(tmp_path / "train.extxyz"), "--valid",
                 str(tmp_path / "valid.extxyz"), "-o", str(tmp_path / "m.ckpt"), "--epochs", "1",
                 "--batch-size", "2", "--quiet", "--width", "16", "--n-heads", "2",
                 "--ffn-width", "32", "--long-range", "--ewald-cutoff", "6"]) == 0
    assert "final report" in capsys.readouterr().out
    model = load_model(tmp_path / "m.ckpt")
    assert model.long_range and model.hyperparameters["ewald_cutoff"] == 6.0
    _, charges = _short_range_and_charges(model.double(), frames[0].positions_angstrom,
                                          frames[0].cell_angstrom)
    assert abs(charges.sum()) < 1e-9 and np.abs(charges).max() > 0


def test_a_charge_head_added_to_a_short_range_model_keeps_its_weights_and_learns(tmp_path):
    """``--init-from`` with ``--long-range``: the copy keeps the short-range energies of every
    atom, adds small neutral charges, and one epoch of training changes the charge head."""
    from omm_symbreak.cli import main
    from omm_symbreak.data import read_frames, write_frames
    from omm_symbreak.model import load_model, save_model
    from pathlib import Path

    torch.manual_seed(1)
    short = UnconstrainedPET(**TINY_MODEL).double().eval()
    extended = short.with_long_range(ewald_cutoff=6.0).eval()
    frames = read_frames(Path(__file__).resolve().parents[1] / "analysis" / "data"
                         / "valid.extxyz")[:3]
    frame = frames[0]
    energy_short, charges_short = _short_range_and_charges(short, frame.positions_angstrom,
                                                           frame.cell_angstrom)
    energy_long, charges = _short_range_and_charges(extended, frame.positions_angstrom,
                                                    frame.cell_angstrom)
    assert energy_long == pytest.approx(energy_short, rel=1e-14)
    assert not charges_short.any()
    assert abs(charges.sum()) < 1e-12 and 1e-4 < np.abs(charges).max() < 0.5
    with pytest.raises(ValueError, match="long-range head already"):
        extended.with_long_range()

    save_model(short.float(), tmp_path / "short.ckpt")
    write_frames(tmp_path / "train.extxyz", frames[:2])
    assert main(["train", str(tmp_path / "train.extxyz"), "-o", str(tmp_path / "long.ckpt"),
                 "--init-from", str(tmp_path / "short.ckpt"), "--epochs", "1",
                 "--batch-size", "2", "--quiet", "--long-range", "--ewald-cutoff", "6",
                 "--seed", "5"]) == 0
    tuned = load_model(tmp_path / "long.ckpt").double()
    assert tuned.long_range and tuned.hyperparameters["ewald_cutoff"] == 6.0
    assert tuned.hyperparameters["width"] == TINY_MODEL["width"]
    torch.manual_seed(5)  # the training's seed: its initial charge head
    start = short.with_long_range(ewald_cutoff=6.0)
    change = (tuned.charge_head[2].weight - start.charge_head[2].weight).abs().max()
    assert float(change) > 1e-6
