"""Tests of the padded neighbour search against a brute-force NumPy reference.

The tests from ``test_binned_matches_reference`` on force the binned (cell-list) search with
``cell_list_min_atoms=0`` on structures small enough for the reference, and compare it with the
dense search, which ``cell_list_min_atoms=10**9`` forces.
"""

import functools
import itertools
import time

import numpy as np
import pytest
import torch

from omm_symbreak import systems
from omm_symbreak.model import neighbors
from omm_symbreak.model.neighbors import NeighborList, neighbor_list, neighbor_pairs
from omm_symbreak.units import as_nm_array, nm_to_angstrom
from conftest import peak_cpu_bytes

SCRIPTED = torch.jit.script(neighbor_list)
SEARCHES = {"eager": neighbor_list, "scripted": SCRIPTED}
# A scripted function re-raises the errors of its body as torch.jit.Error.
ERRORS = (ValueError, RuntimeError, torch.jit.Error)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def reference_edges(positions, cell, cutoff):
    """Every edge (i, j, shift) with 0 < |r_j + shift @ cell - r_i| < cutoff, by brute force.

    Positions may lie anywhere (unwrapped). An image n of atom j within the cutoff of atom i
    has |f_a + n_a| width_a <= |r| < cutoff along each cell direction a (f the fractional
    displacement, width_a the distance between the faces), so n_a lies within
    cutoff / width_a + 1/2 of -round(f_a); every pair tries all shifts within
    ceil(cutoff / width_a) + 1 of that. Returns a list per atom of (j, shift tuple, vector),
    ordered by j, then shift.
    """
    n = len(positions)
    diff = positions[None, :, :] - positions[:, None, :]  # [n, n, 3]
    if cell is None:
        centres = np.zeros((n, n, 3), dtype=int)
        window = np.zeros((1, 3), dtype=int)
    else:
        volume = abs(np.linalg.det(cell))
        widths = [volume / np.linalg.norm(np.cross(cell[(a + 1) % 3], cell[(a + 2) % 3]))
                  for a in range(3)]
        centres = -np.round(diff @ np.linalg.inv(cell)).astype(int)
        ranges = [range(-m, m + 1) for m in (int(np.ceil(cutoff / w)) + 1 for w in widths)]
        window = np.array(list(itertools.product(*ranges)))
    edges = [[] for _ in range(n)]
    for m in window:
        shifts = centres + m  # [n, n, 3]
        vectors = diff if cell is None else diff + shifts @ cell
        distances = np.linalg.norm(vectors, axis=-1)  # [n, n]
        near = np.abs(distances - cutoff) < 2e-5
        assert not near.any(), "test set-up: a distance lies within 2e-5 of the cutoff"
        for i, j in zip(*np.nonzero((distances > 0) & (distances < cutoff))):
            edges[i].append((int(j), tuple(int(x) for x in shifts[i, j]), vectors[i, j]))
    return [sorted(row, key=lambda edge: (edge[0], edge[1])) for row in edges]


def edges_of(result: NeighborList, positions, cell):
    """The search's edges as (j, shift tuple, vector) per atom, in slot order; shifts recovered
    from the vectors."""
    index = result.index.numpy()
    vectors = result.vectors.detach().double().numpy()
    mask = result.mask.numpy()
    edges = []
    for i in range(len(positions)):
        row = []
        for k in np.nonzero(mask[i])[0]:
            j = int(index[i, k])
            vector = vectors[i, k]
            if cell is None:
                shift = (0, 0, 0)
            else:
                fractional = (vector - (positions[j] - positions[i])) @ np.linalg.inv(cell)
                assert np.allclose(fractional, np.round(fractional), atol=1e-3)
                shift = tuple(int(x) for x in np.round(fractional))
            row.append((j, shift, vector))
        edges.append(row)
    return edges


def random_cell(rng, kind, low, high):
    """A random cell in OpenMM's reduced form with diagonal entries in [low, high)."""
    if kind == "cluster":
        return None
    ax, by, cz = rng.uniform(low, high, size=3)
    if kind == "orthorhombic":
        return np.diag([ax, by, cz])
    bx, cx = rng.uniform(-ax / 2, ax / 2, size=2)
    cy = rng.uniform(-by / 2, by / 2)
    return np.array([[ax, 0.0, 0.0], [bx, by, 0.0], [cx, cy, cz]])


def random_positions(rng, n, cell, extent=6.0):
    """Points in a cluster of the given extent, or in and around the cell (fractional
    coordinates in [-0.5, 1.5), to exercise the wrapping)."""
    if cell is None:
        return rng.uniform(0.0, extent, size=(n, 3))
    return rng.uniform(-0.5, 1.5, size=(n, 3)) @ cell


def check_against_reference(search, positions, cell, cutoff, max_neighbors, dtype):
    """Runs the search and compares it with the reference, edge by edge; returns the result."""
    positions = torch.tensor(positions, dtype=dtype).numpy()  # the values the search sees
    cell = None if cell is None else torch.tensor(cell, dtype=dtype).numpy()
    positions64 = positions.astype(np.float64)
    cell64 = None if cell is None else cell.astype(np.float64)
    result = search(
        torch.from_numpy(positions), None if cell is None else torch.from_numpy(cell),
        cutoff, max_neighbors,
    )
    expected = reference_edges(positions64, cell64, cutoff)
    found = edges_of(result, positions64, cell64)
    tolerance = 1e-4 if dtype == torch.float32 else 1e-10
    for i, (row, expected_row) in enumerate(zip(found, expected)):
        keys = [(j, shift) for j, shift, _ in row]
        assert keys == sorted(keys), f"atom {i}: edges not ordered by j, then shift"
        assert keys == sorted((j, shift) for j, shift, _ in expected_row), f"atom {i}"
        vectors = dict(((j, shift), v) for j, shift, v in expected_row)
        for j, shift, vector in row:
            np.testing.assert_allclose(vector, vectors[(j, shift)], atol=tolerance)
    check_layout(result, max_neighbors, dtype)
    check_reverse(result)
    return result


def check_layout(result: NeighborList, max_neighbors, dtype):
    """Shapes, dtypes, slots filled from 0 and zero padding."""
    n = result.index.shape[0]
    assert result.index.shape == (n, max_neighbors) and result.index.dtype == torch.int64
    assert result.reverse.shape == (n, max_neighbors) and result.reverse.dtype == torch.int64
    assert result.mask.shape == (n, max_neighbors) and result.mask.dtype == torch.bool
    assert result.vectors.shape == (n, max_neighbors, 3) and result.vectors.dtype == dtype
    counts = result.mask.sum(1, keepdim=True)
    assert torch.equal(result.mask, torch.arange(max_neighbors) < counts)
    padded = ~result.mask
    assert (result.index[padded] == 0).all()
    assert (result.reverse[padded] == 0).all()
    assert (result.vectors[padded] == 0).all()


def check_reverse(result: NeighborList):
    """index[j, reverse[i, k]] == i and vectors[j, reverse[i, k]] == -vectors[i, k], exactly."""
    i, k = torch.nonzero(result.mask, as_tuple=True)
    j, back = result.index[i, k], result.reverse[i, k]
    assert result.mask[j, back].all()
    assert torch.equal(result.index[j, back], i)
    assert torch.equal(result.vectors[j, back], -result.vectors[i, k])


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("kind", ["cluster", "orthorhombic", "triclinic"])
def test_matches_reference(search, dtype, kind):
    rng = np.random.default_rng(["cluster", "orthorhombic", "triclinic"].index(kind))
    for _ in range(3):
        cell = random_cell(rng, kind, 7.0, 10.0)
        positions = random_positions(rng, 40, cell)
        check_against_reference(search, positions, cell, 3.5, 48, dtype)


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("kind", ["orthorhombic", "triclinic"])
@pytest.mark.parametrize("edge", [5.0, 3.0], ids=["below_2_cutoffs", "below_cutoff"])
def test_small_cells_see_several_images(search, dtype, kind, edge):
    rng = np.random.default_rng(10 + int(edge))
    cell = random_cell(rng, kind, edge, edge + 0.5)
    positions = random_positions(rng, 6, cell)
    result = check_against_reference(search, positions, cell, 4.0, 160, dtype)
    i, k = torch.nonzero(result.mask, as_tuple=True)
    pairs = torch.stack([i, result.index[i, k]], dim=1)
    assert len(torch.unique(pairs, dim=0)) < len(pairs), "expected repeated (i, j) pairs"
    if edge < 4.0:
        assert (result.index[i, k] == i).any(), "expected atoms seeing their own images"


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
def test_single_atom_sees_own_images(search):
    cell = torch.diag(torch.tensor([2.0, 3.0, 10.0], dtype=torch.float64))
    result = search(torch.tensor([[0.3, 0.2, 0.1]], dtype=torch.float64), cell, 3.7, 8)
    expected = {(2.0, 0.0), (-2.0, 0.0), (0.0, 3.0), (0.0, -3.0), (2.0, 3.0), (2.0, -3.0),
                (-2.0, 3.0), (-2.0, -3.0)}
    assert result.mask.all() and (result.index == 0).all()
    assert {(float(x), float(y)) for x, y, _ in result.vectors[0].tolist()} == expected
    assert (result.vectors[:, :, 2] == 0).all()
    check_reverse(result)


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
def test_pairs_exactly_half_a_cell_apart(search, dtype):
    """Fractional displacements of exactly +-0.5 wrap to opposite images for (i, j) and (j, i)."""
    positions = np.array([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0], [2.0, 0.0, 0.0]])
    check_against_reference(search, positions, np.eye(3) * 4.0, 3.9, 64, dtype)


def test_empty_rows_and_overlapping_atoms():
    positions = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    result = neighbor_list(positions, None, 2.0, 4)
    assert not result.mask.any(), "atoms at the same point are not neighbours"
    check_layout(result, 4, torch.float32)


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
def test_too_many_neighbors(search):
    positions = torch.zeros(5, 3)
    positions[:, 0] = torch.arange(5.0) / 2  # a row with spacing 0.5; atom 2 has 4 neighbours
    with pytest.raises(ERRORS, match="atom 2 has 4 neighbors.*max_neighbors = 3.*too many neighbours for the model"):
        search(positions, None, 1.2, 3)
    with pytest.raises(ERRORS, match="atom 2 has 4 neighbors.*max_neighbors = 2"):
        search(positions, None, 1.2, 2)
    assert search(positions, None, 1.2, 4).mask.sum(1).tolist() == [2, 3, 4, 3, 2]


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
def test_bad_input(search):
    positions = torch.rand(4, 3)
    cell = torch.eye(3) * 5.0
    with pytest.raises(ERRORS, match=r"positions must have shape \[n_atoms, 3\]"):
        search(torch.rand(4, 2), cell, 2.0, 8)
    with pytest.raises(ERRORS, match=r"positions must have shape \[n_atoms, 3\]"):
        search(torch.rand(2, 4, 3), None, 2.0, 8)
    with pytest.raises(ERRORS, match=r"cell must have shape \[3, 3\]"):
        search(positions, torch.eye(3)[:2], 2.0, 8)
    with pytest.raises(ERRORS, match="cutoff must be > 0"):
        search(positions, cell, 0.0, 8)
    with pytest.raises(ERRORS, match="max_neighbors must be >= 1"):
        search(positions, cell, 2.0, 0)
    flat = cell.clone()
    flat[2] = flat[0] + flat[1]
    with pytest.raises(ERRORS, match="volume > 0"):
        search(positions, flat, 2.0, 8)
    with pytest.raises(ERRORS, match="volume > 0"):
        search(positions, -cell, 2.0, 8)


def test_error_types_eager():
    """Eager calls raise ValueError for bad input and RuntimeError for too many neighbours."""
    with pytest.raises(ValueError):
        neighbor_list(torch.rand(4, 2), None, 2.0, 8)
    with pytest.raises(ValueError):
        neighbor_list(torch.zeros(4, 3, dtype=torch.int64), None, 2.0, 8)
    with pytest.raises(RuntimeError):
        neighbor_list(torch.zeros(3, 3) + torch.arange(3.0)[:, None], None, 2.0, 1)


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
@pytest.mark.parametrize("kind", ["cluster", "triclinic"])
def test_gradients(search, kind):
    """d(sum |vectors|^2) by autograd equals the analytic value: for every edge with vector
    v = r_j - r_i + shift @ cell, 2v on r_j, -2v on r_i and 2 shift_a v on cell row a."""
    rng = np.random.default_rng(42)
    cell = random_cell(rng, kind, 5.0, 6.0)
    positions = random_positions(rng, 12, cell)
    expected_positions = np.zeros_like(positions)
    expected_cell = np.zeros((3, 3))
    for i, row in enumerate(reference_edges(positions, cell, 3.5)):
        for j, shift, vector in row:
            expected_positions[j] += 2 * vector
            expected_positions[i] -= 2 * vector
            expected_cell += 2 * np.outer(shift, vector)
    positions_t = torch.tensor(positions, requires_grad=True)
    cell_t = None if cell is None else torch.tensor(cell, requires_grad=True)
    result = search(positions_t, cell_t, 3.5, 64)
    result.vectors.square().sum().backward()
    np.testing.assert_allclose(positions_t.grad.numpy(), expected_positions, atol=1e-10)
    if cell is not None:
        np.testing.assert_allclose(cell_t.grad.numpy(), expected_cell, atol=1e-9)


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
def test_second_derivatives(search):
    """Force training differentiates forces: check second derivatives through the search."""
    rng = np.random.default_rng(3)
    cell = torch.tensor(random_cell(rng, "triclinic", 3.0, 3.5), requires_grad=True)
    positions = torch.tensor(random_positions(rng, 4, cell.detach().numpy()), requires_grad=True)

    def energy(positions, cell):
        vectors = search(positions, cell, 3.0, 64).vectors
        return torch.exp(-vectors.square().sum(-1)).sum()

    assert torch.autograd.gradgradcheck(energy, (positions, cell))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
def test_cuda_matches_cpu(search):
    rng = np.random.default_rng(7)
    cell = torch.tensor(random_cell(rng, "triclinic", 4.0, 5.0))
    positions = torch.tensor(random_positions(rng, 30, cell.numpy()))
    on_cpu = search(positions, cell, 4.0, 256)
    on_gpu = search(positions.cuda(), cell.cuda(), 4.0, 256)
    assert all(t.device.type == "cuda" for t in on_gpu)
    for cpu, gpu in zip(on_cpu, on_gpu):
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=0.0, atol=1e-12)


# --- The binned (cell-list) search ------------------------------------------------------------

BINNED = {"cell_list_min_atoms": 0}
DENSE = {"cell_list_min_atoms": 10 ** 9}
# A reduced triclinic cell (OpenMM's form) whose face distances (12.2, 12.4, 12.3) exceed three
# cutoffs of 3.5 plus margin, and whose bins are not axis-aligned boxes.
TILTED = np.array([[13.0, 0.0, 0.0], [2.6, 12.6, 0.0], [-1.9, 3.1, 12.9]])


def binned(search):
    """The search with the binned path forced wherever the cell allows it."""
    return functools.partial(search, **BINNED)


def takes_binned_path(positions, cell, cutoff):
    """Whether the binned search accepts the structure (else neighbor_list falls back)."""
    positions = torch.as_tensor(positions)
    cell = None if cell is None else torch.as_tensor(cell, dtype=positions.dtype)
    geometry = [] if cell is None else neighbors._cell_geometry(cell, cutoff)
    return neighbors._binned_search(positions, cell, cutoff, 512, geometry) is not None


def assert_same(first: NeighborList, second: NeighborList):
    """Equal tensors, field by field (vectors to the last bit, up to the sign of zeros)."""
    for name, a, b in zip(NeighborList._fields, first, second):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.equal(a, b), name


@functools.lru_cache(maxsize=None)
def liquid(replicate=(1, 1, 1)):
    """liquid-64 tiled (water at 1 g/cm^3): positions [N, 3] and cell [3, 3] in Angstrom."""
    _, positions, box = systems.load("liquid-64", replicate=replicate)
    positions = nm_to_angstrom(as_nm_array(positions))
    cell = nm_to_angstrom(as_nm_array(box))
    return positions, cell


def binned_structure(kind, layout, rng):
    """(positions, cell) at cutoff 3.5: liquid-64 (192 atoms, molecules whole, so a few atoms
    stick out of the box), mapped into the tilted cell for triclinic, or 200 random points (in
    the box for a cluster, else at fractional coordinates in [-0.5, 1.5)); periodic atoms are
    then moved by up to two cells (unwrapped)."""
    if layout == "water":
        positions, cell = liquid()
        if kind == "triclinic":
            positions = positions @ np.linalg.inv(cell) @ TILTED
            cell = TILTED
    else:
        cell = TILTED if kind == "triclinic" else np.diag([13.0, 14.0, 15.0])
        positions = rng.uniform(0.0, 1.0, size=(200, 3)) @ cell
        if kind != "cluster":
            positions = random_positions(rng, 200, cell)
    if kind == "cluster":
        return positions, None
    return positions + rng.integers(-2, 3, size=positions.shape) @ cell, cell


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("kind", ["cluster", "orthorhombic", "triclinic"])
@pytest.mark.parametrize("layout", ["random", "water"])
def test_binned_matches_reference(dtype, kind, layout):
    """Eager and scripted binned search: the reference's edges, and the dense search's tensors."""
    rng = np.random.default_rng(["random", "water"].index(layout))
    positions, cell = binned_structure(kind, layout, rng)
    assert takes_binned_path(torch.tensor(positions, dtype=dtype), cell, 3.5)
    first = check_against_reference(binned(neighbor_list), positions, cell, 3.5, 64, dtype)
    assert first.mask.sum() > 4 * len(positions), "test set-up: too few edges"
    positions_t = torch.tensor(positions, dtype=dtype)
    cell_t = None if cell is None else torch.tensor(cell, dtype=dtype)
    assert_same(SCRIPTED(positions_t, cell_t, 3.5, 64, **BINNED), first)
    assert_same(neighbor_list(positions_t, cell_t, 3.5, 64, **DENSE), first)


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("kind", ["orthorhombic", "triclinic"])
def test_binned_atoms_on_boundaries(dtype, kind):
    """Atoms exactly on cell faces and bin boundaries, and whole cells away from the box.

    Orthorhombic: a 2-Angstrom lattice in a 12 x 12 x 16 cell (3 x 3 x 4 bins of 4 Angstrom:
    every other lattice plane is a bin boundary), every atom moved by -2 to 2 cells, so that
    many sit exactly on a face of some image of the cell; squared distances are multiples of 4,
    far from the cutoff's 12.25. Triclinic: fractional coordinates on a grid of sixths (bin
    boundaries at thirds) in the tilted cell."""
    rng = np.random.default_rng(5)
    if kind == "orthorhombic":
        cell = np.diag([12.0, 12.0, 16.0])
        positions = np.array(list(itertools.product(range(0, 12, 2), range(0, 12, 2),
                                                    range(0, 16, 2))), dtype=float)
    else:
        cell = TILTED
        positions = np.array(list(itertools.product(range(6), repeat=3))) / 6.0 @ cell
    positions = positions + rng.integers(-2, 3, size=positions.shape) @ cell
    assert takes_binned_path(torch.tensor(positions, dtype=dtype), cell, 3.5)
    for search in SEARCHES.values():
        result = check_against_reference(binned(search), positions, cell, 3.5, 64, dtype)
        positions_t, cell_t = torch.tensor(positions, dtype=dtype), torch.tensor(cell, dtype=dtype)
        assert_same(result, neighbor_list(positions_t, cell_t, 3.5, 64, **DENSE))
    if kind == "orthorhombic":
        assert (result.mask.sum(1) == 26).all()  # 6 + 12 + 8 lattice neighbours


def test_binned_equals_dense_on_many_structures():
    """Many random structures, no reference: the binned search returns the dense search's
    tensors (or falls back to it in short cells), in both dtypes, for cutoffs across bin counts,
    atoms up to three cells away and dilute systems (fewer bins than the cell allows)."""
    rng = np.random.default_rng(11)
    taken = 0
    for trial in range(24):
        kind = ["cluster", "orthorhombic", "triclinic"][trial % 3]
        dtype = [torch.float32, torch.float64][(trial // 3) % 2]
        cutoff = rng.uniform(2.0, 5.0)
        cell = random_cell(rng, kind, 8.0, 22.0)
        n = int(rng.integers(20, 400))
        if cell is None:
            positions = rng.uniform(0.0, 25.0, size=(n, 3)) * rng.uniform(0.2, 1.0, size=3)
        else:
            positions = rng.uniform(-3.0, 4.0, size=(n, 3)) @ cell
        positions_t = torch.tensor(positions, dtype=dtype)
        cell_t = None if cell is None else torch.tensor(cell, dtype=dtype)
        expected = neighbor_list(positions_t, cell_t, cutoff, 160, **DENSE)
        assert_same(neighbor_list(positions_t, cell_t, cutoff, 160, **BINNED), expected)
        taken += takes_binned_path(positions_t, cell_t, cutoff)
    assert taken >= 12, "test set-up: most structures should take the binned path"


def check_gradients(search, positions, cell, cutoff):
    """d(sum |vectors|^2) by autograd equals the analytic value: for every edge with vector
    v = r_j - r_i + shift @ cell, 2v on r_j, -2v on r_i and 2 shift_a v on cell row a."""
    expected_positions = np.zeros_like(positions)
    expected_cell = np.zeros((3, 3))
    for i, row in enumerate(reference_edges(positions, cell, cutoff)):
        for j, shift, vector in row:
            expected_positions[j] += 2 * vector
            expected_positions[i] -= 2 * vector
            expected_cell += 2 * np.outer(shift, vector)
    positions_t = torch.tensor(positions, requires_grad=True)
    cell_t = None if cell is None else torch.tensor(cell, requires_grad=True)
    result = search(positions_t, cell_t, cutoff, 64)
    assert result.mask.any()
    result.vectors.square().sum().backward()
    np.testing.assert_allclose(positions_t.grad.numpy(), expected_positions, atol=1e-10)
    if cell is not None:
        np.testing.assert_allclose(cell_t.grad.numpy(), expected_cell, atol=1e-9)


def small_binned_structure(kind, n, rng):
    """Atoms in a tilted cell 3.1 cutoffs of 1.5 wide (3 bins), or a 4-Angstrom cluster (2 bins
    and an empty layer); cutoff 1.5."""
    if kind == "cluster":
        return rng.uniform(0.0, 4.0, size=(n, 3)), None
    cell = TILTED * (5.0 / 13.0)
    return random_positions(rng, n, cell), cell


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
@pytest.mark.parametrize("kind", ["cluster", "triclinic"])
def test_binned_gradients(search, kind):
    positions, cell = small_binned_structure(kind, 40, np.random.default_rng(42))
    assert takes_binned_path(positions, cell, 1.5)
    check_gradients(binned(search), positions, cell, 1.5)


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
@pytest.mark.parametrize("kind", ["cluster", "triclinic"])
def test_binned_second_derivatives(search, kind):
    """Force training differentiates forces (create_graph=True): second derivatives through the
    binned search, with respect to positions and cell."""
    positions, cell = small_binned_structure(kind, 10, np.random.default_rng(3))
    assert takes_binned_path(positions, cell, 1.5)
    inputs = [torch.tensor(positions, requires_grad=True)]
    if cell is not None:
        inputs.append(torch.tensor(cell, requires_grad=True))

    def energy(positions, cell=None):
        vectors = search(positions, cell, 1.5, 32, **BINNED).vectors
        return torch.exp(-vectors.square().sum(-1)).sum()

    assert search(*inputs[:1], inputs[1] if cell is not None else None, 1.5, 32).mask.any()
    assert torch.autograd.gradgradcheck(energy, tuple(inputs))


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
@pytest.mark.parametrize("kind", ["cluster", "orthorhombic"])
def test_binned_too_many_neighbors(search, kind):
    positions = torch.zeros(5, 3, dtype=torch.float64) + 3.0
    positions[:, 0] = torch.arange(5.0) / 2  # a row with spacing 0.5; atom 2 has 4 neighbours
    cell = None if kind == "cluster" else torch.eye(3, dtype=torch.float64) * 20.0
    assert takes_binned_path(positions, cell, 1.2)
    with pytest.raises(ERRORS, match="atom 2 has 4 neighbors.*max_neighbors = 3.*too many neighbours for the model"):
        search(positions, cell, 1.2, 3, **BINNED)
    assert search(positions, cell, 1.2, 4, **BINNED).mask.sum(1).tolist() == [2, 3, 4, 3, 2]


def test_switch_is_automatic(monkeypatch):
    """By default, water from CELL_LIST_MIN_ATOMS atoms on takes the binned path, smaller systems
    and cells narrower than three cutoffs the dense one; the result is the same."""
    calls = []

    def spy(name):
        original = getattr(neighbors, name)

        def wrapper(*args):
            calls.append(name)
            return original(*args)
        return wrapper

    monkeypatch.setattr(neighbors, "_dense_search", spy("_dense_search"))
    monkeypatch.setattr(neighbors, "_binned_search", spy("_binned_search"))
    assert neighbors.CELL_LIST_MIN_ATOMS <= 384 and neighbors.CELL_LIST_MIN_ATOMS_CLUSTER > 192
    small = [torch.tensor(x) for x in liquid()]
    large = [torch.tensor(x) for x in liquid((2, 1, 1))]  # 384 atoms, 24.9 x 12.4 x 12.4
    neighbor_list(*small, 3.5, 64)
    assert calls == ["_dense_search"]
    calls.clear()
    result = neighbor_list(*large, 3.5, 64)
    assert calls == ["_binned_search"]
    assert_same(result, neighbor_list(*large, 3.5, 64, **DENSE))
    calls.clear()
    neighbor_list(*large, 4.5, 96)  # 12.4 < 3 x 4.5: the binned search declines
    assert calls == ["_binned_search", "_dense_search"]
    calls.clear()
    neighbor_list(small[0], None, 3.5, 64)
    assert calls == ["_dense_search"]


@pytest.mark.parametrize("path, kind", [
    (path, kind) for path in ("dense", "binned") for kind in ("cluster", "orthorhombic", "triclinic")
] + [("short cell", "orthorhombic"), ("short cell", "triclinic")])
def test_neighbor_pairs_are_the_reference_edges_as_flat_lists(path, kind):
    """``neighbor_pairs`` (the Ewald sum's real-space pairs): every edge of the reference once,
    in both directions, each image its own edge, vectors differentiable."""
    rng = np.random.default_rng(21)
    if path == "short cell":  # several images of each atom, and of itself
        cell = random_cell(rng, kind, 3.0, 3.5)
        positions = random_positions(rng, 6, cell)
    else:
        positions, cell = binned_structure(kind, "random", rng)
        assert path == "dense" or takes_binned_path(torch.tensor(positions), cell, 3.5)
    x = torch.tensor(positions, requires_grad=True)
    first, second, vectors = neighbor_pairs(
        x, None if cell is None else torch.tensor(cell), 3.5,
        **(BINNED if path == "binned" else DENSE))
    expected = {(i, j, shift): vector for i, row in enumerate(reference_edges(positions, cell, 3.5))
                for j, shift, vector in row}
    assert len(expected) > 2 * len(positions), "test set-up: too few edges"
    found = {}
    for i, j, vector in zip(first.tolist(), second.tolist(), vectors.detach().numpy()):
        fractional = np.zeros(3) if cell is None else \
            (vector - (positions[j] - positions[i])) @ np.linalg.inv(cell)
        assert np.allclose(fractional, np.round(fractional), atol=1e-6)
        found[(i, j, tuple(int(n) for n in np.round(fractional)))] = vector
    assert len(found) == len(first) and found.keys() == expected.keys()
    for key, vector in found.items():
        np.testing.assert_allclose(vector, expected[key], atol=1e-10)
    assert bool((first[1:] >= first[:-1]).all()), "edges not ordered by i"
    # d sum |r_ij| / d r_i = -(number of edges of i, each a unit vector away from i), summed
    (gradient,) = torch.autograd.grad(torch.linalg.vector_norm(vectors, dim=1).sum(), x)
    units = (vectors / torch.linalg.vector_norm(vectors, dim=1, keepdim=True)).detach()
    expected_gradient = torch.zeros_like(x).index_add_(0, second, units).index_add_(0, first, -units)
    torch.testing.assert_close(gradient, expected_gradient)


class _Search(torch.nn.Module):
    """neighbor_list called from a module, as the energy modules do."""

    def __init__(self, cutoff: float, max_neighbors: int):
        super().__init__()
        self.cutoff = cutoff
        self.max_neighbors = max_neighbors

    def forward(self, positions: torch.Tensor, cell: torch.Tensor):
        found = neighbor_list(positions, cell, self.cutoff, self.max_neighbors)
        return found.index, found.vectors, found.mask, found.reverse


def test_scripted_module():
    """A scripted module that calls neighbor_list with the default switch: binned for 384 water
    atoms, equal to the dense search."""
    module = torch.jit.script(_Search(3.5, 64))
    positions, cell = (torch.tensor(x, dtype=torch.float32) for x in liquid((2, 1, 1)))
    assert_same(NeighborList(*module(positions, cell)),
                neighbor_list(positions, cell, 3.5, 64, **DENSE))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
@pytest.mark.parametrize("kind", ["cluster", "triclinic"])
def test_cuda_binned_matches_cpu(search, kind):
    positions, cell = binned_structure(kind, "water", np.random.default_rng(7))
    positions = torch.tensor(positions)
    cell = None if cell is None else torch.tensor(cell)
    on_cpu = search(positions, cell, 3.5, 64, **BINNED)
    on_gpu = search(positions.cuda(), None if cell is None else cell.cuda(), 3.5, 64, **BINNED)
    assert all(t.device.type == "cuda" for t in on_gpu)
    for cpu, gpu in zip(on_cpu, on_gpu):
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=0.0, atol=1e-12)


@pytest.mark.parametrize("forced", [BINNED, DENSE], ids=["binned", "dense"])
@pytest.mark.parametrize("edge", [300.0, 5000.0])
@pytest.mark.parametrize("n_molecules", [1, 4])
def test_molecules_in_a_huge_box(forced, edge, n_molecules):
    """One or four water molecules of liquid-64 (straddling the cell's corner, so that edges
    cross its faces) in a cubic box of 300 or 5000 Angstrom: the reference's edges, in under a
    MB and a second (the binned search caps its grid at about 2N bins, the dense one needs one
    image per direction)."""
    positions, _ = liquid()
    positions = positions[:3 * n_molecules] - positions[:3 * n_molecules].mean(0)
    cell = np.eye(3) * edge
    search = functools.partial(neighbor_list, **forced)
    check_against_reference(search, positions, cell, 3.5, 40, torch.float32)
    positions_t, cell_t = torch.tensor(positions), torch.tensor(cell)
    start = time.perf_counter()
    search(positions_t, cell_t, 3.5, 40)
    assert time.perf_counter() - start < 1.0
    assert peak_cpu_bytes(lambda: search(positions_t, cell_t, 3.5, 40)) < 2**20
