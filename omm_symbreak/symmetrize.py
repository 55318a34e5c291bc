"""Energy modules that evaluate a model over rotations of a structure (TorchScript-ready).

All three strategies share one data path: neighbours are searched once, the displacement
vectors are rotated (``r' = R r`` for every rotation of the batch) and all rotated copies go
through the network in one batch.

- ``averaged(model, grid)``:   E = sum_g w_g E(R_g x), the grid-averaged model
  (``grid = "none"`` gives the raw model).
- ``correction(model, grid)``: E_avg(x) - E_raw(x), the negative of the non-equivariant part
  Delta, evaluated in the same batch (the identity is appended with weight -1). It is the slow
  force of multiple time stepping.
- ``randomly_rotated(model)``: E(R x) for a fresh uniformly random rotation, proper or
  improper with probability 1/2, at every call (seeded by ``torch.manual_seed``).

On CUDA all rotated copies form one batch; on CPUs they go through in batches of about
``cpu_batch_atoms`` atoms (cache-sized), still after a single neighbour search.

Units are the model's: positions and cell in Angstrom, energy in eV.
"""

from typing import List, Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from .grids import RotationGrid, parse_grid
from .model.neighbors import neighbor_list, trim_padding
from .model.pet import UnconstrainedPET


class _RotatedCopies(nn.Module):
    """Shared data path: one neighbour search, then the model on rotated copies in one batch."""

    def __init__(self, model: UnconstrainedPET, cpu_batch_atoms: int = 512):
        super().__init__()
        self.model = model
        self.cpu_batch_atoms = cpu_batch_atoms

    def energies(self, species: Tensor, positions: Tensor, cell: Optional[Tensor],
                 rotations: Tensor) -> Tensor:
        """Total energies [G] (eV) of the structure rotated by each of ``rotations`` [G, 3, 3]."""
        neighbors = neighbor_list(positions, cell, self.model.cutoff, self.model.max_neighbors)
        # CUDA keeps the static shapes (K slots) that CUDA graphs need.
        if not positions.is_cuda:
            neighbors = trim_padding(neighbors)
        index, reverse = neighbors.index, neighbors.reverse
        mask, edge_vectors = neighbors.mask, neighbors.vectors
        # On CPUs, batches of about cpu_batch_atoms atoms stay in cache: several times faster
        # than one huge batch (benchmarks/energy_forces.py), and fewer calls than one by one.
        n_rotations = rotations.shape[0]
        chunk = n_rotations if positions.is_cuda else max(
            1, self.cpu_batch_atoms // max(positions.shape[0], 1))
        energies: List[Tensor] = []
        for start in range(0, n_rotations, chunk):
            vectors = torch.einsum("gab,nkb->gnka", rotations[start:start + chunk], edge_vectors)
            atomic = self.model(species, vectors, index, reverse, mask)
            energies.append(atomic.sum(dim=1))
        return torch.cat(energies)


class RotationWeightedEnergy(_RotatedCopies):
    """E(x) = sum_g weights[g] * E_model(R_g x) for a fixed set of rotations.

    ``rotations`` [G, 3, 3] and ``weights`` [G] are registered buffers, so they follow the
    module to any device and dtype.
    """

    def __init__(self, model: UnconstrainedPET, rotations: np.ndarray, weights: np.ndarray,
                 grid_spec: str):
        super().__init__(model)
        self.grid_spec = grid_spec
        dtype = model.energy_scale.dtype
        self.register_buffer("rotations", torch.as_tensor(rotations, dtype=dtype))
        self.register_buffer("weights", torch.as_tensor(weights, dtype=dtype))

    def rotation_energies(self, species: Tensor, positions: Tensor,
                          cell: Optional[Tensor]) -> Tensor:
        """Energy of every rotated copy [G] (eV), for monitoring the rotational spread."""
        return self.energies(species, positions, cell, self.rotations)

    def forward(self, species: Tensor, positions: Tensor, cell: Optional[Tensor]) -> Tensor:
        """species [N] model species indices, positions [N, 3] and cell [3, 3] or None (Angstrom).

        Returns the weighted energy, a scalar (eV).
        """
        return (self.rotation_energies(species, positions, cell) * self.weights).sum()


class RandomlyRotatedEnergy(_RotatedCopies):
    """E(x) = E_model(R x) with R drawn uniformly from O(3) at every call."""

    def __init__(self, model: UnconstrainedPET):
        super().__init__(model)
        self.grid_spec = "random"

    def random_rotation(self, like: Tensor) -> Tensor:
        """A Haar-random rotation [1, 3, 3] (normalised Gaussian quaternion), negated with
        probability 1/2, with the dtype and device of ``like``."""
        q = torch.randn(4, dtype=like.dtype, device=like.device)
        w, x, y, z = (q / torch.linalg.vector_norm(q)).unbind(0)
        rotation = torch.stack([
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ]).reshape(1, 3, 3)
        sign = torch.where(torch.rand((), dtype=like.dtype, device=like.device) < 0.5, -1.0, 1.0)
        return rotation * sign

    def forward(self, species: Tensor, positions: Tensor, cell: Optional[Tensor]) -> Tensor:
        """Same contract as ``RotationWeightedEnergy.forward``."""
        rotation = self.random_rotation(positions)
        return self.energies(species, positions, cell, rotation).sum()


def _as_grid(grid: Union[str, RotationGrid]) -> RotationGrid:
    return parse_grid(grid) if isinstance(grid, str) else grid


def averaged(model: UnconstrainedPET, grid: Union[str, RotationGrid]) -> nn.Module:
    """The model averaged over ``grid`` (DESIGN.md notation; ``"random"`` is accepted too)."""
    grid = _as_grid(grid)
    if grid.is_random:
        return randomly_rotated(model)
    return RotationWeightedEnergy(model, grid.rotations, grid.weights, grid.spec)


def correction(model: UnconstrainedPET, grid: Union[str, RotationGrid]) -> RotationWeightedEnergy:
    """E_avg - E_raw for ``grid``: the symmetrizing correction, in one batch of G + 1 copies."""
    grid = _as_grid(grid)
    if grid.is_random:
        raise ValueError("the correction needs a deterministic grid, not 'random'")
    rotations = np.concatenate([grid.rotations, np.eye(3)[None]], axis=0)
    weights = np.concatenate([grid.weights, [-1.0]])
    return RotationWeightedEnergy(model, rotations, weights, f"correction:{grid.spec}")


def randomly_rotated(model: UnconstrainedPET) -> RandomlyRotatedEnergy:
    """The model evaluated in a fresh random orientation at every call."""
    return RandomlyRotatedEnergy(model)
