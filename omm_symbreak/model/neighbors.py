"""Padded neighbour search with periodic boundary conditions, TorchScript-compilable.

``neighbor_list(positions, cell, cutoff, max_neighbors)`` finds, for every atom ``i``, every
edge ``i -> (j, shift)`` with ``0 < |r_j + shift - r_i| < cutoff``, where ``shift`` is an integer
combination of the box vectors (zero without a cell). Every periodic image counts: in a cell
shorter than two cutoffs an atom sees several images of the same atom, and in one shorter than a
cutoff also images of itself. Atoms at exactly the same point are not neighbours of each other.

Lengths are in whatever unit the caller uses (the model uses Angstrom). ``N`` is the number of
atoms and ``K = max_neighbors`` the number of slots per atom.

Two algorithms give the same result, and the choice between them is automatic:

- Dense, O(N^2 x images), for small systems and short cells: pair displacements are wrapped to
  fractional coordinates in [-0.5, 0.5]; every image shift ``n`` with
  ``|n_a| <= floor(cutoff / width_a + 0.5)`` along each cell direction (``width_a = V / |b x c|``,
  the distance between the faces spanned by ``b`` and ``c``) is added; candidates within the
  cutoff are numbered along their row (by ``j``, then by shift) with a cumulative sum and gathered
  into the padded layout. The image shifts are listed symmetrically (the negative of shift ``s``
  is shift ``n_shifts - 1 - s``), which makes the reverse edge a table look-up.
- Binned (cell lists), O(N), from ``CELL_LIST_MIN_ATOMS`` atoms on in a cell and
  ``CELL_LIST_MIN_ATOMS_CLUSTER`` without one (the keyword ``cell_list_min_atoms`` overrides
  both per call), in clusters and in cells whose three face distances are all at least three
  bin widths (a bin is a little wider than the cutoff, see ``_bin_width``); shorter cells take
  the dense path whatever their size. Atoms are sorted into a grid of bins (in fractional
  coordinates, wrapped into the cell, when periodic; over the bounding box, with an empty layer
  that keeps the stencil from wrapping around, for clusters); every bin lists the atoms of the
  27 bins around it, with the cell shift that each crossing of the cell boundary adds, and an
  atom's candidates are its bin's list (about 27 x 4.5 in liquid water at the default cutoff,
  instead of N; dilute systems get wider bins, at most 2N of them). Since an edge is shorter
  than a bin, the candidates include every edge. A coarse filter (wrapped coordinates, cutoff
  plus a rounding margin) keeps a few per atom, whose exact displacements then decide, computed
  with the dense path's operations on the same operands. Since a cell is then wider than two
  cutoffs (and a cluster has no images), at most one image of each atom ``j`` lies within the
  cutoff of atom ``i``: sorting the edges by ``(i, j)`` gives the dense path's order, and the
  reverse edge (``i`` in row ``j``) is found by binary search. Both paths return equal
  tensors (``torch.equal``; tests/test_neighbors.py checks it); the gradients agree to rounding
  (their backward passes sum in other orders).

The search runs on ``positions.device`` and keeps every tensor there. It reads a few values on
the host: the cell's volume and widths (periodic only), the coordinates' extent, the longest
bin list and the numbers of edges (binned path only: bin grid and edge lists are sized by
them), and whether some atom has more than ``K`` neighbours. Displacement vectors are
differentiable functions of ``positions`` and ``cell`` (to any order); the integer shifts and the
selection are not (they are piecewise constant) and are computed from detached values.
"""

import math
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


# From this many atoms on, the binned search replaces the dense one where the cell allows it.
# ``neighbor_list``'s keyword ``cell_list_min_atoms`` overrides both per call; the constants are
# read once, when this module is imported. Crossovers measured on one CPU thread (water at
# 1 g/cm^3, cutoff 3.5 Angstrom, K = 64): periodic near 200 atoms (liquid-64, 192 atoms in a
# 12.4 Angstrom box: dense 1.9 ms, binned 2.2 ms in float32; 384 random atoms at that
# density: 5.8 vs 3.9 ms), clusters near 400 (the dense search needs no wrapping there: 256
# atoms 1.5 vs 2.3 ms, 512 atoms 4.4 vs 4.0 ms). Above them the binned search wins by far (1536
# water atoms in float32: dense 150 ms, binned 12 ms).
CELL_LIST_MIN_ATOMS: int = 256
TOO_MANY_NEIGHBORS = "too many neighbours for the model"  # in every such error, for callers
CELL_LIST_MIN_ATOMS_CLUSTER: int = 512


def neighbor_list(
    positions: Tensor, cell: Optional[Tensor], cutoff: float, max_neighbors: int,
    cell_list_min_atoms: Optional[int] = None,
) -> NeighborList:
    """All edges ``0 < |r_ij| < cutoff``, periodic images included, in ``max_neighbors`` slots.

    Args:
      positions: [N, 3] floating-point coordinates.
      cell: None (no periodicity) or [3, 3] with rows the box vectors a, b, c (periodic along all
        three); any right-handed cell, orthorhombic or triclinic, of any size.
      cutoff: the cutoff radius, > 0, in the unit of ``positions``.
      max_neighbors: K, the number of slots per atom, >= 1.
      cell_list_min_atoms: the binned (cell-list) search runs from this many atoms on, where the
        cell allows it; None: ``CELL_LIST_MIN_ATOMS`` with a cell, ``CELL_LIST_MIN_ATOMS_CLUSTER``
        without; 0 forces it wherever possible, a huge value never. The result does not depend
        on it, the cost does.

    Returns:
      a ``NeighborList``; within a row, edges are ordered by ``j``, then by image shift.

    Raises:
      ValueError: on malformed input, or a cell with volume <= 0.
      RuntimeError: if some atom has more than ``max_neighbors`` neighbours.
    """
    if max_neighbors < 1:
        raise ValueError("max_neighbors must be >= 1, got " + str(max_neighbors))
    cell, geometry, try_binned = _checked_input(positions, cell, cutoff, cell_list_min_atoms)
    if try_binned:
        binned = _binned_search(positions, cell, cutoff, max_neighbors, geometry)
        if binned is not None:
            return binned
    return _dense_search(positions, cell, cutoff, max_neighbors, geometry)


def neighbor_pairs(
    positions: Tensor, cell: Optional[Tensor], cutoff: float,
    cell_list_min_atoms: Optional[int] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    """All edges ``0 < |r_ij| < cutoff`` as flat lists instead of slots, for sums over pairs
    with many neighbours per atom (a long real-space cutoff); arguments as ``neighbor_list``.

    Returns:
      first [E] and second [E] (int64: atoms i and j, every edge in both directions, each
      periodic image its own edge) and vectors [E, 3] ``r_j + shift - r_i`` (differentiable
      in ``positions`` and ``cell``), ordered by ``i``.
    """
    cell, geometry, try_binned = _checked_input(positions, cell, cutoff, cell_list_min_atoms)
    points = positions.detach()
    edges: Optional[Tuple[Tensor, Tensor, Optional[Tensor]]] = None
    if try_binned:
        edges = _binned_edges(points, cell, cutoff, geometry)
    if edges is None:
        edges = _dense_edges(points, cell, cutoff, geometry)
    first, second, shift = edges
    return first, second, _displacements(positions, first, second, shift, cell)


def _checked_input(positions: Tensor, cell: Optional[Tensor], cutoff: float,
                   cell_list_min_atoms: Optional[int]
                   ) -> Tuple[Optional[Tensor], List[float], bool]:
    """The searches' common start: ValueError on malformed input; the cell in the positions'
    dtype, its ``_cell_geometry`` (empty without a cell) and whether to try the binned search."""
    if positions.dim() != 2 or positions.shape[1] != 3:
        raise ValueError(
            "positions must have shape [n_atoms, 3], got " + str(list(positions.shape))
        )
    if not positions.is_floating_point():
        raise ValueError("positions must be floating point, got " + str(positions.dtype))
    if not cutoff > 0.0:
        raise ValueError("cutoff must be > 0, got " + str(cutoff))
    geometry: List[float] = []
    if cell is not None:
        if cell.shape != (3, 3):
            raise ValueError("cell must have shape [3, 3], got " + str(list(cell.shape)))
        cell = cell.to(positions.dtype)
        geometry = _cell_geometry(cell.detach(), cutoff)
    if cell_list_min_atoms is None:
        threshold = _default_min_atoms(cell is not None)
    else:
        threshold = cell_list_min_atoms
    n_atoms = positions.shape[0]
    return cell, geometry, n_atoms > 0 and n_atoms >= threshold


def _image_candidates(diff: Tensor, cell: Tensor,
                      geometry: List[float]) -> Tuple[Tensor, Tensor, Tensor]:
    """``_shifts``' wrap [N, N, 3] and images [S, 3] of the pair displacements ``diff``
    [N, N, 3], and the candidates [N, N, S, 3] ``diff + (wrap + image) @ cell`` (differentiable
    as ``diff`` and ``cell`` are; the shifts are not)."""
    wrap, images = _shifts(diff.detach(), cell.detach(), geometry)
    wrapped = diff + _times_matrix(wrap, cell)
    return wrap, images, wrapped.unsqueeze(2) + _times_matrix(images, cell)


def _dense_edges(points: Tensor, cell: Optional[Tensor], cutoff: float,
                 geometry: List[float]) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """The edges of the O(N^2 x images) search among the [N, 3] ``points`` (no gradient): atoms
    i and j [E] int64 (by i, then j, then image) and integer shifts [E, 3] (None: no cell)."""
    diff = points.unsqueeze(0) - points.unsqueeze(1)  # [N, N, 3], r_j - r_i
    if cell is None:
        found = torch.nonzero(_within(diff.unsqueeze(2), cutoff))
        return found[:, 0], found[:, 1], None
    wrap, images, candidates = _image_candidates(diff, cell.detach(), geometry)
    found = torch.nonzero(_within(candidates, cutoff))
    first, second = found[:, 0], found[:, 1]
    shift = (wrap[first, second] + images[found[:, 2]]).to(torch.int64)
    return first, second, shift


def _within(candidates: Tensor, cutoff: float) -> Tensor:
    """Which displacements [..., 3] lie within ``cutoff`` (and are not zero)."""
    distance2 = candidates.square().sum(-1)
    return (distance2 > 0.0) & (distance2 < cutoff * cutoff)


def _default_min_atoms(periodic: bool, in_cell: int = CELL_LIST_MIN_ATOMS,
                       in_cluster: int = CELL_LIST_MIN_ATOMS_CLUSTER) -> int:
    """The default switch to the binned search. The module constants enter as default
    arguments, fixed when the module is imported: TorchScript reads no module globals."""
    return in_cell if periodic else in_cluster


def _dense_search(
    positions: Tensor, cell: Optional[Tensor], cutoff: float, max_neighbors: int,
    geometry: List[float],
) -> NeighborList:
    """The O(N^2 x images) search (module docstring); ``cell`` already in the positions' dtype
    and ``geometry`` from ``_cell_geometry`` (empty without a cell)."""
    n_atoms = positions.shape[0]
    diff = positions.unsqueeze(0) - positions.unsqueeze(1)  # [N, N, 3], r_j - r_i
    if cell is None:
        candidates = diff.unsqueeze(2)  # [N, N, 1, 3]
    else:
        candidates = _image_candidates(diff, cell, geometry)[2]  # [N, N, S, 3]
    n_shifts = candidates.shape[2]
    candidates = candidates.reshape(n_atoms, n_atoms * n_shifts, 3)

    selected = _within(candidates.detach(), cutoff)  # [N, N * S]
    # Running count along the row: a selected candidate sits in slot running - 1.
    running = torch.cumsum(selected.to(torch.int64), dim=1)
    counts = selected.sum(dim=1)
    _check_counts(counts, cutoff, max_neighbors)

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


def _check_counts(counts: Tensor, cutoff: float, max_neighbors: int,
                  too_many: str = TOO_MANY_NEIGHBORS):
    """Raises RuntimeError naming the fullest row if ``counts`` [N] exceeds ``max_neighbors``."""
    if bool((counts > max_neighbors).any()):
        atom = int(torch.argmax(counts))
        raise RuntimeError(
            "atom " + str(atom) + " has " + str(int(counts[atom])) + " neighbors within the "
            + "cutoff " + str(cutoff) + " but there are only max_neighbors = "
            + str(max_neighbors) + " slots: " + too_many
        )


def _cell_geometry(cell: Tensor, cutoff: float) -> List[float]:
    """[volume, width_a, width_b, width_c, n_a, n_b, n_c] of a [3, 3] cell (no gradient), read
    to the host in one go: the face distances ``width_a = V / |b x c|`` and the image ranges
    ``n_a = floor(cutoff / width_a + 0.5)`` of the dense search (computed in the cell's dtype,
    at least float32). Raises ValueError unless the volume is > 0."""
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
    host: List[float] = torch.cat([volume.reshape(1), widths, n_max]).tolist()
    if not host[0] > 0.0:
        raise ValueError(
            "cell must have rows a, b, c spanning a right-handed cell of volume > 0, got volume "
            + str(host[0])
        )
    return host


def _shifts(diff: Tensor, cell: Tensor, geometry: List[float]) -> Tuple[Tensor, Tensor]:
    """Integer cell shifts (in the dtype of ``diff``) of the candidates: pair (i, j) in image s
    is displaced by ``r_j - r_i + (wrap[i, j] + images[s]) @ cell``.

    Args:
      diff: [N, N, 3] pair displacements r_j - r_i (no gradient).
      cell: [3, 3] box vectors as rows (no gradient).
      geometry: the cell's ``_cell_geometry``.

    Returns:
      ``wrap`` [N, N, 3], which brings every pair displacement to fractional coordinates in
      [-0.5, 0.5] and is exactly antisymmetric (``wrap[j, i] == -wrap[i, j]``), and ``images``
      [S, 3] in lexicographic order over symmetric ranges (``images[S - 1 - s] == -images[s]``).
    """
    work = cell.to(torch.promote_types(cell.dtype, torch.float32))
    ranges = [
        torch.arange(-int(m), int(m) + 1, device=diff.device, dtype=diff.dtype)
        for m in geometry[4:7]
    ]
    images = torch.stack(torch.meshgrid(ranges, indexing="ij"), dim=-1).reshape(-1, 3)

    # Element-wise products and round-half-to-even are odd functions in floating point, so
    # (j, i) wraps exactly opposite to (i, j).
    fractional = _times_matrix(diff.to(work.dtype), torch.linalg.inv(work))
    wrap = -torch.round(fractional)
    return wrap.to(diff.dtype), images


def _bin_width(points: Tensor, cell: Optional[Tensor], cutoff: float) -> Tuple[float, List[float]]:
    """The smallest bin width (face to face) of the binned search and the host values read with
    it: ``[max |x| + sum |cell|]`` with a cell, the bounding box and magnitude
    ``[lo_x, lo_y, lo_z, hi_x, hi_y, hi_z, max |x|]`` without one.

    A bin is wider than the cutoff by a margin that covers rounding: a pair whose computed
    distance is below the cutoff must not lie two bins apart because the bin assignment (in at
    least float32) and the distance (in the positions' dtype) round differently. Rounding errors
    scale with the magnitude of the coordinates and of the image shifts, so the margin is
    ``1e-5 cutoff + 64 eps (max |x| + sum |cell|)``.
    """
    work = points.to(torch.promote_types(points.dtype, torch.float32))
    magnitude = work.abs().amax().reshape(1)
    if cell is None:
        values = torch.cat([work.amin(0), work.amax(0), magnitude])
    else:
        values = magnitude + cell.detach().to(work.dtype).abs().sum()
    host: List[float] = values.tolist()
    scale = host[-1]
    if points.dtype == torch.float64:
        eps = 2.220446049250313e-16
    elif points.dtype == torch.float32:
        eps = 1.1920928955078125e-07
    else:
        eps = 1e-2  # half precision: generous
    return cutoff * (1.0 + 1e-5) + 64.0 * eps * scale, host


def _limit_bins(n_bins: List[int], limit: int, least: int) -> List[int]:
    """Fewer (hence wider) bins along the longest axes until there are at most ``limit`` bins,
    keeping at least ``least`` per axis (``least ** 3 <= limit``)."""
    total = n_bins[0] * n_bins[1] * n_bins[2]
    while total > limit:
        axis = 0
        for a in range(1, 3):
            if n_bins[a] > n_bins[axis]:
                axis = a
        fewer = int(n_bins[axis] * limit / total)
        n_bins[axis] = max(least, min(n_bins[axis] - 1, fewer))
        total = n_bins[0] * n_bins[1] * n_bins[2]
    return n_bins


class _Bins(NamedTuple):
    """The atoms in the binned search's grid of ``n_bins`` bins per axis: ``bins`` [N, 3] int64;
    ``wraps`` [N, 3] int64, shifts ``w`` into the cell; ``wrapped`` [N, 3] ``r - w @ cell`` and
    ``cell`` [3, 3] (zero without one) in the working dtype (at least float32, no gradient);
    ``width``, the coarse filter's radius (at most a bin's width). Lengths as the positions'."""

    bins: Tensor
    wraps: Tensor
    wrapped: Tensor
    cell: Tensor
    n_bins: List[int]
    width: float


def _binned_search(
    positions: Tensor, cell: Optional[Tensor], cutoff: float, max_neighbors: int,
    geometry: List[float],
) -> Optional[NeighborList]:
    """The cell-list search (module docstring), or None where the cell is too short for it
    (some face distance below three bin widths). ``positions`` has at least one atom, ``cell``
    is in the positions' dtype and ``geometry`` comes from ``_cell_geometry``."""
    edges = _binned_edges(positions.detach(), cell, cutoff, geometry)
    if edges is None:
        return None
    rows, neighbor, shift = edges
    return _fill_slots(positions, cell, cutoff, max_neighbors, rows, neighbor, shift)


def _binned_edges(
    points: Tensor, cell: Optional[Tensor], cutoff: float, geometry: List[float],
) -> Optional[Tuple[Tensor, Tensor, Optional[Tensor]]]:
    """``_select_edges`` of the [N, 3] ``points`` (no gradient, at least one atom) in their
    grid of bins, or None where the cell is too short for bins (``_binned_search``)."""
    work = points.to(torch.promote_types(points.dtype, torch.float32))
    bin_width, host = _bin_width(points, cell, cutoff)
    if not bin_width < math.inf:
        return None  # NaN or infinite coordinates: the dense search copes
    limit = max(2 * points.shape[0], 27)  # never many more bins than atoms (dilute systems)
    if cell is None:
        grid = _cluster_bins(work, host, bin_width, limit)
    else:
        n_bins = [int(math.floor(w / bin_width)) for w in geometry[1:4]]
        if min(n_bins) < 3:
            return None
        grid = _periodic_bins(work, cell, _limit_bins(n_bins, limit, 3), bin_width)
    return _select_edges(points, cell, cutoff, grid)


def _cluster_bins(work: Tensor, host: List[float], bin_width: float, limit: int) -> _Bins:
    """Bins of ``bin_width`` (widened to at most ``limit`` bins) for [N, 3] coordinates ``work``
    without a cell from the lowest one (``host``: ``_bin_width``'s bounding box), then one empty
    layer (at least 3 bins per axis) so that the periodic stencil never joins opposite sides."""
    extent = [host[3 + a] - host[a] for a in range(3)]
    n_used = [int(math.floor(e / bin_width)) + 1 for e in extent]
    n_bins = [max(n + 1, 3) for n in n_used]
    while n_bins[0] * n_bins[1] * n_bins[2] > limit:
        bin_width = bin_width * 1.25
        n_used = [int(math.floor(e / bin_width)) + 1 for e in extent]
        n_bins = [max(n + 1, 3) for n in n_used]
    low = torch.tensor(host[0:3], dtype=work.dtype, device=work.device)
    upper = torch.tensor(n_used, dtype=torch.int64, device=work.device) - 1
    bins = torch.floor((work - low) / bin_width).to(torch.int64)
    bins = torch.minimum(bins.clamp_min(0), upper)  # [N, 3]
    zero_cell = torch.zeros(3, 3, dtype=work.dtype, device=work.device)  # shifts stay zero
    return _Bins(bins, torch.zeros_like(bins), work, zero_cell, n_bins, bin_width)


def _periodic_bins(work: Tensor, cell: Tensor, n_bins: List[int], bin_width: float) -> _Bins:
    """Bins for [N, 3] coordinates ``work`` in the [3, 3] ``cell``: ``n_bins`` slices of the
    fractional coordinates (wrapped into the cell) per axis; ``bin_width`` is the filter radius."""
    work_cell = cell.detach().to(work.dtype)
    fractional = _times_matrix(work, torch.linalg.inv(work_cell))
    floor = torch.floor(fractional)
    wrapped = work - _times_matrix(floor, work_cell)  # r - wraps @ cell, in the cell
    counts_per_axis = torch.tensor(n_bins, dtype=work.dtype, device=work.device)
    bins = torch.floor((fractional - floor) * counts_per_axis).to(torch.int64)
    upper = torch.tensor(n_bins, dtype=torch.int64, device=work.device) - 1
    bins = torch.minimum(bins.clamp_min(0), upper)  # a fraction 1 - tiny may round to 1
    return _Bins(bins, floor.to(torch.int64), wrapped, work_cell, n_bins, bin_width)


def _bin_candidates(bins: Tensor, n_bins: List[int]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every bin's candidates, the atoms of the 27 bins around it (wrapped periodically), for
    the atoms' bins [N, 3] int64 in an ``n_bins`` grid: the atoms' flat bins [N] int64, the
    candidates [B, C] int64 (by stencil bin, then atom), a [B, C] bool mask (False where padded)
    and the cell shift [B, C, 3] int64 (-1, 0 or 1 per axis) of the way to the candidate's bin."""
    device = bins.device
    n_b, n_c = n_bins[1], n_bins[2]
    total_bins = n_bins[0] * n_b * n_c
    # Atoms sorted by bin; bin b holds sorted atoms starts[b] to starts[b] + counts[b] - 1.
    atom_bin = (bins[:, 0] * n_b + bins[:, 1]) * n_c + bins[:, 2]  # [N]
    sorted_bins, order = torch.sort(atom_bin, stable=True)
    all_bins = torch.arange(total_bins, device=device)
    starts = torch.searchsorted(sorted_bins, all_bins)
    counts = torch.searchsorted(sorted_bins, all_bins, right=True) - starts

    # The 27 bins around every bin, wrapped periodically, and the cell shift of each crossing.
    bin_coords = torch.stack([all_bins // (n_b * n_c), (all_bins // n_c) % n_b, all_bins % n_c], 1)
    step = torch.arange(-1, 2, device=device)
    stencil = torch.stack(torch.meshgrid([step, step, step], indexing="ij"), dim=-1).reshape(27, 3)
    grid = torch.tensor(n_bins, dtype=torch.int64, device=device)
    moved = bin_coords.unsqueeze(1) + stencil  # [B, 27, 3]
    around = torch.remainder(moved, grid)
    crossing = torch.div(moved - around, grid, rounding_mode="floor")  # -1, 0 or 1
    around_bin = (around[:, :, 0] * n_b + around[:, :, 1]) * n_c + around[:, :, 2]  # [B, 27]
    around_counts = counts[around_bin]
    ends = torch.cumsum(around_counts, dim=1)  # [B, 27]
    totals = ends[:, 26]
    n_candidates = int(totals.max())

    # Candidate c of bin b: atom ``within`` of stencil bin ``part`` (C = n_candidates per bin,
    # the last ones padding where the bin has fewer).
    candidate = torch.arange(n_candidates, device=device)
    per_bin = candidate.unsqueeze(0).expand(total_bins, n_candidates).contiguous()
    part = torch.searchsorted(ends, per_bin, right=True).clamp_max(26)  # [B, C]
    valid = per_bin < totals.unsqueeze(1)
    within = per_bin - (ends - around_counts).gather(1, part)
    source = torch.where(valid, starts[around_bin.gather(1, part)] + within, 0)
    bin_crossing = crossing.gather(1, part.unsqueeze(-1).expand(total_bins, n_candidates, 3))
    return atom_bin, order[source], valid, bin_crossing


def _select_edges(points: Tensor, cell: Optional[Tensor], cutoff: float,
                  grid: _Bins) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """The edges ``0 < |r_j + shift - r_i| < cutoff`` among the ``_bin_candidates`` of each
    atom's bin, for the [N, 3] ``points`` (no gradient) and ``cell`` (None or [3, 3] in their
    dtype): atoms ``i`` and ``j`` [E] int64 (by ``i``), shifts [E, 3] int64 (None: no cell)."""
    atom_bin, bin_atoms, valid, bin_crossing = _bin_candidates(grid.bins, grid.n_bins)
    # Coarse filter, O(N C): the image of every candidate next to the bin, from the wrapped
    # positions, within the cutoff plus the rounding margin of the atom. Padding is at infinity.
    image = grid.wrapped[bin_atoms] + _times_matrix(bin_crossing.to(grid.cell.dtype), grid.cell)
    image = torch.where(valid.unsqueeze(-1), image, torch.full_like(image, math.inf))
    image = image.transpose(1, 2).contiguous()  # [B, 3, C]
    distance2 = (image[atom_bin] - grid.wrapped.unsqueeze(2)).square().sum(1)  # [N, C]
    near = torch.nonzero(distance2 < grid.width * grid.width)  # [E', 2], by atom, then c
    rows = near[:, 0]
    flat = atom_bin[rows] * bin_atoms.shape[1] + near[:, 1]
    neighbor = bin_atoms.reshape(-1)[flat]

    # Exact selection, with the dense search's arithmetic: r_j - r_i + shift @ cell with
    # shift = w_i - w_j + crossing (w the wraps of the atoms into the cell).
    shift: Optional[Tensor] = None
    if cell is not None:
        shift = grid.wraps[rows] - grid.wraps[neighbor] + bin_crossing.reshape(-1, 3)[flat]
    exact = _displacements(points, rows, neighbor, shift, None if cell is None else cell.detach())
    exact2 = exact.square().sum(-1)
    keep = torch.nonzero((exact2 > 0.0) & (exact2 < cutoff * cutoff)).squeeze(1)
    return rows[keep], neighbor[keep], None if shift is None else shift[keep]


def _fill_slots(positions: Tensor, cell: Optional[Tensor], cutoff: float, max_neighbors: int,
                rows: Tensor, neighbor: Tensor, shift: Optional[Tensor]) -> NeighborList:
    """The ``NeighborList`` of edges ``rows -> neighbor`` [E] int64, shifts [E, 3] int64 (None:
    no cell), one image of each ``j`` per row at most, with vectors from ``positions`` [N, 3] and
    ``cell`` (None or [3, 3] in their dtype). RuntimeError past ``max_neighbors`` per row."""
    n_atoms = positions.shape[0]
    device = positions.device
    # One image of each j at most (the cell is wider than two cutoffs): sorting the edges by
    # key i (N + 1) + j gives the dense search's order, row by row.
    keys, order_edges = torch.sort(rows * (n_atoms + 1) + neighbor, stable=True)
    rows, neighbor = rows[order_edges], neighbor[order_edges]
    all_atoms = torch.arange(n_atoms, device=device)
    row_starts = torch.searchsorted(keys, all_atoms * (n_atoms + 1))
    counts_per_atom = torch.searchsorted(keys, (all_atoms + 1) * (n_atoms + 1)) - row_starts
    _check_counts(counts_per_atom, cutoff, max_neighbors)

    # Dense layout: edge e of row i goes to slot e - row_starts[i]. The reverse edge j -> i
    # is where key j (N + 1) + i sits, less row j's start.
    n_edges = keys.shape[0]
    target = rows * max_neighbors + torch.arange(n_edges, device=device) - row_starts[rows]
    found = torch.searchsorted(keys, neighbor * (n_atoms + 1) + rows) - row_starts[neighbor]
    empty = torch.zeros(n_atoms * max_neighbors, dtype=torch.int64, device=device)
    index = empty.scatter(0, target, neighbor).reshape(n_atoms, max_neighbors)
    reverse = empty.scatter(0, target, found).reshape(n_atoms, max_neighbors)
    slots = torch.arange(max_neighbors, device=device)
    mask = slots.unsqueeze(0) < counts_per_atom.unsqueeze(1)  # [N, K]
    edge_shift: Optional[Tensor] = None
    if shift is not None:
        shift = shift[order_edges]
        edge_shift = torch.zeros(n_atoms * max_neighbors, 3, dtype=torch.int64, device=device)
        edge_shift = edge_shift.index_copy(0, target, shift).reshape(n_atoms, max_neighbors, 3)
    vectors = _displacements(positions, None, index, edge_shift, cell)
    vectors = torch.where(mask.unsqueeze(-1), vectors, torch.zeros_like(vectors))
    return NeighborList(index, vectors, mask, reverse)


def _displacements(positions: Tensor, atom: Optional[Tensor], neighbor: Tensor,
                   shift: Optional[Tensor], cell: Optional[Tensor]) -> Tensor:
    """``r_j - r_i + shift @ cell`` [..., 3] for atoms ``i = atom`` (None: ``neighbor`` is
    [N, K] and row i is atom i) and ``j = neighbor`` (integer tensors of one shape) and integer
    shifts [..., 3] (None without a cell), with the dense search's operations, hence its
    rounding."""
    if atom is None:
        diff = positions[neighbor] - positions.unsqueeze(1)
    else:
        diff = positions[neighbor] - positions[atom]
    if shift is None or cell is None:
        return diff
    return diff + _times_matrix(shift.to(positions.dtype), cell)


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
