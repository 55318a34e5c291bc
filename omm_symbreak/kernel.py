"""The rotation kernel: a model evaluated on a batch of rotated copies of one structure.

Every place that needs E(R x) for several rotations R goes through ``RotatedCopies``: the
symmetrization strategies (``symmetrize``), the test-set evaluation (``evaluate``) and the
predictions of training (``predict``). Its contract, in the model's units (the built-in model:
Angstrom, eV):

    RotatedCopies(adapter)(types [N], positions [N, 3], cell [3, 3] or None, rotations [C, 3, 3])
        -> energies [C], energies[c] = E(R_c x)

Rotations act on the positions and on the cell (rows: box vectors); proper and improper ones
alike. Gradients flow to ``positions`` (and ``cell``).

What is specific to a model lives in its adapter, a module with three methods:

- ``types_of(atomic_numbers: List[int]) -> Tensor [N]``: the per-atom type indices the model
  expects (ValueError for elements it does not know);
- ``prepare(types, positions, cell) -> List[Tensor]``: whatever does not depend on the
  rotation, computed once per call (for ``PETAdapter``: one neighbour search);
- ``copies(prepared, rotations [c, 3, 3]) -> Tensor [c]``: energies of a chunk of rotated copies
  in one model call.

The kernel chunks the copies: on CUDA all of them go through at once; on CPUs chunks of about
``cpu_batch_atoms`` atoms keep the activations in cache (benchmarks/energy_forces.py).
"""

from typing import List, Optional

import torch
from torch import Tensor, nn

from .grids import quaternion_to_matrix
from .model.neighbors import neighbor_list, trim_padding
from .model.pet import UnconstrainedPET


def random_rotation(like: Tensor, inversion: bool = True) -> Tensor:
    """A Haar-random rotation [1, 3, 3] (normalised Gaussian quaternion), with inversion negated
    (improper) with probability 1/2, in the dtype and on the device of ``like``; drawn from
    torch's generator (``torch.manual_seed``)."""
    q = torch.randn(4, dtype=like.dtype, device=like.device)
    rotation = quaternion_to_matrix(q / torch.linalg.vector_norm(q)).reshape(1, 3, 3)
    if inversion:
        sign = torch.where(torch.rand((), dtype=like.dtype, device=like.device) < 0.5, -1.0, 1.0)
        rotation = rotation * sign
    return rotation


class PETAdapter(nn.Module):
    """The built-in ``UnconstrainedPET`` in the kernel's contract: one neighbour search per call,
    then the displacement vectors of every copy rotated, r' = R r."""

    def __init__(self, model: UnconstrainedPET):
        super().__init__()
        self.model = model

    @torch.jit.unused
    def types_of(self, atomic_numbers: List[int]) -> Tensor:
        return self.model.species_of(atomic_numbers)

    def prepare(self, types: Tensor, positions: Tensor, cell: Optional[Tensor]) -> List[Tensor]:
        """[types, index, reverse, mask, vectors] of the neighbour list (Angstrom)."""
        neighbors = neighbor_list(positions, cell, self.model.cutoff, self.model.max_neighbors)
        # CUDA keeps the static shapes (K slots) that CUDA graphs need.
        if not positions.is_cuda:
            neighbors = trim_padding(neighbors)
        return [types, neighbors.index, neighbors.reverse, neighbors.mask, neighbors.vectors]

    def copies(self, prepared: List[Tensor], rotations: Tensor) -> Tensor:
        """Total energies [c] (eV) of the copies rotated by ``rotations`` [c, 3, 3]."""
        types, index, reverse, mask, vectors = prepared
        rotated = torch.einsum("gab,nkb->gnka", rotations, vectors)
        return self.model(types, rotated, index, reverse, mask).sum(dim=1)


class RotatedCopies(nn.Module):
    """E(R_c x) for a batch of rotations: the one kernel (module docstring)."""

    def __init__(self, adapter: nn.Module, cpu_batch_atoms: int = 512):
        super().__init__()
        self.adapter = adapter
        self.cpu_batch_atoms = cpu_batch_atoms

    def forward(self, types: Tensor, positions: Tensor, cell: Optional[Tensor],
                rotations: Tensor) -> Tensor:
        """types [N], positions [N, 3], cell [3, 3] or None, rotations [C, 3, 3] -> [C]."""
        prepared = self.adapter.prepare(types, positions, cell)
        n_rotations = rotations.shape[0]
        chunk = n_rotations if positions.is_cuda else max(
            1, self.cpu_batch_atoms // max(positions.shape[0], 1))
        energies: List[Tensor] = []
        for start in range(0, n_rotations, chunk):
            energies.append(self.adapter.copies(prepared, rotations[start:start + chunk]))
        return torch.cat(energies)


def rotated_copies(model: UnconstrainedPET) -> RotatedCopies:
    """The kernel around the built-in model."""
    return RotatedCopies(PETAdapter(model))
