"""Observables, one function per quantity: arrays in, arrays out, units documented.

Units follow OpenMM: positions nm, velocities nm/ps, masses amu (g/mol), forces kJ/mol/nm,
time ps. Angular momentum is then in amu nm^2/ps, a torque in kJ/mol (= amu nm^2/ps^2).

Trajectory observables take an ``mdtraj.Trajectory`` (F frames, N atoms, M molecules). Those
that need molecules need water as residues HOH with atoms O, H1, H2 in that order
(``water_atom_indices`` checks it and raises ValueError otherwise). Statistical errors are
standard errors over non-overlapping blocks of frames (``block_average``): every observable with
a time axis returns its mean and that error. Lag times come from ``traj.time`` (ps, uniformly
spaced); mdtraj reads DCD files with frame indices as times, so set
``traj.time = np.arange(traj.n_frames) * interval_ps`` after loading one.
"""

import mdtraj
import numpy as np
import scipy.constants
import scipy.fft
from scipy.ndimage import gaussian_filter1d
from scipy.special import sph_harm_y

YEH_HUMMER_XI = 2.837297
"""Madelung-like constant of the cubic lattice in the Yeh-Hummer correction (dimensionless)."""

_SPEED_OF_LIGHT_CM_PS = scipy.constants.c * 100.0 * 1e-12
_CHUNK_VALUES = 2 ** 22  # frames x pairs (or samples x grid points) held in memory at once


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


# --- statistics -------------------------------------------------------------------------------

def block_average(values: np.ndarray, n_blocks: int):
    """Mean and standard error of ``values`` [T, ...] over non-overlapping blocks along axis 0.

    The blocks are n_blocks consecutive runs of T // n_blocks rows (the last T % n_blocks rows
    are left out); the mean is the mean of the block means, the error the standard deviation of
    the block means over sqrt(n_blocks). The error holds when a block is much longer than the
    correlation time. Passing per-block results with n_blocks = T gives their mean and error.
    Returns (mean [...], error [...]) in the units of ``values``.
    """
    values = np.asarray(values, dtype=float)
    means = np.stack([values[block].mean(axis=0)
                      for block in _block_slices(len(values), n_blocks)])
    return means.mean(axis=0), means.std(axis=0, ddof=1) / np.sqrt(n_blocks)


def _block_slices(n_rows: int, n_blocks: int) -> list:
    """n_blocks consecutive equal slices of range(n_rows), the remainder left out."""
    if n_blocks < 2:
        raise ValueError(f"an error estimate needs at least 2 blocks, got n_blocks={n_blocks}")
    size = n_rows // n_blocks
    if size == 0:
        raise ValueError(f"{n_rows} rows (frames, samples) cannot make {n_blocks} blocks")
    return [slice(block * size, (block + 1) * size) for block in range(n_blocks)]


def _frame_chunks(frames: slice, values_per_frame: int) -> list:
    """Consecutive sub-slices of ``frames`` holding at most about _CHUNK_VALUES values each."""
    step = max(1, _CHUNK_VALUES // max(1, values_per_frame))
    return [slice(start, min(start + step, frames.stop))
            for start in range(frames.start, frames.stop, step)]


# --- water molecules --------------------------------------------------------------------------

def water_atom_indices(topology: mdtraj.Topology):
    """Atom indices (O, H1, H2), each [M], of the water molecules of an mdtraj Topology.

    Raises ValueError unless every residue is HOH with atoms named O, H1, H2 in that order.
    """
    molecules = []
    for residue in topology.residues:
        names = [atom.name for atom in residue.atoms]
        if residue.name != "HOH" or names != ["O", "H1", "H2"]:
            raise ValueError(
                "molecule-level observables need water as residues HOH with atoms O, H1, H2 in "
                f"that order; residue {residue.index} is {residue.name} with atoms {names}")
        molecules.append([atom.index for atom in residue.atoms])
    if not molecules:
        raise ValueError("molecule-level observables need water molecules; the topology has none")
    oxygens, hydrogens1, hydrogens2 = np.array(molecules).T
    return oxygens, hydrogens1, hydrogens2


def molecular_direction(traj: mdtraj.Trajectory) -> np.ndarray:
    """u = unit vector from O to the midpoint of H1 and H2 (the dipole direction), [F, M, 3].

    Lab frame, dimensionless. The O-H vectors are minimum-image vectors, so molecules split across
    the periodic box are handled.
    """
    oxygens, hydrogens1, hydrogens2 = water_atom_indices(traj.topology)
    pairs = np.concatenate([np.column_stack([oxygens, hydrogens1]),
                            np.column_stack([oxygens, hydrogens2])])
    oh = mdtraj.compute_displacements(traj, pairs, periodic=True).astype(float)
    bisector = oh[:, :len(oxygens)] + oh[:, len(oxygens):]
    return bisector / np.linalg.norm(bisector, axis=-1, keepdims=True)


# --- structure --------------------------------------------------------------------------------

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


# --- dynamics ---------------------------------------------------------------------------------

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


def _lagged_products(x: np.ndarray, n_lags: int) -> np.ndarray:
    """sum_t x(t) x(t + k) over t = 0 .. T-1-k, for k = 0 .. n_lags-1: [n_lags, ...] from
    x [T, ...] (componentwise, by FFT with zero padding)."""
    n_fft = scipy.fft.next_fast_len(2 * len(x))
    transform = scipy.fft.rfft(x, n=n_fft, axis=0)
    return scipy.fft.irfft(transform * transform.conj(), n=n_fft, axis=0)[:n_lags]


def _origin_counts(n_frames: int, n_lags: int, ndim: int) -> np.ndarray:
    """Number of time origins T - k of each lag k, shaped to divide a [n_lags, ...] array."""
    return (n_frames - np.arange(n_lags)).reshape(-1, *[1] * (ndim - 1))


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
                             atoms="name O", n_blocks: int = 4):
    """Mean-square displacement of atoms (default the oxygens) against lag time, with block errors.

    MSD(t) = <|r_i(t0 + t) - r_i(t0)|^2>, averaged over the selected atoms (an mdtraj selection
    string or an index array) and over all time origins t0 inside a block of frames, from
    ``unwrapped_positions`` (orthorhombic boxes). The lag times run in whole frames up to
    max_lag_ps, which must fit in a block.
    Returns (lag_ps [K] ps; msd [K] nm^2, the mean over blocks; msd_error [K] nm^2;
    block_msd [n_blocks, K] nm^2, each block's MSD, the input of ``diffusion_coefficient``).
    """
    indices = traj.topology.select(atoms) if isinstance(atoms, str) else np.asarray(atoms)
    lag_ps = _lag_times_ps(traj, max_lag_ps, n_blocks)
    n_lags = len(lag_ps)
    positions = unwrapped_positions(traj)[:, indices]
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


def diffusion_coefficient(lag_ps: np.ndarray, block_msd_nm2: np.ndarray, fit_range_ps):
    """Self-diffusion coefficient D = slope / 6 of a straight line through MSD(t) (nm^2/ps).

    block_msd_nm2 [n_blocks, K]: the per-block MSDs from ``mean_square_displacement``; each block
    is fitted over the lags inside fit_range_ps = (start, stop) (ps), and D and its error are the
    mean and standard error of the block values. Add ``yeh_hummer_correction`` for the infinite-
    system value. Returns (D, D_error) in nm^2/ps (1 nm^2/ps = 1e-6 m^2/s).
    """
    lag_ps, block_msd_nm2 = np.asarray(lag_ps, dtype=float), np.asarray(block_msd_nm2, float)
    inside = (lag_ps >= fit_range_ps[0]) & (lag_ps <= fit_range_ps[1])
    if inside.sum() < 2:
        raise ValueError(f"fit_range_ps={fit_range_ps} holds fewer than 2 lag times")
    slopes = np.polyfit(lag_ps[inside], block_msd_nm2[:, inside].T, 1)[0]
    return block_average(slopes / 6.0, len(slopes))


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


# --- orientational distributions --------------------------------------------------------------

def _harmonic_components(u: np.ndarray, degree: int) -> np.ndarray:
    """Real and imaginary parts of Y_lm(u), m = -l..l, l = degree: [..., 2 (2l + 1)] from unit
    vectors u [..., 3]. Their dot product between two directions a, b is
    sum_m Re(Y_lm(a) Y_lm(b)*) = (2l + 1) / (4 pi) P_l(a . b), and the sum of their squared means
    equals that of the real spherical harmonics (the two bases differ by a unitary map)."""
    u = np.asarray(u, dtype=float)
    norm = np.linalg.norm(u, axis=-1)
    theta = np.arccos(np.clip(u[..., 2] / norm, -1.0, 1.0))
    phi = np.mod(np.arctan2(u[..., 1], u[..., 0]), 2 * np.pi)
    orders = np.arange(-degree, degree + 1).reshape(-1, *[1] * theta.ndim)
    values = np.moveaxis(sph_harm_y(degree, orders, theta, phi), 0, -1)
    return np.concatenate([values.real, values.imag], axis=-1)


def orientation_anisotropy(u: np.ndarray, l_max: int = 4, n_blocks: int = 4):
    """Anisotropy of a distribution of directions: A = 4 pi sum_{l=1}^{l_max} sum_m <Y_lm(u)>^2.

    u [S, ..., 3]: directions (need not be normalised), axis 0 in time order (the blocks run along
    it), further axes (e.g. molecules) pooled. A is zero for an isotropic distribution and
    l_max (l_max + 2) for all u equal; Y_lm are real spherical harmonics. The plain estimate from n
    independent samples has expectation A + (l_max (l_max + 2) - A) / n; each block's estimate
    here has that finite-sample bias removed exactly (it is the mean of
    sum_l (2l + 1) P_l(u_i . u_j) over pairs i != j), so its expectation is A for independent
    samples. Correlated samples still raise the noise, which the block error includes.
    Returns (A, A_error, isotropic_bias): dimensionless; isotropic_bias = l_max (l_max + 2) / n,
    with n samples per block, is the expectation of the uncorrected estimate under isotropy,
    the size of the correction made.
    """
    u = np.asarray(u, dtype=float)
    bias_numerator = l_max * (l_max + 2)
    blocks = []
    for block in _block_slices(len(u), n_blocks):
        components = np.concatenate([_harmonic_components(u[block], degree).reshape(
            -1, 2 * (2 * degree + 1)) for degree in range(1, l_max + 1)], axis=-1)
        n = len(components)
        plain = 4 * np.pi * np.sum(components.mean(axis=0) ** 2)
        blocks.append((n * plain - bias_numerator) / (n - 1))
    anisotropy, error = block_average(np.array(blocks), n_blocks)
    return anisotropy, error, bias_numerator / n


def weighted_orientation_anisotropy(u: np.ndarray, weights: np.ndarray, l_max: int = 4):
    """The anisotropy A of ``orientation_anisotropy`` for a weighted set of directions.

    u [n, 3] directions, weights [n] (non-negative, any normalisation), e.g. uniformly random
    orientations with Boltzmann weights: A = 4 pi sum_{l=1}^{l_max} sum_m (sum_i w_i Y_lm(u_i))^2
    with the weights normalised. Returns (A, noise_floor): the floor l_max (l_max + 2) / n_eff,
    n_eff = 1 / sum_i w_i^2, is what uniformly random directions give on average, so A is
    resolved only well above it. Dimensionless.
    """
    weights = np.asarray(weights, dtype=float)
    weights = weights / weights.sum()
    components = np.concatenate([_harmonic_components(u, degree)
                                 for degree in range(1, l_max + 1)], axis=-1)
    anisotropy = 4 * np.pi * np.sum((weights @ components) ** 2)
    return float(anisotropy), float(l_max * (l_max + 2) * np.sum(weights ** 2))


def _gaussian_kernels(grid: np.ndarray, images: list, bandwidth: float) -> np.ndarray:
    """sum over images of N(grid - image; bandwidth): [S, G] from images, each [S], grid [G]."""
    return sum(np.exp(-0.5 * ((grid - image[:, None]) / bandwidth) ** 2)
               for image in images) / (np.sqrt(2 * np.pi) * bandwidth)


def orientation_density(u: np.ndarray, bandwidth: float = 0.1, n_cos: int = 50,
                        n_phi: int = 100):
    """Probability density of directions over (cos theta = u_z, phi = atan2(u_y, u_x)).

    u [..., 3]: directions (need not be normalised), all pooled. Gaussian kernel density estimate
    in x = cos theta and y = phi / pi, both spanning [-1, 1], with standard deviation
    ``bandwidth`` in each; reflecting boundaries at cos theta = +-1 (mirror images of the samples
    at 2 - x and -2 - x), periodic in phi (images at y +- 2). Normalised so that a uniform
    distribution on the sphere gives 1 everywhere (4 times the density in (x, y)).
    Returns (cos_theta [n_cos], phi [n_phi] rad in (-pi, pi): the centres of a regular grid;
    density [n_cos, n_phi], dimensionless).
    """
    u = np.asarray(u, dtype=float).reshape(-1, 3)
    x = u[:, 2] / np.linalg.norm(u, axis=-1)
    y = np.arctan2(u[:, 1], u[:, 0]) / np.pi
    cos_theta = -1 + (np.arange(n_cos) + 0.5) * 2 / n_cos
    phi_over_pi = -1 + (np.arange(n_phi) + 0.5) * 2 / n_phi
    density = np.zeros((n_cos, n_phi))
    for chunk in _frame_chunks(slice(0, len(u)), n_cos + n_phi):
        kernels_x = _gaussian_kernels(cos_theta, [x[chunk], 2 - x[chunk], -2 - x[chunk]],
                                      bandwidth)
        kernels_y = _gaussian_kernels(phi_over_pi, [y[chunk], y[chunk] + 2, y[chunk] - 2],
                                      bandwidth)
        density += kernels_x.T @ kernels_y
    return cos_theta, np.pi * phi_over_pi, 4.0 * density / len(u)


def orientational_free_energy(density: np.ndarray) -> np.ndarray:
    """F = -ln P in units of k_B T, from an ``orientation_density`` P (1 for a uniform one).

    Zero for a uniform distribution; +inf where P = 0.
    """
    with np.errstate(divide="ignore"):
        return -np.log(density)


# --- symmetry diagnostics (``omm_symbreak.simulate.read_diagnostics``) -------------------------

def angular_momentum_statistics(diagnostics: dict):
    """How well a run conserves its total angular momentum L (NVE; thermostats do not conserve L).

    diagnostics: the columns of a ``diagnostics.csv`` (``simulate.read_diagnostics``): time_ps
    [T] ps and L_x, L_y, L_z [T] amu nm^2/ps.
    Returns (wander, drift): wander = max_t |L(t) - L(0)| (amu nm^2/ps); drift [3] = dL/dt, the
    slopes of least-squares lines through L_x, L_y, L_z against time (amu nm^2/ps^2 = kJ/mol:
    the mean net torque that the drift amounts to).
    """
    time_ps = np.asarray(diagnostics["time_ps"], dtype=float)
    momentum = np.column_stack([diagnostics[f"L_{axis}"] for axis in "xyz"]).astype(float)
    wander = np.max(np.linalg.norm(momentum - momentum[0], axis=-1))
    drift = np.polyfit(time_ps, momentum, 1)[0]
    return wander, drift


def torque_statistics(diagnostics: dict, n_blocks: int = 4):
    """Root mean square of the net torque |tau| over a run, with its block error (kJ/mol).

    diagnostics: the columns of a ``diagnostics.csv`` (``simulate.read_diagnostics``):
    torque_x, torque_y, torque_z [T] kJ/mol, the net torque about the centre of mass. The error of
    the mean square comes from non-overlapping blocks of rows and is propagated to the root.
    Returns (rms, rms_error) in kJ/mol.
    """
    squares = sum(np.asarray(diagnostics[f"torque_{axis}"], dtype=float) ** 2 for axis in "xyz")
    mean_square, mean_square_error = block_average(squares, n_blocks)
    rms = np.sqrt(mean_square)
    return rms, mean_square_error / (2 * rms)


# --- spectra ----------------------------------------------------------------------------------

def power_spectrum(series: np.ndarray, dt_ps: float, max_lag_ps=None):
    """Power spectrum of a time series: autocorrelation (mean removed), Blackman window, Fourier.

    series [T] (any unit X) sampled every dt_ps (ps). The autocorrelation
    C(k) = (1/T) sum_t dx(t) dx(t + k), dx = series - its mean, is kept for lags |k| dt up to
    max_lag_ps (default the whole series) and multiplied by a Blackman window that is 1 at zero
    lag and 0 at max_lag_ps (K lags); its Fourier transform is evaluated from zero to the Nyquist
    frequency on a grid of spacing 1 / (n dt), n >= 4 K (zero padding).
    Returns (wavenumber [W] cm^-1; spectrum [W] in X^2 cm, the one-sided spectral density per
    cm^-1, normalised so that its integral over wavenumber (trapezoid rule on the returned grid)
    equals C(0), the variance of the series).
    """
    deviation = np.asarray(series, dtype=float) - np.mean(series)
    n_frames = len(deviation)
    n_lags = n_frames if max_lag_ps is None else min(int(round(max_lag_ps / dt_ps)) + 1, n_frames)
    window = np.blackman(2 * n_lags - 1)[n_lags - 1:]
    correlation = window * _lagged_products(deviation, n_lags) / n_frames
    n_fft = 2 * scipy.fft.next_fast_len(2 * n_lags)
    symmetric = np.zeros(n_fft)
    symmetric[:n_lags] = correlation
    symmetric[n_fft - n_lags + 1:] = correlation[:0:-1]
    two_sided = dt_ps * scipy.fft.rfft(symmetric).real  # X^2 ps, per 1/ps
    frequency = scipy.fft.rfftfreq(n_fft, dt_ps)  # 1/ps
    return frequency / _SPEED_OF_LIGHT_CM_PS, 2 * two_sided * _SPEED_OF_LIGHT_CM_PS
