"""Randomized grids (``G+random``): a grid turned as a whole by a fresh random rotation Q at
every evaluation, checked against fixed grids and against the O(3) average."""

import dataclasses

import numpy as np
import pytest
import torch

from conftest import WATER_ANGSTROM
from omm_symbreak.grids import parse_grid
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
    """With the seed fixed, the module's energy and forces are those of the fixed grid
    {R_g Q}; Q is the first rotation torch draws after the seed (kernel.random_rotation)."""
    from omm_symbreak.kernel import random_rotation

    grid = parse_grid("Ti+random")
    torch.manual_seed(3)
    q = random_rotation(torch.zeros((), dtype=torch.float64))[0].numpy()
    turned = dataclasses.replace(grid, rotations=grid.rotations @ q, randomized=False)
    torch.manual_seed(3)
    energy, forces = energy_and_forces(averaged(model, grid))
    fixed_energy, fixed_forces = energy_and_forces(averaged(model, turned))
    assert energy == pytest.approx(fixed_energy, rel=1e-13)
    np.testing.assert_allclose(forces, fixed_forces, rtol=1e-11, atol=1e-12)
    unturned, _ = energy_and_forces(averaged(model, parse_grid("Ti")))
    assert abs(energy - unturned) > 1e3 * abs(energy - fixed_energy)  # the turn matters


def test_mts_correction_turns_only_the_average(model):
    """correction(G+random) = average(G+random) - raw, the same Q drawn for both."""
    raw = averaged(model, parse_grid("none"))
    for seed in (0, 1):
        torch.manual_seed(seed)
        delta, delta_forces = energy_and_forces(correction(model, parse_grid("T+random")))
        torch.manual_seed(seed)
        average, average_forces = energy_and_forces(averaged(model, parse_grid("T+random")))
        raw_energy, raw_forces = energy_and_forces(raw)
        assert delta == pytest.approx(average - raw_energy, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(delta_forces, average_forces - raw_forces, atol=1e-10)


def test_mean_over_evaluations_converges_to_a_fine_grid_average(model):
    """The mean over Q of the turned T average is the O(3) average: a fine grid (lebedev:9i,
    exact to l = 9) gives it to far below the statistical error of 2000 evaluations. Each turned
    average, exact to l = 2, scatters far less about it than the raw model in random
    orientations (strategy random) does."""
    torch.manual_seed(0)
    x = torch.tensor(POSITIONS)
    with torch.no_grad():
        turned, random = averaged(model, parse_grid("T+random")), randomly_rotated(model)
        samples = np.array([turned(SPECIES, x, None).item() for _ in range(2000)])
        raw_samples = np.array([random(SPECIES, x, None).item() for _ in range(200)])
        fine = averaged(model, parse_grid("lebedev:9i"))(SPECIES, x, None).item()
    error = samples.std(ddof=1) / np.sqrt(len(samples))
    assert error > 0
    assert abs(samples.mean() - fine) < 4 * error
    assert samples.std() < raw_samples.std() / 10
