"""The PDB water templates and their loader."""
from importlib import resources

import mdtraj
import numpy as np
import pytest
from openmm import unit

from omm_symbreak import systems

MOLECULES = {"water-monomer": 1, "liquid-64": 64, "liquid-256": 256, "ice-ih": 128}
AVOGADRO_PER_MOL = 6.02214076e23


def arrays(name, replicate=(1, 1, 1)):
    """Topology, [n_molecules, 3, 3] positions in nm (O, H1, H2) and [3, 3] box in nm (or None)."""
    topology, positions, box = systems.load(name, replicate)
    molecules_nm = positions.value_in_unit(unit.nanometer).reshape(-1, 3, 3)
    return topology, molecules_nm, None if box is None else np.array(box.value_in_unit(unit.nanometer))


def minimum_image_nm(d_nm, box_nm):
    """Displacements [..., 3] in nm reduced to their nearest periodic image (orthorhombic box)."""
    return d_nm - np.diag(box_nm) * np.round(d_nm / np.diag(box_nm))


def test_available_lists_the_templates():
    assert systems.available() == sorted(MOLECULES)


@pytest.mark.parametrize("name", sorted(MOLECULES))
def test_template_is_intact_water(name):
    topology, molecules_nm, box_nm = arrays(name)
    assert topology.getNumResidues() == MOLECULES[name]
    for residue in topology.residues():
        assert residue.name == "HOH"
        assert [(atom.name, atom.element.symbol) for atom in residue.atoms()] == [("O", "O"), ("H1", "H"), ("H2", "H")]
    bonds = sorted(tuple(sorted((a.index, b.index))) for a, b in topology.bonds())
    assert bonds == [(3 * k, 3 * k + h) for k in range(MOLECULES[name]) for h in (1, 2)]
    bond_lengths_nm = np.linalg.norm(molecules_nm[:, 1:] - molecules_nm[:, :1], axis=-1)
    assert np.all(bond_lengths_nm < 0.12)  # whole molecules, no minimum image needed
    assert (box_nm is None) == (name == "water-monomer")
    with resources.as_file(systems.TEMPLATES / f"{name}.pdb") as path:
        assert mdtraj.load(str(path)).topology.n_bonds == 2 * MOLECULES[name]


@pytest.mark.parametrize("name", ["liquid-64", "liquid-256"])
def test_liquid_density_and_cubic_box(name):
    topology, _, box_nm = arrays(name)
    np.testing.assert_allclose(box_nm, np.eye(3) * box_nm[0, 0])
    mass_g = sum(atom.element.mass.value_in_unit(unit.dalton) for atom in topology.atoms()) / AVOGADRO_PER_MOL
    assert mass_g / (np.linalg.det(box_nm) * 1e-21) == pytest.approx(0.997, abs=0.005)


def test_monomer_has_the_qtip4pf_minimum_geometry():
    _, (molecule_nm,), _ = arrays("water-monomer")
    oh_angstrom = 10 * (molecule_nm[1:] - molecule_nm[0])
    np.testing.assert_allclose(np.linalg.norm(oh_angstrom, axis=1), 0.9419, atol=1e-3)
    cos = np.dot(*oh_angstrom) / np.prod(np.linalg.norm(oh_angstrom, axis=1))
    assert np.rad2deg(np.arccos(cos)) == pytest.approx(107.4, abs=0.1)


def assert_ice_rules_with_small_net_dipole(molecules_nm, box_nm):
    """Four O neighbours per O, every H between its own O and one acceptor, net dipole ~ 0."""
    assert np.count_nonzero(box_nm - np.diag(np.diag(box_nm))) == 0
    oxygens = molecules_nm[:, 0]
    distances_nm = np.linalg.norm(minimum_image_nm(oxygens[:, None] - oxygens[None], box_nm), axis=-1)
    assert np.all(np.sum(distances_nm < 0.3, axis=1) == 5)  # four neighbours plus itself
    bisectors_nm = molecules_nm[:, 1:].sum(axis=1) - 2 * oxygens  # along each molecular dipole
    assert np.linalg.norm(bisectors_nm.sum(axis=0)) < 0.02 * np.linalg.norm(bisectors_nm, axis=1).sum()
    hydrogens = molecules_nm[:, 1:].reshape(-1, 3)
    hydrogen_to_oxygen_nm = np.linalg.norm(minimum_image_nm(hydrogens[:, None] - oxygens[None], box_nm), axis=-1)
    assert np.all(np.sum(hydrogen_to_oxygen_nm < 0.2, axis=1) == 2)  # every H: own O and one acceptor


def test_ice_obeys_the_ice_rules_with_small_net_dipole():
    assert_ice_rules_with_small_net_dipole(*arrays("ice-ih")[1:])


def test_genice_arrangements_share_the_lattice_and_differ_in_protons():
    cells = [systems.proton_disordered_ice_ih(seed) for seed in (1, 2)]
    box_nm = [np.array(t.getPeriodicBoxVectors().value_in_unit(unit.nanometer)) for t, _ in cells]
    molecules_nm = [positions.reshape(-1, 3, 3) for _, positions in cells]
    np.testing.assert_array_equal(box_nm[0], box_nm[1])
    assert cells[0][0].getNumResidues() == 128
    for molecules, box in zip(molecules_nm, box_nm):
        assert_ice_rules_with_small_net_dipole(molecules, box)
        oh_nm = np.linalg.norm(molecules[:, 1:] - molecules[:, :1], axis=-1)
        assert np.all((oh_nm > 0.09) & (oh_nm < 0.11))  # whole molecules
    masses = np.array([15.999, 1.008, 1.008])[:, None]
    centres_nm = [(m * masses).sum(axis=1) / masses.sum() for m in molecules_nm]
    np.testing.assert_allclose(centres_nm[0], centres_nm[1], atol=2e-3)  # .gro: 0.001 nm digits
    # each molecule's two hydrogens, as a set: some molecules point differently
    directions = [np.sort(np.round(m[:, 1:] - m[:, :1], 3), axis=1) for m in molecules_nm]
    assert not np.allclose(directions[0], directions[1])


def test_replicate_tiles_the_cell():
    topology, molecules_nm, box_nm = arrays("liquid-64")
    tiled_topology, tiled_nm, tiled_box_nm = arrays("liquid-64", (2, 1, 3))
    assert tiled_topology.getNumResidues() == 6 * topology.getNumResidues()
    assert tiled_topology.getNumBonds() == 6 * topology.getNumBonds()
    np.testing.assert_allclose(tiled_box_nm, box_nm * np.array([2, 1, 3])[:, None])
    np.testing.assert_allclose(tiled_nm[:64], molecules_nm)
    np.testing.assert_allclose(tiled_nm[-64:], molecules_nm + box_nm[0] + 2 * box_nm[2])
    assert [atom.name for atom in tiled_topology.atoms()] == ["O", "H1", "H2"] * 6 * 64


def test_load_errors():
    with pytest.raises(ValueError, match="available: ice-ih, liquid-256, liquid-64, water-monomer"):
        systems.load("liquid-512")
    with pytest.raises(ValueError, match="no periodic box"):
        systems.load("water-monomer", (2, 1, 1))
    with pytest.raises(ValueError, match="three positive integers"):
        systems.load("liquid-64", (0, 1, 1))
