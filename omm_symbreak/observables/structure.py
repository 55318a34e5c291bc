"""Structure of liquid and solid water: the O-O pair distribution and its first peak, and the
orientation correlations of molecule pairs against distance.

Trajectories are periodic ``mdtraj.Trajectory`` objects (F frames, M water molecules; distances
nm) with water as in ``orientation.water_atom_indices``. Every quantity is computed per block of
frames and returned with its standard error over the blocks.
"""

import mdtraj
import numpy as np
from scipy.ndimage import gaussian_filter1d

from .orientation import molecular_direction, water_atom_indices
from .statistics import _block_slices, _frame_chunks, block_average

__all__ = ["radial_distribution_oo", "first_peak", "first_peak_oo", "orientation_correlations"]


def _r_max_nm(traj: mdtraj.Trajectory, r_max_nm) -> float:
    """The given r_max, or min(0.8 nm, half the shortest box length over the trajectory)."""
    if traj.unitcell_lengths is None:
        raise ValueError("pair distributions need a periodic box (traj.unitcell_lengths)")
    return min(0.8, 0.5 * float(traj.unitcell_lengths.min())) if r_max_nm is None else r_max_nm


def _molecule_pairs(n_molecules: int):
    """All unordered pairs i < j of molecule indices: (i [P], j [P])."""
    return np.triu_indices(n_molecules, 1)


def radial_distribution_oo(traj: mdtraj.Trajectory, r_max_nm=None, bin_width_nm: float = 0.002,
                           smoothing_nm: float = 0.01, n_blocks: int = 4):
    """Oxygen-oxygen radial distribution function g_OO(r), Gaussian-smoothed, with block errors.

    Histogram of the minimum-image O-O distances of all molecule pairs (``mdtraj.compute_rdf``)
    in bins of bin_width_nm (adjusted to divide r_max_nm) up to r_max_nm (default min(0.8 nm,
    half the shortest box length)), normalised with the pair density M (M - 1) / (2 V), so that
    g -> 1 for an ideal gas of M molecules (coordination numbers: (M - 1) / V times the integral
    of g 4 pi r^2 dr); then smoothed with a Gaussian of standard deviation smoothing_nm (0: none).
    Computed per block of frames; mean and standard error over the blocks.
    Returns (r [B] nm, the bin centres; g [B]; g_error [B]), g dimensionless.
    """
    oxygens, _, _ = water_atom_indices(traj.topology)
    i, j = _molecule_pairs(len(oxygens))
    pairs = np.column_stack([oxygens[i], oxygens[j]])
    r_max_nm = _r_max_nm(traj, r_max_nm)
    n_bins = int(round(r_max_nm / bin_width_nm))
    blocks = []
    for block in _block_slices(traj.n_frames, n_blocks):
        # compute_rdf normalises by the sum of 1/V over its frames: chunks combine with it.
        g_sum, weight = 0.0, 0.0
        for chunk in _frame_chunks(block, len(pairs)):
            r, g = mdtraj.compute_rdf(traj[chunk], pairs, r_range=(0.0, r_max_nm),
                                      n_bins=n_bins)
            chunk_weight = np.sum(1.0 / traj.unitcell_volumes[chunk])
            g_sum, weight = g_sum + chunk_weight * g, weight + chunk_weight
        g = g_sum / weight
        if smoothing_nm > 0:
            g = gaussian_filter1d(g, smoothing_nm * n_bins / r_max_nm, mode="nearest")
        blocks.append(g)
    g, g_error = block_average(np.array(blocks), n_blocks)
    return r, g, g_error


def first_peak(r: np.ndarray, g: np.ndarray, n_points: int = 5):
    """Position (units of r) and height of the first peak of a pair distribution g(r).

    The first peak is the maximum of the first run of bins where g > 1; a quadratic fitted to the
    n_points values around that maximum gives position and height between grid points.
    """
    r, g = np.asarray(r, dtype=float), np.asarray(g, dtype=float)
    above = np.flatnonzero(g > 1)
    if not above.size:
        raise ValueError("g(r) never exceeds 1: no peak")
    start = above[0]
    end = start + np.argmax(np.append(g[start:] <= 1, True))
    top = start + np.argmax(g[start:end])
    half = n_points // 2
    if top < half or top + half >= len(g):
        raise ValueError("the first peak is too close to the end of the r range to fit")
    window = slice(top - half, top + half + 1)
    c2, c1, c0 = np.polyfit(r[window] - r[top], g[window], 2)
    if c2 >= 0:
        raise ValueError("no maximum: the quadratic fitted around the peak is not concave")
    return r[top] - c1 / (2 * c2), c0 - c1 ** 2 / (4 * c2)


def first_peak_oo(traj: mdtraj.Trajectory, n_blocks: int = 4, **rdf_options):
    """First peak of g_OO(r) with block errors: ``first_peak`` of the g_OO of every block of
    frames (``radial_distribution_oo`` with its options), averaged over the blocks.

    Returns (position, position_error) in nm and (height, height_error), dimensionless.
    """
    peaks = np.array([first_peak(*radial_distribution_oo(traj[block], n_blocks=2,
                                                         **rdf_options)[:2])
                      for block in _block_slices(traj.n_frames, n_blocks)])
    mean, error = block_average(peaks, len(peaks))
    return (mean[0], error[0]), (mean[1], error[1])


def orientation_correlations(traj: mdtraj.Trajectory, r_max_nm=None,
                             bin_width_nm: float = 0.01, n_blocks: int = 4):
    """Longitudinal and transverse orientation correlations of molecule pairs against distance.

    For every molecule pair i, j with minimum-image O-O vector r_ij (unit vector r_hat) and
    dipole directions u_i, u_j (``molecular_direction``):
    c_L(r) = <(r_hat . u_i)(r_hat . u_j)> and c_T(r) = <u_i . u_j> - c_L(r), averaged over the
    pairs with |r_ij| in each bin (width bin_width_nm, up to r_max_nm, default min(0.8 nm, half
    the shortest box length)). These are conditional averages over the pairs at distance r,
    i.e. pair sums normalised like g(r) and already divided by g(r). Dimensionless; NaN in bins
    that a block has no pair in. Per block of frames, with the standard error over the blocks.
    Returns (r [B] nm, the bin centres; c_L [B]; c_L_error [B]; c_T [B]; c_T_error [B]).
    """
    oxygens, _, _ = water_atom_indices(traj.topology)
    u = molecular_direction(traj)
    i, j = _molecule_pairs(len(oxygens))
    pairs = np.column_stack([oxygens[i], oxygens[j]])
    n_bins = int(round(_r_max_nm(traj, r_max_nm) / bin_width_nm))  # r_max rounded to bins
    blocks = []
    for block in _block_slices(traj.n_frames, n_blocks):
        sums = np.zeros((3, n_bins))  # pairs, sum of longitudinal, sum of u_i . u_j
        for chunk in _frame_chunks(block, len(pairs)):
            vectors = mdtraj.compute_displacements(traj[chunk], pairs, periodic=True)
            distances = np.linalg.norm(vectors.astype(float), axis=-1)
            r_hat = vectors / distances[..., None]
            u_i, u_j = u[chunk][:, i], u[chunk][:, j]
            longitudinal = np.sum(r_hat * u_i, axis=-1) * np.sum(r_hat * u_j, axis=-1)
            parallel = np.sum(u_i * u_j, axis=-1)
            bins = (distances / bin_width_nm).astype(int)
            inside = bins < n_bins
            for row, weights in enumerate([np.ones_like(distances), longitudinal, parallel]):
                sums[row] += np.bincount(bins[inside], weights=weights[inside], minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            c_l = sums[1] / sums[0]
            blocks.append([c_l, sums[2] / sums[0] - c_l])
    (c_l, c_t), (c_l_error, c_t_error) = block_average(np.array(blocks), n_blocks)
    r = (np.arange(n_bins) + 0.5) * bin_width_nm
    return r, c_l, c_l_error, c_t, c_t_error
