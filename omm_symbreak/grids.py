"""Rotation grids for symmetrizing a model, and the grid notation parser.

A grid is a set of G rotations R_g (3x3, proper, or improper copies -R_g) with weights w_g
summing to 1; the averaged model is E_avg(x) = sum_g w_g E(R_g x).

Notation (``GRID_FORMS``): ``none``, ``N`` (Legendre-Euler product grid of order N), ``Ni``,
``lebedev:L``, ``lebedev:Li``, the finite rotation groups ``T``, ``O``, ``I`` and ``Ti``,
``Oi``, ``Ii`` (suffix ``i``: with the improper copy -R of every rotation), ``exact:L`` /
``exact:Li`` (the cheapest grid exact to degree L, with inversion: ``cheapest_grid``), and any of
them followed by ``+random`` (the whole grid turned by a fresh random rotation at every
evaluation: ``RotationGrid.randomized``).

Exactness, ``l_exact``: the highest degree l such that, for every 1 <= l' <= l, the grid mean of
every Wigner-D component D^l'_{mm'}(R_g) is zero, as is the Haar mean. Then a function of the
orientation whose expansion stops at degree l is averaged exactly. ``N``: 2N-2; ``Ni``: 2N-1;
``lebedev:L``: L; ``lebedev:Li``: L+1 for even L, L for odd L; ``T`` 2, ``Ti`` 3, ``O`` and
``Oi`` 3, ``I`` and ``Ii`` 5; with inversion every odd-l component averages to zero as well. The
derivations are in docs/design.md ("Rotation grids").
"""
import re
from dataclasses import dataclass, replace

import numpy as np
import scipy.integrate
import torch
from scipy.spatial.transform import Rotation

GRID_FORMS = (
    "'none' (identity only), "
    "'N' (Legendre-Euler grid of order N >= 1, (2N-1)^2 N rotations), "
    "'Ni' (the same plus the improper copy -R of each rotation), "
    "'lebedev:L' / 'lebedev:Li' (Lebedev rule of degree >= L for the axis times L+1 in-plane "
    "rotations, L >= 1, optionally with improper copies), "
    "'T', 'O', 'I' / 'Ti', 'Oi', 'Ii' (the tetrahedral, octahedral and icosahedral rotation "
    "groups, 12, 24 and 60 rotations, optionally with improper copies), "
    "'exact:L' / 'exact:Li' (the cheapest of these grids exact to degree L, with inversion), "
    "and any grid followed by '+random' (turned as a whole by a fresh random rotation at every "
    "evaluation: NVT only)"
)


@dataclass(frozen=True)
class RotationGrid:
    """A weighted set of rotations.

    spec: canonical notation ("none", "2", "2i", "lebedev:5i").
    rotations: [G, 3, 3] float64 orthogonal matrices (det +1; det -1 for improper copies).
    weights: [G] float64 summing to 1.
    l_exact: highest degree l such that every component of degree 1..l averages to zero
        (see the module docstring).
    inversion: improper copies included (every odd-parity component averages to zero).
    randomized: the grid is turned as a whole by a fresh uniformly random rotation Q of O(3) at
        every evaluation, E = sum_g w_g E(R_g Q x) (spec suffix "+random"): exact to l_exact
        at every evaluation, and its mean over Q is the exact O(3) average; the forces are
        not conservative (NVT only). ``rotations`` holds the unturned grid.
    """

    spec: str
    rotations: np.ndarray
    weights: np.ndarray
    l_exact: int
    inversion: bool
    randomized: bool = False

    @property
    def size(self) -> int:
        """Number of model evaluations per averaged evaluation."""
        return len(self.weights)


def _rot_z(angle: np.ndarray) -> np.ndarray:
    """[...] angles -> [..., 3, 3] rotations about e_z."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack([c, -s, zero, s, c, zero, zero, zero, one], axis=-1).reshape(c.shape + (3, 3))


def _rot_x(angle: np.ndarray) -> np.ndarray:
    """[...] angles -> [..., 3, 3] rotations about e_x."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack([one, zero, zero, zero, c, -s, zero, s, c], axis=-1).reshape(c.shape + (3, 3))


def _rot_y(angle: np.ndarray) -> np.ndarray:
    """[...] angles -> [..., 3, 3] rotations about e_y."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack([c, zero, s, zero, one, zero, -s, zero, c], axis=-1).reshape(c.shape + (3, 3))


def _with_inversion(rotations: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[G,3,3], [G] -> [2G,3,3] (R then -R), [2G] (halved weights)."""
    return np.concatenate([rotations, -rotations]), np.concatenate([weights, weights]) / 2


def legendre_euler_grid(order: int, inversion: bool = False) -> RotationGrid:
    """Legendre-Euler product grid of the given order N >= 1 (spec "N" or "Ni").

    R = Rz(alpha) Rx(beta) Rz(gamma); alpha, gamma in {2 pi k / (2N-1)}, cos(beta) at the N
    Gauss-Legendre nodes; weight = GL weight / 2 / (2N-1)^2. G = (2N-1)^2 N (doubled with
    inversion). l_exact = 2N-2, or 2N-1 with inversion.
    """
    if order < 1:
        raise ValueError(f"Legendre-Euler grid order must be >= 1, got {order}")
    n_azimuth = 2 * order - 1
    azimuths = 2 * np.pi * np.arange(n_azimuth) / n_azimuth
    nodes, gl_weights = np.polynomial.legendre.leggauss(order)
    alpha, beta, gamma = np.meshgrid(azimuths, np.arccos(nodes), azimuths, indexing="ij")
    rotations = (_rot_z(alpha) @ _rot_x(beta) @ _rot_z(gamma)).reshape(-1, 3, 3)
    weights = np.broadcast_to((gl_weights / gl_weights.sum())[None, :, None], alpha.shape)
    weights = weights.reshape(-1) / n_azimuth**2
    l_exact = 2 * order - 2
    spec = str(order)
    if inversion:
        rotations, weights = _with_inversion(rotations, weights)
        l_exact += 1
        spec += "i"
    return RotationGrid(spec, rotations, weights, l_exact, inversion)


# Polynomial degrees of exactness that scipy.integrate.lebedev_rule offers (scipy's docs call
# them "orders" and call the point counts 6, 14, 26, ... "degrees"); scipy has no public list.
_LEBEDEV_DEGREES = (3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 35, 41, 47, 53, 59,
                    65, 71, 77, 83, 89, 95, 101, 107, 113, 119, 125, 131)


def lebedev_grid(degree: int, inversion: bool = False) -> RotationGrid:
    """Lebedev axis rule times in-plane rotations (spec "lebedev:L" or "lebedev:Li"), L >= 1.

    The axis n = R e_z runs over the scipy Lebedev rule of the smallest degree >= L; about each,
    L+1 equispaced in-plane angles gamma_k: R = Rz(phi) Ry(theta) Rz(gamma_k), (theta, phi) the
    spherical angles of n. Weight = Lebedev weight (normalised to sum 1) / (L+1).
    G = n_points (L+1) (doubled with inversion). l_exact = L; with inversion L+1 for even L.
    """
    if not 1 <= degree <= _LEBEDEV_DEGREES[-1]:
        raise ValueError(f"Lebedev grid degree must be in 1..{_LEBEDEV_DEGREES[-1]}, got {degree}")
    rule_degree = min(d for d in _LEBEDEV_DEGREES if d >= degree)
    points, lebedev_weights = scipy.integrate.lebedev_rule(rule_degree)  # [3, P], [P]
    theta = np.arccos(np.clip(points[2], -1.0, 1.0))
    phi = np.arctan2(points[1], points[0])
    axis_rotations = _rot_z(phi) @ _rot_y(theta)  # [P, 3, 3], e_z -> n
    n_inplane = degree + 1
    inplane = _rot_z(2 * np.pi * np.arange(n_inplane) / n_inplane)  # [L+1, 3, 3]
    rotations = (axis_rotations[:, None] @ inplane[None, :]).reshape(-1, 3, 3)
    weights = np.repeat(lebedev_weights / lebedev_weights.sum(), n_inplane) / n_inplane
    l_exact = degree
    spec = f"lebedev:{degree}"
    if inversion:
        rotations, weights = _with_inversion(rotations, weights)
        l_exact += 1 - degree % 2
        spec += "i"
    return RotationGrid(spec, rotations, weights, l_exact, inversion)


# The lowest degree l >= 1 of a harmonic invariant under the group, and the lowest even one
# (Molien series of the group on spherical harmonics: T has xyz at l = 3 and
# x^4 + y^4 + z^4 - 3/5 r^4 at l = 4, O the latter at l = 4, I its first invariant at l = 6).
# The group average kills every degree below; with the improper copies, every odd degree too.
_GROUP_FIRST_INVARIANT = {"T": (3, 4), "O": (4, 4), "I": (6, 6)}
GROUPS = tuple(_GROUP_FIRST_INVARIANT)


def group_grid(name: str, inversion: bool = False) -> RotationGrid:
    """The proper rotations of the tetrahedral ("T", 12), octahedral ("O", 24) or icosahedral
    ("I", 60) group (scipy's orientation: the coordinate axes are 2-fold axes of all three, and
    4-fold ones of O) with equal weights; spec "T", "Ti", ... l_exact: T 2, Ti 3, O and Oi 3,
    I and Ii 5 (``_GROUP_FIRST_INVARIANT``)."""
    if name not in _GROUP_FIRST_INVARIANT:
        raise ValueError(f"unknown rotation group {name!r}: choose one of {', '.join(GROUPS)}")
    rotations = Rotation.create_group(name).as_matrix()
    weights = np.full(len(rotations), 1.0 / len(rotations))
    first_invariant, first_even_invariant = _GROUP_FIRST_INVARIANT[name]
    l_exact = first_invariant - 1
    spec = name
    if inversion:
        rotations, weights = _with_inversion(rotations, weights)
        l_exact = first_even_invariant - 1
        spec += "i"
    return RotationGrid(spec, rotations, weights, l_exact, inversion)


def _candidates(l: int):
    """The smallest grid of every family exact to degree ``l`` (or close to it: filtered by
    ``cheapest_grid``)."""
    yield NO_ROTATION
    for name in GROUPS:
        yield group_grid(name)
        yield group_grid(name, inversion=True)
    yield legendre_euler_grid((l + 3) // 2)  # 2N - 2 >= l
    yield legendre_euler_grid(max(1, (l + 2) // 2), inversion=True)  # 2N - 1 >= l
    for degree in {max(1, l - 1), max(1, l)}:
        yield lebedev_grid(degree)
        yield lebedev_grid(degree, inversion=True)


MAX_EXACTNESS_DEGREE = 20  # the cheapest grid exact to 20 has 3570 rotations


def cheapest_grid(l: int, inversion: bool = False) -> RotationGrid:
    """The grid of the fewest rotations exact to degree ``l`` (``l_exact >= l``) among every
    form of ``GRID_FORMS``; with ``inversion``, among those with improper copies (which average
    every odd degree to zero too). Ties go to improper copies, then to the higher l_exact, then
    to the finite groups."""
    if not 0 <= l <= MAX_EXACTNESS_DEGREE:
        raise ValueError(f"the exactness degree must be in 0..{MAX_EXACTNESS_DEGREE} (beyond, "
                         f"every grid has thousands of rotations), got {l}")
    exact = [grid for grid in _candidates(l)
             if grid.l_exact >= l and (grid.inversion or not inversion)]
    return min(exact, key=lambda grid: (grid.size, not grid.inversion, -grid.l_exact))


def grid_catalogue(max_size: int = 200) -> list:
    """Every grid of at most ``max_size`` rotations (Legendre-Euler and Lebedev orders, the
    groups, each with and without inversion; not ``1``, a single rotation by 90 degrees about
    x, which is the raw model in another frame), sorted by size then l_exact: the README's
    table."""
    grids = [NO_ROTATION] + [group_grid(name, inversion) for name in GROUPS
                             for inversion in (False, True)]
    for inversion in (False, True):
        for build, order in ((legendre_euler_grid, 1 if inversion else 2), (lebedev_grid, 1)):
            while (grid := build(order, inversion)).size <= max_size:
                grids.append(grid)
                order += 1
    grids = [grid for grid in grids if grid.size <= max_size]
    return sorted(grids, key=lambda grid: (grid.size, grid.l_exact, grid.spec))


def quaternion_to_matrix(quaternions: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (w, x, y, z) [..., 4] -> proper rotation matrices [..., 3, 3]
    (TorchScript-compatible; dtype and device of the input)."""
    w, x, y, z = quaternions.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(quaternions.shape[:-1] + (3, 3))


def random_rotations(n: int, rng: np.random.Generator, inversion: bool = True) -> np.ndarray:
    """[n, 3, 3] uniformly (Haar) distributed rotations from normalised Gaussian quaternions.

    With inversion, each is negated (made improper) with probability 1/2.
    """
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rotations = quaternion_to_matrix(torch.from_numpy(q)).numpy()
    if inversion:
        rotations *= rng.choice([-1.0, 1.0], size=n)[:, None, None]
    return rotations


NO_ROTATION = RotationGrid("none", np.eye(3)[None], np.ones(1), 0, False)
# Above this many rotations a grid costs more than a thousand raw evaluations per step: refused
# unless asked for explicitly (``check_grid_size``). The largest grids in use have 150 (3i).
MAX_GRID_EVALUATIONS = 1000
_RANDOM_SUFFIX = "+random"
_FORMS = (
    (re.compile(r"([0-9]+)(i?)"), lambda match: legendre_euler_grid(int(match[1]), bool(match[2]))),
    (re.compile(r"lebedev:([0-9]+)(i?)"), lambda match: lebedev_grid(int(match[1]), bool(match[2]))),
    (re.compile(r"([toi])(i?)"), lambda match: group_grid(match[1].upper(), bool(match[2]))),
    (re.compile(r"exact:([0-9]+)(i?)"), lambda match: cheapest_grid(int(match[1]), bool(match[2]))),
)


def parse_grid(spec: str) -> RotationGrid:
    """Grid from its notation (case-insensitive, whitespace ignored); ValueError otherwise.
    ``exact:L[i]`` resolves to the spec of the grid it chooses (``cheapest_grid``)."""
    text = re.sub(r"\s+", "", str(spec)).lower()
    randomized = text.endswith(_RANDOM_SUFFIX)
    if randomized:
        text = text[:-len(_RANDOM_SUFFIX)]
    if text == "none":
        if randomized:
            raise ValueError("'none+random' is the strategy random: use --strategy random")
        return NO_ROTATION
    if text == "random":
        raise ValueError("'random' is a strategy, not a rotation grid: use --strategy random, "
                         f"or a grid followed by '+random' (valid grids: {GRID_FORMS})")
    for form, build in _FORMS:
        match = form.fullmatch(text)
        if match:
            try:
                grid = build(match)
            except ValueError as error:
                raise ValueError(f"invalid rotation grid {spec!r} ({error}); valid forms: "
                                 f"{GRID_FORMS}") from None
            if randomized:
                grid = replace(grid, spec=grid.spec + _RANDOM_SUFFIX, randomized=True)
            return grid
    raise ValueError(f"invalid rotation grid {spec!r}; valid forms: {GRID_FORMS}")


def check_grid_size(grid: RotationGrid, allow_large: bool = False) -> None:
    """ValueError for a grid of more than ``MAX_GRID_EVALUATIONS`` rotations, unless
    ``allow_large`` (the command line's --allow-large-grid)."""
    if grid.size > MAX_GRID_EVALUATIONS and not allow_large:
        raise ValueError(f"grid {grid.spec} has {grid.size} rotations: every force evaluation "
                         f"would cost {grid.size} model evaluations (exact to l = {grid.l_exact}; "
                         f"3i costs 150 and is exact to l = 5). Choose a smaller grid, or pass "
                         "--allow-large-grid to run it anyway")
