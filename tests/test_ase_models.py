"""ASE calculators as models (omm_symbreak.model_kinds.ase_calculator), through
openmm.PythonForce: a calculator whose breaking is known analytically (tests/ase_models.py)
against its O(3) average, in Python, in a Context (full, mts, random) and through OpenMM-ML; a
direct-force calculator; a calculator that takes its forces by torch autograd; bad input.
Orb-v3: tests/test_orb_model.py."""

import numpy as np
import pytest
import torch

from ase_models import AutogradCalculator, DirectForceCalculator, PolynomialCalculator
from conftest import reference_state
from omm_symbreak.export import check_exportable, openmm_module
from omm_symbreak.grids import parse_grid, random_rotations
from omm_symbreak.kernel import random_rotation
from omm_symbreak.model_kinds import ASEModel, as_energy_model
from omm_symbreak.potential import create_system
from omm_symbreak.strategies import FAST_GROUP, SLOW_GROUP
from omm_symbreak.systems import load_structure
from omm_symbreak.units import (angstrom_to_nm, as_nm_array, ev_angstrom_to_kj_mol_nm,
                                ev_to_kj_mol, nm_to_angstrom)


def _structure(name):
    """(topology, positions [N, 3] nm, box [3, 3] nm or None) of a template."""
    topology, positions = load_structure(name)
    box = topology.getPeriodicBoxVectors()
    return topology, as_nm_array(positions), None if box is None else as_nm_array(box)


def _energy_and_forces(module, positions_nm, box_nm):
    """The module's energy (kJ/mol) and forces [N, 3] (kJ/mol/nm) by autograd."""
    positions = torch.tensor(positions_nm, requires_grad=True)
    energy = module(positions, None if box_nm is None else torch.tensor(box_nm))
    (gradient,) = torch.autograd.grad(energy, positions)
    return float(energy.detach()), -gradient.numpy()


def _in_openmm_units(energy_ev, forces_ev_angstrom):
    return ev_to_kj_mol(energy_ev), ev_angstrom_to_kj_mol_nm(forces_ev_angstrom)


def _rotated_energy_and_forces(calculator, positions_nm, rotation):
    """E(R x) (kJ/mol) and R^T F(R x) (kJ/mol/nm) by the calculator's own formulas, about the
    centroid."""
    centred = nm_to_angstrom(positions_nm - positions_nm.mean(axis=0)) @ rotation.T
    forces = calculator.forces(centred) @ rotation
    return _in_openmm_units(calculator.energy(centred), forces)


@pytest.mark.parametrize("name", ["water-monomer", "liquid-64"])
@pytest.mark.parametrize("spec", ["Ti", "I"])
def test_full_average_equals_the_analytic_O3_average(name, spec):
    topology, positions, box = _structure(name)
    calculator = PolynomialCalculator()
    isotropic, isotropic_forces = _in_openmm_units(
        *calculator.isotropic(nm_to_angstrom(positions)))
    raw, _ = _energy_and_forces(openmm_module(topology, calculator, "none"), positions, box)
    assert abs(raw - isotropic) > 1e-2 * abs(isotropic)  # the calculator breaks the symmetry
    energy, forces = _energy_and_forces(
        openmm_module(topology, calculator, "full", parse_grid(spec)), positions, box)
    assert energy == pytest.approx(isotropic, rel=1e-12)
    np.testing.assert_allclose(forces, isotropic_forces, rtol=0,
                               atol=1e-10 * np.abs(isotropic_forces).max())


def test_each_copy_is_one_call_on_rotated_atoms_with_the_rotated_cell():
    topology, positions, box = _structure("liquid-64")
    calculator = PolynomialCalculator()
    grid = parse_grid("Ti")
    _energy_and_forces(openmm_module(topology, calculator, "full", grid), positions, box)
    assert len(calculator.seen) == grid.size
    centred = nm_to_angstrom(positions - positions.mean(axis=0))
    for (seen_positions, cell, pbc), rotation in zip(calculator.seen, grid.rotations):
        np.testing.assert_allclose(seen_positions, centred @ rotation.T, atol=1e-12)
        np.testing.assert_allclose(cell, np.linalg.det(rotation) * nm_to_angstrom(box)
                                   @ rotation.T, atol=1e-12)
        assert pbc.all()
    assert any(np.linalg.det(rotation) < 0 for rotation in grid.rotations)


def test_symmetrized_energy_is_invariant_under_proper_and_improper_rotations():
    topology, positions, _ = _structure("water-monomer")
    module = openmm_module(topology, PolynomialCalculator(), "full", parse_grid("Ti"))
    energy, forces = _energy_and_forces(module, positions, None)
    rng = np.random.default_rng(3)
    for rotation in random_rotations(6, rng, inversion=True):
        turned, turned_forces = _energy_and_forces(module, positions @ rotation.T + 0.4, None)
        assert turned == pytest.approx(energy, rel=1e-12)
        np.testing.assert_allclose(turned_forces, forces @ rotation.T, atol=1e-9)


@pytest.mark.parametrize("name", ["water-monomer", "liquid-64"])
def test_a_context_gives_full_and_mts_groups_as_the_python_evaluation(name):
    topology, positions, _ = _structure(name)
    calculator = PolynomialCalculator()
    grid = parse_grid("Ti")
    isotropic, isotropic_forces = _in_openmm_units(
        *calculator.isotropic(nm_to_angstrom(positions)))
    raw, raw_forces = _rotated_energy_and_forces(calculator, positions, np.eye(3))
    energy, forces = reference_state(create_system(topology, calculator, "full", grid, positions),
                                    positions)
    assert energy == pytest.approx(isotropic, rel=1e-10)
    np.testing.assert_allclose(forces, isotropic_forces, atol=1e-8 * np.abs(forces).max())
    system = create_system(topology, calculator, "mts", grid, positions)
    assert [force.getForceGroup() for force in system.getForces()] == [FAST_GROUP, SLOW_GROUP]
    fast = reference_state(system, positions, {FAST_GROUP})
    slow = reference_state(system, positions, {SLOW_GROUP})
    assert fast[0] == pytest.approx(raw, rel=1e-10)
    np.testing.assert_allclose(fast[1], raw_forces, atol=1e-8 * np.abs(raw_forces).max())
    assert slow[0] == pytest.approx(isotropic - raw, rel=1e-9)
    np.testing.assert_allclose(slow[1], isotropic_forces - raw_forces,
                               atol=1e-8 * np.abs(raw_forces).max())


def test_a_calculator_that_takes_forces_by_torch_autograd_gets_gradients():
    """create_system's first evaluation (under no_grad) and every copy (inside an
    autograd.Function) run the calculator with gradients enabled."""
    topology, positions, _ = _structure("water-monomer")
    calculator = AutogradCalculator()
    isotropic, isotropic_forces = _in_openmm_units(
        *calculator.isotropic(nm_to_angstrom(positions)))
    system = create_system(topology, calculator, "full", parse_grid("Ti"), positions)
    energy, forces = reference_state(system, positions)
    assert energy == pytest.approx(isotropic, rel=1e-10)
    np.testing.assert_allclose(forces, isotropic_forces, atol=1e-8 * np.abs(forces).max())


def test_random_uses_kernel_random_rotation_of_the_call():
    topology, positions, box = _structure("liquid-64")
    calculator = PolynomialCalculator()
    system = create_system(topology, calculator, "random", None, positions)
    energy, forces = reference_state(system, positions)
    # the rotation of the configuration as the export wrapper hands it to the strategy: about
    # the centroid, in Angstrom (export.OpenMMEnergy)
    positions_nm = torch.tensor(positions, dtype=torch.float64)
    centred = (positions_nm - positions_nm.mean(dim=0)) * 10.0
    rotation = random_rotation(centred)[0].numpy()
    expected, expected_forces = _rotated_energy_and_forces(calculator, positions, rotation)
    assert energy == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(forces, expected_forces, atol=1e-8 * np.abs(forces).max())
    _, cell, pbc = calculator.seen[-1]
    np.testing.assert_allclose(cell, np.linalg.det(rotation) * nm_to_angstrom(box) @ rotation.T,
                               atol=1e-12)
    assert pbc.all()


@pytest.mark.parametrize("strategy, spec", [("none", None), ("full", "Ti"), ("mts", "Ti"),
                                            ("random", None), ("full", "T+random")])
def test_mlpotential_symbreak_takes_a_calculator(strategy, spec):
    mlpotential = pytest.importorskip("openmmml.mlpotential")
    topology, positions, _ = _structure("water-monomer")
    calculator = PolynomialCalculator()
    arguments = {"model": calculator, "strategy": strategy} | ({"grid": spec} if spec else {})
    system = mlpotential.MLPotential("symbreak", **arguments).createSystem(
        topology, removeCMMotion=False)
    expected = create_system(topology, calculator, strategy,
                             parse_grid(spec) if spec else None, positions)
    energy, forces = reference_state(system, positions)
    reference, reference_forces = reference_state(expected, positions)
    assert energy == pytest.approx(reference, rel=1e-12)
    np.testing.assert_allclose(forces, reference_forces, atol=1e-10 * np.abs(forces).max())


def test_a_direct_force_calculator_warns_and_its_forces_are_back_rotated():
    topology, positions, box = _structure("liquid-64")
    calculator = DirectForceCalculator()
    calculator.parameters["non_conservative"] = True  # metatomic-ase's (and UPET's) flag
    with pytest.warns(UserWarning, match="not conservative"):
        model = as_energy_model(calculator)
    assert not model.conservative
    _, forces = _energy_and_forces(openmm_module(topology, model, "full", parse_grid("Ti")),
                                   positions, box)
    expected = ev_angstrom_to_kj_mol_nm(calculator.averaged_forces(nm_to_angstrom(positions)))
    np.testing.assert_allclose(forces, expected, atol=1e-10 * np.abs(expected).max())
    with pytest.warns(UserWarning, match="not conservative"):
        ASEModel(PolynomialCalculator(), conservative=False)


def test_bad_models_and_exports_are_refused_clearly():
    topology, positions, _ = _structure("water-monomer")
    with pytest.raises(TypeError, match="ASE calculator"):
        create_system(topology, object(), "none", None, positions)
    mlpotential = pytest.importorskip("openmmml.mlpotential")
    with pytest.raises(TypeError, match="ASE calculator"):
        mlpotential.MLPotential("symbreak", model=42)
    with pytest.raises(ValueError, match="PolynomialCalculator calculator: a model of kind ase"):
        check_exportable(as_energy_model(PolynomialCalculator()))


class _RefusingCalculator(PolynomialCalculator):
    """A calculator without parameters for the system's elements."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        raise ValueError("no parameters for element O")


def test_a_calculator_that_fails_is_explained():
    topology, positions, _ = _structure("water-monomer")
    with pytest.raises(ValueError, match="_RefusingCalculator calculator failed on its first "
                       "evaluation of this system: no parameters for element O"):
        create_system(topology, _RefusingCalculator(), "none", None, positions)


def test_box_units_reach_the_calculator_in_angstrom():
    topology, positions, box = _structure("liquid-64")
    calculator = PolynomialCalculator()
    _energy_and_forces(openmm_module(topology, calculator, "none"), positions, box)
    seen_positions, cell, _ = calculator.seen[-1]
    np.testing.assert_allclose(angstrom_to_nm(cell), box, atol=1e-12)
    np.testing.assert_allclose(angstrom_to_nm(seen_positions), positions - positions.mean(axis=0),
                               atol=1e-12)
