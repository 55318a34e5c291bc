"""The OpenMM-ML entry point builds the same system as omm_symbreak.potential, refuses what it
cannot honour, and its CMMotionRemover removes linear momentum only."""

import numpy as np
import openmm
import openmm.unit as unit
import pytest
import torch

from conftest import WATER_ANGSTROM, tiny_model, water_topology
from omm_symbreak.grids import parse_grid
from omm_symbreak.model import load_model, save_model
from omm_symbreak.observables.mechanics import angular_momentum
from omm_symbreak.potential import create_system
from omm_symbreak.systems import load_structure
from omm_symbreak.units import angstrom_to_nm, as_nm_array, nm_to_angstrom
from test_openmm import through_openmm

mlpotential = pytest.importorskip("openmmml.mlpotential")


@pytest.mark.parametrize("strategy", ["full", "mts"])
def test_mlpotential_by_name_matches_create_system(tmp_path, water_box, strategy):
    topology, positions, cell = water_box
    model = tiny_model(dtype=torch.float32)
    model_file = tmp_path / "tiny.ckpt"
    save_model(model, model_file)
    potential = mlpotential.MLPotential("symbreak-water", model=str(model_file), grid="1i",
                                        strategy=strategy)
    from_plugin = potential.createSystem(topology)
    direct = create_system(topology, model, strategy, parse_grid("1i"))
    e_plugin, f_plugin = through_openmm(from_plugin, positions, cell, "Reference")
    e_direct, f_direct = through_openmm(direct, positions, cell, "Reference")
    assert e_plugin == pytest.approx(e_direct, rel=1e-7)
    np.testing.assert_allclose(f_plugin, f_direct, rtol=1e-6, atol=1e-4)
    groups = sorted(f.getForceGroup() for f in from_plugin.getForces()
                    if not isinstance(f, openmm.CMMotionRemover))
    assert groups == ([0, 1] if strategy == "mts" else [0])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("plugin") / "tiny.ckpt"
    save_model(tiny_model(dtype=torch.float32), path)
    return str(path)


def test_unknown_keywords_are_refused_naming_the_accepted_ones(model_file):
    with pytest.raises(TypeError, match=r"gird.*model, grid, strategy"):
        mlpotential.MLPotential("symbreak-water", model=model_file, gird="2i")
    potential = mlpotential.MLPotential("symbreak-water", model=model_file)
    with pytest.raises(TypeError, match=r"platformName.*precision, removeCMMotion"):
        potential.createSystem(water_topology(1), platformName="CPU")
    with pytest.raises(ValueError, match="device of the OpenMM platform"):
        potential.createSystem(water_topology(1), device="cuda")
    with pytest.raises(ValueError, match="single or double"):
        potential.createSystem(water_topology(1), precision="half")


def test_a_grid_with_strategy_none_is_refused_and_full_defaults_to_2i(model_file):
    with pytest.raises(ValueError, match="applies to strategies full and mts"):
        mlpotential.MLPotential("symbreak-water", model=model_file, grid="2i", strategy="none")
    topology, positions = water_topology(1), WATER_ANGSTROM
    full = mlpotential.MLPotential("symbreak-water", model=model_file, strategy="full")
    e_plugin, _ = through_openmm(full.createSystem(topology), positions, None, "Reference")
    direct = create_system(topology, load_model(model_file), "full", parse_grid("2i"))
    e_direct, _ = through_openmm(direct, positions, None, "Reference")
    assert e_plugin == pytest.approx(e_direct, rel=1e-7)


def test_precision_double_runs_a_float64_copy_of_the_model(model_file, water_box):
    topology, positions, cell = water_box
    potential = mlpotential.MLPotential("symbreak-water", model=model_file)
    from_plugin = potential.createSystem(topology, precision="double")
    e_plugin, f_plugin = through_openmm(from_plugin, positions, cell, "Reference")
    direct = create_system(topology, load_model(model_file).double())
    e_direct, f_direct = through_openmm(direct, positions, cell, "Reference")
    assert e_plugin == pytest.approx(e_direct, rel=1e-13, abs=1e-9)
    np.testing.assert_allclose(f_plugin, f_direct, rtol=1e-12, atol=1e-9)
    # the potential keeps its float32 model: createSystem without precision stays single
    assert potential._impl.model.dtype == torch.float32


def _angular_and_linear_momentum(system, masses_amu, steps: int):
    """Angular momentum about the centre of mass [3] (amu nm^2/ps) and total momentum [3]
    (amu nm/ps) of a water molecule after ``steps`` Verlet steps of 0.1 fs from a start that
    drifts (0.5 nm/ps) and spins."""
    context = openmm.Context(system, openmm.VerletIntegrator(1e-4),
                             openmm.Platform.getPlatformByName("Reference"))
    positions_nm = angstrom_to_nm(WATER_ANGSTROM)
    centred = positions_nm - masses_amu @ positions_nm / masses_amu.sum()
    context.setPositions(positions_nm)
    context.setVelocities(np.cross([0.0, 0.0, 2.0], centred) + [0.5, 0.0, 0.0])
    context.getIntegrator().step(steps)
    state = context.getState(positions=True, velocities=True)
    positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    velocities = state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
    return (angular_momentum(positions, velocities, masses_amu),
            masses_amu @ velocities)


def test_cmmotion_remover_zeroes_momentum_and_leaves_angular_momentum(model_file):
    """createSystem's default CMMotionRemover removes the linear centre-of-mass motion only:
    the angular momentum about the centre of mass is that of the run without it."""
    topology = water_topology(1)
    potential = mlpotential.MLPotential("symbreak-water", model=model_file)
    with_remover = potential.createSystem(topology)
    without = potential.createSystem(topology, removeCMMotion=False)
    assert [type(f).__name__ for f in with_remover.getForces()].count("CMMotionRemover") == 1
    assert not any(isinstance(f, openmm.CMMotionRemover) for f in without.getForces())
    masses_amu = np.array([a.element.mass.value_in_unit(unit.dalton) for a in topology.atoms()])
    l_removed, p_removed = _angular_and_linear_momentum(with_remover, masses_amu, 20)
    l_kept, p_kept = _angular_and_linear_momentum(without, masses_amu, 20)
    np.testing.assert_allclose(p_removed, 0.0, atol=1e-9)
    # a translation-invariant model exerts no net force: the momentum 18.015 x 0.5 is kept
    np.testing.assert_allclose(p_kept, [masses_amu.sum() * 0.5, 0.0, 0.0], rtol=1e-6,
                               atol=1e-9)
    assert np.linalg.norm(l_kept) > 0.01  # it spins: I_zz omega, about 0.017 amu nm^2 x 2/ps
    np.testing.assert_allclose(l_removed, l_kept, rtol=1e-5, atol=1e-8)


def test_symbreak_runs_a_torchforce_module_and_needs_a_model(tmp_path):
    from torchforce_models import isotropic_energy, write_module

    topology, positions = load_structure("water-monomer")
    write_module(tmp_path / "user.pt", [8, 1, 1])
    with pytest.raises(ValueError, match="needs model=FILE"):
        mlpotential.MLPotential("symbreak", grid="Ti")
    system = mlpotential.MLPotential("symbreak", model=str(tmp_path / "user.pt"),
                                     grid="Ti").createSystem(topology)
    energy, _ = through_openmm(system, nm_to_angstrom(as_nm_array(positions)), None, "Reference")
    assert energy == pytest.approx(isotropic_energy(as_nm_array(positions), None, [8, 1, 1]),
                                   rel=1e-9)
