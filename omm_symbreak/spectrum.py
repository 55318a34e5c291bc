"""The rotational power spectrum of a function on O(3), and what a rotation grid leaves of it.

For a structure x and a model E, f(S) = E(S x) for S in O(3). Every S is s R with s = det S and
R proper, so f splits into the part even under inversion, f+(R) = (f(R) + f(-R)) / 2, and the
odd part, f-(R) = (f(R) - f(-R)) / 2, both functions on SO(3). Each expands in the matrix
elements of the degree-l representations D^l (2l+1 x 2l+1, unitary; normalised Haar measure dR):

    f+-(R) = sum_l (2l+1) sum_{mn} c+-^l_{mn} D^l_{mn}(R),   c^l_{mn} = int f(R) D^l_{mn}(R)* dR,

and the power of degree l, (2l+1) sum_{mn} |c^l_{mn}|^2, does not depend on the basis of D^l.
The variance of f over O(3) (uniform, improper with probability 1/2) is the sum of the powers of
f+ for l >= 1 and of f- for l >= 0 (the degree-0 part of f- is chiral: E(-x) != E(x)).

``wigner_d`` builds D^l(R) from complex spherical harmonics, Y_l(R v) = D^l(R) Y_l(v), a
representation: D^l(R1 R2) = D^l(R1) D^l(R2). ``spectrum`` computes the coefficients on the
improper Legendre-Euler grid of order N (``grids.legendre_euler_grid``; its proper half is a
quadrature exact for every D-component of degree <= 2N-2): the degree-l coefficients are exact
when f has no component above degree 2N-2-l, the total variance when none above N-1.

A grid {S_g = s_g R_g, w_g} averages f into f_G(S) = sum_g w_g f(S_g S), whose coefficients are
(P+^l)^T c+^l and (P-^l)^T c-^l with P+^l = sum_g w_g D^l(R_g), P-^l = sum_g w_g s_g D^l(R_g)
(``residual_variance``).
"""

from dataclasses import dataclass
from typing import Dict

import numpy as np
import scipy.special

from .grids import RotationGrid, legendre_euler_grid


def _probes(l: int) -> np.ndarray:
    """4 (2l+1) fixed random unit vectors [K, 3], at which the harmonics fix D^l(R) by least
    squares (a well-conditioned fit of its 2l+1 rows)."""
    points = np.random.default_rng(l).standard_normal((4 * (2 * l + 1), 3))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def _harmonics(l: int, points: np.ndarray) -> np.ndarray:
    """Complex Y_lm, m = -l..l, at unit vectors [..., 3] -> [..., 2l+1]."""
    theta = np.arccos(np.clip(points[..., 2], -1.0, 1.0))
    phi = np.arctan2(points[..., 1], points[..., 0])
    m = np.arange(-l, l + 1)
    return scipy.special.sph_harm_y(l, m, theta[..., None], phi[..., None])


def wigner_d(l: int, rotations: np.ndarray) -> np.ndarray:
    """D^l(R) [M, 2l+1, 2l+1] (complex, unitary) of proper rotations [M, 3, 3], defined by
    Y_l(R v) = D^l(R) Y_l(v) for the vector Y_l = (Y_l,-l, ..., Y_l,l)."""
    probes = _probes(l)
    inverse = np.linalg.pinv(_harmonics(l, probes).T)  # [K, 2l+1]
    rotated = _harmonics(l, np.einsum("mij,kj->mki", rotations, probes))  # [M, K, 2l+1]
    return np.einsum("mpk,kq->mpq", rotated.transpose(0, 2, 1), inverse)


@dataclass(frozen=True)
class Spectrum:
    """The expansion of f(S) = E(S x) on O(3) up to degree ``max_degree`` (module docstring).

    even, odd: {l: c^l [2l+1, 2l+1] complex} of f+ and f- (the unit of f), l = 0..max_degree.
    mean: the O(3) mean of f (c+^0). variance: its O(3) variance from the quadrature (f's unit
    squared). order: the Legendre-Euler order N of the quadrature.
    """

    even: Dict[int, np.ndarray]
    odd: Dict[int, np.ndarray]
    mean: float
    variance: float
    order: int

    @property
    def max_degree(self) -> int:
        """The highest degree of the expansion."""
        return max(self.even)

    def power(self, l: int) -> tuple[float, float]:
        """(power of f+, power of f-) in degree l (f's unit squared); f+ has none in degree 0
        once its mean is taken out."""
        even = 0.0 if l == 0 else _power(l, self.even[l])
        return even, _power(l, self.odd[l])

    def variance_above(self) -> float:
        """The variance above ``max_degree``: the total minus every degree's power (>= 0)."""
        return max(self.variance - sum(sum(self.power(l)) for l in self.even), 0.0)


def _power(l: int, coefficients: np.ndarray) -> float:
    """(2l+1) sum_{mn} |c_mn|^2."""
    return float((2 * l + 1) * np.sum(np.abs(coefficients) ** 2))


def quadrature(max_degree: int) -> RotationGrid:
    """The improper Legendre-Euler grid of order N = max_degree + 2 (proper rotations R_q, then
    -R_q, weights summing to 1): degree-l coefficients exact for f without components above
    degree 2 max_degree + 2 - l, the variance for f without components above max_degree + 1."""
    if max_degree < 1:
        raise ValueError(f"the highest degree reported must be >= 1, got {max_degree}")
    return legendre_euler_grid(max_degree + 2, inversion=True)


def spectrum(values: np.ndarray, max_degree: int) -> Spectrum:
    """The ``Spectrum`` of f up to degree ``max_degree`` from its values [2Q] at the rotations
    of ``quadrature(max_degree)`` (the Q proper ones, then their improper copies)."""
    grid = quadrature(max_degree)
    half = grid.size // 2
    proper, weights = grid.rotations[:half], 2 * grid.weights[:half]
    even, odd = (values[:half] + values[half:]) / 2, (values[:half] - values[half:]) / 2
    mean = float(weights @ even)
    variance = float(weights @ ((even - mean) ** 2 + odd ** 2))
    even_c, odd_c = {}, {}
    for l in range(max_degree + 1):
        conjugate = wigner_d(l, proper).conj() * weights[:, None, None]  # [Q, 2l+1, 2l+1]
        even_c[l] = np.einsum("q,qmn->mn", even, conjugate)
        odd_c[l] = np.einsum("q,qmn->mn", odd, conjugate)
    return Spectrum(even_c, odd_c, mean, variance, max_degree + 2)


def averaging_matrices(l: int, grid: RotationGrid) -> tuple[np.ndarray, np.ndarray]:
    """(P+^l, P-^l) [2l+1, 2l+1] of ``grid``: sum_g w_g D^l(R_g) and sum_g w_g s_g D^l(R_g),
    R_g = s_g S_g the proper part of each rotation S_g, s_g = det S_g."""
    signs = np.sign(np.linalg.det(grid.rotations))
    d = wigner_d(l, grid.rotations * signs[:, None, None])
    return (np.einsum("g,gmn->mn", grid.weights, d),
            np.einsum("g,gmn->mn", grid.weights * signs, d))


def residual_variance(spectrum: Spectrum, grid: RotationGrid) -> float:
    """The O(3) variance of f averaged over ``grid`` in degrees 0..max_degree (f's unit
    squared): sum_l (2l+1) (|(P+^l)^T c+^l|^2 + |(P-^l)^T c-^l|^2), the mean (l = 0 of f+)
    left out. The variance above max_degree is not included."""
    total = 0.0
    for l in spectrum.even:
        even, odd = averaging_matrices(l, grid)
        if l > 0:
            total += _power(l, even.T @ spectrum.even[l])
        total += _power(l, odd.T @ spectrum.odd[l])
    return total
