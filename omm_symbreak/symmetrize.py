"""Energy modules of the symmetrization strategies (TorchScript-ready), built on the kernel.

- ``averaged(model, grid)``:   E = sum_g w_g E(R_g x), the grid-averaged model (the grid
  ``none`` gives the raw model).
- ``correction(model, grid)``: E_avg(x) - E_raw(x), the negative of the non-equivariant part
  Delta, in the same batch (the identity is appended with weight -1): the slow force of
  multiple time stepping.
- ``randomly_rotated(model)``: E(R x) for a fresh uniformly random rotation, proper or improper
  with probability 1/2, at every call (seeded by ``torch.manual_seed``).
- ``strategy_energy(model, strategy, grid)``: the module of a strategy of ``STRATEGIES``
  (for ``mts``, the correction; the raw model is the fast force).

Every module maps (types [N], positions [N, 3], cell [3, 3] or None) to a scalar energy in the
model's units (the built-in model: Angstrom, eV); all rotated copies of one evaluation go
through ``kernel.RotatedCopies`` (one neighbour search).
"""

from typing import Optional

import numpy as np
import torch
from torch import Tensor, nn

from .grids import NO_ROTATION, RotationGrid
from .kernel import DEFAULT_MEMORY_BUDGET_BYTES, RotatedCopies, random_rotation, rotated_copies
from .model.pet import UnconstrainedPET

STRATEGIES = ("none", "full", "mts", "random")
GRID_STRATEGIES = ("full", "mts")  # the strategies that evaluate a rotation grid
DEFAULT_GRID = "2i"  # their grid when none is given (the study's)


class RotationWeightedEnergy(nn.Module):
    """E(x) = sum_g weights[g] * E_model(R_g x) for a fixed set of rotations.

    ``rotations`` [G, 3, 3] and ``weights`` [G] are registered buffers, so they follow the
    module to any device and dtype.
    """

    def __init__(self, kernel: RotatedCopies, rotations: np.ndarray, weights: np.ndarray,
                 label: str, dtype: torch.dtype):
        super().__init__()
        self.kernel = kernel
        self.label = label
        self.register_buffer("rotations", torch.as_tensor(rotations, dtype=dtype))
        self.register_buffer("weights", torch.as_tensor(weights, dtype=dtype))

    def rotation_energies(self, types: Tensor, positions: Tensor,
                          cell: Optional[Tensor]) -> Tensor:
        """Energy of every rotated copy [G], for monitoring the rotational spread."""
        return self.kernel(types, positions, cell, self.rotations)

    def forward(self, types: Tensor, positions: Tensor, cell: Optional[Tensor]) -> Tensor:
        """types [N], positions [N, 3] and cell [3, 3] or None -> the weighted energy, scalar
        (first derivatives exact; memory bounded by the kernel's budget)."""
        return self.kernel.weighted(types, positions, cell, self.rotations, self.weights)


class RandomlyRotatedEnergy(nn.Module):
    """E(x) = E_model(R x) with R drawn uniformly from O(3) at every call."""

    def __init__(self, kernel: RotatedCopies):
        super().__init__()
        self.kernel = kernel
        self.label = "random"

    def forward(self, types: Tensor, positions: Tensor, cell: Optional[Tensor]) -> Tensor:
        """Same contract as ``RotationWeightedEnergy.forward``."""
        return self.kernel(types, positions, cell, random_rotation(positions)).sum()


def _dtype(model: UnconstrainedPET) -> torch.dtype:
    return model.energy_scale.dtype


def averaged(model: UnconstrainedPET, grid: RotationGrid,
             memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES) -> RotationWeightedEnergy:
    """The model averaged over ``grid``."""
    return RotationWeightedEnergy(rotated_copies(model, memory_budget_bytes), grid.rotations,
                                  grid.weights, grid.spec, _dtype(model))


def correction(model: UnconstrainedPET, grid: RotationGrid,
               memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES) -> RotationWeightedEnergy:
    """E_avg - E_raw for ``grid``: the symmetrizing correction, in one batch of G + 1 copies."""
    rotations = np.concatenate([grid.rotations, np.eye(3)[None]], axis=0)
    weights = np.concatenate([grid.weights, [-1.0]])
    return RotationWeightedEnergy(rotated_copies(model, memory_budget_bytes), rotations, weights,
                                  f"correction:{grid.spec}", _dtype(model))


def randomly_rotated(model: UnconstrainedPET) -> RandomlyRotatedEnergy:
    """The model evaluated in a fresh random orientation at every call (one copy)."""
    return RandomlyRotatedEnergy(rotated_copies(model))


def check_strategy(strategy: str, grid: Optional[RotationGrid]) -> None:
    """ValueError for an unknown strategy, a grid missing for full / mts, or a grid given to
    none / random (which evaluate no grid); TypeError for a grid that is not a RotationGrid."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    if grid is not None and not isinstance(grid, RotationGrid):
        raise TypeError(f"grid must be a RotationGrid, got {grid!r}: parse a grid spec with "
                        "omm_symbreak.grids.parse_grid")
    if strategy in GRID_STRATEGIES and grid is None:
        raise ValueError(f"strategy {strategy} needs a rotation grid")
    if strategy in ("none", "random") and grid is not None and grid.spec != "none":
        raise ValueError(f"strategy {strategy} evaluates no grid (got {grid.spec}): a grid "
                         "applies to strategies full and mts")


def strategy_energy(model: UnconstrainedPET, strategy: str = "none",
                    grid: Optional[RotationGrid] = None,
                    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES) -> nn.Module:
    """The energy module of ``strategy`` (``STRATEGIES``; ``mts`` gives the correction), its
    rotated copies chunked within ``memory_budget_bytes``."""
    check_strategy(strategy, grid)
    if strategy == "none":
        return averaged(model, NO_ROTATION, memory_budget_bytes)
    if strategy == "full":
        return averaged(model, grid, memory_budget_bytes)
    if strategy == "mts":
        return correction(model, grid, memory_budget_bytes)
    return randomly_rotated(model)
