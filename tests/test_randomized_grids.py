"""Randomized grids (``G+random``): a grid turned as a whole by a random rotation Q of the
configuration (``kernel.random_rotation``), checked against fixed grids and the O(3) average;
the rotations themselves against the moments of the Haar measure."""

import dataclasses

import numpy as np
import pytest
import torch

from conftest import WATER_ANGSTROM
from omm_symbreak.grids import parse_grid
from omm_symbreak.kernel import random_rotation
from omm_symbreak.symmetrize import averaged, correction, randomly_rotated

SPECIES = torch.tensor([1, 0, 0])  # O, H, H of the tiny model (atomic numbers [1, 8])
# a bent water molecule, slightly asymmetric so that no rotation maps it onto itself
POSITIONS = WATER_ANGSTROM + np.array([[0.0, 0.0, 0.0], [0.03, 0.0, 0.02], [0.0, -0.02, 0.01]])


def energy_and_forces(module, positions=POSITIONS):
    x = torch.tensor(positions, dtype=torch.float64, requires_grad=True)
    e = module(SPECIES, x, None)
    (gradient,) = torch.autograd.grad(e, x)
    return e.item(), -gradient.numpy()


def test_turned_grid_equals_the_fixed_grid_of_the_turned_rotations(model):
    """The module's energy and forces are those of the fixed grid {R_g Q}, Q the rotation of
    the configuration (kernel.random_rotation), held fixed under differentiation."""
    grid = parse_grid("Ti+random")
    q = random_rotation(torch.tensor(POSITIONS, dtype=torch.float64))[0].numpy()
    turned = dataclasses.replace(grid, rotations=grid.rotations @ q, randomized=False)
    energy, forces = energy_and_forces(averaged(model, grid))
    fixed_energy, fixed_forces = energy_and_forces(averaged(model, turned))
    assert energy == pytest.approx(fixed_energy, rel=1e-13)
    np.testing.assert_allclose(forces, fixed_forces, rtol=1e-11, atol=1e-12)
    unturned, _ = energy_and_forces(averaged(model, parse_grid("Ti")))
    assert abs(energy - unturned) > 1e3 * abs(energy - fixed_energy)  # the turn matters


def test_mts_correction_turns_only_the_average(model):
    """correction(G+random) = average(G+random) - raw, the same Q for both."""
    raw = averaged(model, parse_grid("none"))
    for positions in (POSITIONS, POSITIONS + 0.01):
        delta, delta_forces = energy_and_forces(correction(model, parse_grid("T+random")),
                                                positions)
        average, average_forces = energy_and_forces(averaged(model, parse_grid("T+random")),
                                                    positions)
        raw_energy, raw_forces = energy_and_forces(raw, positions)
        assert delta == pytest.approx(average - raw_energy, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(delta_forces, average_forces - raw_forces, atol=1e-10)


def test_mean_over_evaluations_converges_to_a_fine_grid_average(model):
    """The mean over Q of the turned T average is the O(3) average: a fine grid (lebedev:9i,
    exact to l = 9) gives it to far below the statistical error of 2000 evaluations. Each turned
    average, exact to l = 2, scatters far less about it than the raw model in random
    orientations (strategy random) does. Each evaluation is at its own configuration, 1e-4
    Angstrom from the others (a new Q each), which moves the energy by far less than the error."""
    rng = np.random.default_rng(0)
    configurations = [torch.tensor(POSITIONS + 1e-4 * rng.normal(size=POSITIONS.shape))
                      for _ in range(2000)]
    with torch.no_grad():
        turned, random = averaged(model, parse_grid("T+random")), randomly_rotated(model)
        samples = np.array([turned(SPECIES, x, None).item() for x in configurations])
        raw_samples = np.array([random(SPECIES, x, None).item() for x in configurations[:200]])
        fine = averaged(model, parse_grid("lebedev:9i"))(SPECIES, torch.tensor(POSITIONS),
                                                         None).item()
    error = samples.std(ddof=1) / np.sqrt(len(samples))
    assert error > 0
    assert abs(samples.mean() - fine) < 4 * error
    assert samples.std() < raw_samples.std() / 10


def test_the_rotations_of_nearby_configurations_have_the_moments_of_the_haar_measure():
    """Along a random walk of 4000 configurations of 64 molecules (steps of 1e-3 Angstrom, as
    MD makes), the rotations' proper parts have the Haar moments of SO(3), E[R_ij] = 0,
    E[R_ij^2] = 1/3, E[tr R] = 0, E[(tr R)^2] = 1, half of them are improper, and successive
    ones are uncorrelated, E[tr(R_t^T R_t+1)] = 0; each within 5 standard errors."""
    rng = np.random.default_rng(7)
    x = 5.0 * rng.normal(size=(192, 3))
    rotations = []
    for _ in range(4000):
        x = x + 1e-3 * rng.normal(size=x.shape)
        rotations.append(random_rotation(torch.tensor(x))[0].numpy())
    rotations = np.array(rotations)
    n = len(rotations)
    sign = np.linalg.det(rotations)
    np.testing.assert_allclose(np.abs(sign), 1.0, atol=1e-12)
    proper = rotations * sign[:, None, None]
    assert abs(np.mean(sign > 0) - 0.5) < 5 * 0.5 / np.sqrt(n)
    assert np.abs(proper.mean(axis=0)).max() < 5 * np.sqrt(1 / 3 / n)
    squares = proper ** 2
    assert np.abs(squares.mean(axis=0) - 1 / 3).max() < 5 * squares.std(axis=0).max() / np.sqrt(n)
    trace = np.trace(proper, axis1=1, axis2=2)
    assert abs(trace.mean()) < 5 / np.sqrt(n)
    assert abs((trace ** 2).mean() - 1) < 5 * (trace ** 2).std() / np.sqrt(n)
    overlap = np.einsum("nij,nij->n", rotations[1:], rotations[:-1])
    assert abs(overlap.mean()) < 5 * overlap.std() / np.sqrt(n - 1)
