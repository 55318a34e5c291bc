"""A hand-written, deliberately non-invariant TorchForce module and its analytic rotational
average, for the tests of symmetrizing a user's module.

The energy (kJ/mol, positions nm) is a sum over pairs i < j within ``CUTOFF_NM`` (minimum image
through fractional coordinates, exact for any rotated copy of a rectangular box) of a Morse term
times an anisotropic factor of the pair direction u = (x_j - x_i) / r:

    E = sum_{i<j} morse_ij(r) * (1 + A u_z^2 + B u_x u_y u_z)

u_z^2 = 1/3 + (a degree-2 harmonic) and u_x u_y u_z is a degree-3 harmonic, odd under inversion.
A grid exact to degree 3 (``Ti``) therefore averages the factor to exactly 1 + A / 3: the
average is the isotropic ``isotropic_energy`` below, computed here without the module.
"""

from typing import Optional

import numpy as np
import torch
from torch import Tensor, nn

CUTOFF_NM = 0.5
A, B = 0.3, 0.5
# Morse parameters by pair of elements (H-H, H-O, O-O): depth kJ/mol, width 1/nm, minimum nm
MORSE = {(1, 1): (80.0, 20.0, 0.1514), (1, 8): (450.0, 22.0, 0.0957), (8, 8): (2.0, 15.0, 0.30)}


def _pair_parameters(atomic_numbers):
    """[N, N] depth, width and minimum of every pair."""
    numbers = np.asarray(atomic_numbers)
    tables = np.zeros((3, len(numbers), len(numbers)))
    for (first, second), values in MORSE.items():
        mask = ((numbers[:, None] == first) & (numbers[None, :] == second)) | (
            (numbers[:, None] == second) & (numbers[None, :] == first))
        for table, value in zip(tables, values):
            table[mask] = value
    return tables


class AnisotropicMorse(nn.Module):
    """The module of the module docstring for the atoms ``atomic_numbers``; its forward takes
    optional box vectors (rows, nm), as ``TorchForce`` passes them to a periodic force."""

    def __init__(self, atomic_numbers, anisotropy: float = 1.0):
        super().__init__()
        depth, width, minimum = _pair_parameters(atomic_numbers)
        self.register_buffer("depth", torch.tensor(depth))
        self.register_buffer("width", torch.tensor(width))
        self.register_buffer("minimum", torch.tensor(minimum))
        self.a = A * anisotropy
        self.b = B * anisotropy
        self.cutoff_nm = CUTOFF_NM

    def forward(self, positions: Tensor, boxvectors: Optional[Tensor] = None) -> Tensor:
        positions = positions.to(torch.float64)
        vectors = positions[None, :, :] - positions[:, None, :]  # [N, N, 3], x_j - x_i
        if boxvectors is not None:
            box = boxvectors.to(torch.float64)
            fractional = vectors @ torch.linalg.inv(box)
            vectors = (fractional - torch.round(fractional)) @ box
        n_atoms = positions.shape[0]
        upper = torch.triu(torch.ones(n_atoms, n_atoms, dtype=torch.bool,
                                      device=positions.device), diagonal=1)
        pairs = vectors[upper]
        distance = torch.linalg.vector_norm(pairs, dim=-1)
        inside = distance < self.cutoff_nm
        pairs, distance = pairs[inside], distance[inside]
        depth, width = self.depth[upper][inside], self.width[upper][inside]
        morse = depth * ((1 - torch.exp(-width * (distance - self.minimum[upper][inside]))) ** 2
                         - 1)
        u = pairs / distance[:, None]
        factor = 1 + self.a * u[:, 2] ** 2 + self.b * u[:, 0] * u[:, 1] * u[:, 2]
        return (morse * factor).sum()


def isotropic_energy(positions_nm: np.ndarray, box_nm: Optional[np.ndarray], atomic_numbers,
                     anisotropy: float = 1.0) -> float:
    """The rotational average of ``AnisotropicMorse`` over O(3) (kJ/mol), in numpy: the Morse
    sum times 1 + A / 3."""
    depth, width, minimum = _pair_parameters(atomic_numbers)
    total = 0.0
    for i in range(len(positions_nm)):
        for j in range(i + 1, len(positions_nm)):
            vector = positions_nm[j] - positions_nm[i]
            if box_nm is not None:
                fractional = vector @ np.linalg.inv(box_nm)
                vector = (fractional - np.round(fractional)) @ box_nm
            r = np.linalg.norm(vector)
            if r < CUTOFF_NM:
                total += depth[i, j] * ((1 - np.exp(-width[i, j] * (r - minimum[i, j]))) ** 2 - 1)
    return total * (1 + A * anisotropy / 3)


def write_module(path, atomic_numbers, anisotropy: float = 1.0):
    """Script ``AnisotropicMorse`` and save it to ``path`` (a TorchForce file); the path."""
    torch.jit.script(AnisotropicMorse(atomic_numbers, anisotropy)).save(str(path))
    return path
