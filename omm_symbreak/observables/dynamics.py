"""Dynamics of water: mean-square displacement, self-diffusion, reorientation.

Trajectories are ``mdtraj.Trajectory`` objects (F frames, N atoms, M molecules; nm). Lag times
come from ``traj.time`` (ps, uniformly spaced); mdtraj reads DCD files with frame indices as
times, so set ``traj.time = np.arange(traj.n_frames) * interval_ps`` after loading one
(``omm_symbreak.rundir.read_trajectory`` does). Averages run over all time origins inside a block
of frames; errors are standard errors over the blocks.
"""

import mdtraj
import numpy as np
import scipy.constants

from .mechanics import center_of_mass
from .orientation import _harmonic_components, molecular_direction
from .statistics import _block_slices, _lagged_products, _origin_counts, block_average

__all__ = ["YEH_HUMMER_XI", "unwrapped_positions", "mean_square_displacement",
           "diffusion_coefficient", "msd_exponent", "yeh_hummer_correction",
           "orientation_autocorrelation"]

YEH_HUMMER_XI = 2.837297
"""Madelung-like constant of the cubic lattice in the Yeh-Hummer correction (dimensionless)."""


def _frame_interval_ps(traj: mdtraj.Trajectory) -> float:
    """The uniform spacing of traj.time (ps)."""
    if traj.n_frames < 2:
        raise ValueError("time correlations need at least 2 frames")
    steps = np.diff(traj.time)
    if steps[0] <= 0 or not np.allclose(steps, steps[0], rtol=1e-3):
        raise ValueError("time correlations need uniformly increasing traj.time (ps)")
    return float(steps[0])


def _lag_times_ps(traj: mdtraj.Trajectory, max_lag_ps: float, n_blocks: int) -> np.ndarray:
    """Lag times 0, dt, ..., max_lag_ps (ps) in whole frames; they must fit in one block."""
    interval = _frame_interval_ps(traj)
    n_lags = int(round(max_lag_ps / interval)) + 1
    block_length = traj.n_frames // n_blocks
    if n_lags > block_length:
        raise ValueError(f"max_lag_ps={max_lag_ps} spans {n_lags} frames, longer than a block of "
                         f"{block_length} frames ({traj.n_frames} frames, {n_blocks} blocks)")
    return np.arange(n_lags) * interval


def unwrapped_positions(traj: mdtraj.Trajectory) -> np.ndarray:
    """Positions [F, N, 3] (nm) made continuous in time by undoing jumps across the box.

    Assumes orthorhombic boxes and that no atom moves more than half a box length between
    consecutive frames: every jump of a coordinate by more than half a box length between frames
    counts as a crossing and is undone by a whole box length of the later frame (exact for a
    constant box; adequate for small box fluctuations). The first frame is kept as it is.
    Without a box the positions come back unchanged (as float64).
    """
    positions = traj.xyz.astype(float)
    if traj.unitcell_lengths is None:
        return positions
    if not np.allclose(traj.unitcell_angles, 90.0):
        raise ValueError("unwrapping assumes orthorhombic boxes (all unit cell angles 90 deg)")
    lengths = traj.unitcell_lengths.astype(float)[:, None, :]
    jumps = np.round(np.diff(positions, axis=0) / lengths[1:])
    crossings = np.concatenate([np.zeros_like(positions[:1]), np.cumsum(jumps, axis=0)])
    return positions - crossings * lengths


def mean_square_displacement(traj: mdtraj.Trajectory, max_lag_ps: float = 5.0,
                             atoms="name O", n_blocks: int = 4,
                             subtract_centre_of_mass: bool = True):
    """Mean-square displacement of atoms (default the oxygens) against lag time, with block errors.

    MSD(t) = <|r_i(t0 + t) - r_i(t0)|^2>, averaged over the selected atoms (an mdtraj selection
    string or an index array) and over all time origins t0 inside a block of frames, from
    ``unwrapped_positions`` (orthorhombic boxes). The lag times run in whole frames up to
    max_lag_ps, which must fit in a block.

    With ``subtract_centre_of_mass`` (the default), r_i is taken relative to the centre of mass
    of the whole system (every atom, element masses) in each frame. A Langevin thermostat kicks
    every atom on its own, so the system's centre of mass diffuses, with D_com = k_B T / (M gamma)
    at long times: for 64 waters at 300 K and gamma = 1/ps, 2.2e-5 cm^2/s, as large as the
    molecules' own diffusion; an isolated system (NVE, momentum conserved) and the Yeh-Hummer
    correction have no such motion.

    Returns (lag_ps [K] ps; msd [K] nm^2, the mean over blocks; msd_error [K] nm^2;
    block_msd [n_blocks, K] nm^2, each block's MSD, the input of ``diffusion_coefficient``).
    """
    indices = traj.topology.select(atoms) if isinstance(atoms, str) else np.asarray(atoms)
    lag_ps = _lag_times_ps(traj, max_lag_ps, n_blocks)
    n_lags = len(lag_ps)
    positions = unwrapped_positions(traj)
    if subtract_centre_of_mass:
        masses_amu = [atom.element.mass for atom in traj.topology.atoms]
        positions = positions - center_of_mass(positions, masses_amu)[:, None, :]
    positions = positions[:, indices]
    blocks = []
    for block in _block_slices(traj.n_frames, n_blocks):
        x = positions[block] - positions[block].mean(axis=0)  # smaller numbers, same MSD
        squares = np.sum(x ** 2, axis=-1)  # [T, N]
        cumulative = np.concatenate([np.zeros_like(squares[:1]), np.cumsum(squares, axis=0)])
        n_frames, lags = len(x), np.arange(n_lags)
        # sum over origins t of |x(t + k)|^2 + |x(t)|^2 - 2 x(t) . x(t + k)
        sums = (cumulative[n_frames] - cumulative[lags] + cumulative[n_frames - lags]
                - 2 * _lagged_products(x, n_lags).sum(axis=-1))
        blocks.append((sums / _origin_counts(n_frames, n_lags, sums.ndim)).mean(axis=-1))
    blocks = np.array(blocks)
    msd, msd_error = block_average(blocks, n_blocks)
    return lag_ps, msd, msd_error, blocks


def _lags_inside(lag_ps: np.ndarray, fit_range_ps) -> np.ndarray:
    """Mask [K] of the lags inside fit_range_ps = (start, stop) (ps); ValueError for fewer
    than 2."""
    inside = (lag_ps >= fit_range_ps[0]) & (lag_ps <= fit_range_ps[1])
    if inside.sum() < 2:
        raise ValueError(f"fit_range_ps={fit_range_ps} holds fewer than 2 lag times")
    return inside


def diffusion_coefficient(lag_ps: np.ndarray, block_msd_nm2: np.ndarray, fit_range_ps):
    """Self-diffusion coefficient D = slope / 6 of a straight line through MSD(t) (nm^2/ps).

    block_msd_nm2 [n_blocks, K]: the per-block MSDs from ``mean_square_displacement``; each block
    is fitted over the lags inside fit_range_ps = (start, stop) (ps), and D and its error are the
    mean and standard error of the block values. Add ``yeh_hummer_correction`` for the infinite-
    system value. Returns (D, D_error) in nm^2/ps (1 nm^2/ps = 1e-6 m^2/s).
    """
    lag_ps, block_msd_nm2 = np.asarray(lag_ps, dtype=float), np.asarray(block_msd_nm2, float)
    inside = _lags_inside(lag_ps, fit_range_ps)
    slopes = np.polyfit(lag_ps[inside], block_msd_nm2[:, inside].T, 1)[0]
    return block_average(slopes / 6.0, len(slopes))


def msd_exponent(lag_ps: np.ndarray, block_msd_nm2: np.ndarray, fit_range_ps):
    """The exponent alpha of MSD(t) ~ t^alpha over a lag range: 1 where the motion is diffusive
    (2 ballistic, below 1 caged), so it says whether ``diffusion_coefficient``'s range is one
    where D is defined.

    block_msd_nm2 [n_blocks, K] as for ``diffusion_coefficient``; each block's alpha is the slope
    of a straight line through log MSD against log t over the lags inside fit_range_ps = (start,
    stop) (ps, start > 0). Returns (alpha, alpha_error), dimensionless: the mean and standard
    error of the block values.
    """
    lag_ps, block_msd_nm2 = np.asarray(lag_ps, dtype=float), np.asarray(block_msd_nm2, float)
    if fit_range_ps[0] <= 0:
        raise ValueError(f"fit_range_ps={fit_range_ps}: a log-log fit needs lags above 0")
    inside = _lags_inside(lag_ps, fit_range_ps)
    if np.any(block_msd_nm2[:, inside] <= 0):
        raise ValueError("a log-log fit needs a positive MSD at every lag of fit_range_ps")
    slopes = np.polyfit(np.log(lag_ps[inside]), np.log(block_msd_nm2[:, inside]).T, 1)[0]
    return block_average(slopes, len(slopes))


def yeh_hummer_correction(box_length_nm: float, temperature_k: float,
                          viscosity_pa_s: float) -> float:
    """Finite-size correction k_B T xi / (6 pi eta L) of a self-diffusion coefficient (nm^2/ps).

    Yeh and Hummer, J. Phys. Chem. B 108, 15873 (2004): D(infinite) = D(L) + this, for a cubic
    periodic box of edge L (nm), temperature T (K) and shear viscosity eta (Pa s; experimental
    water at 300 K: about 0.85e-3, a model's own value is better), xi = YEH_HUMMER_XI. Optional:
    it is not applied anywhere; add it to ``diffusion_coefficient``'s D to compare with
    experiment.
    """
    d_m2_s = (scipy.constants.k * temperature_k * YEH_HUMMER_XI
              / (6 * np.pi * viscosity_pa_s * box_length_nm * 1e-9))
    return d_m2_s * 1e6


def orientation_autocorrelation(traj: mdtraj.Trajectory, max_lag_ps: float = 10.0,
                                order: int = 1, n_blocks: int = 4):
    """Reorientation correlation c_uu(t) = <P_l(u_i(t0) . u_i(t0 + t))> of the dipole directions.

    u from ``molecular_direction``; P_l the Legendre polynomial of degree ``order`` (1: u . u,
    2: (3 (u . u)^2 - 1) / 2), averaged over molecules and over all time origins t0 inside a block
    of frames. The lag times run in whole frames up to max_lag_ps, which must fit in a block.
    Returns (lag_ps [K] ps, c [K], c_error [K]); c is dimensionless, 1 at t = 0.
    """
    if order < 1:
        raise ValueError(f"order must be a positive integer, got {order}")
    lag_ps = _lag_times_ps(traj, max_lag_ps, n_blocks)
    components = _harmonic_components(molecular_direction(traj), order)  # [F, M, C]
    blocks = []
    for block in _block_slices(traj.n_frames, n_blocks):
        products = _lagged_products(components[block], len(lag_ps)).sum(axis=-1)  # [K, M]
        counts = _origin_counts(block.stop - block.start, len(lag_ps), products.ndim)
        # addition theorem: sum_m Y_lm(a) Y_lm(b)* = (2l + 1) / (4 pi) P_l(a . b)
        blocks.append((4 * np.pi / (2 * order + 1) * products / counts).mean(axis=-1))
    c, c_error = block_average(np.array(blocks), n_blocks)
    return lag_ps, c, c_error
