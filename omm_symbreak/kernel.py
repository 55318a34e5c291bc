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
needed, each chunk's gradient with respect to the positions (and cell) is taken at once and the
chunk's graph freed, and the returned scalar carries the accumulated gradient (first
derivatives only: what MD needs; training, which differentiates forces again, uses ``forward``).

The adapter contract: what is specific to a kind of model lives in its adapter
(``omm_symbreak.model_kinds``), a module with these methods:

- ``prepare(types, positions, cell) -> P``: whatever does not depend on the rotation, computed
  once per call (the built-in model: one neighbour search), in a ``NamedTuple`` ``P`` of the
  adapter's own, differentiable in ``positions`` and ``cell``; the kernel passes it on unread;
- ``copies(prepared: P, rotations [c, 3, 3]) -> Tensor [c]``: energies of a chunk of rotated
  copies in one model call;
- ``bytes_per_copy(prepared: P) -> Optional[int]``: the memory one copy's evaluation with its
  graph takes, None where the kind of model does not tell it.

How many copies one ``copies`` call takes is set by the model's ``Batching``: a fixed number
(``copies_per_call``; 1 for a model evaluated copy by copy, whose memory is unknown), or else as
many as ``memory_budget_bytes`` holds and, on CPUs, about ``cpu_batch_atoms`` atoms (cache-sized
calls: benchmarks/energy_forces.py).
"""

import math
from typing import List, NamedTuple, Optional

import torch
from torch import Tensor, nn

from .grids import quaternion_to_matrix

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


class Batching(NamedTuple):
    """How a kind of model takes its rotated copies (``EnergyModel.batching``):

    - ``copies_per_call``: a fixed number of copies per model call (1 for a model evaluated
      copy by copy, whose memory is unknown: each copy's graph is freed before the next), or
      None to let the memory budget and ``cpu_batch_atoms`` decide;
    - ``cpu_batch_atoms``: on CPUs, copies of about this many atoms in all per call (None: no
      such limit)."""

    copies_per_call: Optional[int] = None
    cpu_batch_atoms: Optional[int] = None


ONE_COPY_PER_CALL = Batching(copies_per_call=1)


def copies_at_once(bytes_per_copy: Optional[int], n_atoms: int, n_rotations: int,
                   memory_budget_bytes: int, copies_per_call: Optional[int],
                   cpu_batch_atoms: Optional[int]) -> int:
    """How many of ``n_rotations`` copies of ``n_atoms`` atoms one model call takes: the fixed
    ``copies_per_call`` if given; else at most ``memory_budget_bytes`` (bytes) of copies of
    ``bytes_per_copy`` (None: unknown, no memory limit) and, where ``cpu_batch_atoms`` is given
    (on CPUs), about that many atoms; at least one."""
    if copies_per_call is not None:
        return max(1, min(copies_per_call, n_rotations))
    chunk = max(n_rotations, 1)
    if bytes_per_copy is not None:
        chunk = min(chunk, max(1, memory_budget_bytes // max(bytes_per_copy, 1)))
    if cpu_batch_atoms is not None:
        chunk = min(chunk, max(1, cpu_batch_atoms // max(n_atoms, 1)))
    return chunk


def rotated_cell(cell: Tensor, rotation: Tensor) -> Tensor:
    """The box vectors [3, 3] (rows) of a copy rotated by ``rotation`` [3, 3]: det(R) b R^T, an
    improper R negated, which spans the same lattice with a right-handed basis."""
    return torch.linalg.det(rotation) * (cell @ rotation.T)


class RotatedCopies(nn.Module):
    """E(R_c x) for a batch of rotations: the one kernel (module docstring), around an
    ``adapter`` that takes its copies as ``batching`` says."""

    copies_per_call: Optional[int]
    cpu_batch_atoms: Optional[int]

    def __init__(self, adapter: nn.Module, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
                 batching: Batching = Batching()):
        super().__init__()
        if memory_budget_bytes < 1:
            raise ValueError(f"the memory budget must be positive, got {memory_budget_bytes} bytes")
        self.adapter = adapter
        self.memory_budget_bytes = memory_budget_bytes
        self.copies_per_call = batching.copies_per_call
        self.cpu_batch_atoms = batching.cpu_batch_atoms

    def chunk_size(self, bytes_per_copy: Optional[int], positions: Tensor,
                   n_rotations: int) -> int:
        """Copies per model call (``copies_at_once``), cache-sized on CPUs only."""
        cpu_batch_atoms: Optional[int] = None
        if not positions.is_cuda:
            cpu_batch_atoms = self.cpu_batch_atoms
        return copies_at_once(bytes_per_copy, positions.shape[0], n_rotations,
                              self.memory_budget_bytes, self.copies_per_call, cpu_batch_atoms)

    def forward(self, types: Tensor, positions: Tensor, cell: Optional[Tensor],
                rotations: Tensor) -> Tensor:
        """types [N], positions [N, 3], cell [3, 3] or None, rotations [C, 3, 3] -> [C], with
        the graph of every copy (memory grows with C; see ``weighted``)."""
        prepared = self.adapter.prepare(types, positions, cell)
        n_rotations = rotations.shape[0]
        chunk = self.chunk_size(self.adapter.bytes_per_copy(prepared), positions, n_rotations)
        energies: List[Tensor] = []
        for start in range(0, n_rotations, chunk):
            energies.append(self.adapter.copies(prepared, rotations[start:start + chunk]))
        return torch.cat(energies)

    def weighted(self, types: Tensor, positions: Tensor, cell: Optional[Tensor],
                 rotations: Tensor, weights: Tensor) -> Tensor:
        """sum_c weights[c] E(R_c x), a scalar, in memory bounded by the budget; its gradient
        (first derivatives) is exact, its graph holds one chunk at a time.

        The rotation-independent part is prepared once from copies of ``positions`` and
        ``cell`` cut from their graph; each chunk's gradient with respect to those copies is
        taken through it (its graph kept for the next chunk), and the sum's gradient reaches
        ``positions`` and ``cell`` through a term linear in them."""
        inputs: List[Tensor] = []  # the inputs that need a gradient ...
        leaves: List[Tensor] = []  # ... and their cut copies
        gradients: List[Tensor] = []
        positions_leaf = _cut_leaf(positions, inputs, leaves, gradients)
        cell_leaf: Optional[Tensor] = None
        if cell is not None:
            cell_leaf = _cut_leaf(cell, inputs, leaves, gradients)
        prepared = self.adapter.prepare(types, positions_leaf, cell_leaf)
        n_rotations = rotations.shape[0]
        chunk = self.chunk_size(self.adapter.bytes_per_copy(prepared), positions, n_rotations)
        total = torch.zeros((), dtype=positions.dtype, device=positions.device)
        for start in range(0, n_rotations, chunk):
            part = (self.adapter.copies(prepared, rotations[start:start + chunk])
                    * weights[start:start + chunk]).sum()
            if len(leaves) > 0:
                parts = torch.autograd.grad([part], leaves, retain_graph=True, allow_unused=True)
                for number, gradient in enumerate(parts):
                    if gradient is not None:
                        gradients[number] = gradients[number] + gradient
            total = total + _cut(part)
            # the chunk's graph (kept by retain_graph) goes with its last reference, before the
            # next chunk is evaluated; the prepared part's stays for the next chunk
            part = total
        for tensor, gradient in zip(inputs, gradients):
            linear = (tensor * gradient).sum()
            total = total + (linear - _cut(linear))
        return total


def _cut_leaf(tensor: Tensor, inputs: List[Tensor], leaves: List[Tensor],
              gradients: List[Tensor]) -> Tensor:
    """``tensor`` itself when it needs no gradient; else a copy cut from its graph that does,
    with ``tensor``, the copy and a zero gradient appended to ``inputs``, ``leaves`` and
    ``gradients``."""
    if not tensor.requires_grad:
        return tensor
    leaf = _cut(tensor).requires_grad_()
    inputs.append(tensor)
    leaves.append(leaf)
    gradients.append(torch.zeros_like(leaf))
    return leaf


def _cut(tensor: Tensor) -> Tensor:
    """A copy of ``tensor`` outside the autograd graph. Not ``detach()``: ``torch.jit.freeze``,
    which openmm-torch applies to every module it loads, removes ``aten::detach`` from a frozen
    graph, while it keeps ``no_grad`` blocks."""
    with torch.no_grad():
        copy = tensor.clone()
    return copy
