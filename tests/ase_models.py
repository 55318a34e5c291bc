"""ASE calculators written for the tests, whose symmetry breaking is known analytically.

``PolynomialCalculator``: E(x) = k sum_i (a . r_i)^2 + c sum_i (b . r_i)^3 with r_i = x_i -
centroid (Angstrom, eV), forces its exact gradient. Its O(3) average (Haar measure with
inversion) is analytic: <(a . R r)^2> = |a|^2 |r|^2 / 3 and the cubic (odd) term averages to 0,
so E_avg = k |a|^2 / 3 sum_i |r_i|^2 and F_avg,i = -2 k |a|^2 / 3 r_i; a grid exact to l = 3
with inversion (``Ti``), or to l >= 3 without (``I``), gives it to float precision.

``DirectForceCalculator``: the same energy, forces F_i = M r_i (not a gradient); their average
over a grid exact to l = 2 is tr(M) / 3 r_i.

``AutogradCalculator``: the polynomial energy with its forces by torch autograd, as the
calculators of torch models take them (Orb-v3 conservative, metatomic-ase): it fails where
gradients are disabled.
"""

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

A = np.array([1.0, 0.2, -0.4])
B = np.array([0.3, -1.0, 0.5])
M = np.array([[0.2, 0.5, -0.1], [0.0, -0.3, 0.4], [0.7, 0.1, 0.6]])


class PolynomialCalculator(Calculator):
    """The module docstring's E(x) (eV) and exact forces (eV/Angstrom); ``seen`` records the
    (positions, cell, pbc) of every calculation."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, k: float = 0.01, c: float = 0.002, **kwargs):
        super().__init__(**kwargs)
        self.k, self.c = k, c
        self.seen = []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.seen.append((self.atoms.positions.copy(), self.atoms.cell.array.copy(),
                          self.atoms.pbc.copy()))
        r = self.atoms.positions - self.atoms.positions.mean(axis=0)
        self.results = {"energy": self.energy(r), "forces": self.forces(r)}

    def energy(self, r: np.ndarray) -> float:
        """E of centroid-relative positions r [N, 3] (eV)."""
        return float(self.k * np.sum((r @ A) ** 2) + self.c * np.sum((r @ B) ** 3))

    def forces(self, r: np.ndarray) -> np.ndarray:
        """-dE/dx [N, 3] (eV/Angstrom), the centroid's dependence on every atom included."""
        gradient = 2 * self.k * (r @ A)[:, None] * A + 3 * self.c * ((r @ B) ** 2)[:, None] * B
        return -(gradient - gradient.mean(axis=0))

    def isotropic(self, positions: np.ndarray):
        """The analytic O(3) average at ``positions`` [N, 3] (Angstrom): (eV, eV/Angstrom)."""
        r = positions - positions.mean(axis=0)
        scale = self.k * (A @ A) / 3
        return float(scale * np.sum(r * r)), -2 * scale * r


class DirectForceCalculator(PolynomialCalculator):
    """The polynomial energy with forces M r_i that are not its gradient."""

    def forces(self, r: np.ndarray) -> np.ndarray:
        return r @ M.T

    def averaged_forces(self, positions: np.ndarray) -> np.ndarray:
        """sum_g w_g R_g^T F(R_g x) over a grid exact to l = 2: tr(M) / 3 r_i (eV/Angstrom)."""
        return np.trace(M) / 3 * (positions - positions.mean(axis=0))


class AutogradCalculator(PolynomialCalculator):
    """The polynomial energy with forces -dE/dx by ``torch.autograd.grad``."""

    def forces(self, r: np.ndarray) -> np.ndarray:
        positions = torch.tensor(r, requires_grad=True)
        centred = positions - positions.mean(dim=0)
        energy = (self.k * ((centred @ torch.tensor(A)) ** 2).sum()
                  + self.c * ((centred @ torch.tensor(B)) ** 3).sum())
        (gradient,) = torch.autograd.grad(energy, positions)
        return -gradient.numpy()
