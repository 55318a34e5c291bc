"""Rotation grids for symmetrizing a model, and the grid notation parser.

A grid is a set of G rotations R_g (3x3, proper, or improper copies -R_g) with weights w_g
summing to 1; the averaged model is E_avg(x) = sum_g w_g E(R_g x).

Notation (shared DESIGN.md, section 3): ``none``, ``N``, ``Ni``, ``lebedev:L``,
``lebedev:Li``, ``random`` (see ``GRID_FORMS``).

Exactness, ``l_exact``: the highest degree l such that, for every 1 <= l' <= l, the grid mean of
every Wigner-D component D^l'_{mm'}(R_g) is zero, as is the Haar mean. Then a function of the
orientation whose expansion stops at degree l is averaged exactly.

Legendre-Euler grid of order N. Euler angles ZXZ, R = Rz(a) Rx(b) Rz(g); since
Rx(b) = Rz(-pi/2) Ry(b) Rz(pi/2), these are ZYZ angles shifted by constants, which only multiply
D-components by unit phases. D^l_{mm'}(a,b,g) = e^{-i m a} d^l_{mm'}(b) e^{-i m' g}. The 2N-1
equispaced values of a (and of g) sum e^{-i m a} to zero unless m is a multiple of 2N-1, so for
l <= 2N-2 only m = m' = 0 survives, and d^l_00(b) = P_l(cos b) is a polynomial of degree l in
cos b, which the N Gauss-Legendre nodes (exact to degree 2N-1) integrate exactly to zero.
Hence l_exact = 2N-2 (order 1: 0, order 2: 2, order 3: 4); at l = 2N-1 the m = m' = 2N-1
components survive.

Lebedev grid ``lebedev:L``: R = R_n Rz(g_k), n = R e_z from a Lebedev rule of degree >= L and
g_k = 2 pi k/(L+1), k = 0..L. D^l(R) = D^l(R_n) D^l(Rz(g)), and the L+1 in-plane angles kill
every column m' with 1 <= |m'| <= L; the m' = 0 column D^l_{m0}(R_n) is proportional to the
conjugate spherical harmonic Y_lm(n), which the Lebedev rule integrates exactly to zero for
1 <= l <= L. Hence l_exact = L (at l = L+1 the columns m' = +-(L+1) survive).

Inversion (suffix ``i``): the improper copy -R of every rotation, weights halved. A degree-l
harmonic obeys Y(-R v) = (-1)^l Y(R v), so every odd-l component (odd parity) averages to zero
whatever the proper grid. l_exact then grows by one when the proper grid's l_exact is even
(the next degree is odd): ``Ni`` has l_exact = 2N-1, ``lebedev:Li`` has L+1 for even L, L for odd.
"""
import re
from dataclasses import dataclass

import numpy as np
import scipy.integrate

GRID_FORMS = (
    "'none' (identity only), "
    "'N' (Legendre-Euler grid of order N >= 1, (2N-1)^2 N rotations), "
    "'Ni' (the same plus the improper copy -R of each rotation), "
    "'lebedev:L' / 'lebedev:Li' (Lebedev rule of degree >= L for the axis times L+1 in-plane "
    "rotations, L >= 1, optionally with improper copies), "
    "'random' (one uniform rotation, proper or improper, per evaluation)"
)


@dataclass(frozen=True)
class RotationGrid:
    """A weighted set of rotations.

    spec: canonical notation ("none", "2", "2i", "lebedev:5i", "random").
    rotations: [G, 3, 3] float64 orthogonal matrices (det +1; det -1 for improper copies);
        [0, 3, 3] for random.
    weights: [G] float64 summing to 1; [0] for random.
    l_exact: highest degree l such that every component of degree 1..l averages to zero
        (see the module docstring); -1 for random.
    inversion: improper copies included (every odd-parity component averages to zero).
    is_random: one fresh uniform rotation per evaluation instead of a fixed grid.
    """

    spec: str
    rotations: np.ndarray
    weights: np.ndarray
    l_exact: int
    inversion: bool
    is_random: bool

    @property
    def size(self) -> int:
        """Number of model evaluations per averaged evaluation (1 for random)."""
        return 1 if self.is_random else len(self.weights)


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
    return RotationGrid(spec, rotations, weights, l_exact, inversion, False)


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
    return RotationGrid(spec, rotations, weights, l_exact, inversion, False)


def random_rotations(n: int, rng: np.random.Generator, inversion: bool = True) -> np.ndarray:
    """[n, 3, 3] uniformly (Haar) distributed rotations from normalised Gaussian quaternions.

    With inversion, each is negated (made improper) with probability 1/2.
    """
    q = rng.standard_normal((n, 4))
    w, x, y, z = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    rotations = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(n, 3, 3)
    if inversion:
        rotations *= rng.choice([-1.0, 1.0], size=n)[:, None, None]
    return rotations


_INTEGER_FORM = re.compile(r"([0-9]+)(i?)")
_LEBEDEV_FORM = re.compile(r"lebedev:([0-9]+)(i?)")


def parse_grid(spec: str) -> RotationGrid:
    """Grid from its notation (case-insensitive, whitespace ignored); ValueError otherwise."""
    text = re.sub(r"\s+", "", str(spec)).lower()
    if text == "none":
        return RotationGrid("none", np.eye(3)[None], np.ones(1), 0, False, False)
    if text == "random":
        return RotationGrid("random", np.zeros((0, 3, 3)), np.zeros(0), -1, True, True)
    for form, build in ((_INTEGER_FORM, legendre_euler_grid), (_LEBEDEV_FORM, lebedev_grid)):
        match = form.fullmatch(text)
        if match:
            try:
                return build(int(match[1]), inversion=bool(match[2]))
            except ValueError as error:
                raise ValueError(f"invalid rotation grid {spec!r} ({error}); valid forms: "
                                 f"{GRID_FORMS}") from None
    raise ValueError(f"invalid rotation grid {spec!r}; valid forms: {GRID_FORMS}")
