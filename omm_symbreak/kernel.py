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

import math
from typing import List, Optional

import torch
from torch import Tensor, nn

from .grids import quaternion_to_matrix
from .model.electrostatics import Coulomb
from .model.neighbors import neighbor_list, trim_padding
from .model.pet import UnconstrainedPET

DEFAULT_MEMORY_BUDGET_BYTES = 2**30  # 1 GiB of activations at a time: fits a laptop


def configuration_uniforms(positions: Tensor, count: int) -> Tensor:
    """``count`` numbers in (0, 1), float64 [count], a pseudo-random function of the
    configuration ``positions`` [N, 3] read to 2^-20 of its unit: the same configuration gives
    the same numbers on any device, in any process and thread, with no state to keep;
    configurations that differ anywhere give unrelated ones.

    With c_i the 3N coordinates as integers (round(2^20 x_i)) and p = 2^31 - 1 (a prime whose
    products of two residues fit in int64): h_k = sum_i c_i w_ki mod p with weights
    w_ki = ((k 3N + i + 1) 48271 mod p)^2 mod p, then mixed three times,
    h_k -> (h_k^2 + 48271 h_(k+1)) mod p (cyclically in k).
    """
    prime, multiplier = 2147483647, 48271
    coordinates = torch.round(positions.detach().to(torch.float64) * 1048576.0)
    coordinates = torch.remainder(coordinates.to(torch.int64).reshape(-1), prime)  # [3N]
    n = coordinates.numel()
    index = torch.arange(1, count * n + 1, dtype=torch.int64, device=positions.device)
    weights = torch.remainder(index * multiplier, prime)
    weights = torch.remainder(weights * weights, prime).reshape(count, n)
    hashed = torch.remainder(coordinates[None, :] * weights, prime).sum(dim=1)
    hashed = torch.remainder(hashed, prime)  # [count]
    for _ in range(3):
        hashed = torch.remainder(hashed * hashed + multiplier * torch.roll(hashed, -1), prime)
    return (hashed.to(torch.float64) + 0.5) / prime


def random_rotation(positions: Tensor, inversion: bool = True) -> Tensor:
    """A Haar-distributed rotation [1, 3, 3], negated (improper) with probability 1/2 if
    ``inversion``, in the dtype and on the device of ``positions`` [N, 3]: a pseudo-random
    function of the configuration (``configuration_uniforms``), so that a run's rotations
    follow from its trajectory alone, whatever else runs in the process, and a checkpoint
    needs no random state. The quaternion is Shoemake's from three uniform numbers u:
    (sqrt(1 - u0) sin 2 pi u1, sqrt(1 - u0) cos 2 pi u1, sqrt(u0) sin 2 pi u2,
    sqrt(u0) cos 2 pi u2), uniform on the unit sphere of R^4."""
    u = configuration_uniforms(positions, 4).to(positions.dtype)
    a, b = torch.sqrt(1 - u[0]), torch.sqrt(u[0])
    angles = 2 * math.pi * u[1:3]
    q = torch.stack([a * torch.sin(angles[0]), a * torch.cos(angles[0]),
                     b * torch.sin(angles[1]), b * torch.cos(angles[1])])
    rotation = quaternion_to_matrix(q).reshape(1, 3, 3)
    if inversion:
        rotation = rotation * (1.0 - 2.0 * (u[3] < 0.5).to(positions.dtype))
    return rotation


def copies_at_once(bytes_per_copy: int, n_atoms: int, n_rotations: int,
                   memory_budget_bytes: int, cpu_batch_atoms: Optional[int]) -> int:
    """How many of ``n_rotations`` copies of ``n_atoms`` atoms one model call takes: at most
    ``memory_budget_bytes`` (bytes) of copies of ``bytes_per_copy`` and, where
    ``cpu_batch_atoms`` is given (on CPUs), about that many atoms; at least one."""
    chunk = max(1, memory_budget_bytes // max(bytes_per_copy, 1))
    if cpu_batch_atoms is not None:
        chunk = min(chunk, max(1, cpu_batch_atoms // max(n_atoms, 1)))
    return min(chunk, max(n_rotations, 1))


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
        cpu_batch_atoms: Optional[int] = None
        if not positions.is_cuda:
            cpu_batch_atoms = self.cpu_batch_atoms
        return copies_at_once(self.adapter.bytes_per_copy(prepared), positions.shape[0],
                              n_rotations, self.memory_budget_bytes, cpu_batch_atoms)

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
