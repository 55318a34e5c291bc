"""Tests of the padded neighbour search against a brute-force NumPy reference."""

import itertools

import numpy as np
import pytest
import torch

from omm_symbreak.model.neighbors import NeighborList, neighbor_list

SCRIPTED = torch.jit.script(neighbor_list)
SEARCHES = {"eager": neighbor_list, "scripted": SCRIPTED}
# A scripted function re-raises the errors of its body as torch.jit.Error.
ERRORS = (ValueError, RuntimeError, torch.jit.Error)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def reference_edges(positions, cell, cutoff):
    """Every edge (i, j, shift) with 0 < |r_j + shift @ cell - r_i| < cutoff, by brute force.

    Positions may lie up to one box length outside the cell; shifts run over a range wide
    enough for that. Returns a list per atom of (j, shift tuple, vector).
    """
    n = len(positions)
    if cell is None:
        shifts = np.zeros((1, 3), dtype=int)
        offsets = np.zeros((1, 3))
    else:
        volume = abs(np.linalg.det(cell))
        widths = [volume / np.linalg.norm(np.cross(cell[(a + 1) % 3], cell[(a + 2) % 3]))
                  for a in range(3)]
        span = int(np.ceil(cutoff / min(widths))) + 3
        shifts = np.array(list(itertools.product(range(-span, span + 1), repeat=3)))
        offsets = shifts @ cell
    vectors = positions[None, :, None, :] - positions[:, None, None, :] + offsets  # [n, n, S, 3]
    distances = np.linalg.norm(vectors, axis=-1)
    near = np.abs(distances - cutoff) < 2e-5
    assert not near.any(), "test set-up: a distance lies within 2e-5 of the cutoff"
    edges = [[] for _ in range(n)]
    for i, j, s in zip(*np.nonzero((distances > 0) & (distances < cutoff))):
        edges[i].append((int(j), tuple(int(x) for x in shifts[s]), vectors[i, j, s]))
    return edges


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
    with pytest.raises(ERRORS, match="atom 2 has 4 neighbors.*max_neighbors = 3.*increase"):
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
