"""Energy modules of the symmetrization strategies (TorchScript-ready), built on the kernel.

- ``averaged(model, grid)``:   E = sum_g w_g E(R_g x), the grid-averaged model (the grid
  ``none`` gives the raw model).
- ``correction(model, grid)``: E_avg(x) - E_raw(x), the negative of the non-equivariant part
  Delta, in the same batch (the identity is appended with weight -1): the slow force of
  multiple time stepping.
- ``randomly_rotated(model)``: E(Q x) for a uniformly random rotation Q, proper or improper
  with probability 1/2, new for every configuration x (``kernel.random_rotation``: a
  pseudo-random function of x, so that a run's rotations need no random state).
- ``strategy_energy(model, strategy, grid)``: the module of a strategy
  (``omm_symbreak.strategies``: for ``mts``, the correction; the raw model is the fast force).

A randomized grid (``RotationGrid.randomized``, spec ``G+random``) is turned as a whole by a
random Q of the configuration: E_avg = sum_g w_g E(R_g Q x); in the correction only the averaged
term turns, the raw term stays E(x).

Every module maps (types [N], positions [N, 3], cell [3, 3] or None) to a scalar energy in the
model's units (the built-in model: Angstrom, eV); all rotated copies of one evaluation go
through ``kernel.RotatedCopies`` around the model's adapter. ``model`` is an ``EnergyModel`` of
any kind (``omm_symbreak.model_kinds``), an ``UnconstrainedPET`` or an ASE calculator.
"""

from typing import Optional

import numpy as np
import torch
from torch import Tensor, nn

from .grids import NO_ROTATION, RotationGrid
from .kernel import DEFAULT_MEMORY_BUDGET_BYTES, RotatedCopies, random_rotation
from .model_kinds import EnergyModel, as_energy_model
from .strategies import check_strategy, strategy_of


class RotationWeightedEnergy(nn.Module):
    """E(x) = sum_g weights[g] * E_model(R_g x) for a set of rotations; with ``turned``, the
    rows ``turned[g]`` use R_g Q instead, Q a random rotation of O(3) drawn from the
    configuration (``kernel.random_rotation``).

    ``rotations`` [G, 3, 3], ``weights`` [G] and ``turned`` [G] (bool) are registered buffers,
    so they follow the module to any device and dtype.
    """

    def __init__(self, kernel: RotatedCopies, rotations: np.ndarray, weights: np.ndarray,
                 label: str, dtype: torch.dtype, turned: Optional[np.ndarray] = None):
        super().__init__()
        self.kernel = kernel
        self.label = label
        self.register_buffer("rotations", torch.as_tensor(rotations, dtype=dtype))
        self.register_buffer("weights", torch.as_tensor(weights, dtype=dtype))
        self.randomized = turned is not None and bool(np.any(turned))
        self.register_buffer("turned", torch.as_tensor(
            np.zeros(len(weights), bool) if turned is None else turned, dtype=torch.bool))

    def rotations_now(self, positions: Tensor) -> Tensor:
        """The rotations [G, 3, 3] of this call: fixed, or the turned rows times the Q of the
        configuration ``positions`` [N, 3]."""
        if not self.randomized:
            return self.rotations
        turned = self.rotations @ random_rotation(positions)
        return torch.where(self.turned[:, None, None], turned, self.rotations)

    def forward(self, types: Tensor, positions: Tensor, cell: Optional[Tensor]) -> Tensor:
        """types [N], positions [N, 3] and cell [3, 3] or None -> the weighted energy, scalar
        (first derivatives exact; memory bounded by the kernel's budget)."""
        return self.kernel.weighted(types, positions, cell, self.rotations_now(positions),
                                    self.weights)


def _weighted(model, rotations: np.ndarray, weights: np.ndarray, label: str,
              turned: np.ndarray, memory_budget_bytes: int) -> RotationWeightedEnergy:
    """The weighted energy of ``model``'s rotated copies; rotations and weights in the model's
    dtype (float64 for a model that takes the engine's)."""
    model = as_energy_model(model)
    kernel = model.rotated_copies(memory_budget_bytes)
    return RotationWeightedEnergy(kernel, rotations, weights, label,
                                  model.dtype or torch.float64, turned)


def averaged(model: EnergyModel, grid: RotationGrid,
             memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES) -> RotationWeightedEnergy:
    """The model averaged over ``grid`` (turned at every call if ``grid.randomized``)."""
    return _weighted(model, grid.rotations, grid.weights, grid.spec,
                     np.full(grid.size, grid.randomized), memory_budget_bytes)


def correction_rows(grid: RotationGrid):
    """(rotations [C, 3, 3], weights [C], turned [C]) of E_avg - E_raw for ``grid``: the grid's
    rows and the identity with weight -1, C = G + 1 (for a randomized grid only the G rows of
    the average turn). A fixed grid that holds the identity, as every rotation group does,
    evaluates it once, with weight w - 1: C = G."""
    identity = np.flatnonzero(np.all(np.abs(grid.rotations - np.eye(3)) < 1e-12, axis=(1, 2)))
    if len(identity) > 0 and not grid.randomized:
        weights = grid.weights.copy()
        weights[identity[0]] -= 1.0
        return grid.rotations, weights, np.zeros(grid.size, bool)
    return (np.concatenate([grid.rotations, np.eye(3)[None]], axis=0),
            np.concatenate([grid.weights, [-1.0]]),
            np.append(np.full(grid.size, grid.randomized), False))


def correction(model: EnergyModel, grid: RotationGrid,
               memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES) -> RotationWeightedEnergy:
    """E_avg - E_raw for ``grid``: the symmetrizing correction, in one batch
    (``correction_rows``)."""
    rotations, weights, turned = correction_rows(grid)
    return _weighted(model, rotations, weights, f"correction:{grid.spec}", turned,
                     memory_budget_bytes)


def randomly_rotated(model: EnergyModel,
                     memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES
                     ) -> RotationWeightedEnergy:
    """The model evaluated in a random orientation, a new one for every configuration (one
    copy)."""
    return _weighted(model, NO_ROTATION.rotations, NO_ROTATION.weights, "random",
                     np.ones(1, bool), memory_budget_bytes)


def copies_per_evaluation(strategy: str, grid: Optional[RotationGrid]) -> int:
    """Model evaluations in one call of the module of ``strategy`` (for ``mts``, the
    correction; its fast force is one more per inner step)."""
    check_strategy(strategy, grid)
    computes = strategy_of(strategy).module
    if computes == "correction":
        return len(correction_rows(grid)[1])
    return grid.size if computes == "average" and grid is not None else 1


def strategy_energy(model: EnergyModel, strategy: str = "none",
                    grid: Optional[RotationGrid] = None,
                    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES) -> nn.Module:
    """The energy module of ``strategy`` (``strategies.Strategy.module``: ``mts`` gives the
    correction), its rotated copies chunked within ``memory_budget_bytes``."""
    check_strategy(strategy, grid)
    computes = strategy_of(strategy).module
    if computes == "average":
        return averaged(model, grid or NO_ROTATION, memory_budget_bytes)
    if computes == "correction":
        return correction(model, grid, memory_budget_bytes)
    return randomly_rotated(model, memory_budget_bytes)
