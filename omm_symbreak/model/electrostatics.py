"""Electrostatic energy of point charges, TorchScript- and freeze-safe (as openmm-torch loads it).

Charges in e, lengths in Angstrom (positions [N, 3]; cell [3, 3], rows: box vectors), energies
in eV (``units.COULOMB_EV_ANGSTROM``). Without a cell, the direct sum over pairs; with one, the
Ewald splitting for any (also rotated, not reduced) triclinic cell:

    E = E_real + E_reciprocal + E_self
    E_real  = k/2 sum_{i, j, n}' q_i q_j erfc(alpha |r_ij + n|) / |r_ij + n|   (|r_ij + n| < r_c)
    E_recip = (2 pi k / V) sum_{m != 0} exp(-|m|^2 / (4 alpha^2)) / |m|^2 |sum_j q_j exp(i m r_j)|^2
    E_self  = -k alpha / sqrt(pi) sum_i q_i^2

(the prime drops i = j at n = 0). The splitting alpha = sqrt(-ln(2 tolerance)) / r_c is
OpenMM's. The real-space pairs come from ``neighbors.neighbor_pairs`` (cell lists in large
boxes). The reciprocal and self terms take one of two routes, chosen by the number of atoms:

- Ewald, in plain torch, below ``MESH_MIN_ATOMS``: m runs over the reciprocal lattice
  2 pi (h b1* + k b2* + l b3*) with |m| below the cutoff where exp(-|m|^2 / (4 alpha^2)) falls
  below ``tolerance``; the terms of m and -m are equal, so half of them are computed, twice
  weighted. O(N x K), K growing with the volume: fastest in the boxes the model is trained on.
- Particle-mesh Ewald (torch-pme's ``PMECalculator``, called without real-space pairs:
  smearing 1 / (sqrt(2) alpha), 7-point Lagrange interpolation, ``mesh_spacing`` half the
  smearing, which torch-pme's rounding of the mesh to powers of two makes a spacing of a
  quarter of it or less), from ``MESH_MIN_ATOMS`` atoms on: O(N log N). It agrees with the Ewald
  sum to 1e-7 relative in energy and 1e-6 of the largest force (benchmarks/coulomb.py), and
  with OpenMM's to 1e-5 (tests/test_electrostatics.py).

With a cell the charges must sum to zero (no neutralising background term). Forces by autograd.

Dilute boxes. At a fixed splitting the reciprocal sum needs O(V alpha^3) vectors (the mesh as
many points): one molecule in a 5000 Angstrom box would need 10^11. A box holding fewer than
``DILUTE_DENSITY`` atoms per cubic Angstrom (a fifth of liquid water's 0.1) is therefore summed
shrunk by the factor ``s = (V DILUTE_DENSITY / N)^(1/3) > 1`` (positions and cell over s, at the
model's cutoff), and the energy multiplied by 1 / s: Coulomb's law is homogeneous of degree -1,
E(x) = E(x / s) / s, so this is the Ewald sum with real-space cutoff ``s r_c`` and splitting
``alpha / s``, as accurate (the tolerance is relative). Pairs, reciprocal vectors and mesh points
then number O(N), as in a liquid of the same atoms, whatever the volume. ``s`` is a constant of
each structure (no gradient): the sum does not depend on the splitting beyond the tolerance.
Boxes at least that dense are summed as they are (bitwise as before).

The sum is bilinear in the charges for fixed positions: ``Coulomb.setup`` computes what depends
on the positions only (the pair kernel within the cutoff; the phases of the reciprocal vectors,
or for the mesh the positions and cell), once per structure, and ``Coulomb.energies`` the
energies of a batch of charge sets [B, N] from it, as the rotated copies of a structure need
(each copy has its own charges, the positions are shared: the sum is exactly invariant when
positions and cell rotate together).
"""

import math
from typing import List, Optional

import torch
import torchpme
from torch import Tensor, nn

from ..units import COULOMB_EV_ANGSTROM
from .neighbors import neighbor_pairs

# From this many atoms on, the mesh replaces the Ewald reciprocal sum. Energy + forces of liquid
# water on one CPU thread in float32 at the shipped model's cutoff (6 Angstrom) and tolerance
# (benchmarks/coulomb.py; Ewald / mesh): one charge set, as in a raw MD step, 147 / 145 ms at 768
# atoms, 0.84 / 0.38 s at 1536, 5.4 / 0.86 s at 3456 and 22 / 2.8 s at 5184; but for the 24 sets
# of a Ti grid in the kernel's CPU chunks (one set per call from 512 atoms on) the mesh costs
# 1.0-1.2 times the Ewald sum at those sizes (torch-pme recomputes its interpolation weights and
# kernel per call, where the Ewald phases are computed once per structure). MD with MTS, a raw
# step mostly, gains.
MESH_MIN_ATOMS: int = 1000
# Boxes with fewer atoms per cubic Angstrom are summed shrunk to this density (module docstring).
DILUTE_DENSITY: float = 0.02
MESH_INTERPOLATION_NODES = 7


class Coulomb(nn.Module):
    """The Coulomb energy of batches of charge sets at shared positions (module docstring).

    Args:
      cutoff: the real-space cutoff r_c (Angstrom) of a periodic sum.
      tolerance: the relative accuracy that fixes the splitting and the reciprocal cutoff.
      mesh_min_atoms: the mesh replaces the Ewald reciprocal sum from this many atoms on.
      dilute_density: boxes with fewer atoms per cubic Angstrom are summed shrunk to it.
    """

    def __init__(self, cutoff: float = 8.0, tolerance: float = 1e-6,
                 mesh_min_atoms: int = MESH_MIN_ATOMS, dilute_density: float = DILUTE_DENSITY):
        super().__init__()
        self.cutoff = float(cutoff)
        self.tolerance = float(tolerance)
        self.alpha = math.sqrt(-math.log(2.0 * tolerance)) / cutoff
        self.mesh_min_atoms = int(mesh_min_atoms)
        self.dilute_density = float(dilute_density)
        smearing = 1.0 / (math.sqrt(2.0) * self.alpha)
        self.mesh = torchpme.PMECalculator(torchpme.CoulombPotential(smearing=smearing),
                                           mesh_spacing=smearing / 2,
                                           interpolation_nodes=MESH_INTERPOLATION_NODES)

    def uses_mesh(self, n_atoms: int) -> bool:
        """Whether a periodic system of ``n_atoms`` takes the mesh route."""
        return n_atoms >= self.mesh_min_atoms

    def dilution(self, n_atoms: int, volume: float) -> float:
        """The factor s >= 1 (module docstring) by which a box of ``volume`` (cubic Angstrom)
        holding ``n_atoms`` atoms is shrunk for the periodic sum; 1 from ``DILUTE_DENSITY`` on."""
        return max(1.0, (volume * self.dilute_density / max(n_atoms, 1)) ** (1.0 / 3.0))

    def setup(self, positions: Tensor, cell: Optional[Tensor]) -> List[Tensor]:
        """What the energy of any charges at ``positions`` [N, 3] needs (Angstrom;
        differentiable in the positions and cell): [first [P], second [P], kernel [P]] of the
        real-space or direct pairs, then with a cell [cos [N, K], sin [N, K], weights [K],
        self [1]] of the Ewald sum, or [positions, cell, 1 / s [1]] of the mesh, in the box
        shrunk by the ``dilution`` s (energies in units of k = e^2 / 4 pi eps0 per e^2)."""
        if cell is None:
            first, second, vectors = neighbor_pairs(positions, None, math.inf)
            return [first, second, 0.5 / torch.linalg.vector_norm(vectors, dim=-1)]
        cell = cell.to(positions.dtype)
        determinant = torch.linalg.det(cell)
        scale = self.dilution(positions.shape[0], abs(float(determinant)))
        if scale > 1.0:
            positions, cell, determinant = positions / scale, cell / scale, determinant / scale ** 3
        # a cell and its mirror image (an improperly rotated cell) span the same lattice: the
        # search takes the right-handed one
        handed = cell if float(determinant) > 0.0 else -cell
        first, second, vectors = neighbor_pairs(positions, handed, self.cutoff)
        distances = torch.linalg.vector_norm(vectors, dim=-1)
        # each pair appears as (i, j) and (j, i)
        pairs = [first, second, 0.5 * torch.erfc(self.alpha * distances) / (scale * distances)]
        if self.uses_mesh(positions.shape[0]):
            return pairs + [positions, cell, torch.full((1,), 1.0 / scale, dtype=positions.dtype,
                                                        device=positions.device)]
        return pairs + self._reciprocal(positions, cell, torch.abs(determinant), scale)

    def _reciprocal(self, positions: Tensor, cell: Tensor, volume: Tensor,
                    scale: float) -> List[Tensor]:
        """[cos [N, K], sin [N, K], weights [K], self [1]] of the Ewald sum of the (shrunk)
        ``positions`` and ``cell``, weights and self term divided by the ``dilution``."""
        alpha = self.alpha
        reciprocal = 2 * math.pi * torch.linalg.inv(cell).T  # rows b_i*: a_i . b_j* = 2 pi d_ij
        m_cutoff = 2 * alpha * math.sqrt(-math.log(self.tolerance))
        counts = torch.ceil(m_cutoff * torch.linalg.vector_norm(cell, dim=1) / (2 * math.pi))
        axes = [torch.arange(-int(count), int(count) + 1, device=cell.device, dtype=cell.dtype)
                for count in counts]
        hkl = torch.stack(torch.meshgrid(axes[0], axes[1], axes[2], indexing="ij"),
                          dim=-1).reshape(-1, 3)
        # one of each pair m, -m (|S(m)|^2 = |S(-m)|^2 for real charges), counted twice
        upper = (hkl[:, 0] > 0) | ((hkl[:, 0] == 0) & ((hkl[:, 1] > 0)
                                                        | ((hkl[:, 1] == 0) & (hkl[:, 2] > 0))))
        m = hkl[upper] @ reciprocal  # [K', 3]
        m2 = (m * m).sum(dim=1)
        keep = m2 < m_cutoff * m_cutoff
        m, m2 = m[keep], m2[keep]
        phases = positions @ m.T  # [N, K]
        weights = 4 * math.pi / (scale * volume) * torch.exp(-m2 / (4 * alpha * alpha)) / m2
        self_term = torch.full((1,), -alpha / (scale * math.sqrt(math.pi)), dtype=positions.dtype,
                               device=positions.device)
        return [torch.cos(phases), torch.sin(phases), weights, self_term]

    def energies(self, setup: List[Tensor], charges: Tensor,
                 coulomb_ev_angstrom: float = COULOMB_EV_ANGSTROM) -> Tensor:
        """Energies [B] (eV) of the charge sets ``charges`` [B, N] (e) at the positions of
        ``setup``; ValueError for a charged cell (``coulomb_ev_angstrom``: e^2 / 4 pi eps0, a
        parameter so that TorchScript sees it)."""
        first, second, kernel = setup[0], setup[1], setup[2]
        energy = (charges[:, first] * charges[:, second] * kernel).sum(dim=1)
        if len(setup) == 3:
            return coulomb_ev_angstrom * energy
        _check_neutral(charges)
        if self.uses_mesh(charges.shape[1]):
            positions, cell, inverse_scale = setup[3], setup[4], setup[5]
            no_pairs = torch.zeros(0, 2, dtype=torch.int64, device=positions.device)
            # the reciprocal and self terms only (no real-space pairs); the potential [N, B]
            # already holds the 1/2 of the double sum
            potential = self.mesh(charges.T.contiguous(), cell, positions, no_pairs,
                                  torch.zeros(0, dtype=positions.dtype, device=positions.device))
            energy = energy + inverse_scale * (charges.T * potential).sum(dim=0)
        else:
            cosines, sines, weights, self_term = setup[3], setup[4], setup[5], setup[6]
            structure = (charges @ cosines) ** 2 + (charges @ sines) ** 2  # [B, K]
            energy = energy + structure @ weights + self_term * (charges * charges).sum(dim=1)
        return coulomb_ev_angstrom * energy

    def forward(self, charges: Tensor, positions: Tensor, cell: Optional[Tensor]) -> Tensor:
        """The energies [B] (eV) of the charge sets ``charges`` [B, N] at ``positions``."""
        return self.energies(self.setup(positions, cell), charges)


def _check_neutral(charges: Tensor):
    """ValueError unless every charge set [B, N] sums to zero, to within the rounding of a sum
    of N charges (and at least 1e-6 relative)."""
    # epsilon: torch.finfo(dtype).eps, written out for TorchScript
    epsilon = 1.1920928955078125e-07 if charges.dtype == torch.float32 else 2.220446e-16
    relative = max(1e-6, 8.0 * charges.shape[1] * epsilon)
    totals = charges.detach().sum(dim=1).abs()
    if bool((totals > relative * charges.detach().abs().sum(dim=1).clamp_min(1.0)).any()):
        raise ValueError("the Ewald sum needs a neutral cell: the charges sum to "
                         + str(float(totals.max())) + " e")
