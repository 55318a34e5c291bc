"""Electrostatic energy of point charges, in plain torch (TorchScript- and freeze-safe).

``coulomb_energy(charges, positions, cell, ...)``: charges [N] (e), positions [N, 3] and cell
[3, 3] (rows: box vectors) in Angstrom, energy in eV (``units.COULOMB_EV_ANGSTROM``). Without a
cell, the direct sum over pairs; with one, the Ewald sum for any (also rotated, not reduced)
triclinic cell:

    E = E_real + E_reciprocal + E_self
    E_real  = k/2 sum_{i, j, n}' q_i q_j erfc(alpha |r_ij + n|) / |r_ij + n|   (|r_ij + n| < r_c)
    E_recip = (2 pi k / V) sum_{m != 0} exp(-|m|^2 / (4 alpha^2)) / |m|^2 |sum_j q_j exp(i m r_j)|^2
    E_self  = -k alpha / sqrt(pi) sum_i q_i^2

(the prime drops i = j at n = 0; m runs over the reciprocal lattice 2 pi (h b1* + k b2* + l b3*)
with |m| below the cutoff where exp(-|m|^2 / (4 alpha^2)) falls below ``tolerance``). The
splitting alpha = sqrt(-ln(2 tolerance)) / r_c is OpenMM's. The charges must sum to zero with a
cell (no neutralising background term). Forces by autograd.
"""

import math
from typing import Optional

import torch
from torch import Tensor

from ..units import COULOMB_EV_ANGSTROM


def _shifts(cell: Tensor, reach: float) -> Tensor:
    """Integer triples [S, 3] of every lattice translation n = (a, b, c) . cell whose planes are
    within ``reach`` (Angstrom) of the origin cell."""
    volume = torch.abs(torch.linalg.det(cell))
    crosses = torch.stack([torch.linalg.cross(cell[1], cell[2]),
                           torch.linalg.cross(cell[2], cell[0]),
                           torch.linalg.cross(cell[0], cell[1])])
    spacing = volume / torch.linalg.vector_norm(crosses, dim=1)  # between lattice planes
    counts = torch.ceil(reach / spacing).to(torch.long)
    axes = [torch.arange(-int(count), int(count) + 1, device=cell.device) for count in counts]
    grid = torch.meshgrid(axes[0], axes[1], axes[2], indexing="ij")
    return torch.stack([axis.reshape(-1) for axis in grid], dim=1)


def coulomb_energy(charges: Tensor, positions: Tensor, cell: Optional[Tensor],
                   cutoff: float = 8.0, tolerance: float = 1e-6,
                   coulomb_ev_angstrom: float = COULOMB_EV_ANGSTROM) -> Tensor:
    """The electrostatic energy (eV) of ``charges`` [N] (e) at ``positions`` [N, 3] (Angstrom),
    periodic in ``cell`` [3, 3] (Angstrom, rows) by the Ewald sum with real-space ``cutoff``
    (Angstrom) and relative ``tolerance``, or the direct pair sum when ``cell`` is None
    (``coulomb_ev_angstrom``: e^2 / 4 pi eps0, a parameter so that TorchScript sees it)."""
    if cell is None:
        vectors = positions[None, :, :] - positions[:, None, :]
        n_atoms = positions.shape[0]
        upper = torch.triu(torch.ones(n_atoms, n_atoms, dtype=torch.bool,
                                      device=positions.device), diagonal=1)
        distances = torch.linalg.vector_norm(vectors[upper], dim=-1)
        products = (charges[:, None] * charges[None, :])[upper]
        return coulomb_ev_angstrom * (products / distances).sum()
    total = float(charges.sum())
    if abs(total) > 1e-6 * max(float(charges.abs().sum()), 1.0):
        raise ValueError("the Ewald sum needs a neutral cell: the charges sum to "
                         + str(total) + " e")
    alpha = math.sqrt(-math.log(2.0 * tolerance)) / cutoff
    # real space: every pair and image within the cutoff
    translations = _shifts(cell, cutoff).to(positions.dtype) @ cell  # [S, 3]
    vectors = (positions[None, :, None, :] - positions[:, None, None, :]
               + translations[None, None, :, :])  # [N, N, S, 3]: r_j - r_i + n
    distances = torch.linalg.vector_norm(vectors, dim=-1)
    inside = (distances < cutoff) & (distances > 1e-8)
    safe = torch.where(inside, distances, torch.ones_like(distances))
    products = (charges[:, None] * charges[None, :])[:, :, None]
    real = 0.5 * torch.where(inside, products * torch.erfc(alpha * safe) / safe,
                             torch.zeros_like(safe)).sum()
    # reciprocal space
    reciprocal = 2 * math.pi * torch.linalg.inv(cell).T  # rows: b_i*, with a_i . b_j* = 2 pi d_ij
    m_cutoff = 2 * alpha * math.sqrt(-math.log(tolerance))
    lengths = torch.linalg.vector_norm(cell, dim=1)
    counts = torch.ceil(m_cutoff * lengths / (2 * math.pi)).to(torch.long)
    axes = [torch.arange(-int(count), int(count) + 1, device=cell.device) for count in counts]
    grid = torch.meshgrid(axes[0], axes[1], axes[2], indexing="ij")
    integers = torch.stack([axis.reshape(-1) for axis in grid], dim=1).to(positions.dtype)
    m = integers @ reciprocal  # [K, 3]
    m2 = (m * m).sum(dim=1)
    keep = (m2 > 0) & (m2 < m_cutoff * m_cutoff)
    m, m2 = m[keep], m2[keep]
    phases = positions @ m.T  # [N, K]
    structure = ((charges[:, None] * torch.cos(phases)).sum(0) ** 2
                 + (charges[:, None] * torch.sin(phases)).sum(0) ** 2)
    volume = torch.abs(torch.linalg.det(cell))
    recip = 2 * math.pi / volume * (torch.exp(-m2 / (4 * alpha * alpha)) / m2 * structure).sum()
    self_energy = -alpha / math.sqrt(math.pi) * (charges * charges).sum()
    return coulomb_ev_angstrom * (real + recip + self_energy)
