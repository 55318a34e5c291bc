"""Mechanics of a set of point masses: centre of mass, angular momentum, net torque.

Units follow OpenMM: positions nm, velocities nm/ps, masses amu (g/mol), forces kJ/mol/nm.
Angular momentum is then in amu nm^2/ps, a torque in kJ/mol (= amu nm^2/ps^2). NumPy only:
the MD driver imports this module for its diagnostics.
"""

import numpy as np

__all__ = ["center_of_mass", "angular_momentum", "torque"]


def center_of_mass(positions_nm: np.ndarray, masses_amu: np.ndarray) -> np.ndarray:
    """Centre of mass [..., 3] (nm) of positions [..., N, 3] with masses [N]."""
    masses = np.asarray(masses_amu, dtype=float)
    return np.einsum("...ni,n->...i", positions_nm, masses) / masses.sum()


def angular_momentum(positions_nm: np.ndarray, velocities_nm_ps: np.ndarray,
                     masses_amu: np.ndarray) -> np.ndarray:
    """L = sum_i (r_i - R_com) x m_i (v_i - V_com), [..., 3] in amu nm^2/ps.

    positions, velocities: [..., N, 3] (a frame or a stack of frames); masses [N].
    """
    masses = np.asarray(masses_amu, dtype=float)
    r = positions_nm - center_of_mass(positions_nm, masses)[..., None, :]
    v = velocities_nm_ps - center_of_mass(velocities_nm_ps, masses)[..., None, :]
    return np.einsum("...ni,n->...i", np.cross(r, v), masses)


def torque(positions_nm: np.ndarray, forces_kj_mol_nm: np.ndarray,
           masses_amu: np.ndarray) -> np.ndarray:
    """Net torque about the centre of mass, tau = sum_i (r_i - R_com) x F_i, [..., 3] in kJ/mol.

    An exactly rotation-invariant potential exerts no net torque on an isolated system.
    """
    r = positions_nm - center_of_mass(positions_nm, masses_amu)[..., None, :]
    return np.cross(r, forces_kj_mol_nm).sum(axis=-2)
