"""Unit conversions: the only place where their factors are written.

OpenMM works in nm, ps, amu and kJ/mol; the models and the extended-XYZ datasets in Angstrom and
eV. Every conversion between the two goes through the constants or functions here.
"""

import numpy as np

ANGSTROM_PER_NM = 10.0
KJ_PER_MOL_PER_EV = 96.48533212331  # e * N_A / 1000 (CODATA 2018, exact)
KJ_PER_KCAL = 4.184  # thermochemical calorie
MEV_PER_EV = 1000.0
# e^2 / (4 pi eps0) in eV Angstrom: the Coulomb energy of two unit charges 1 Angstrom apart
# (CODATA 2018); OpenMM's ONE_4PI_EPS0, 138.935456 kJ/mol nm, agrees to 1e-8
COULOMB_EV_ANGSTROM = 14.3996454784
FS_PER_PS = 1000.0
SPEED_OF_LIGHT_CM_PER_PS = 0.0299792458  # c = 299792458 m/s (exact)


def nm_to_angstrom(values_nm):
    """Lengths in nm (array, tensor or float) -> Angstrom."""
    return values_nm * ANGSTROM_PER_NM


def angstrom_to_nm(values_angstrom):
    """Lengths in Angstrom (array, tensor or float) -> nm."""
    return values_angstrom / ANGSTROM_PER_NM


def ev_to_kj_mol(values_ev):
    """Energies in eV (per particle) -> kJ/mol."""
    return values_ev * KJ_PER_MOL_PER_EV


def kj_mol_to_ev(values_kj_mol):
    """Energies in kJ/mol -> eV (per particle)."""
    return values_kj_mol / KJ_PER_MOL_PER_EV


def kj_mol_nm_to_ev_angstrom(forces_kj_mol_nm):
    """Forces in kJ/mol/nm -> eV/Angstrom."""
    return forces_kj_mol_nm / (KJ_PER_MOL_PER_EV * ANGSTROM_PER_NM)


def ev_angstrom_to_kj_mol_nm(forces_ev_angstrom):
    """Forces in eV/Angstrom -> kJ/mol/nm."""
    return forces_ev_angstrom * (KJ_PER_MOL_PER_EV * ANGSTROM_PER_NM)


def fs_to_ps(times_fs):
    """Times in fs -> ps."""
    return times_fs / FS_PER_PS


def per_ps_to_wavenumber(frequencies_per_ps):
    """Frequencies in 1/ps (cycles, not radians) -> wavenumbers in cm^-1."""
    return frequencies_per_ps / SPEED_OF_LIGHT_CM_PER_PS


def as_nm_array(values) -> np.ndarray:
    """An OpenMM length Quantity (positions or box vectors, Vec3s) or a plain array already in
    nm -> numpy float64 array [N, 3] in nm."""
    if hasattr(values, "value_in_unit"):
        import openmm.unit as unit

        values = values.value_in_unit(unit.nanometer)
    return np.asarray(values, dtype=float).reshape(-1, 3)
