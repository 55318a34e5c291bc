"""Orientations of water molecules: the molecular direction and its distribution.

Trajectories are ``mdtraj.Trajectory`` objects (F frames, N atoms, M molecules, nm) with water
as residues HOH with atoms O, H1, H2 in that order (``water_atom_indices`` checks it and raises
ValueError otherwise). Directions u are unit vectors (dimensionless); errors are standard errors
over non-overlapping blocks along the first axis (``statistics.block_average``).
"""

import mdtraj
import numpy as np
from scipy.special import sph_harm_y
from scipy.stats import chi2

from .statistics import (_block_slices, _frame_chunks, block_average, integrated_correlation_time,
                         statistical_inefficiency)

__all__ = ["water_atom_indices", "molecular_direction", "orientation_anisotropy",
           "anisotropy_between_blocks", "orientation_correlation_time",
           "isotropic_anisotropy_baseline", "weighted_orientation_anisotropy",
           "orientation_density", "orientational_free_energy"]


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
        components = _harmonics_up_to(u[block], l_max)
        components = components.reshape(-1, components.shape[-1])
        n = len(components)
        plain = 4 * np.pi * np.sum(components.mean(axis=0) ** 2)
        blocks.append((n * plain - bias_numerator) / (n - 1))
    anisotropy, error = block_average(np.array(blocks), n_blocks)
    return anisotropy, error, bias_numerator / n


def _harmonics_up_to(u: np.ndarray, l_max: int) -> np.ndarray:
    """The ``_harmonic_components`` of degrees 1 to l_max, concatenated: [..., 2 l_max (l_max + 3)]
    from directions u [..., 3]."""
    return np.concatenate([_harmonic_components(u, degree) for degree in range(1, l_max + 1)],
                          axis=-1)


def _real_harmonics(u: np.ndarray, degree: int) -> np.ndarray:
    """The 2l + 1 real spherical harmonics of degree l = ``degree`` times sqrt(4 pi), orthonormal
    in the uniform average over the sphere (each has mean square 1 there and they are
    uncorrelated): [..., 2l + 1] from directions u [..., 3]. The squares of their means sum to
    the degree's part of the anisotropy A of ``orientation_anisotropy``."""
    components = _harmonic_components(u, degree)  # Re Y_lm, then Im Y_lm, m = -l..l
    positive = slice(degree + 1, 2 * degree + 1)
    real = np.concatenate([components[..., degree:degree + 1],
                           np.sqrt(2) * components[..., positive],
                           np.sqrt(2) * components[..., 2 * degree + 1:][..., positive]], axis=-1)
    return np.sqrt(4 * np.pi) * real


def anisotropy_between_blocks(u: np.ndarray, l_max: int = 4, n_blocks: int = 4):
    """The anisotropy A of ``orientation_anisotropy`` from products of different blocks' means,
    free of the upward bias that time-correlated samples give the per-block estimate.

    u [S, ..., 3]: directions (need not be normalised), axis 0 in time order (the blocks run along
    it), further axes (molecules) pooled. With m_ic the mean over block i of the real spherical
    harmonic c (degrees 1..l_max, ``_real_harmonics``, scaled so that A = sum_c <c>^2),
    A = sum_c mean over the pairs i < j - 1 of non-adjacent blocks of m_ic m_jc. Its expectation
    is A when the means of non-adjacent blocks are independent, i.e. the blocks are longer than
    the correlation time of the molecule-averaged harmonics (``orientation_correlation_time``),
    however correlated the samples inside a block; leaving adjacent blocks out removes most of
    the correlation between block means (for an exponential decay and blocks of 3 correlation
    times, a fifth of the block variance between adjacent blocks, 1 % between blocks two
    apart). ``orientation_anisotropy`` corrects each block for independent samples only, so
    correlated ones raise it (by about 0.25 in 5 ps of liquid-64 at 20 fs a frame, whose true
    value is 0).
    Error: for independent normal block means of variance w_c and true mean a_c,
    Var = sum_c [P w_c^2 + (2 P + sum_i d_i (d_i - 1)) a_c^2 w_c] / P^2, with P pairs and d_i the
    pairs that block i is in, the components taken as independent (exact for an isotropic
    distribution); w_c is estimated by the sample variance s_c^2 of the block means, w_c^2 by
    s_c^4 (n - 1) / (n + 1) (n = n_blocks), a_c^2 w_c by the estimate of a_c^2 times s_c^2
    summed over c (unbiased; a negative sum counts as 0). Fewer blocks leave fewer pairs: for
    independent samples and A = 0 the error goes as n / sqrt((n - 1) (n - 2)), 1.6 times its
    many-block limit at 4 blocks and 2.1 times at 3, so it rises towards few blocks even where
    the blocks are far longer than the correlation time.
    Returns (A, A_error), dimensionless. ValueError for fewer than 3 blocks.
    """
    if n_blocks < 3:
        raise ValueError(f"pairs of non-adjacent blocks need at least 3 blocks, got {n_blocks}")
    u = np.asarray(u, dtype=float)
    components = np.concatenate([_real_harmonics(u, degree) for degree in range(1, l_max + 1)],
                                axis=-1)
    frame_means = components.reshape(len(u), -1, components.shape[-1]).mean(axis=1)
    means = np.stack([frame_means[block].mean(axis=0)
                      for block in _block_slices(len(u), n_blocks)])  # [n_blocks, C]
    first, second = np.triu_indices(n_blocks, 2)
    squares = np.mean(means[first] * means[second], axis=0)
    in_pairs = np.bincount(np.concatenate([first, second]), minlength=n_blocks)
    block_variance = means.var(axis=0, ddof=1)
    square_of_variance = block_variance ** 2 * (n_blocks - 1) / (n_blocks + 1)
    isotropic = np.sum(square_of_variance) / len(first)
    anisotropic = (2 * len(first) + np.sum(in_pairs * (in_pairs - 1))) * np.sum(
        squares * block_variance) / len(first) ** 2
    return float(np.sum(squares)), float(np.sqrt(isotropic + max(anisotropic, 0.0)))


def orientation_correlation_time(u: np.ndarray, interval_ps: float, l_max: int = 4) -> float:
    """The correlation time (ps) that the blocks of ``anisotropy_between_blocks`` must exceed:
    the longest ``integrated_correlation_time`` of the molecule-averaged real spherical
    harmonics of one degree, over degrees 1..l_max (in liquid water, degree 1: the slowest).

    u [S, ..., 3]: directions in time order, a sample every ``interval_ps``, further axes pooled.
    """
    u = np.asarray(u, dtype=float)
    return max(integrated_correlation_time(
        _real_harmonics(u, degree).reshape(len(u), -1, 2 * degree + 1).mean(axis=1), interval_ps)
        for degree in range(1, l_max + 1))


def isotropic_anisotropy_baseline(u: np.ndarray, l_max: int = 4, n_blocks: int = 4,
                                  quantile: float = 0.95) -> float:
    """The noise baseline of ``orientation_anisotropy``: the value of A that an isotropic sample
    of the same size and time correlation stays below with probability ``quantile``.

    u [T, M, 3] (or [T, 3]): directions in time order, as ``orientation_anisotropy`` takes them.
    Method: the harmonic components Y_lm(u) of degree l give its statistical inefficiency g_l
    (``statistical_inefficiency``, time correlation, molecules taken as independent), hence
    n_l = n / g_l independent samples in a block of n. In an isotropic sample the 2l + 1 block
    means of (4 pi)^(1/2) Y_lm are then independent normal with variance 1 / n_l, so that the
    plain estimate averaged over the blocks is sum_l chi^2_(2l+1)(n_blocks) / (n_l n_blocks),
    whose quantile is taken from the chi^2 of the same mean and variance (Satterthwaite);
    ``orientation_anisotropy`` subtracts l_max (l_max + 2) / n. Returns that quantile less
    l_max (l_max + 2) / n (dimensionless): an A below it is noise.
    """
    u = np.asarray(u, dtype=float)
    u = u.reshape(len(u), -1, 3)
    _block_slices(len(u), n_blocks)  # ValueError if the blocks do not fit
    n = len(u) // n_blocks * u.shape[1]
    counts = np.array([2 * degree + 1 for degree in range(1, l_max + 1)])
    independent = np.array([min(n, n / statistical_inefficiency(_harmonic_components(u, degree)))
                            for degree in range(1, l_max + 1)])
    mean = np.sum(counts / independent)
    variance = np.sum(2 * counts / independent ** 2) / n_blocks
    scale, degrees_of_freedom = variance / (2 * mean), 2 * mean ** 2 / variance
    return float(scale * chi2.ppf(quantile, degrees_of_freedom) - l_max * (l_max + 2) / n)


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
    components = _harmonics_up_to(u, l_max)
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
