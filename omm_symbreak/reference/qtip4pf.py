"""q-TIP4P/F flexible water in OpenMM: the reference potential ("teacher") of the package.

Habershon, Markland and Manolopoulos, J. Chem. Phys. 131, 024501 (2009); parameters in
``Qtip4pfParameters`` and in docs/design.md, "The reference: q-TIP4P/F" (the same as i-PI's
drivers/f90/pes/qtip4pf.f90):

- O-H stretch, quartic expansion of a Morse potential:
  V = D_r [a^2 dr^2 - a^3 dr^3 + (7/12) a^4 dr^4], dr = r_OH - r_eq.
- H-O-H bend: V = (1/2) k (theta - theta_eq)^2.
- Lennard-Jones between oxygens only; charges q_H on the hydrogens and q_M = -2 q_H on a massless
  site M = gamma r_O + (1 - gamma)/2 (r_H1 + r_H2); the oxygen carries no charge.
- No nonbonded interaction inside a molecule.
- Periodic systems: PME, real-space and Lennard-Jones cutoff 9 Angstrom or half the shortest
  perpendicular box width if smaller, plain truncated Lennard-Jones with the long-range dispersion
  correction. Without a box: no cutoff.

Particle order. The System built here has one particle more per molecule than a 3-site water
topology: molecule k owns particles 4k (O), 4k+1 (H1), 4k+2 (H2), 4k+3 (M, a virtual site). This
is the atom order of the topology that ``add_virtual_sites`` returns, so a simulation runs with
``add_virtual_sites``' topology and positions (which ``create_qtip4pf_system`` accepts as well).
OpenMM places M itself at every step (``Context.computeVirtualSites`` after changing positions by
hand) and passes the force on M on to O, H1 and H2 with the site weights: the forces of O, H1, H2
in a State are complete, while the M rows of ``State.getForces`` still hold the force on M before it
was passed on: keep ``forces.reshape(-1, 4, 3)[:, :3]`` and never add the M rows again.
"""
import itertools
from dataclasses import dataclass

import numpy as np
import openmm
from openmm import app, unit

from ..units import KJ_PER_KCAL


@dataclass(frozen=True)
class Qtip4pfParameters:
    """q-TIP4P/F parameters in OpenMM units (nm, kJ/mol, rad, elementary charges).

    Conventional values (docs/design.md, "The reference: q-TIP4P/F"): D_r = 116.09 kcal/mol,
    a = 2.287 1/Angstrom, r_eq = 0.9419 Angstrom, k = 87.85 kcal/mol/rad^2, theta_eq = 107.4 deg,
    sigma = 3.1589 Angstrom, epsilon = 0.1852 kcal/mol, q_H = 0.5564 e, q_M = -1.1128 e, gamma = 0.73612.
    """

    oh_depth_kj_mol: float = 116.09 * KJ_PER_KCAL
    oh_alpha_per_nm: float = 22.87
    oh_eq_nm: float = 0.09419
    hoh_k_kj_mol_rad2: float = 87.85 * KJ_PER_KCAL
    hoh_eq_rad: float = float(np.deg2rad(107.4))
    o_sigma_nm: float = 0.31589
    o_epsilon_kj_mol: float = 0.1852 * KJ_PER_KCAL
    h_charge_e: float = 0.5564
    m_charge_e: float = -1.1128
    m_gamma: float = 0.73612
    cutoff_nm: float = 0.9
    # PME accuracy. Root-mean-square force errors on liquid-64 against a 1e-7 reference: 2.1
    # kJ/mol/nm (2.2 meV/Angstrom) at OpenMM's default 5e-4, 0.45 at 1e-4, 0.047 at 1e-5. The
    # error depends on how the system sits on the PME grid, and at 5e-4 it is as large as the
    # rotational force error of the study's model (2.0 meV/Angstrom); 1e-5 costs about 1.6x
    # the time per step of 5e-4 for 64-256 molecules on the CPU platform.
    ewald_error_tolerance: float = 1e-5


qtip4pf_forcefield_parameters = Qtip4pfParameters()

WATER_ATOM_NAMES = ("O", "H1", "H2")
VIRTUAL_SITE_NAME = "M"


def _count_waters(topology: app.Topology) -> int:
    """Number of residues, each checked to be water: HOH with atoms O, H1, H2 (optionally M)."""
    for residue in topology.residues():
        names = tuple(atom.name for atom in residue.atoms())
        if residue.name != "HOH" or names not in (WATER_ATOM_NAMES, WATER_ATOM_NAMES + (VIRTUAL_SITE_NAME,)):
            raise ValueError(
                f"q-TIP4P/F needs HOH residues with atoms O, H1, H2 (optionally M) in that order; "
                f"residue {residue.index} is {residue.name} with atoms {', '.join(names)}"
            )
    if topology.getNumResidues() == 0:
        raise ValueError("q-TIP4P/F needs a topology with at least one HOH residue; got none")
    return topology.getNumResidues()


def _virtual_site_weights() -> tuple[float, float, float]:
    """Weights of O, H1, H2 in the M-site position (they sum to 1)."""
    gamma = qtip4pf_forcefield_parameters.m_gamma
    return gamma, (1.0 - gamma) / 2.0, (1.0 - gamma) / 2.0


def add_virtual_sites(topology: app.Topology, positions) -> tuple[app.Topology, unit.Quantity]:
    """Topology and positions with the M site as 4th atom of every water, to simulate with.

    Args:
        topology: HOH residues with atoms O, H1, H2 (an M atom already there is rebuilt).
        positions: [n_atoms, 3] in nm (unitless) or an OpenMM length Quantity; molecules whole.

    Returns:
        A new topology with the same chains and residues (ids kept), the atoms O, H1, H2, M of
        every residue (M: element None), the bonds O-H1 and O-H2 and the periodic box of
        ``topology``; and positions, a numpy [4 * n_molecules, 3] Quantity in nm, with M at
        gamma r_O + (1 - gamma)/2 (r_H1 + r_H2).
    """
    _count_waters(topology)
    positions_nm = _in_nm(positions)
    weights = np.array(_virtual_site_weights())
    new_topology = app.Topology()
    new_topology.setPeriodicBoxVectors(topology.getPeriodicBoxVectors())
    new_positions_nm = []
    for chain in topology.chains():
        new_chain = new_topology.addChain(chain.id)
        for residue in chain.residues():
            oxygen, hydrogen1, hydrogen2 = list(residue.atoms())[:3]
            new_residue = new_topology.addResidue(residue.name, new_chain, residue.id, residue.insertionCode)
            new_oxygen = new_topology.addAtom(oxygen.name, oxygen.element, new_residue)
            for hydrogen in (hydrogen1, hydrogen2):
                new_topology.addBond(new_oxygen, new_topology.addAtom(hydrogen.name, hydrogen.element, new_residue))
            new_topology.addAtom(VIRTUAL_SITE_NAME, None, new_residue)
            molecule_nm = positions_nm[[oxygen.index, hydrogen1.index, hydrogen2.index]]
            new_positions_nm.extend([*molecule_nm, weights @ molecule_nm])
    return new_topology, unit.Quantity(np.array(new_positions_nm), unit.nanometer)


def _in_nm(values) -> np.ndarray:
    """A length Quantity (or unitless numbers, taken as nm) as a float numpy array in nm."""
    if unit.is_quantity(values):
        values = values.value_in_unit(unit.nanometer)
    return np.asarray(values, dtype=float).reshape(-1, 3)


def create_qtip4pf_system(topology: app.Topology, box_vectors=None) -> openmm.System:
    """Build an OpenMM System with the q-TIP4P/F potential for a box or cluster of water.

    Args:
        topology: HOH residues with atoms O, H1, H2 in that order (or O, H1, H2, M as returned
            by ``add_virtual_sites``); anything else raises ValueError.
        box_vectors: periodic box vectors (3 vectors, OpenMM's reduced form; a length Quantity
            or unitless nm). None takes the topology's box; without either the system is
            non-periodic (no cutoff).

    Returns:
        A System of 4 particles per molecule, O, H1, H2, M (see the module docstring), with a
        CustomBondForce (O-H stretch), a HarmonicAngleForce (bend) and a NonbondedForce (PME or
        NoCutoff), all in force group 0.
    """
    parameters = qtip4pf_forcefield_parameters
    n_molecules = _count_waters(topology)
    system = openmm.System()

    stretch = openmm.CustomBondForce("depth*(alpha^2*dr^2 - alpha^3*dr^3 + (7/12)*alpha^4*dr^4); dr = r - r_eq")
    for name in ("depth", "alpha", "r_eq"):
        stretch.addPerBondParameter(name)
    bend = openmm.HarmonicAngleForce()
    nonbonded = openmm.NonbondedForce()
    stretch_parameters = [parameters.oh_depth_kj_mol, parameters.oh_alpha_per_nm, parameters.oh_eq_nm]
    for _ in range(n_molecules):
        oxygen = system.addParticle(app.element.oxygen.mass)
        hydrogen1 = system.addParticle(app.element.hydrogen.mass)
        hydrogen2 = system.addParticle(app.element.hydrogen.mass)
        site = system.addParticle(0.0)
        system.setVirtualSite(site, openmm.ThreeParticleAverageSite(oxygen, hydrogen1, hydrogen2, *_virtual_site_weights()))
        stretch.addBond(oxygen, hydrogen1, stretch_parameters)
        stretch.addBond(oxygen, hydrogen2, stretch_parameters)
        bend.addAngle(hydrogen1, oxygen, hydrogen2, parameters.hoh_eq_rad, parameters.hoh_k_kj_mol_rad2)
        nonbonded.addParticle(0.0, parameters.o_sigma_nm, parameters.o_epsilon_kj_mol)
        nonbonded.addParticle(parameters.h_charge_e, 1.0, 0.0)
        nonbonded.addParticle(parameters.h_charge_e, 1.0, 0.0)
        nonbonded.addParticle(parameters.m_charge_e, 1.0, 0.0)
        for first, second in itertools.combinations((oxygen, hydrogen1, hydrogen2, site), 2):
            nonbonded.addException(first, second, 0.0, 1.0, 0.0)

    if box_vectors is None:
        box_vectors = topology.getPeriodicBoxVectors()
    if box_vectors is None:
        nonbonded.setNonbondedMethod(openmm.NonbondedForce.NoCutoff)
    else:
        box_nm = _in_nm(box_vectors)
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*vector) for vector in box_nm))
        nonbonded.setNonbondedMethod(openmm.NonbondedForce.PME)
        nonbonded.setCutoffDistance(min(parameters.cutoff_nm, 0.5 * float(np.min(np.diag(box_nm)))))
        nonbonded.setUseSwitchingFunction(False)
        nonbonded.setUseDispersionCorrection(True)
        nonbonded.setEwaldErrorTolerance(parameters.ewald_error_tolerance)
    for force in (stretch, bend, nonbonded):
        system.addForce(force)
    return system
