"""Tests of omm_symbreak.grids: sizes, weights, orthogonality, exactness degrees, parsing."""
import numpy as np
import pytest
import scipy.special

from omm_symbreak.grids import (
    GRID_FORMS, GROUPS, RotationGrid, cheapest_grid, grid_catalogue, group_grid, lebedev_grid,
    legendre_euler_grid, parse_grid, random_rotations,
)

# Fixed generic unit vectors: the grid mean of Y_lm(R v) vanishing for these v and all m is
# equivalent to the grid mean of every degree-l Wigner-D component vanishing.
_VECTORS = np.random.default_rng(7).standard_normal((5, 3))
_VECTORS /= np.linalg.norm(_VECTORS, axis=1, keepdims=True)


def sph_harm(l: int, points: np.ndarray) -> np.ndarray:
    """Complex Y_lm for m = -l..l at [..., 3] unit vectors -> [..., 2l+1]."""
    theta = np.arccos(np.clip(points[..., 2], -1.0, 1.0))
    phi = np.arctan2(points[..., 1], points[..., 0])
    m = np.arange(-l, l + 1)
    return scipy.special.sph_harm_y(l, m, theta[..., None], phi[..., None])


def grid_mean_harmonics(grid: RotationGrid, l: int) -> np.ndarray:
    """Max over the fixed vectors v and over m of |sum_g w_g Y_lm(R_g v)|."""
    rotated = np.einsum("gij,vj->gvi", grid.rotations, _VECTORS)  # [G, V, 3]
    mean = np.einsum("g,gvm->vm", grid.weights, sph_harm(l, rotated))
    return np.abs(mean).max()


PROPER_GRIDS = [legendre_euler_grid(n) for n in (1, 2, 3, 4)] + [
    lebedev_grid(d) for d in (3, 5, 7)] + [group_grid(name) for name in GROUPS]
IMPROPER_GRIDS = [legendre_euler_grid(n, inversion=True) for n in (1, 2, 3, 4)] + [
    lebedev_grid(d, inversion=True) for d in (2, 3, 5, 7)] + [
    group_grid(name, inversion=True) for name in GROUPS]
ALL_GRIDS = [parse_grid("none")] + PROPER_GRIDS + IMPROPER_GRIDS


@pytest.mark.parametrize("grid", ALL_GRIDS, ids=lambda g: g.spec)
def test_weights_and_orthogonality(grid):
    assert grid.rotations.shape == (grid.size, 3, 3) and grid.weights.shape == (grid.size,)
    assert grid.rotations.dtype == np.float64 and grid.weights.dtype == np.float64
    assert abs(grid.weights.sum() - 1.0) < 1e-14
    assert np.all(grid.weights > 0)
    r = grid.rotations
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape),
                               atol=1e-13)
    det = np.linalg.det(r)
    if grid.inversion:
        half = grid.size // 2
        np.testing.assert_allclose(det[:half], 1.0, atol=1e-12)
        np.testing.assert_allclose(det[half:], -1.0, atol=1e-12)
        np.testing.assert_array_equal(r[half:], -r[:half])
    else:
        np.testing.assert_allclose(det, 1.0, atol=1e-12)


@pytest.mark.parametrize("spec, size", [
    ("none", 1), ("1", 1), ("2", 18), ("3", 75), ("4", 196), ("1i", 2), ("2i", 36),
    ("3i", 150), ("T", 12), ("Ti", 24), ("O", 24), ("Oi", 48), ("I", 60), ("Ii", 120),
    ("lebedev:3", 6 * 4), ("lebedev:3i", 2 * 6 * 4), ("lebedev:5", 14 * 6),
    ("lebedev:4", 14 * 5), ("lebedev:7", 26 * 8), ("lebedev:1", 6 * 2),
])
def test_sizes(spec, size):
    assert parse_grid(spec).size == size


@pytest.mark.parametrize("grid", PROPER_GRIDS, ids=lambda g: g.spec)
def test_proper_grid_exactness(grid):
    for l in range(1, grid.l_exact + 1):
        assert grid_mean_harmonics(grid, l) < 1e-10, l
    assert grid_mean_harmonics(grid, grid.l_exact + 1) > 1e-3


@pytest.mark.parametrize("grid", IMPROPER_GRIDS, ids=lambda g: g.spec)
def test_inversion_exactness(grid):
    for l in range(1, grid.l_exact + 1):
        assert grid_mean_harmonics(grid, l) < 1e-10, l
    for l in range(1, 2 * grid.l_exact + 4, 2):
        assert grid_mean_harmonics(grid, l) < 1e-10, l
    first_even_beyond = grid.l_exact + 1 + (grid.l_exact + 1) % 2
    assert grid_mean_harmonics(grid, first_even_beyond) > 1e-3


def test_l_exact_values():
    # Legendre-Euler: 2N-2 (2N-1 with inversion); Lebedev: L (L+1 with inversion, L even);
    # groups: one below the lowest degree with an invariant harmonic (T: xyz at l = 3; with
    # inversion the lowest even one, x^4 + y^4 + z^4 at l = 4; O: l = 4; I: l = 6).
    expected = {"none": 0, "1": 0, "2": 2, "3": 4, "4": 6, "1i": 1, "2i": 3, "3i": 5,
                "lebedev:3": 3, "lebedev:4": 4, "lebedev:3i": 3, "lebedev:4i": 5,
                "T": 2, "Ti": 3, "O": 3, "Oi": 3, "I": 5, "Ii": 5}
    assert {spec: parse_grid(spec).l_exact for spec in expected} == expected


def test_random_rotations_haar():
    rng = np.random.default_rng(0)
    r = random_rotations(100_000, rng, inversion=False)
    assert r.shape == (100_000, 3, 3)
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    assert np.abs(r.mean(axis=0)).max() < 0.02
    assert np.abs(r[:, :, 2].mean(axis=0)).max() < 0.02  # mean of R e_z
    ylm = sph_harm(2, np.einsum("nij,vj->nvi", r[:20_000], _VECTORS)).mean(axis=0)
    assert np.abs(ylm).max() < 0.02
    # Second moment: E[R_ij R_kl] = delta_ik delta_jl / 3 for Haar rotations.
    np.testing.assert_allclose((r**2).mean(axis=0), np.full((3, 3), 1 / 3), atol=0.01)


def test_random_rotations_inversion():
    det = np.linalg.det(random_rotations(10_000, np.random.default_rng(1)))
    np.testing.assert_allclose(np.abs(det), 1.0, atol=1e-12)
    assert abs(np.mean(det < 0) - 0.5) < 0.03


@pytest.mark.parametrize("grid", [group_grid(name, inversion) for name in GROUPS
                                  for inversion in (False, True)], ids=lambda g: g.spec)
def test_groups_are_closed_under_multiplication(grid):
    flat = grid.rotations.reshape(grid.size, 9)
    for product in np.einsum("aij,bjk->abik", grid.rotations, grid.rotations).reshape(-1, 9):
        assert np.abs(flat - product).max(axis=1).min() < 1e-12
    assert len(np.unique(np.round(flat, 9), axis=0)) == grid.size


@pytest.mark.parametrize("spec", ["Ti+random", "2+random", "lebedev:3i+random"])
def test_randomized_grid_is_exact_in_every_orientation(spec):
    grid = parse_grid(spec)
    assert grid.randomized and grid.spec == spec and grid.l_exact == parse_grid(
        spec.split("+")[0]).l_exact
    for turn in random_rotations(3, np.random.default_rng(5)):
        turned = RotationGrid(spec, grid.rotations @ turn, grid.weights, grid.l_exact,
                              grid.inversion)
        for l in range(1, grid.l_exact + 1):
            assert grid_mean_harmonics(turned, l) < 1e-10, l


@pytest.mark.parametrize("l", range(0, 8))
@pytest.mark.parametrize("inversion", [False, True])
def test_cheapest_grid(l, inversion):
    grid = cheapest_grid(l, inversion)
    for degree in range(1, l + 1):
        assert grid_mean_harmonics(grid, degree) < 1e-10, degree
    if inversion:
        assert grid.inversion
        for degree in range(1, 2 * l + 4, 2):
            assert grid_mean_harmonics(grid, degree) < 1e-10, degree
    # no grid of any form is cheaper (every form up to 400 rotations listed)
    rivals = [other for other in grid_catalogue(400)
              if other.l_exact >= l and (other.inversion or not inversion)]
    assert grid.size == min(other.size for other in rivals)
    assert parse_grid(f"exact:{l}{'i' if inversion else ''}").spec == grid.spec


@pytest.mark.parametrize("l, inversion, anchors", [
    # i-PI <ffrotations>: Legendre N (exact to 2N-2) and Lebedev points x L in-plane
    # (lebedev:L); with inversion twice as many. metatomic-ase's SymmetrizedCalculator: 84
    # evaluations at l_max = 3 with inversion.
    (2, False, {"2": 18, "lebedev:2": 18}), (3, False, {"3": 75, "lebedev:3": 24}),
    (4, False, {"3": 75, "lebedev:4": 70}), (5, False, {"4": 196, "lebedev:5": 84}),
    (2, True, {"2i": 36, "lebedev:2i": 36}), (3, True, {"2i": 36, "metatomic": 84}),
    (4, True, {"3i": 150, "lebedev:4i": 140}), (5, True, {"3i": 150, "lebedev:4i": 140}),
])
def test_cheapest_grid_costs_no_more_than_the_anchors(l, inversion, anchors):
    for spec, size in anchors.items():
        if spec != "metatomic":
            assert parse_grid(spec).size == size and parse_grid(spec).l_exact >= l
    assert cheapest_grid(l, inversion).size <= min(anchors.values())


def test_catalogue_is_sorted_by_cost_and_lists_every_form():
    catalogue = grid_catalogue()
    sizes = [grid.size for grid in catalogue]
    assert sizes == sorted(sizes) and max(sizes) <= 200
    specs = {grid.spec for grid in catalogue}
    assert {"none", "1i", "T", "Ti", "O", "Oi", "I", "Ii", "2", "2i", "3", "3i", "4",
            "lebedev:5", "lebedev:5i"} <= specs
    assert "1" not in specs  # one rotation: the raw model in another frame, as none costs


@pytest.mark.parametrize("spec", ["random", "Random ", "none+random"])
def test_random_is_a_strategy_not_a_grid(spec):
    with pytest.raises(ValueError, match="strategy random"):
        parse_grid(spec)


def test_none_is_identity():
    grid = parse_grid("none")
    np.testing.assert_array_equal(grid.rotations, np.eye(3)[None])
    assert grid.weights.tolist() == [1.0] and not grid.inversion


@pytest.mark.parametrize("spec, canonical", [
    ("none", "none"), (" NONE ", "none"), ("1", "1"), ("2", "2"), (" 3 ", "3"), ("02", "2"),
    ("2i", "2i"), ("2I", "2i"), (" 2 i", "2i"), ("lebedev:5", "lebedev:5"),
    ("Lebedev:5i", "lebedev:5i"), ("LEBEDEV : 7 I", "lebedev:7i"), ("t", "T"), ("TI", "Ti"),
    ("o", "O"), ("Oi", "Oi"), ("I", "I"), ("ii", "Ii"), ("exact:3i", "Ti"), ("exact:2", "T"),
    ("Ti+random", "Ti+random"), (" t + RANDOM", "T+random"), ("exact:5+random", "I+random"),
])
def test_parse_valid(spec, canonical):
    grid = parse_grid(spec)
    assert grid.spec == canonical
    assert parse_grid(grid.spec).spec == canonical


@pytest.mark.parametrize("spec", [
    "0", "-1", "2j", "lebedev:", "lebedev:0", "lebedev:-3", "lebedev:100000", "", "2.5",
    "legendre:2", "randomi", "nonei", "1e3", "lebedev:5j", "D", "Tii", "iii", "exact:",
    "exact:-1", "exact:1000", "Ti+random+random", "+random", "Ti+rand", "Ti random",
])
def test_parse_invalid(spec):
    with pytest.raises(ValueError, match="valid forms") as info:
        parse_grid(spec)
    assert repr(spec) in str(info.value)
    assert GRID_FORMS in str(info.value)


def test_grids_command_lists_by_cost_and_answers_exactness(capsys):
    from omm_symbreak.cli import main

    assert main(["grids"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [row[0] for row in rows] == [grid.spec for grid in grid_catalogue()]
    assert all(int(row[1]) == parse_grid(row[0]).size and int(row[2]) == parse_grid(row[0]).l_exact
               for row in rows)
    assert main(["grids", "--exact-to", "3", "--inversion"]) == 0
    assert capsys.readouterr().out.startswith("Ti: 24 rotations, exact to l = 3")
    assert main(["grids", "--exact-to", "-1"]) == 2
    assert "exactness degree" in capsys.readouterr().err
