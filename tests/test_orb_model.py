"""Orb-v3 (orb-models) through the ASE route: the real Orb-v3 architecture classes with random
weights (no download), in orb-models' own ``ORBCalculator`` on the CPU.

Orb-v3 is not rotationally invariant (its edge features are spherical harmonics of the edge
directions, mixed by MLPs; its equivariance is only learned), so random weights break the
symmetry strongly. The checks are group-theoretic: an average over the rotations of a finite
group G (``Ti``: the tetrahedral group with inversion, 24 elements) is exactly invariant under
the elements of G, E_avg(g x) = E_avg(x), with forces F_avg(g x) = F_avg(x) g^T (rows), because
the copies of g x are those of x, permuted; the raw model is not. Orb runs in float32: a copy's
energy is exact to about eps_32 |E| (``FLOAT32_EPS``), whatever the precision of the sum.
"""

import numpy as np
import pytest
import torch

pytest.importorskip("orb_models")
from orb_models.forcefield import pretrained  # noqa: E402
from orb_models.forcefield.atomic_system import SystemConfig  # noqa: E402
from orb_models.forcefield.calculator import ORBCalculator  # noqa: E402

from conftest import reference_state, water_positions_angstrom, water_topology  # noqa: E402
from omm_symbreak.export import openmm_module  # noqa: E402
from omm_symbreak.grids import parse_grid, random_rotations  # noqa: E402
from omm_symbreak.model_kinds import ASEModel  # noqa: E402
from omm_symbreak.strategies import FAST_GROUP, SLOW_GROUP  # noqa: E402
from omm_symbreak.systems import load_structure  # noqa: E402
from omm_symbreak.units import angstrom_to_nm, as_nm_array  # noqa: E402

FLOAT32_EPS = float(np.finfo(np.float32).eps)
# Orb-v3 cut down (pretrained: latent 256, MLPs 1024 x 2 and heads 256 x 1, 5 message-passing
# steps; here 24.7 k parameters, ~10 ms a call on 3 atoms); cutoff and neighbours of *_inf_omat
SMALL_ORB_V3 = dict(latent_dim=32, base_mlp_hidden_dim=32, base_mlp_depth=1,
                    head_mlp_hidden_dim=32, head_mlp_depth=1, num_message_passing_steps=1,
                    has_stress=False, device="cpu",
                    system_config=SystemConfig(radius=6.0, max_num_neighbors=120))


def orb_calculator(conservative: bool = True, seed: int = 0) -> ORBCalculator:
    """An Orb-v3 ``ORBCalculator`` (eV, Angstrom) with random weights: conservative (forces
    -dE/dx by autograd) or direct (a force head). In eval mode: in training mode its
    normalisers update their statistics at every call."""
    build = (pretrained.orb_v3_conservative_architecture if conservative
             else pretrained.orb_v3_direct_architecture)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build(**SMALL_ORB_V3)
    return ORBCalculator(model.eval().requires_grad_(False), device="cpu")


def water_cluster():
    """(topology, positions [24, 3] nm) of 8 water molecules on a 2 x 2 x 2 lattice of 3.1
    Angstrom, randomly oriented, without a box."""
    return water_topology(8), angstrom_to_nm(water_positions_angstrom(2, 3.1, seed=0))


def energy_and_forces(module, positions_nm):
    """The module's energy (kJ/mol) and forces [N, 3] (kJ/mol/nm) by autograd, no box."""
    positions = torch.tensor(positions_nm, requires_grad=True)
    energy = module(positions, None)
    (gradient,) = torch.autograd.grad(energy, positions)
    return float(energy.detach()), -gradient.numpy()


def test_every_strategy_runs_through_openmmml():
    """MLPotential("symbreak", model=calculator): none, full, mts, random give finite energies
    and forces; mts puts the raw model in its fast group and the correction in its slow one,
    which sum to the full average."""
    mlpotential = pytest.importorskip("openmmml.mlpotential")
    topology, positions = load_structure("water-monomer")
    positions = as_nm_array(positions)
    calculator = orb_calculator()
    systems, states = {}, {}
    for strategy, grid in [("none", None), ("full", "Ti"), ("mts", "Ti"), ("random", None)]:
        potential = mlpotential.MLPotential("symbreak", model=calculator, strategy=strategy,
                                            **({"grid": grid} if grid else {}))
        systems[strategy] = potential.createSystem(topology, removeCMMotion=False)
        states[strategy] = reference_state(systems[strategy], positions)
        assert np.isfinite(states[strategy][0]) and np.isfinite(states[strategy][1]).all()
    assert ([force.getForceGroup() for force in systems["mts"].getForces()]
            == [FAST_GROUP, SLOW_GROUP])
    fast = reference_state(systems["mts"], positions, {FAST_GROUP})
    assert fast[0] == pytest.approx(states["none"][0], rel=1e-12)
    assert states["mts"][0] == pytest.approx(states["full"][0], rel=1e-12)
    np.testing.assert_allclose(states["mts"][1], states["full"][1], rtol=0,
                               atol=1e-10 * np.abs(states["full"][1]).max())


@pytest.mark.parametrize("conservative", [True, False])
def test_the_group_average_is_invariant_under_the_group_and_the_raw_model_is_not(conservative):
    topology, positions = water_cluster()
    if conservative:
        model = orb_calculator()
    else:
        with pytest.warns(UserWarning, match="not conservative"):
            model = ASEModel(orb_calculator(conservative=False), conservative=False)
    grid = parse_grid("Ti")
    raw = openmm_module(topology, model, "none")
    average = openmm_module(topology, model, "full", grid)
    energy, forces = energy_and_forces(average, positions)
    raw_energy, _ = energy_and_forces(raw, positions)
    tolerance = FLOAT32_EPS * abs(energy)
    elements = grid.rotations[[0, 7, 13, 21]]  # a 2-fold and a 3-fold axis, a mirror, -3-fold
    assert sorted(np.round(np.linalg.det(elements))) == [-1, -1, 1, 1]
    assert all(abs(np.trace(element)) < 3 for element in elements)  # none is +-identity
    for element in elements:
        turned = (positions - positions.mean(axis=0)) @ element.T + 0.4
        turned_energy, turned_forces = energy_and_forces(average, turned)
        assert turned_energy == pytest.approx(energy, rel=0, abs=tolerance)
        np.testing.assert_allclose(turned_forces, forces @ element.T, rtol=0,
                                   atol=FLOAT32_EPS * np.abs(forces).max())
        # the raw Orb-v3 energy is not invariant: the test is not empty
        assert abs(energy_and_forces(raw, turned)[0] - raw_energy) > 100 * tolerance


def test_the_average_varies_less_than_the_raw_model_over_random_rotations():
    """Ti is exact to degree 3 with inversion: only the degrees >= 4 of the orientation
    dependence remain."""
    topology, positions = load_structure("water-monomer")
    positions = as_nm_array(positions)
    calculator = orb_calculator()
    raw = openmm_module(topology, calculator, "none")
    average = openmm_module(topology, calculator, "full", parse_grid("Ti"))
    turned = [(positions - positions.mean(axis=0)) @ rotation.T
              for rotation in random_rotations(6, np.random.default_rng(1), inversion=True)]
    raw_spread = np.ptp([energy_and_forces(raw, x)[0] for x in turned])
    average_spread = np.ptp([energy_and_forces(average, x)[0] for x in turned])
    assert average_spread < 0.5 * raw_spread


def test_averaged_forces_are_minus_the_gradient_of_the_averaged_energy():
    """Central differences of E_avg along random unit directions d [N, 3]: -dE_avg/dh = F_avg . d.
    h = 2e-3 nm: float32 rounding of E (eps_32 |E|, ~2e-4 kJ/mol here) makes about
    eps_32 |E| / h of noise, the truncation error is ~h^2 |E'''| / 6."""
    topology, positions = load_structure("water-monomer")
    positions = as_nm_array(positions)
    average = openmm_module(topology, orb_calculator(), "full", parse_grid("Ti"))
    energy, forces = energy_and_forces(average, positions)
    step = 2e-3
    for direction in np.random.default_rng(2).normal(size=(3, *positions.shape)):
        direction /= np.linalg.norm(direction)
        difference = (energy_and_forces(average, positions + step * direction)[0]
                      - energy_and_forces(average, positions - step * direction)[0])
        assert -difference / (2 * step) == pytest.approx(np.sum(forces * direction), rel=0,
                                                         abs=1e-3 * np.abs(forces).max()
                                                         + 2 * FLOAT32_EPS * abs(energy) / step)
