"""q-TIP4P/F in OpenMM against an independent NumPy implementation and basic physics."""
import copy

import numpy as np
import openmm
import pytest
from openmm import app, unit
from scipy.spatial.transform import Rotation
from scipy.special import erf, erfc

from omm_symbreak import systems
from omm_symbreak.reference import add_virtual_sites, create_qtip4pf_system, qtip4pf_forcefield_parameters as P

COULOMB_KJ_MOL_NM_E2 = 138.935458
SITE_WEIGHTS = np.array([P.m_gamma, (1 - P.m_gamma) / 2, (1 - P.m_gamma) / 2])
SITE_CHARGES_E = np.array([0.0, P.h_charge_e, P.h_charge_e, P.m_charge_e])


def with_m_sites(molecules_nm):
    """[n, 3, 3] (O, H1, H2) -> [n, 4, 3] (O, H1, H2, M)."""
    return np.concatenate([molecules_nm, np.einsum("s,nsx->nx", SITE_WEIGHTS, molecules_nm)[:, None]], axis=1)


def numpy_qtip4pf(molecules_nm):
    """Direct-sum q-TIP4P/F without cutoff: energy terms (kJ/mol) and forces [n, 3, 3] (kJ/mol/nm)."""
    forces = np.zeros_like(molecules_nm)
    oh = molecules_nm[:, 1:] - molecules_nm[:, :1]
    r = np.linalg.norm(oh, axis=-1)
    dr, a, depth = r - P.oh_eq_nm, P.oh_alpha_per_nm, P.oh_depth_kj_mol
    stretch = depth * np.sum(a**2 * dr**2 - a**3 * dr**3 + 7 / 12 * a**4 * dr**4)
    force_h = -(depth * (2 * a**2 * dr - 3 * a**3 * dr**2 + 7 / 3 * a**4 * dr**3) / r)[..., None] * oh
    u = oh / r[..., None]
    cos = np.sum(u[:, 0] * u[:, 1], axis=-1)
    theta = np.arccos(cos)
    bend = np.sum(0.5 * P.hoh_k_kj_mol_rad2 * (theta - P.hoh_eq_rad) ** 2)
    de_dtheta = (P.hoh_k_kj_mol_rad2 * (theta - P.hoh_eq_rad) / np.sin(theta))[:, None]
    force_h[:, 0] += de_dtheta * (u[:, 1] - cos[:, None] * u[:, 0]) / r[:, :1]
    force_h[:, 1] += de_dtheta * (u[:, 0] - cos[:, None] * u[:, 1]) / r[:, 1:]
    forces[:, 1:] += force_h
    forces[:, 0] -= force_h.sum(axis=1)

    sites = with_m_sites(molecules_nm)
    site_forces = np.zeros_like(sites)
    nonbonded = 0.0
    for i in range(len(sites)):
        for j in range(i + 1, len(sites)):
            d = sites[i][:, None] - sites[j][None]  # [4, 4, 3]
            dist = np.linalg.norm(d, axis=-1)
            qq = COULOMB_KJ_MOL_NM_E2 * np.outer(SITE_CHARGES_E, SITE_CHARGES_E)
            nonbonded += np.sum(qq / dist)
            pair_forces = (qq / dist**3)[..., None] * d
            s6 = (P.o_sigma_nm / dist[0, 0]) ** 6
            nonbonded += 4 * P.o_epsilon_kj_mol * (s6**2 - s6)
            pair_forces[0, 0] += 24 * P.o_epsilon_kj_mol * (2 * s6**2 - s6) / dist[0, 0] ** 2 * d[0, 0]
            site_forces[i] += pair_forces.sum(axis=1)
            site_forces[j] -= pair_forces.sum(axis=0)
    forces += site_forces[:, :3] + SITE_WEIGHTS[None, :, None] * site_forces[:, 3:]
    return {"stretch": stretch, "bend": bend, "nonbonded": nonbonded}, forces


def openmm_state(topology, positions_nm, system=None):
    """Reference-platform energy terms (force group = force index) and [n_atoms + n_molecules, 3] forces."""
    topology4, positions4 = add_virtual_sites(topology, positions_nm)
    if system is None:
        system = create_qtip4pf_system(topology4)
    for group, force in enumerate(system.getForces()):
        force.setForceGroup(group)
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions4)
    energies = [
        context.getState(getEnergy=True, groups={group}).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        for group in range(system.getNumForces())
    ]
    forces = context.getState(getForces=True).getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energies, forces, context


def random_cluster_nm(n_molecules, seed):
    """[n, 3, 3] distorted molecules (r_OH 0.09-0.10 nm, angle 100-115 deg) around a tetrahedron of edge 0.3 nm."""
    rng = np.random.default_rng(seed)
    centres = 0.3 / np.sqrt(8) * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])[:n_molecules]
    molecules = []
    for centre, rotation in zip(centres, Rotation.random(n_molecules, rng=rng)):
        r1, r2 = rng.uniform(0.09, 0.10, size=2)
        half = np.deg2rad(rng.uniform(100, 115)) / 2
        local = np.array([[0, 0, 0], [r1 * np.sin(half), 0, r1 * np.cos(half)], [-r2 * np.sin(half), 0, r2 * np.cos(half)]])
        molecules.append(centre + rotation.apply(local))
    return np.array(molecules)


def test_cluster_energies_and_forces_match_numpy_direct_sum():
    molecules_nm = random_cluster_nm(4, seed=3)
    energies, forces, _ = openmm_state(systems.water_topology(4), molecules_nm.reshape(-1, 3))
    reference_energies, reference_forces = numpy_qtip4pf(molecules_nm)
    for energy, (term, reference) in zip(energies, reference_energies.items()):
        assert energy == pytest.approx(reference, rel=1e-6), term
    forces = forces.reshape(4, 4, 3)[:, :3]  # the M rows: force on M before OpenMM passed it on
    assert np.max(np.abs(forces - reference_forces)) < 1e-6 * np.max(np.abs(reference_forces))


def test_monomer_minimum_is_the_potential_minimum():
    molecule_nm = random_cluster_nm(1, seed=5).reshape(-1, 3)
    _, _, context = openmm_state(systems.water_topology(1), molecule_nm)
    openmm.LocalEnergyMinimizer.minimize(context, 1e-8, 0)
    o, h1, h2, _ = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.angstrom)
    cos = np.dot(h1 - o, h2 - o) / np.linalg.norm(h1 - o) / np.linalg.norm(h2 - o)
    np.testing.assert_allclose([np.linalg.norm(h1 - o), np.linalg.norm(h2 - o)], 0.9419, atol=1e-4)
    assert np.rad2deg(np.arccos(cos)) == pytest.approx(107.4, abs=1e-4)


def numpy_ewald_coulomb_kj_mol(sites_nm, box_nm, cutoff_nm):
    """Ewald sum of the q-TIP4P/F charges of [n, 4, 3] sites in a cubic box, intramolecular pairs excluded."""
    alpha = 3.6 / cutoff_nm  # erfc(3.6) = 4e-7
    charges = np.tile(SITE_CHARGES_E, len(sites_nm))
    flat = sites_nm.reshape(-1, 3)
    molecule = np.repeat(np.arange(len(sites_nm)), 4)
    d = flat[:, None] - flat[None]
    d -= box_nm * np.round(d / box_nm)
    r = np.linalg.norm(d, axis=-1) + np.eye(len(flat))
    qq = np.outer(charges, charges)
    same = molecule[:, None] == molecule[None]
    real = np.sum(np.where(~same & (r < cutoff_nm), qq * erfc(alpha * r) / r, 0.0)) / 2
    excluded = -np.sum(np.where(same & ~np.eye(len(flat), dtype=bool), qq * erf(alpha * r) / r, 0.0)) / 2
    self_term = -alpha / np.sqrt(np.pi) * np.sum(charges**2)
    m_max = int(np.ceil(2 * alpha * 4.8 * box_nm / (2 * np.pi)))  # exp(-k^2 / 4 alpha^2) < 1e-10 beyond
    m = np.arange(-m_max, m_max + 1)
    phases = np.exp(2j * np.pi * m[:, None, None] * flat.T[None] / box_nm)  # [m, xyz, atom]
    structure = np.einsum("an,bn,cn->abc", phases[:, 0] * charges, phases[:, 1], phases[:, 2])
    k2 = (2 * np.pi / box_nm) ** 2 * (m[:, None, None] ** 2 + m[None, :, None] ** 2 + m[None, None, :] ** 2)
    k2[m_max, m_max, m_max] = np.inf
    recip = 2 * np.pi / box_nm**3 * np.sum(np.exp(-k2 / (4 * alpha**2)) / k2 * np.abs(structure) ** 2)
    return COULOMB_KJ_MOL_NM_E2 * (real + excluded + self_term + recip)


def test_periodic_liquid_pme_and_lennard_jones_match_numpy():
    topology, positions, box = systems.load("liquid-64")
    positions_nm = positions.value_in_unit(unit.nanometer)
    box_nm = box[0][0].value_in_unit(unit.nanometer)
    n_molecules = topology.getNumResidues()
    sites_nm = with_m_sites(positions_nm.reshape(-1, 3, 3))
    system = create_qtip4pf_system(add_virtual_sites(topology, positions_nm)[0])
    nonbonded = system.getForce(2)
    assert nonbonded.getNonbondedMethod() == openmm.NonbondedForce.PME
    cutoff_nm = nonbonded.getCutoffDistance().value_in_unit(unit.nanometer)
    assert cutoff_nm == pytest.approx(min(0.9, box_nm / 2), rel=1e-12)
    total = openmm_state(topology, positions_nm, copy.deepcopy(system))[0][2]

    for k in range(n_molecules):  # Coulomb only
        nonbonded.setParticleParameters(4 * k, 0.0, P.o_sigma_nm, 0.0)
    coulomb = openmm_state(topology, positions_nm, copy.deepcopy(system))[0][2]
    assert coulomb == pytest.approx(numpy_ewald_coulomb_kj_mol(sites_nm, box_nm, cutoff_nm), rel=1e-5)

    for k in range(4 * n_molecules):  # truncated Lennard-Jones only
        nonbonded.setParticleParameters(k, 0.0, P.o_sigma_nm, P.o_epsilon_kj_mol if k % 4 == 0 else 0.0)
    nonbonded.setUseDispersionCorrection(False)
    truncated = openmm_state(topology, positions_nm, system)[0][2]
    oxygens = sites_nm[:, 0]
    d = oxygens[:, None] - oxygens[None]
    d -= box_nm * np.round(d / box_nm)
    r = np.linalg.norm(d, axis=-1)[np.triu_indices(n_molecules, 1)]
    s6 = (P.o_sigma_nm / r[r < cutoff_nm]) ** 6
    assert truncated == pytest.approx(np.sum(4 * P.o_epsilon_kj_mol * (s6**2 - s6)), rel=1e-8)

    # What remains is the dispersion correction; OpenMM averages over N(N+1)/2 particle pairs
    # (M sites included), which puts it within 2/N_O of the textbook 8 pi N_O^2 / V integral.
    textbook_tail = 8 * np.pi * n_molecules**2 / box_nm**3 * P.o_epsilon_kj_mol * (
        P.o_sigma_nm**12 / (9 * cutoff_nm**9) - P.o_sigma_nm**6 / (3 * cutoff_nm**3)
    )
    assert total - coulomb - truncated == pytest.approx(textbook_tail, rel=2 / n_molecules)


def test_add_virtual_sites_and_gas_phase_system():
    molecules_nm = random_cluster_nm(2, seed=1)
    topology4, positions4 = add_virtual_sites(systems.water_topology(2), molecules_nm.reshape(-1, 3))
    assert [atom.name for atom in topology4.atoms()] == ["O", "H1", "H2", "M"] * 2
    assert [atom.element for atom in topology4.atoms()][3] is None
    assert [(a.name, b.name) for a, b in topology4.bonds()] == [("O", "H1"), ("O", "H2")] * 2
    np.testing.assert_allclose(positions4.value_in_unit(unit.nanometer).reshape(2, 4, 3), with_m_sites(molecules_nm))
    system = create_qtip4pf_system(topology4)
    assert system.getNumParticles() == 8 and system.isVirtualSite(3) and not system.usesPeriodicBoundaryConditions()
    assert system.getForce(2).getNonbondedMethod() == openmm.NonbondedForce.NoCutoff


@pytest.mark.parametrize("residue_name, atom_names", [("SOL", ("O", "H1", "H2")), ("HOH", ("O", "H2", "H1")), ("HOH", ("O", "H"))])
def test_non_water_topology_raises(residue_name, atom_names):
    topology = app.Topology()
    residue = topology.addResidue(residue_name, topology.addChain())
    for name in atom_names:
        topology.addAtom(name, app.element.Element.getBySymbol(name[0]), residue)
    with pytest.raises(ValueError, match="HOH residues with atoms O, H1, H2"):
        create_qtip4pf_system(topology)
