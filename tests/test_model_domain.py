"""analysis/model_domain.py (issue 17, item 12): the monomer's harmonic wavenumbers and the
dimer binding curve, checked on q-TIP4P/F against independent answers (Wilson's GF method
from its force constants; its intermolecular energy summed by hand from its charges and
Lennard-Jones parameters), and the model's two routes (rotation kernel, energy module) against
each other and against finite differences with the tiny model."""

import math

import numpy as np
import pytest
import scipy.constants
from openmm import app, unit

from conftest import analysis_script, tiny_model
from omm_symbreak import systems
from omm_symbreak.grids import parse_grid, random_rotations
from omm_symbreak.reference import qtip4pf_forcefield_parameters as QTIP4PF
from omm_symbreak.symmetrize import strategy_energy
from omm_symbreak.units import angstrom_to_nm, as_nm_array, per_ps_to_wavenumber

@pytest.fixture(scope="module")
def domain():
    return analysis_script("model_domain")


def gf_wavenumbers(r_nm: float, theta: float) -> np.ndarray:
    """q-TIP4P/F's harmonic wavenumbers (cm^-1, ascending) by Wilson's GF method: internal
    coordinates r1, r2, theta; F = diag(k_r, k_r, k_theta) with k_r = 2 D a^2 (the quadratic
    term of its quartic Morse expansion) and no coupling terms; G of a bent XY2 molecule."""
    mass = {z: app.element.Element.getByAtomicNumber(z).mass.value_in_unit(unit.dalton)
            for z in (1, 8)}
    mu_h, mu_o = 1 / mass[1], 1 / mass[8]
    k_r = 2 * QTIP4PF.oh_depth_kj_mol * QTIP4PF.oh_alpha_per_nm ** 2
    g = np.array([[mu_h + mu_o, mu_o * np.cos(theta), -mu_o * np.sin(theta) / r_nm],
                  [mu_o * np.cos(theta), mu_h + mu_o, -mu_o * np.sin(theta) / r_nm],
                  [-mu_o * np.sin(theta) / r_nm, -mu_o * np.sin(theta) / r_nm,
                   2 * (mu_h + mu_o * (1 - np.cos(theta))) / r_nm ** 2]])
    f = np.diag([k_r, k_r, QTIP4PF.hoh_k_kj_mol_rad2])
    eigenvalues = np.sort(np.linalg.eigvals(g @ f).real)  # 1/ps^2
    return per_ps_to_wavenumber(np.sqrt(eigenvalues) / (2 * np.pi))


def hand_interaction_kj_mol(dimer_nm: np.ndarray) -> float:
    """q-TIP4P/F's energy between the two molecules of a dimer [6, 3] nm, by hand: Coulomb
    between the H, H and M sites of different molecules and Lennard-Jones between the O atoms."""
    constants = scipy.constants
    coulomb = (constants.e ** 2 * constants.N_A / (4 * math.pi * constants.epsilon_0)
               * unit.joule * unit.meter / unit.mole).value_in_unit(
                   unit.kilojoule_per_mole * unit.nanometer)
    gamma = QTIP4PF.m_gamma
    sites, charges = [], np.array([QTIP4PF.h_charge_e, QTIP4PF.h_charge_e, QTIP4PF.m_charge_e])
    for o, h1, h2 in dimer_nm.reshape(2, 3, 3):
        sites.append([h1, h2, gamma * o + (1 - gamma) / 2 * (h1 + h2)])
    distances = np.linalg.norm(np.array(sites[0])[:, None] - np.array(sites[1])[None], axis=-1)
    energy = coulomb * np.sum(np.outer(charges, charges) / distances)
    r_oo = np.linalg.norm(dimer_nm[3] - dimer_nm[0])
    ratio = (QTIP4PF.o_sigma_nm / r_oo) ** 6
    return float(energy + 4 * QTIP4PF.o_epsilon_kj_mol * (ratio ** 2 - ratio))


def template_nm() -> np.ndarray:
    _, positions, _ = systems.load("water-monomer")
    return as_nm_array(positions)


def test_qtip4pf_monomer_minimum_and_wavenumbers_match_wilson_gf(domain):
    start = template_nm() + np.random.default_rng(0).normal(scale=2e-3, size=(3, 3))
    result = domain.monomer(domain.qtip4pf_energy(1), start)
    np.testing.assert_allclose(angstrom_to_nm(np.array(result["oh_angstrom"])), QTIP4PF.oh_eq_nm,
                               atol=1e-7)
    assert result["hoh_degrees"] == pytest.approx(np.degrees(QTIP4PF.hoh_eq_rad), abs=1e-4)
    found = [result["bend_cm"], result["symmetric_stretch_cm"], result["antisymmetric_stretch_cm"]]
    expected = gf_wavenumbers(QTIP4PF.oh_eq_nm, QTIP4PF.hoh_eq_rad)
    np.testing.assert_allclose(found, expected, atol=0.5)
    # a rotation-invariant potential: the six external modes are zero up to the finite
    # differences' truncation error (h^2 / 6 times the stretch's fourth derivative: a few cm^-1)
    assert np.max(np.abs(result["unprojected_lowest_six_cm"])) < 10.0


def test_qtip4pf_dimer_binding_matches_a_hand_sum_and_vanishes_far_apart(domain):
    geometry = (QTIP4PF.oh_eq_nm, np.degrees(QTIP4PF.hoh_eq_rad))
    pair, single = domain.qtip4pf_energy(2), domain.qtip4pf_energy(1)
    distances = np.array([2.5, 2.9, 4.0, 6.0, 60.0])
    curve = domain.binding_curve(pair, single, geometry, distances)
    by_hand = [hand_interaction_kj_mol(domain.dimer_positions_nm(*geometry, angstrom_to_nm(d)))
               for d in distances]
    np.testing.assert_allclose(curve, by_hand, rtol=1e-6)
    assert abs(domain.binding_curve(pair, single, geometry, np.array([500.0]))[0]) < 1e-5
    # the rigid curve's minimum is the minimum of the hand-summed energy
    fine = np.linspace(2.6, 3.0, 21)
    minimum = domain.curve_minimum(fine, domain.binding_curve(pair, single, geometry, fine))
    r_min = minimum["r_oo_angstrom"]
    around = [hand_interaction_kj_mol(domain.dimer_positions_nm(*geometry, angstrom_to_nm(r)))
              for r in (r_min - 0.01, r_min, r_min + 0.01)]
    assert minimum["binding_kj_mol"] == pytest.approx(around[1], abs=0.01)
    assert around[1] < min(around[0], around[2])
    assert -28.0 < minimum["binding_kj_mol"] < -24.0 and 2.7 < r_min < 2.9


def test_dimer_geometry_is_the_documented_one(domain):
    r_nm, hoh = 0.0957, 104.5
    dimer = domain.dimer_positions_nm(r_nm, hoh, 0.29).reshape(2, 3, 3)
    donor, acceptor = dimer
    axis = acceptor[0] - donor[0]
    assert np.linalg.norm(axis) == pytest.approx(0.29)
    for molecule in dimer:  # both molecules keep the monomer geometry
        geometry = domain.water_geometry(molecule)
        np.testing.assert_allclose(angstrom_to_nm(np.array(geometry["oh_angstrom"])), r_nm)
        assert geometry["hoh_degrees"] == pytest.approx(hoh)
    bonded = donor[1] - donor[0]
    cosine = bonded @ axis / np.linalg.norm(bonded) / np.linalg.norm(axis)
    assert cosine == pytest.approx(1.0, abs=1e-12)
    bisector = acceptor[1:].mean(axis=0) - acceptor[0]
    tilt = np.degrees(np.arccos(bisector @ axis / np.linalg.norm(bisector) / np.linalg.norm(axis)))
    assert tilt == pytest.approx(domain.ACCEPTOR_TILT_DEG)
    # mirror plane z = 0; the acceptor's H atoms trans to the donor's free H
    assert donor[:, 2] == pytest.approx(0.0) and acceptor[1, 2] == pytest.approx(-acceptor[2, 2])
    assert np.sign(donor[2, 1]) == -np.sign(acceptor[1, 1])


def test_model_routes_agree_with_each_other_and_with_finite_differences(domain):
    model = tiny_model()
    geometry = (0.0957, 104.5)
    grid = parse_grid("2i")
    types = model.species_of([8, 1, 1] * 2)
    module = strategy_energy(model, "full", grid)
    pair, single = domain.model_energy(module, types), domain.model_energy(module, types[:3])
    distances = np.array([2.9, 6.5])
    by_module = domain.binding_curve(pair, single, geometry, distances)
    by_kernel = domain.rotated_binding(model, geometry, distances, grid.rotations) @ grid.weights
    np.testing.assert_allclose(by_kernel, by_module, rtol=1e-10, atol=1e-10)
    assert abs(by_module[0]) > 1e-3
    # beyond the cutoff (3 Angstrom) between every pair of atoms: no interaction at all
    rotations = random_rotations(4, np.random.default_rng(0))
    assert np.abs(domain.rotated_binding(model, geometry, distances[1:], rotations)).max() < 1e-9
    # forces in kJ/mol/nm are minus the gradient of the energy in kJ/mol over nm
    x = domain.dimer_positions_nm(*geometry, angstrom_to_nm(2.9))
    _, forces = pair(x)
    step = 1e-6
    for atom, axis in ((0, 0), (4, 2)):
        shifted = [x.copy(), x.copy()]
        shifted[0][atom, axis] += step
        shifted[1][atom, axis] -= step
        slope = (pair(shifted[0])[0] - pair(shifted[1])[0]) / (2 * step)
        assert -slope == pytest.approx(forces[atom, axis], rel=1e-5, abs=1e-3)
