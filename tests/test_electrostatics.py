"""The Coulomb sums of omm_symbreak.model.electrostatics (Ewald, torch-pme's mesh and the direct
sum) against OpenMM's NonbondedForce (Ewald, PME, NoCutoff), for energies and forces, in any
rotated cell and through TorchScript with freezing (as openmm-torch loads modules)."""

import time
from typing import Optional

import numpy as np
import openmm
import pytest
import torch
from openmm import unit

from omm_symbreak.model.electrostatics import Coulomb
from omm_symbreak.systems import load_structure
from omm_symbreak.units import KJ_PER_MOL_PER_EV, as_nm_array
from conftest import peak_cpu_bytes, random_rotation

CUTOFF_NM = 0.6  # below half of liquid-64's 1.24 nm box, as OpenMM's minimum image requires
# q-TIP4P/F-like charges on the atoms themselves (no M site): neutral molecules
CHARGES = {"O": -1.1128, "H": 0.5564}
# the two reciprocal routes, forced whatever the number of atoms
ROUTES = {"ewald": 10**9, "mesh": 0}


def _liquid():
    topology, positions = load_structure("liquid-64")
    charges = np.array([CHARGES[atom.element.symbol] for atom in topology.atoms()])
    return charges, as_nm_array(positions), as_nm_array(topology.getPeriodicBoxVectors())


def _openmm(charges, positions_nm, box_nm: Optional[np.ndarray], method, tolerance=1e-6):
    """Energy (kJ/mol) and forces [N, 3] (kJ/mol/nm) of point charges by NonbondedForce."""
    system = openmm.System()
    force = openmm.NonbondedForce()
    for charge in charges:
        system.addParticle(1.0)
        force.addParticle(float(charge), 0.1, 0.0)
    force.setNonbondedMethod(method)
    if box_nm is not None:
        system.setDefaultPeriodicBoxVectors(*box_nm)
        force.setCutoffDistance(CUTOFF_NM)
        force.setEwaldErrorTolerance(tolerance)
    system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions_nm)
    state = context.getState(getEnergy=True, getForces=True)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


def _coulomb_energy(charges, positions, cell, cutoff, tolerance, route=None):
    """The energy (eV) of one charge set [N] (Angstrom) by ``Coulomb`` on ``route`` (None: the
    default choice by size)."""
    coulomb = Coulomb(cutoff, tolerance) if route is None \
        else Coulomb(cutoff, tolerance, ROUTES[route])
    return coulomb.to(positions.dtype)(charges[None], positions, cell)[0]


def _ours(charges, positions_nm, box_nm, energy=_coulomb_energy, tolerance=1e-6, route="ewald"):
    """Energy (kJ/mol) and forces (kJ/mol/nm) of ``Coulomb`` (Angstrom, eV inside)."""
    x = torch.tensor(positions_nm * 10, requires_grad=True)
    cell = None if box_nm is None else torch.tensor(box_nm * 10)
    value = energy(torch.tensor(charges), x, cell, 10 * CUTOFF_NM, tolerance, route)
    (gradient,) = torch.autograd.grad(value, x)
    return float(value.detach()) * KJ_PER_MOL_PER_EV, -gradient.numpy() * KJ_PER_MOL_PER_EV * 10


def _assert_close(ours, reference, rel=1e-5):
    (energy, forces), (energy_ref, forces_ref) = ours, reference
    assert energy == pytest.approx(energy_ref, rel=rel)
    assert np.abs(forces - forces_ref).max() < rel * np.abs(forces_ref).max()


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("method", [openmm.NonbondedForce.Ewald, openmm.NonbondedForce.PME])
def test_periodic_sum_matches_openmm(method, route):
    charges, positions, box = _liquid()
    _assert_close(_ours(charges, positions, box, route=route),
                  _openmm(charges, positions, box, method))


def test_the_mesh_takes_over_from_the_default_size_on_and_agrees_with_openmm():
    # liquid-64 replicated 2 x 2 x 2 (1536 atoms) is past MESH_MIN_ATOMS
    charges, positions, box = _liquid()
    translations = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]) @ box
    positions = (positions[None] + translations[:, None]).reshape(-1, 3)
    charges, box = np.tile(charges, 8), 2 * box
    coulomb = Coulomb(10 * CUTOFF_NM)
    assert coulomb.uses_mesh(len(charges)) and not coulomb.uses_mesh(len(charges) // 8)
    setup = coulomb.setup(torch.tensor(positions * 10), torch.tensor(box * 10))
    assert len(setup) == 6  # the pairs, then the positions, cell and 1 / dilution of the mesh
    _assert_close(_ours(charges, positions, box, route=None),
                  _openmm(charges, positions, box, openmm.NonbondedForce.PME))


def test_direct_sum_matches_openmm_without_cutoff():
    charges, positions, _ = _liquid()
    charges, positions = charges[:30], positions[:30]  # ten molecules, no box
    _assert_close(_ours(charges, positions, None),
                  _openmm(charges, positions, None, openmm.NonbondedForce.NoCutoff), rel=1e-10)


@pytest.mark.parametrize("route", ROUTES)
def test_a_rotated_cell_gives_the_same_energy_and_rotated_forces(route):
    charges, positions, box = _liquid()
    rotation = random_rotation(np.random.default_rng(4))
    for matrix in (rotation, -rotation):  # and an improper one
        energy, forces = _ours(charges, positions @ matrix.T, box @ matrix.T, route=route)
        energy_ref, forces_ref = _ours(charges, positions, box, route=route)
        assert energy == pytest.approx(energy_ref, rel=1e-12)
        np.testing.assert_allclose(forces, forces_ref @ matrix.T, atol=1e-8)


@pytest.mark.parametrize("route", ROUTES)
def test_a_cell_shorter_than_two_cutoffs_sums_every_image(route):
    # a triclinic cell of 4 ion pairs, shorter than twice the 0.6 nm cutoff along every axis
    # (the real-space sum reaches several images of each atom), against its 2 x 2 x 2
    # supercell, wider than two cutoffs: the Ewald energy of a periodic system is extensive
    box = np.array([[0.62, 0.0, 0.0], [0.15, 0.60, 0.0], [-0.07, 0.11, 0.64]])
    rng = np.random.default_rng(7)
    positions = rng.uniform(0.0, 1.0, (8, 3)) @ box
    charges = np.tile([0.9, -0.9], 4)
    translations = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]) @ box
    supercell = (positions[None] + translations[:, None]).reshape(-1, 3)
    energy, forces = _ours(charges, positions, box, route=route)
    energy_super, forces_super = _ours(np.tile(charges, 8), supercell, 2 * box, route=route)
    assert energy_super == pytest.approx(8 * energy, rel=1e-6)
    np.testing.assert_allclose(forces_super[:8], forces, rtol=1e-5, atol=1e-6 * abs(forces).max())


class _Module(torch.nn.Module):
    def __init__(self, route: str):
        super().__init__()
        self.coulomb = Coulomb(10 * CUTOFF_NM, 1e-6, ROUTES[route]).double()

    def forward(self, charges: torch.Tensor, positions: torch.Tensor,
                cell: Optional[torch.Tensor], cutoff: float, tolerance: float,
                route: Optional[str]) -> torch.Tensor:
        return self.coulomb(charges[None], positions, cell)[0]


@pytest.mark.parametrize("route", ROUTES)
def test_scripted_and_frozen_gives_the_same_energy_and_forces(route):
    charges, positions, box = _liquid()
    frozen = torch.jit.freeze(torch.jit.script(_Module(route)).eval())
    _assert_close(_ours(charges, positions, box, frozen, route=route),
                  _ours(charges, positions, box, route=route), rel=1e-12)


@pytest.mark.parametrize("route", ROUTES)
def test_a_charged_cell_is_refused(route):
    charges, positions, box = _liquid()
    with pytest.raises(ValueError, match="neutral"):
        _coulomb_energy(torch.tensor(charges + 0.01), torch.tensor(positions * 10),
                        torch.tensor(box * 10), 6.0, 1e-6, route)


@pytest.mark.parametrize("route", ROUTES)
def test_a_batch_of_charge_sets_gives_each_sets_energy(route):
    # the rotated copies of a structure share its positions, each with its own charges
    charges, positions, box = _liquid()
    rng = np.random.default_rng(5)
    batch = charges + rng.normal(0, 0.05, (3, len(charges)))
    batch -= batch.mean(axis=1, keepdims=True)
    coulomb = Coulomb(6.0, 1e-6, ROUTES[route]).double()
    setup = coulomb.setup(torch.tensor(positions * 10), torch.tensor(box * 10))
    energies = coulomb.energies(setup, torch.tensor(batch))
    for row, energy in zip(batch, energies):
        single = _ours(row, positions, box, route=route)[0] / KJ_PER_MOL_PER_EV
        assert float(energy) == pytest.approx(single, rel=1e-12)
    assert len(set(float(energy) for energy in energies)) == 3


def test_float32_charges_neutral_to_rounding_are_accepted_and_summed_as_in_float64():
    """Small charges made neutral in float32 by removing a raw offset of 5 e sum to the
    rounding of that offset (about N x eps x 5 e), not to zero: accepted, with the energy of
    the same charges in float64."""
    torch.manual_seed(1)  # one of the seeds whose residual exceeds the old limit
    positions = torch.rand(192, 3, dtype=torch.float64) * 12.0
    cell = torch.eye(3, dtype=torch.float64) * 12.0
    raw = (5.0 + 0.03 * torch.randn(1, 192)).float()
    charges = raw - raw.mean(dim=1, keepdim=True)
    assert float(charges.sum().abs()) > 1e-6 * float(charges.abs().sum())  # the old limit
    coulomb = Coulomb(5.0, 1e-6)
    setup64 = coulomb.setup(positions, cell)
    setup32 = [tensor.float() if tensor.is_floating_point() else tensor for tensor in setup64]
    energy32 = coulomb.energies(setup32, charges)
    neutral64 = charges.double() - charges.double().mean()
    energy64 = coulomb.energies(setup64, neutral64)
    assert float(energy32) == pytest.approx(float(energy64), rel=1e-3)


def _spread_molecules(n_molecules: int, box_angstrom: float, seed: int):
    """Charges [3M] and positions [3M, 3] (Angstrom) of liquid-64's first ``n_molecules``
    molecules, each moved to a random point of a cubic box of edge ``box_angstrom``."""
    charges, positions, _ = _liquid()
    rng = np.random.default_rng(seed)
    molecules = positions[:3 * n_molecules].reshape(n_molecules, 3, 3) * 10
    molecules = molecules - molecules[:, :1] + rng.uniform(0, box_angstrom, (n_molecules, 1, 3))
    return charges[:3 * n_molecules], molecules.reshape(-1, 3)


@pytest.mark.parametrize("route", ROUTES)
def test_a_dilute_box_is_summed_shrunk_and_agrees_with_openmm(route):
    """Three molecules in a 40 Angstrom box (0.00014 atoms per cubic Angstrom): summed shrunk by
    s = 5.2, with OpenMM's Ewald sum of the box as it is."""
    charges, positions = _spread_molecules(3, 40.0, seed=2)
    box_nm = np.eye(3) * 4.0
    assert Coulomb(10 * CUTOFF_NM).dilution(9, 40.0 ** 3) == pytest.approx(5.2, abs=0.05)
    _assert_close(_ours(charges, positions / 10, box_nm, route=route),
                  _openmm(charges, positions / 10, box_nm, openmm.NonbondedForce.Ewald))


@pytest.mark.parametrize("edge", [300.0, 5000.0])
@pytest.mark.parametrize("n_molecules", [1, 4])
def test_a_huge_box_costs_what_its_atoms_cost(edge, n_molecules):
    """Molecules in a box of edge 300 or 5000 Angstrom: their periodic images are so far away
    that the sum is the direct one of the molecules (differences O(p^2 / V), below 1e-9 here),
    in a few MB and milliseconds (at a fixed splitting the reciprocal sum alone would need
    10^7 or 10^11 vectors)."""
    charges, positions = _spread_molecules(n_molecules, edge, seed=n_molecules)
    charges, positions = torch.tensor(charges)[None], torch.tensor(positions)
    cell = torch.eye(3, dtype=torch.float64) * edge
    coulomb = Coulomb(10 * CUTOFF_NM).double()
    start = time.perf_counter()
    periodic = float(coulomb(charges, positions, cell))
    assert time.perf_counter() - start < 0.5
    assert peak_cpu_bytes(lambda: coulomb(charges, positions, cell)) < 4 * 2**20
    assert periodic == pytest.approx(float(coulomb(charges, positions, None)), rel=1e-7)
