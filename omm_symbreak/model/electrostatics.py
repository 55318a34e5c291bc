"""Electrostatic energy of point charges, in plain torch (TorchScript- and freeze-safe).

Charges in e, lengths in Angstrom (positions [N, 3]; cell [3, 3], rows: box vectors), energies
in eV (``units.COULOMB_EV_ANGSTROM``). Without a cell, the direct sum over pairs; with one, the
Ewald sum for any (also rotated, not reduced) triclinic cell:

    E = E_real + E_reciprocal + E_self
    E_real  = k/2 sum_{i, j, n}' q_i q_j erfc(alpha |r_ij + n|) / |r_ij + n|   (|r_ij + n| < r_c)
    E_recip = (2 pi k / V) sum_{m != 0} exp(-|m|^2 / (4 alpha^2)) / |m|^2 |sum_j q_j exp(i m r_j)|^2
    E_self  = -k alpha / sqrt(pi) sum_i q_i^2

(the prime drops i = j at n = 0; m runs over the reciprocal lattice 2 pi (h b1* + k b2* + l b3*)
with |m| below the cutoff where exp(-|m|^2 / (4 alpha^2)) falls below ``tolerance``; the terms
of m and -m are equal, so half of them are computed, twice weighted). The
splitting alpha = sqrt(-ln(2 tolerance)) / r_c is OpenMM's. With a cell the charges must sum to
zero (no neutralising background term). Forces by autograd.

The sum is bilinear in the charges for fixed positions: ``coulomb_setup`` computes what depends
on the positions only (the pair kernel within the cutoff, the phases of the reciprocal vectors),
once per structure, and ``coulomb_energies`` the energies of a batch of charge sets [B, N] from
it, as the rotated copies of a structure need (each copy has its own charges, the positions are
shared: the Ewald sum is exactly invariant when positions and cell rotate together).
"""

import math
from typing import List, Optional

import torch
from torch import Tensor

from ..units import COULOMB_EV_ANGSTROM
from .neighbors import _cell_geometry, _shifts, _times_matrix


def _lattice_points(cell: Tensor, counts: Tensor) -> Tensor:
    """Integer triples [S, 3] (as ``cell``'s dtype) with |n_i| <= counts[i]."""
    axes = [torch.arange(-int(count), int(count) + 1, device=cell.device, dtype=cell.dtype)
            for count in counts]
    grid = torch.meshgrid(axes[0], axes[1], axes[2], indexing="ij")
    return torch.stack([axis.reshape(-1) for axis in grid], dim=1)


def coulomb_setup(positions: Tensor, cell: Optional[Tensor], cutoff: float = 8.0,
                  tolerance: float = 1e-6) -> List[Tensor]:
    """What the energy of any charges at ``positions`` [N, 3] needs (Angstrom; differentiable in
    the positions and cell): [first [P], second [P], kernel [P]] of the real-space or direct
    pairs, then with a cell [cos [N, K], sin [N, K], weights [K], self [1]] of the reciprocal
    sum (energies in units of k = e^2 / 4 pi eps0 per e^2)."""
    n_atoms = positions.shape[0]
    if cell is None:
        pairs = torch.triu_indices(n_atoms, n_atoms, 1, device=positions.device)
        first, second = pairs[0], pairs[1]
        distances = torch.linalg.vector_norm(positions[second] - positions[first], dim=-1)
        return [first, second, 1.0 / distances]
    alpha = math.sqrt(-math.log(2.0 * tolerance)) / cutoff
    determinant = torch.linalg.det(cell)
    volume = torch.abs(determinant)
    # the pairs within the cutoff, searched on detached tensors (no autograd: through the dense
    # [N, N, S] tensor the backward pass cost twice the rest of the sum) with the neighbour
    # search's shifts: pair displacements wrapped to fractional coordinates in [-0.5, 0.5], then
    # only the images that can reach the cutoff (S = 1 when the cell is wider than 2 cutoffs,
    # instead of 27 unwrapped); only the found pairs' vectors are then differentiated
    fixed, fixed_cell = positions.detach(), cell.detach()
    diff = fixed[None, :, :] - fixed[:, None, :]  # [N, N, 3], r_j - r_i
    # the image ranges of a cell and of its mirror image (an improperly rotated cell) agree
    handed = fixed_cell if float(determinant) > 0.0 else -fixed_cell
    wrap, images = _shifts(diff, fixed_cell, _cell_geometry(handed, cutoff))
    distances = torch.linalg.vector_norm(
        (diff + _times_matrix(wrap, fixed_cell))[:, :, None, :]
        + _times_matrix(images, fixed_cell)[None, None, :, :], dim=-1)  # [N, N, S]
    found = torch.nonzero((distances < cutoff) & (distances > 1e-8))
    first, second, image = found[:, 0], found[:, 1], found[:, 2]
    shifts = wrap[first, second] + images[image]  # [P, 3] integer multiples of the box vectors
    within = torch.linalg.vector_norm(positions[second] - positions[first]
                                      + _times_matrix(shifts, cell), dim=-1)
    kernel = 0.5 * torch.erfc(alpha * within) / within  # each pair appears as (i, j) and (j, i)
    reciprocal = 2 * math.pi * torch.linalg.inv(cell).T  # rows b_i*: a_i . b_j* = 2 pi d_ij
    m_cutoff = 2 * alpha * math.sqrt(-math.log(tolerance))
    counts = torch.ceil(m_cutoff * torch.linalg.vector_norm(cell, dim=1) / (2 * math.pi))
    # one of each pair m, -m (|S(m)|^2 = |S(-m)|^2 for real charges), counted twice
    hkl = _lattice_points(cell, counts)
    upper = (hkl[:, 0] > 0) | ((hkl[:, 0] == 0) & ((hkl[:, 1] > 0)
                                                    | ((hkl[:, 1] == 0) & (hkl[:, 2] > 0))))
    m = hkl[upper] @ reciprocal  # [K', 3]
    m2 = (m * m).sum(dim=1)
    keep = m2 < m_cutoff * m_cutoff
    m, m2 = m[keep], m2[keep]
    phases = positions @ m.T  # [N, K]
    weights = 4 * math.pi / volume * torch.exp(-m2 / (4 * alpha * alpha)) / m2
    self_term = torch.full((1,), -alpha / math.sqrt(math.pi), dtype=positions.dtype,
                           device=positions.device)
    return [first, second, kernel, torch.cos(phases), torch.sin(phases), weights, self_term]


def coulomb_energies(setup: List[Tensor], charges: Tensor,
                     coulomb_ev_angstrom: float = COULOMB_EV_ANGSTROM) -> Tensor:
    """Energies [B] (eV) of the charge sets ``charges`` [B, N] (e) at the positions of
    ``setup`` (``coulomb_setup``); ValueError for a charged cell (``coulomb_ev_angstrom``:
    e^2 / 4 pi eps0, a parameter so that TorchScript sees it)."""
    first, second, kernel = setup[0], setup[1], setup[2]
    energy = (charges[:, first] * charges[:, second] * kernel).sum(dim=1)
    if len(setup) > 3:
        # neutral to within the rounding of a sum of N charges (and at least 1e-6 relative);
        # epsilon: torch.finfo(dtype).eps, written out for TorchScript
        epsilon = 1.1920928955078125e-07 if charges.dtype == torch.float32 else 2.220446e-16
        relative = max(1e-6, 8.0 * charges.shape[1] * epsilon)
        totals = charges.detach().sum(dim=1).abs()
        if bool((totals > relative * charges.detach().abs().sum(dim=1).clamp_min(1.0)).any()):
            raise ValueError("the Ewald sum needs a neutral cell: the charges sum to "
                             + str(float(totals.max())) + " e")
        cosines, sines, weights, self_term = setup[3], setup[4], setup[5], setup[6]
        structure = (charges @ cosines) ** 2 + (charges @ sines) ** 2  # [B, K]
        energy = energy + structure @ weights + self_term * (charges * charges).sum(dim=1)
    return coulomb_ev_angstrom * energy


def coulomb_energy(charges: Tensor, positions: Tensor, cell: Optional[Tensor],
                   cutoff: float = 8.0, tolerance: float = 1e-6) -> Tensor:
    """The energy (eV) of one set of ``charges`` [N] at ``positions`` [N, 3]: the Ewald sum in
    ``cell`` with real-space ``cutoff`` and relative ``tolerance``, or the direct sum."""
    setup = coulomb_setup(positions, cell, cutoff, tolerance)
    return coulomb_energies(setup, charges[None])[0]
