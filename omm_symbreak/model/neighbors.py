"""Padded neighbour search with periodic boundary conditions, TorchScript-compilable.

``neighbor_list(positions, cell, cutoff, max_neighbors)`` finds, for every atom ``i``, every
edge ``i -> (j, shift)`` with ``0 < |r_j + shift - r_i| < cutoff``, where ``shift`` is an integer
combination of the box vectors (zero without a cell). Every periodic image counts: in a cell
shorter than two cutoffs an atom sees several images of the same atom, and in one shorter than a
cutoff also images of itself. Atoms at exactly the same point are not neighbours of each other.

Lengths are in whatever unit the caller uses (the model uses Angstrom). ``N`` is the number of
atoms and ``K = max_neighbors`` the number of slots per atom.

Algorithm, O(N^2 x images): pair displacements are wrapped to fractional coordinates in
[-0.5, 0.5]; every image shift ``n`` with ``|n_a| <= floor(cutoff / width_a + 0.5)`` along each
cell direction (``width_a = V / |b x c|``, the distance between the faces spanned by ``b`` and
``c``) is added; candidates within the cutoff are numbered along their row (by ``j``, then by
shift) with a cumulative sum and gathered into the padded layout. The image shifts are listed
symmetrically (the negative of shift ``s`` is shift ``n_shifts - 1 - s``), which makes the
reverse edge a table look-up.

The search runs on ``positions.device`` and keeps every tensor there. It reads two values on the
host: the cell's volume and image counts (periodic only), and whether some atom has more than
``K`` neighbours. Displacement vectors are differentiable functions of ``positions`` and
``cell``; the integer shifts are not (they are piecewise constant).
"""

from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor


class NeighborList(NamedTuple):
    """Neighbours in a dense layout of ``K`` slots per atom, filled from slot 0.

    - ``index``: [N, K] int64, the neighbour atom ``j`` in each slot (0 where padded).
    - ``vectors``: [N, K, 3] displacement ``r_j + shift - r_i``, dtype of the positions
      (0 where padded).
    - ``mask``: [N, K] bool, True for real edges.
    - ``reverse``: [N, K] int64, the slot of the reverse edge ``j -> i`` (opposite periodic image)
      in row ``j``: ``index[j, reverse[i, k]] == i`` and
      ``vectors[j, reverse[i, k]] == -vectors[i, k]`` (0 where padded).
    """

    index: Tensor
    vectors: Tensor
    mask: Tensor
    reverse: Tensor


def neighbor_list(
    positions: Tensor, cell: Optional[Tensor], cutoff: float, max_neighbors: int
) -> NeighborList:
    """All edges ``0 < |r_ij| < cutoff``, periodic images included, in ``max_neighbors`` slots.

    Args:
      positions: [N, 3] floating-point coordinates.
      cell: None (no periodicity) or [3, 3] with rows the box vectors a, b, c (periodic along all
        three); any right-handed cell, orthorhombic or triclinic, of any size.
      cutoff: the cutoff radius, > 0, in the unit of ``positions``.
      max_neighbors: K, the number of slots per atom, >= 1.

    Returns:
      a ``NeighborList``; within a row, edges are ordered by ``j``, then by image shift.

    Raises:
      ValueError: on malformed input, or a cell with volume <= 0.
      RuntimeError: if some atom has more than ``max_neighbors`` neighbours.
    """
    if positions.dim() != 2 or positions.shape[1] != 3:
        raise ValueError(
            "positions must have shape [n_atoms, 3], got " + str(list(positions.shape))
        )
    if not positions.is_floating_point():
        raise ValueError("positions must be floating point, got " + str(positions.dtype))
    if not cutoff > 0.0:
        raise ValueError("cutoff must be > 0, got " + str(cutoff))
    if max_neighbors < 1:
        raise ValueError("max_neighbors must be >= 1, got " + str(max_neighbors))
    n_atoms = positions.shape[0]
    diff = positions.unsqueeze(0) - positions.unsqueeze(1)  # [N, N, 3], r_j - r_i
    if cell is None:
        candidates = diff.unsqueeze(2)  # [N, N, 1, 3]
    else:
        if cell.shape != (3, 3):
            raise ValueError("cell must have shape [3, 3], got " + str(list(cell.shape)))
        cell = cell.to(positions.dtype)
        wrap, images = _shifts(diff.detach(), cell.detach(), cutoff)  # [N, N, 3], [S, 3]
        wrapped = diff + _times_matrix(wrap, cell)
        candidates = wrapped.unsqueeze(2) + _times_matrix(images, cell)  # [N, N, S, 3]
    n_shifts = candidates.shape[2]
    candidates = candidates.reshape(n_atoms, n_atoms * n_shifts, 3)

    distance2 = candidates.detach().square().sum(-1)  # [N, N * S]
    selected = (distance2 > 0.0) & (distance2 < cutoff * cutoff)
    # Running count along the row: a selected candidate sits in slot running - 1.
    running = torch.cumsum(selected.to(torch.int64), dim=1)
    counts = selected.sum(dim=1)
    if bool((counts > max_neighbors).any()):
        atom = int(torch.argmax(counts))
        raise RuntimeError(
            "atom " + str(atom) + " has " + str(int(counts[atom])) + " neighbors within the "
            + "cutoff " + str(cutoff) + " but there are only max_neighbors = "
            + str(max_neighbors) + " slots; increase max_neighbors"
        )

    slots = torch.arange(max_neighbors, device=positions.device)
    mask = slots.unsqueeze(0) < counts.unsqueeze(1)  # [N, K]
    # The candidate in slot k is the first one whose running count reaches k + 1.
    wanted = (slots + 1).unsqueeze(0).expand(n_atoms, max_neighbors).contiguous()
    source = torch.where(mask, torch.searchsorted(running, wanted), 0)  # [N, K], 0 if padded
    index = source // n_shifts
    shift = source % n_shifts
    gathered = candidates.gather(1, source.unsqueeze(-1).expand(n_atoms, max_neighbors, 3))
    vectors = torch.where(mask.unsqueeze(-1), gathered, torch.zeros_like(gathered))

    # The reverse edge j -> i with the opposite shift is candidate (j, i, S - 1 - s).
    rows = torch.arange(n_atoms, device=positions.device).unsqueeze(1)
    reverse_flat = index * (n_atoms * n_shifts) + rows * n_shifts + (n_shifts - 1 - shift)
    reverse = torch.where(mask, (running - 1).reshape(-1)[reverse_flat], 0)
    return NeighborList(index, vectors, mask, reverse)


def _shifts(diff: Tensor, cell: Tensor, cutoff: float) -> Tuple[Tensor, Tensor]:
    """Integer cell shifts (in the dtype of ``diff``) of the candidates: pair (i, j) in image s
    is displaced by ``r_j - r_i + (wrap[i, j] + images[s]) @ cell``.

    Args:
      diff: [N, N, 3] pair displacements r_j - r_i (no gradient).
      cell: [3, 3] box vectors as rows (no gradient).
      cutoff: the cutoff radius.

    Returns:
      ``wrap`` [N, N, 3], which brings every pair displacement to fractional coordinates in
      [-0.5, 0.5] and is exactly antisymmetric (``wrap[j, i] == -wrap[i, j]``), and ``images``
      [S, 3] in lexicographic order over symmetric ranges (``images[S - 1 - s] == -images[s]``).
    """
    work = cell.to(torch.promote_types(cell.dtype, torch.float32))
    volume = torch.linalg.det(work)
    normals = torch.stack(
        [
            torch.linalg.cross(work[1], work[2]),
            torch.linalg.cross(work[2], work[0]),
            torch.linalg.cross(work[0], work[1]),
        ]
    )
    widths = volume / torch.linalg.vector_norm(normals, dim=1)  # distances between opposite faces
    n_max = torch.floor(cutoff / widths + 0.5)
    host: List[float] = torch.cat([volume.reshape(1), n_max]).tolist()
    if not host[0] > 0.0:
        raise ValueError(
            "cell must have rows a, b, c spanning a right-handed cell of volume > 0, got volume "
            + str(host[0])
        )
    ranges = [
        torch.arange(-int(m), int(m) + 1, device=diff.device, dtype=diff.dtype) for m in host[1:]
    ]
    images = torch.stack(torch.meshgrid(ranges, indexing="ij"), dim=-1).reshape(-1, 3)

    # Element-wise products and round-half-to-even are odd functions in floating point, so
    # (j, i) wraps exactly opposite to (i, j).
    fractional = _times_matrix(diff.to(work.dtype), torch.linalg.inv(work))
    wrap = -torch.round(fractional)
    return wrap.to(diff.dtype), images


def _times_matrix(rows: Tensor, matrix: Tensor) -> Tensor:
    """``rows @ matrix`` for [..., 3] rows and a [3, 3] matrix, written element-wise so that
    negating a row negates its product exactly (a matmul kernel need not)."""
    return rows[..., 0:1] * matrix[0] + rows[..., 1:2] * matrix[1] + rows[..., 2:3] * matrix[2]


def trim_padding(neighbors: NeighborList) -> NeighborList:
    """The same neighbour list with the slots past the fullest row dropped (at least one kept).

    Padding enters nothing downstream (zero attention and readout weight), so trimming changes
    only the cost: a dense liquid at the default cutoff fills about 26 of 40 slots. It makes the
    number of slots data-dependent, so code that needs static shapes (CUDA graphs) skips it.
    """
    used = max(int(neighbors.mask.sum(dim=1).max()), 1) if neighbors.mask.numel() > 0 else 1
    return NeighborList(neighbors.index[:, :used], neighbors.vectors[:, :used],
                        neighbors.mask[:, :used], neighbors.reverse[:, :used])
