"""The rotation kernel: a model evaluated on a batch of rotated copies of one structure.

Every place that needs E(R x) for several rotations R goes through ``RotatedCopies``: the
symmetrization strategies (``symmetrize``), the test-set evaluation (``evaluate``) and the
predictions of training (``predict``). Its contract, in the model's units (the built-in model:
Angstrom, eV):

    RotatedCopies(adapter)(types [N], positions [N, 3], cell [3, 3] or None, rotations [C, 3, 3])
        -> energies [C], energies[c] = E(R_c x)

Rotations act on the positions and on the cell (rows: box vectors); proper and improper ones
alike. Gradients flow to ``positions`` (and ``cell``).

``RotatedCopies.weighted(types, positions, cell, rotations, weights [C])`` returns
sum_c weights[c] E(R_c x) with memory bounded by the budget whatever C: when gradients are
needed, each chunk's gradient with respect to the rotation-independent inputs is taken at once
and its graph freed, and the returned scalar carries the accumulated gradient (first
derivatives only: what MD needs; training, which differentiates forces again, uses ``forward``).

What is specific to a model lives in its adapter, a module with these methods:

- ``types_of(atomic_numbers: List[int]) -> Tensor [N]``: the per-atom type indices the model
  expects (ValueError for elements it does not know);
- ``prepare(types, positions, cell) -> List[Tensor]``: whatever does not depend on the
  rotation, computed once per call (for ``PETAdapter``: one neighbour search);
- ``copies(prepared, rotations [c, 3, 3]) -> Tensor [c]``: energies of a chunk of rotated copies
  in one model call;
- ``bytes_per_copy(prepared) -> int``: the memory one copy's evaluation with its graph takes;
  ``estimated_bytes_per_copy(n_atoms) -> int``: an upper bound of it before any evaluation.

The kernel chunks the copies: at most ``memory_budget_bytes`` worth of copies at once; on CPUs
also chunks of about ``cpu_batch_atoms`` atoms (None: no such limit), which keep the built-in
model's activations in cache (benchmarks/energy_forces.py). Adapters of the other kinds of
model live in ``omm_symbreak.model_kinds``.
"""

from typing import List, Optional

import torch
from torch import Tensor, nn

from .grids import quaternion_to_matrix
from .model.electrostatics import Coulomb
from .model.neighbors import neighbor_list, trim_padding
from .model.pet import UnconstrainedPET

DEFAULT_MEMORY_BUDGET_BYTES = 2**30  # 1 GiB of activations at a time: fits a laptop


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


def rotated_cell(cell: Tensor, rotation: Tensor) -> Tensor:
    """The box vectors [3, 3] (rows) of a copy rotated by ``rotation`` [3, 3]: det(R) b R^T, an
    improper R negated, which spans the same lattice with a right-handed basis."""
    return torch.linalg.det(rotation) * (cell @ rotation.T)


class PETAdapter(nn.Module):
    """The built-in ``UnconstrainedPET`` in the kernel's contract: one neighbour search per call,
    then the displacement vectors of every copy rotated, r' = R r. A long-range model adds the
    electrostatic energy of each copy's charges at the unrotated positions (the Coulomb sum of
    given charges is exactly invariant when positions and cell rotate together), from one
    ``Coulomb.setup`` per call."""

    def __init__(self, model: UnconstrainedPET):
        super().__init__()
        self.model = model
        # the Coulomb sum of a long-range model (an unused one otherwise: TorchScript compiles
        # both branches of ``model.long_range``)
        self.coulomb = Coulomb(model.ewald_cutoff, model.ewald_tolerance).to(
            model.energy_scale.dtype)
        hyper = model.hyperparameters
        itemsize = model.energy_scale.element_size()
        # activations kept for the backward pass per (atom, slot), measured on liquid-256 with
        # the shipped sizes: about 290 MB per copy of 768 atoms with 27 used slots
        self.bytes_per_slot = itemsize * hyper["n_blocks"] * hyper["n_layers"] * (
            10 * hyper["width"] + 4 * hyper["ffn_width"])
        self.bytes_per_slot_pair = itemsize * hyper["n_blocks"] * hyper["n_layers"] * 4 * hyper[
            "n_heads"]

    @torch.jit.unused
    def types_of(self, atomic_numbers: List[int]) -> Tensor:
        return self.model.species_of(atomic_numbers)

    def prepare(self, types: Tensor, positions: Tensor, cell: Optional[Tensor]) -> List[Tensor]:
        """[types, index, reverse, mask, vectors] of the neighbour list (Angstrom), then for a
        long-range model the ``Coulomb.setup`` of the positions."""
        neighbors = neighbor_list(positions, cell, self.model.cutoff, self.model.max_neighbors)
        # CUDA keeps the static shapes (K slots) that CUDA graphs need.
        if not positions.is_cuda:
            neighbors = trim_padding(neighbors)
        prepared = [types, neighbors.index, neighbors.reverse, neighbors.mask, neighbors.vectors]
        if self.model.long_range:
            prepared += self.coulomb.setup(positions, cell)
        return prepared

    def copies(self, prepared: List[Tensor], rotations: Tensor) -> Tensor:
        """Total energies [c] (eV) of the copies rotated by ``rotations`` [c, 3, 3]."""
        types, index, reverse, mask, vectors = prepared[:5]
        rotated = torch.einsum("gab,nkb->gnka", rotations, vectors)
        energies, charges = self.model.energies_and_charges(types, rotated, index, reverse, mask)
        total = energies.sum(dim=1)
        if self.model.long_range:
            total = total + self.coulomb.energies(prepared[5:], charges)
        return total

    def _bytes(self, n_atoms: int, n_slots: int) -> int:
        tokens = n_atoms * (n_slots + 1)
        return tokens * (self.bytes_per_slot + self.bytes_per_slot_pair * (n_slots + 1))

    def bytes_per_copy(self, prepared: List[Tensor]) -> int:
        """Memory of one copy's activations and graph (bytes), for the slots in use."""
        index = prepared[1]
        return self._bytes(index.shape[0], index.shape[1])

    @torch.jit.unused
    def estimated_bytes_per_copy(self, n_atoms: int) -> int:
        """An upper bound of ``bytes_per_copy`` before the neighbour search (all K slots)."""
        return self._bytes(n_atoms, self.model.max_neighbors)


class RotatedCopies(nn.Module):
    """E(R_c x) for a batch of rotations: the one kernel (module docstring)."""

    def __init__(self, adapter: nn.Module, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
                 cpu_batch_atoms: Optional[int] = 512):
        super().__init__()
        if memory_budget_bytes < 1:
            raise ValueError(f"the memory budget must be positive, got {memory_budget_bytes} bytes")
        self.adapter = adapter
        self.memory_budget_bytes = memory_budget_bytes
        self.cpu_batch_atoms = cpu_batch_atoms

    def chunk_size(self, prepared: List[Tensor], positions: Tensor, n_rotations: int) -> int:
        """Copies per model call: within the memory budget, and cache-sized on CPUs."""
        chunk = max(1, self.memory_budget_bytes // max(self.adapter.bytes_per_copy(prepared), 1))
        cpu_batch_atoms = self.cpu_batch_atoms
        if not positions.is_cuda and cpu_batch_atoms is not None:
            chunk = min(chunk, max(1, cpu_batch_atoms // max(positions.shape[0], 1)))
        return min(chunk, max(n_rotations, 1))

    def forward(self, types: Tensor, positions: Tensor, cell: Optional[Tensor],
                rotations: Tensor) -> Tensor:
        """types [N], positions [N, 3], cell [3, 3] or None, rotations [C, 3, 3] -> [C], with
        the graph of every copy (memory grows with C; see ``weighted``)."""
        prepared = self.adapter.prepare(types, positions, cell)
        n_rotations = rotations.shape[0]
        chunk = self.chunk_size(prepared, positions, n_rotations)
        energies: List[Tensor] = []
        for start in range(0, n_rotations, chunk):
            energies.append(self.adapter.copies(prepared, rotations[start:start + chunk]))
        return torch.cat(energies)

    def weighted(self, types: Tensor, positions: Tensor, cell: Optional[Tensor],
                 rotations: Tensor, weights: Tensor) -> Tensor:
        """sum_c weights[c] E(R_c x), a scalar, in memory bounded by the budget; its gradient
        (first derivatives) is exact, its graph holds one chunk at a time."""
        prepared = self.adapter.prepare(types, positions, cell)
        n_rotations = rotations.shape[0]
        chunk = self.chunk_size(prepared, positions, n_rotations)
        leaves: List[Tensor] = []  # prepared, cut from its graph
        inputs: List[Tensor] = []  # the prepared tensors that need a gradient ...
        differentiable: List[Tensor] = []  # ... and their cut copies
        gradients: List[Tensor] = []
        for tensor in prepared:
            if tensor.requires_grad:
                leaf = _cut(tensor).requires_grad_()
                inputs.append(tensor)
                differentiable.append(leaf)
                gradients.append(torch.zeros_like(leaf))
                leaves.append(leaf)
            else:
                leaves.append(tensor)
        total = torch.zeros((), dtype=positions.dtype, device=positions.device)
        for start in range(0, n_rotations, chunk):
            part = (self.adapter.copies(leaves, rotations[start:start + chunk])
                    * weights[start:start + chunk]).sum()
            if len(differentiable) > 0:
                parts = torch.autograd.grad([part], differentiable, allow_unused=True)
                for number, gradient in enumerate(parts):
                    if gradient is not None:
                        gradients[number] = gradients[number] + gradient
            total = total + _cut(part)
        for tensor, gradient in zip(inputs, gradients):
            linear = (tensor * gradient).sum()
            total = total + (linear - _cut(linear))
        return total


def _cut(tensor: Tensor) -> Tensor:
    """A copy of ``tensor`` outside the autograd graph. Not ``detach()``: ``torch.jit.freeze``,
    which openmm-torch applies to every module it loads, removes ``aten::detach`` from a frozen
    graph, while it keeps ``no_grad`` blocks."""
    with torch.no_grad():
        copy = tensor.clone()
    return copy


def rotated_copies(model: UnconstrainedPET,
                   memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES) -> RotatedCopies:
    """The kernel around the built-in model."""
    return RotatedCopies(PETAdapter(model), memory_budget_bytes)
