"""Observables against analytic answers and independent implementations, on synthetic data."""

import importlib
import subprocess
import sys

import mdtraj
import numpy as np
import pytest
from scipy.special import eval_legendre

from conftest import random_rotation
from omm_symbreak import observables
from omm_symbreak.observables import (
    angular_momentum, angular_momentum_statistics, anisotropy_between_blocks, block_average,
    diffusion_coefficient, first_peak, integrated_correlation_time, isotropic_anisotropy_baseline,
    mean_square_displacement, molecular_direction, msd_exponent, orientation_anisotropy,
    orientation_autocorrelation, orientation_correlation_time, orientation_correlations,
    orientation_density, orientational_free_energy, power_spectrum, radial_distribution_oo,
    torque_statistics, unwrapped_positions, water_atom_indices, weighted_orientation_anisotropy,
    yeh_hummer_correction)
from omm_symbreak.observables import statistics
from omm_symbreak.rundir import read_diagnostics

OH_NM, HALF_ANGLE = 0.09572, np.radians(104.52 / 2)
MASSES_AMU = np.array([15.999, 1.008, 1.008])


def water_md_topology(n_molecules: int, atom_names=("O", "H1", "H2"), residue="HOH"):
    topology = mdtraj.Topology()
    chain = topology.add_chain()
    for _ in range(n_molecules):
        res = topology.add_residue(residue, chain)
        for name in atom_names:
            topology.add_atom(name, mdtraj.element.get_by_symbol(name[0]), res)
    return topology


def water_trajectory(oxygens_nm, directions, box_nm, dt_ps=0.1, rng=None):
    """HOH molecules [F, M] with O at ``oxygens_nm``, the H-H bisector along ``directions`` (unit)
    and a random molecular plane; every atom wrapped into the orthorhombic box on its own, so
    that molecules straddle the box boundary."""
    rng = rng or np.random.default_rng(0)
    u = np.asarray(directions, dtype=float)
    side = np.cross(u, rng.normal(size=u.shape[-2:]))  # one fixed plane per molecule
    side /= np.linalg.norm(side, axis=-1, keepdims=True)
    hydrogens = [oxygens_nm + OH_NM * (np.cos(HALF_ANGLE) * u + sign * np.sin(HALF_ANGLE) * side)
                 for sign in (1, -1)]
    xyz = np.stack([oxygens_nm, *hydrogens], axis=2).reshape(len(u), -1, 3)
    box = np.asarray(box_nm, dtype=float)
    n_frames = len(xyz)
    return mdtraj.Trajectory(np.mod(xyz, box), water_md_topology(u.shape[1]),
                             time=np.arange(n_frames) * dt_ps,
                             unitcell_lengths=np.tile(box, (n_frames, 1)),
                             unitcell_angles=np.full((n_frames, 3), 90.0))


def random_unit_vectors(rng, shape):
    v = rng.normal(size=(*shape, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# --- the package ------------------------------------------------------------------------

def test_the_package_exposes_every_public_name_of_its_modules():
    modules = [importlib.import_module(f"omm_symbreak.observables.{name}") for name in
               ("mechanics", "statistics", "orientation", "structure", "dynamics", "spectra")]
    assert sorted(observables.__all__) == sorted(name for m in modules for name in m.__all__)
    for module in modules:
        for name in module.__all__:
            assert getattr(observables, name) is getattr(module, name)


def test_mechanics_imports_without_mdtraj():
    subprocess.run([sys.executable, "-c", "import omm_symbreak.observables.mechanics, sys; "
                    "assert 'mdtraj' not in sys.modules"], check=True)


# --- existing functions and topology ------------------------------------------------------

def test_rigid_rotation_gives_angular_momentum_inertia_times_omega():
    rng = np.random.default_rng(1)
    positions = np.array([[0.0, 0.0, 0.0], [OH_NM, 0.0, 0.0],
                          [OH_NM * np.cos(2 * HALF_ANGLE), OH_NM * np.sin(2 * HALF_ANGLE), 0.0]])
    positions = positions @ random_rotation(rng).T + 1.3
    omega = np.array([3.0, -5.0, 7.0])  # rad/ps
    com = (MASSES_AMU @ positions) / MASSES_AMU.sum()
    relative = positions - com
    velocities = np.array([0.4, -0.2, 0.1]) + np.cross(omega, relative)  # plus a drift
    inertia = sum(m * (r @ r * np.eye(3) - np.outer(r, r)) for m, r in zip(MASSES_AMU, relative))
    np.testing.assert_allclose(angular_momentum(positions, velocities, MASSES_AMU),
                               inertia @ omega, rtol=1e-12)


@pytest.mark.parametrize("names, residue", [(("H1", "O", "H2"), "HOH"), (("O", "H1", "H2"), "SOL"),
                                            (("O", "H1"), "HOH")])
def test_non_water_topology_raises_a_clear_error(names, residue):
    topology = water_md_topology(2, names, residue)
    with pytest.raises(ValueError, match="HOH with atoms O, H1, H2"):
        water_atom_indices(topology)
    traj = mdtraj.Trajectory(np.zeros((1, topology.n_atoms, 3)), topology)
    with pytest.raises(ValueError, match="HOH with atoms O, H1, H2"):
        molecular_direction(traj)


def test_water_atom_indices_and_directions_of_molecules_split_across_the_box():
    rng = np.random.default_rng(2)
    box = np.array([1.0, 1.2, 1.4])
    oxygens = np.array([[[0.99, 0.5, 0.5], [0.5, 0.01, 0.7], [0.3, 0.6, 1.395]]])
    u = random_unit_vectors(rng, (1, 3))
    u[0, 0] = [1.0, 0.0, 0.0]  # both H of the first molecule beyond x = 1
    traj = water_trajectory(oxygens, u, box, rng=rng)
    assert np.any(np.abs(np.diff(traj.xyz[0, :3, 0])) > 0.5)  # the first molecule is split
    o, h1, h2 = water_atom_indices(traj.topology)
    np.testing.assert_array_equal(np.stack([o, h1, h2]), [[0, 3, 6], [1, 4, 7], [2, 5, 8]])
    np.testing.assert_allclose(molecular_direction(traj), u, atol=1e-5)


# --- block averages ----------------------------------------------------------------------

def test_block_average_by_hand_and_on_white_noise():
    mean, error = block_average(np.arange(10.0), 3)  # blocks 0-2, 3-5, 6-8: means 1, 4, 7
    assert mean == pytest.approx(4.0) and error == pytest.approx(np.sqrt(3.0))
    noise = np.random.default_rng(3).normal(scale=2.0, size=(40000, 2))
    mean, error = block_average(noise, 20)
    assert error.shape == (2,)
    np.testing.assert_allclose(error, 2.0 / np.sqrt(40000), rtol=0.5)
    assert np.all(np.abs(mean) < 5 * error)
    with pytest.raises(ValueError):
        block_average(np.arange(3.0), 4)


def ar1_series(rng, phi: float, n_samples: int, n_columns: int = 1) -> np.ndarray:
    """x_t = phi x_(t-1) + e_t, e_t standard normal, started in equilibrium (variance
    1 / (1 - phi^2)): [n_samples, n_columns]."""
    x = np.empty((n_samples, n_columns))
    x[0] = rng.normal(size=n_columns) / np.sqrt(1 - phi ** 2)
    noise = rng.normal(size=(n_samples, n_columns))
    for t in range(1, n_samples):
        x[t] = phi * x[t - 1] + noise[t]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_integrated_correlation_time_of_ar1_series(phi):
    """tau = interval (1 + phi) / (2 (1 - phi)): 0.05, 0.15 and 0.95 ps at 0.1 ps a sample (the
    estimate scatters by about 4 % at phi = 0.9 over 2 x 100000 samples)."""
    x = ar1_series(np.random.default_rng(5), phi, 100000, n_columns=2)
    expected = 0.1 * (1 + phi) / (2 * (1 - phi))
    assert integrated_correlation_time(x, 0.1) == pytest.approx(expected, rel=0.12)  # 3 sd


# --- structure ---------------------------------------------------------------------------

def test_ideal_gas_has_g_of_r_equal_to_one():
    rng = np.random.default_rng(4)
    n_frames, n_molecules, box = 400, 64, np.full(3, 2.0)
    traj = water_trajectory(rng.uniform(0, 2.0, (n_frames, n_molecules, 3)),
                            random_unit_vectors(rng, (n_frames, n_molecules)), box, rng=rng)
    r, g, error = radial_distribution_oo(traj, n_blocks=20)
    assert r[-1] == pytest.approx(0.799) and len(r) == 400  # min(0.8, L / 2), 0.002 bins
    far = r > 0.1  # the first bins hold almost no pairs
    assert np.all(np.abs(g[far] - 1) < 5 * error[far])
    assert np.mean(g[r > 0.3]) == pytest.approx(1.0, abs=0.01)  # M / (M - 1) would be 1.6% off


def test_cubic_lattice_coordination_number_and_first_peak():
    a, n_side = 0.301, 4  # a sits at a bin centre of the 0.002 nm bins
    sites = a * np.array(list(np.ndindex(n_side, n_side, n_side)), dtype=float)
    n_molecules, box = len(sites), np.full(3, n_side * a)
    traj = water_trajectory(np.tile(sites, (4, 1, 1)),
                            np.tile([0.0, 0.0, 1.0], (4, n_molecules, 1)), box)
    smoothing = 0.01
    r, g, error = radial_distribution_oo(traj, r_max_nm=0.38, smoothing_nm=smoothing)
    np.testing.assert_allclose(error, 0.0, atol=1e-9)  # identical frames
    pair_density = (n_molecules - 1) / np.prod(box)  # normalisation with M (M - 1) / 2 pairs
    shell = r < 0.36
    coordination = pair_density * np.sum(g[shell] * 4 * np.pi * r[shell] ** 2 * 0.002)
    assert coordination == pytest.approx(6.0, rel=5e-3)
    position, height = first_peak(r, g)
    assert position == pytest.approx(a, abs=2e-4)
    # six neighbours in a delta shell, spread by the Gaussian: 6 / (rho 4 pi a^2 sqrt(2 pi) s)
    expected = 6 / (pair_density * 4 * np.pi * a ** 2 * np.sqrt(2 * np.pi) * smoothing)
    assert height == pytest.approx(expected, rel=0.01)


def test_frame_chunks_give_the_same_results(monkeypatch):
    rng = np.random.default_rng(11)
    n_frames, n_molecules = 20, 16
    traj = water_trajectory(rng.uniform(0, 1.6, (n_frames, n_molecules, 3)),
                            random_unit_vectors(rng, (n_frames, n_molecules)), np.full(3, 1.6),
                            rng=rng)
    traj.unitcell_lengths = traj.unitcell_lengths * rng.uniform(1.0, 1.1, (n_frames, 1))  # NPT
    directions = random_unit_vectors(rng, (1000,))

    def results():
        return [*radial_distribution_oo(traj, n_blocks=2),
                *orientation_correlations(traj, r_max_nm=0.7, n_blocks=2),
                *orientation_density(directions)]

    whole = results()
    n_pairs = n_molecules * (n_molecules - 1) // 2
    monkeypatch.setattr(statistics, "_CHUNK_VALUES", 3 * n_pairs)  # 3 frames, 16 samples a chunk
    for chunked, expected in zip(results(), whole):
        np.testing.assert_allclose(chunked, expected, rtol=1e-12, atol=1e-12)


def test_first_peak_between_grid_points():
    r = np.arange(0.0, 0.8, 0.002)
    g = (1 + 2 * np.exp(-(r - 0.2813) ** 2 / (2 * 0.015 ** 2)) + 0.5 * np.exp(
        -(r - 0.45) ** 2 / (2 * 0.03 ** 2))) * (r > 0.23)
    position, height = first_peak(r, g)
    assert position == pytest.approx(0.2813, abs=1e-4)
    assert height == pytest.approx(3.0, rel=2e-3)


def test_orientation_correlations_on_a_line_are_exact():
    spacing, n_molecules = 0.3025, 8  # distances 0.3025, 0.605, 0.9075 inside 0.01 nm bins
    box = np.array([2.0, 2.0, n_molecules * spacing])
    oxygens = np.tile([0.5, 0.5, 0.0] + spacing * np.arange(n_molecules)[:, None] * [0, 0, 1],
                      (4, 1, 1))
    z, x = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    alternating = (-1.0) ** np.arange(n_molecules)[:, None] * z
    # along the line r_hat = +-z: c_L = u_i,z u_j,z and c_T = u_i . u_j - c_L
    for directions, expected_l, expected_t in [(z, [1, 1, 1], 0), (x, 0, [1, 1, 1]),
                                               (alternating, [-1, 1, -1], 0)]:
        traj = water_trajectory(oxygens, np.broadcast_to(directions, oxygens.shape), box)
        r, c_l, c_l_error, c_t, c_t_error = orientation_correlations(traj, r_max_nm=1.0,
                                                                     n_blocks=2)
        filled = np.flatnonzero(np.isfinite(c_l))
        np.testing.assert_allclose(r[filled], [0.305, 0.605, 0.905], atol=1e-9)
        np.testing.assert_allclose(c_l[filled], expected_l, atol=1e-5)
        np.testing.assert_allclose(c_t[filled], expected_t, atol=1e-5)
        np.testing.assert_allclose(c_l_error[filled], 0, atol=1e-6)


def test_aligned_molecules_at_random_positions_give_one_third_and_two_thirds():
    rng = np.random.default_rng(5)
    n_frames, n_molecules = 40, 64
    u = np.broadcast_to(random_unit_vectors(rng, (1, 1)), (n_frames, n_molecules, 3))
    traj = water_trajectory(rng.uniform(0, 2.0, (n_frames, n_molecules, 3)), u, np.full(3, 2.0),
                            rng=rng)
    r, c_l, c_l_error, c_t, c_t_error = orientation_correlations(traj, bin_width_nm=0.05,
                                                                 n_blocks=8)
    far = r > 0.2
    # pair directions are isotropic: <(r_hat . e)^2> = 1/3; u_i . u_j = 1
    assert np.all(np.abs(c_l[far] - 1 / 3) < 5 * c_l_error[far])
    assert np.all(c_l_error[far] < 0.03)
    np.testing.assert_allclose(c_l[far] + c_t[far], 1.0, atol=1e-5)


# --- dynamics ----------------------------------------------------------------------------

def test_brownian_particles_diffuse_with_msd_slope_six_d():
    rng = np.random.default_rng(6)
    n_frames, n_molecules, dt, diffusion, box = 2000, 100, 0.1, 0.002, np.full(3, 1.5)
    steps = rng.normal(scale=np.sqrt(2 * diffusion * dt), size=(n_frames, n_molecules, 3))
    walk = rng.uniform(0, 1.5, (1, n_molecules, 3)) + np.cumsum(steps, axis=0)
    traj = water_trajectory(walk, np.broadcast_to([0.0, 0.0, 1.0], walk.shape), box, dt_ps=dt)
    crossed = np.abs(np.diff(traj.xyz[:, ::3], axis=0)) > 0.5 * box
    assert crossed.any(axis=(0, 2)).mean() > 0.9  # nearly every molecule crosses the box

    unwrapped = unwrapped_positions(traj)[:, ::3]  # the oxygens
    shift = (walk - unwrapped) / box  # a constant whole number of boxes per atom
    np.testing.assert_allclose(shift, np.broadcast_to(np.round(shift[:1]), shift.shape), atol=1e-4)

    # independent particles, not a system whose centre of mass is fixed: the plain MSD
    lag, msd, msd_error, block_msd = mean_square_displacement(
        traj, max_lag_ps=5.0, n_blocks=8, subtract_centre_of_mass=False)
    assert len(lag) == 51 and lag[-1] == pytest.approx(5.0) and block_msd.shape == (8, 51)
    assert msd[0] == pytest.approx(0.0, abs=1e-10)
    assert np.all(np.abs(msd[1:] - 6 * diffusion * lag[1:]) < 4 * msd_error[1:])
    d, d_error = diffusion_coefficient(lag, block_msd, fit_range_ps=(1.0, 5.0))
    assert abs(d - diffusion) < 4 * d_error and d_error < 0.05 * diffusion
    assert d == pytest.approx(diffusion, rel=0.06)
    alpha, alpha_error = msd_exponent(lag, block_msd, fit_range_ps=(1.0, 5.0))
    assert abs(alpha - 1) < 4 * alpha_error and alpha == pytest.approx(1.0, abs=0.05)


def test_msd_relative_to_the_centre_of_mass_drops_the_systems_own_random_walk():
    # independent walks (D) plus one walk that moves every molecule alike (D_common), as a
    # Langevin thermostat's kicks move the system's centre of mass: relative to the centre of
    # mass, the molecules diffuse with D (1 - 1/M) (their mean walk is subtracted too); without
    # the subtraction, with D + D_common
    rng = np.random.default_rng(8)
    n_frames, n_molecules, dt, diffusion, common, box = 2000, 100, 0.1, 0.002, 0.004, 1.5
    steps = rng.normal(scale=np.sqrt(2 * diffusion * dt), size=(n_frames, n_molecules, 3))
    drift = np.cumsum(rng.normal(scale=np.sqrt(2 * common * dt), size=(n_frames, 1, 3)), axis=0)
    walk = rng.uniform(0, box, (1, n_molecules, 3)) + np.cumsum(steps, axis=0) + drift
    traj = water_trajectory(walk, np.broadcast_to([0.0, 0.0, 1.0], walk.shape),
                            np.full(3, box), dt_ps=dt)
    fit_range = (1.0, 5.0)
    for subtract, expected in ((True, diffusion * (1 - 1 / n_molecules)),
                               (False, diffusion + common)):
        lag, _, _, block_msd = mean_square_displacement(traj, 5.0, n_blocks=8,
                                                        subtract_centre_of_mass=subtract)
        d, d_error = diffusion_coefficient(lag, block_msd, fit_range)
        assert abs(d - expected) < 4 * d_error < 0.5 * common, (subtract, d, d_error, expected)


def test_msd_exponent_of_ballistic_and_caged_motion():
    lag = np.linspace(0.0, 2.0, 41)
    ballistic = np.outer([1.0, 2.0, 3.0], lag ** 2)  # MSD = <v^2> t^2, one speed per block
    assert msd_exponent(lag, ballistic, (0.1, 2.0)) == pytest.approx((2.0, 0.0), abs=1e-12)
    caged = np.outer([1.0, 1.1], 1 - np.exp(-lag))  # a plateau: alpha falls below 1
    alpha, _ = msd_exponent(lag, caged, (1.0, 2.0))
    assert 0 < alpha < 0.6
    with pytest.raises(ValueError, match="above 0"):
        msd_exponent(lag, ballistic, (0.0, 2.0))


def test_yeh_hummer_correction_for_water_in_a_512_molecule_box():
    # 1.380649e-23 J/K * 300 K * 2.837297 / (6 pi * 0.85e-3 Pa s * 2.4861e-9 m) = 2.9503e-10 m^2/s
    assert yeh_hummer_correction(2.4861, 300.0, 0.85e-3) == pytest.approx(2.9503e-4, rel=1e-4)


def test_molecules_rotating_at_constant_angular_velocity():
    rng = np.random.default_rng(7)
    n_frames, n_molecules, dt, omega = 404, 20, 0.05, 2 * np.pi / 3.0  # period 3 ps
    axes = random_unit_vectors(rng, (n_molecules,))
    first = np.cross(axes, random_unit_vectors(rng, (n_molecules,)))
    first /= np.linalg.norm(first, axis=-1, keepdims=True)
    second = np.cross(axes, first)
    angle = omega * np.arange(n_frames)[:, None, None] * dt + rng.uniform(0, 7, (n_molecules, 1))
    u = np.cos(angle) * first + np.sin(angle) * second  # perpendicular to the rotation axis
    oxygens = np.broadcast_to(rng.uniform(0, 1.0, (n_molecules, 3)), u.shape)
    traj = water_trajectory(oxygens, u, np.full(3, 1.0), dt_ps=dt, rng=rng)
    lag, c1, c1_error = orientation_autocorrelation(traj, max_lag_ps=5.0, order=1)
    assert len(lag) == 101  # the whole block of 101 frames
    np.testing.assert_allclose(c1, np.cos(omega * lag), atol=2e-5)
    np.testing.assert_allclose(c1_error, 0, atol=2e-5)
    lag, c2, _ = orientation_autocorrelation(traj, max_lag_ps=5.0, order=2)
    np.testing.assert_allclose(c2, 1.5 * np.cos(omega * lag) ** 2 - 0.5, atol=2e-5)
    with pytest.raises(ValueError, match="block"):
        orientation_autocorrelation(traj, max_lag_ps=6.0)


# --- orientational distributions ---------------------------------------------------------

def test_anisotropy_of_isotropic_aligned_and_arbitrary_directions():
    rng = np.random.default_rng(8)
    anisotropy, error, bias = orientation_anisotropy(random_unit_vectors(rng, (4000,)))
    assert bias == pytest.approx(24 / 1000)  # l_max (l_max + 2) / n for 1000 samples per block
    assert abs(anisotropy) < 4 * error and error < bias / 3  # the bias would be visible

    aligned, aligned_error, _ = orientation_anisotropy(np.tile([0.0, 0.0, 2.0], (400, 1)))
    # all u equal: sum_l (2l + 1) over l = 1..4 (the addition theorem with P_l(1) = 1)
    assert aligned == pytest.approx(24.0) and aligned_error == pytest.approx(0.0, abs=1e-9)

    # arbitrary directions: the mean over pairs i != j of sum_l (2l + 1) P_l(u_i . u_j)
    u = random_unit_vectors(rng, (60, 2)) + [0.3, 0.0, 0.8]  # [time, molecule, 3], not unit
    unit = u / np.linalg.norm(u, axis=-1, keepdims=True)
    expected = []
    for block in (unit[:30].reshape(-1, 3), unit[30:].reshape(-1, 3)):
        cosines = (block @ block.T)[~np.eye(len(block), dtype=bool)]
        expected.append(sum((2 * l + 1) * eval_legendre(l, cosines).mean() for l in (1, 2, 3)))
    anisotropy, _, _ = orientation_anisotropy(u, l_max=3, n_blocks=2)
    assert anisotropy == pytest.approx(np.mean(expected), rel=1e-10)


def _walks_on_the_sphere(rng, n_steps: int, n_walkers: int, step: float) -> np.ndarray:
    """Isotropic, time-correlated directions [n_steps, n_walkers, 3]: random walks on the
    sphere (u -> normalised u + ``step`` xi, xi standard normal) from uniform starts; the
    order-1 correlation time is about 1 / step^2 steps."""
    u = random_unit_vectors(rng, (n_walkers,))
    walks = np.empty((n_steps, n_walkers, 3))
    for t in range(n_steps):
        u = u + step * rng.normal(size=u.shape)
        u /= np.linalg.norm(u, axis=-1, keepdims=True)
        walks[t] = u
    return walks


def test_the_anisotropy_baseline_is_the_95th_percentile_of_isotropic_correlated_samples():
    """Isotropic random walks on the sphere (2000 steps, 3 walkers, correlation time about 25
    steps), 150 realisations: about 95% of their anisotropies lie below their baselines, which
    are 20 times those of independent samples of the same size; a sample tilted towards z lies
    far above its own."""
    rng = np.random.default_rng(11)
    below, baselines = [], []
    for _ in range(150):
        u = _walks_on_the_sphere(rng, 2000, 3, 0.2)
        baseline = isotropic_anisotropy_baseline(u)
        below.append(orientation_anisotropy(u)[0] < baseline)
        baselines.append(baseline)
    assert 0.88 < np.mean(below) < 0.99
    independent = isotropic_anisotropy_baseline(random_unit_vectors(rng, (2000, 3)))
    assert np.median(baselines) > 10 * independent
    tilted = u + [0.0, 0.0, 1.5]
    assert orientation_anisotropy(tilted)[0] > 3 * isotropic_anisotropy_baseline(tilted)


def test_anisotropy_between_blocks_is_the_mean_product_of_non_adjacent_blocks_means():
    """By the addition theorem, sum_c <c>_i <c>_j over the harmonics of degrees 1..3 is the
    mean of sum_l (2l + 1) P_l(u_p . u_q) over p in block i and q in block j; 5 blocks have the
    non-adjacent pairs (0, 2), (0, 3), (0, 4), (1, 3), (1, 4), (2, 4)."""
    rng = np.random.default_rng(4)
    u = random_unit_vectors(rng, (15, 2)) + [0.0, 0.3, 0.0]  # 5 blocks of 3 frames, 2 molecules
    unit = u / np.linalg.norm(u, axis=-1, keepdims=True)
    blocks = unit.reshape(5, 6, 3)
    pairs = [(0, 2), (0, 3), (0, 4), (1, 3), (1, 4), (2, 4)]
    products = [sum((2 * l + 1) * eval_legendre(l, blocks[i] @ blocks[j].T).mean()
                    for l in (1, 2, 3)) for i, j in pairs]
    anisotropy, _ = anisotropy_between_blocks(u, l_max=3, n_blocks=5)
    assert anisotropy == pytest.approx(np.mean(products), rel=1e-10)
    with pytest.raises(ValueError, match="3 blocks"):
        anisotropy_between_blocks(u, n_blocks=2)


def test_anisotropy_between_blocks_is_unbiased_for_correlated_isotropic_samples():
    """Isotropic random walks on the sphere (2000 steps, 3 walkers, correlation time about 25
    steps), 100 realisations: the per-block estimate of orientation_anisotropy is biased upwards,
    the estimate between blocks of 250 steps is not, and its error matches its scatter."""
    rng = np.random.default_rng(12)
    between, errors, within = [], [], []
    for _ in range(100):
        u = _walks_on_the_sphere(rng, 2000, 3, 0.2)
        anisotropy, error = anisotropy_between_blocks(u, n_blocks=8)
        between.append(anisotropy)
        errors.append(error)
        within.append(orientation_anisotropy(u, n_blocks=8)[0])
    scatter = np.std(between, ddof=1)
    assert abs(np.mean(between)) < 3 * scatter / np.sqrt(100)
    assert np.mean(within) > 10 * scatter / np.sqrt(100) + abs(np.mean(between))
    assert 0.7 < np.sqrt(np.mean(np.square(errors))) / scatter < 1.4
    assert orientation_correlation_time(u, 1.0) == pytest.approx(1 / 0.2 ** 2, rel=0.5)


def test_anisotropy_between_blocks_of_a_dipolar_density():
    """Independent samples of the density 1 + a cos(theta) (a = 0.5): A = a^2 / 3 (only l = 1,
    <cos theta> = a / 3), 200 realisations of 2000 samples in 10 blocks: the mean is A and the
    error (with its 4 a_c^2 e_c^2 term) matches the scatter."""
    rng = np.random.default_rng(13)
    values, errors = [], []
    for _ in range(200):
        u = random_unit_vectors(rng, (6000,))
        u = u[rng.random(len(u)) < (1 + 0.5 * u[:, 2]) / 1.5][:2000]
        anisotropy, error = anisotropy_between_blocks(u, n_blocks=10)
        values.append(anisotropy)
        errors.append(error)
    scatter = np.std(values, ddof=1)
    assert np.mean(values) == pytest.approx(0.5 ** 2 / 3, abs=3 * scatter / np.sqrt(200))
    assert 0.8 < np.sqrt(np.mean(np.square(errors))) / scatter < 1.25


def test_weighted_anisotropy_of_a_dipolar_density_and_the_addition_theorem():
    rng = np.random.default_rng(9)
    u = random_unit_vectors(rng, (200000,))
    # density 1 + a cos(theta): only l = 1, <cos theta> = a / 3, so A = 4 pi (3 / 4 pi) (a / 3)^2
    anisotropy, floor = weighted_orientation_anisotropy(u, 1 + 0.5 * u[:, 2])
    assert anisotropy == pytest.approx(0.5 ** 2 / 3, abs=0.004) and floor < 2e-4
    equal, equal_floor = weighted_orientation_anisotropy(u, np.ones(len(u)))
    assert equal_floor == pytest.approx(24 / len(u)) and equal < 5 * equal_floor
    # any weights: sum_ij w_i w_j sum_l (2l + 1) P_l(u_i . u_j), weights normalised
    v, w = random_unit_vectors(rng, (50,)) + [0.0, 0.4, 0.0], rng.random(50)
    unit, w = v / np.linalg.norm(v, axis=-1, keepdims=True), w / w.sum()
    cosines = unit @ unit.T
    expected = sum((2 * l + 1) * w @ eval_legendre(l, cosines) @ w for l in (1, 2, 3, 4))
    assert weighted_orientation_anisotropy(v, 7 * w)[0] == pytest.approx(expected, rel=1e-10)


def test_orientation_density_is_normalised_uniform_and_wraps():
    rng = np.random.default_rng(9)
    cos_theta, phi, density = orientation_density(random_unit_vectors(rng, (50000,)))
    assert density.shape == (50, 100) and cos_theta.shape == (50,) and phi.shape == (100,)
    assert np.all(np.abs(cos_theta) < 1) and np.all(np.abs(phi) < np.pi)
    assert density.mean() == pytest.approx(1.0, abs=2e-3)
    assert np.all(np.abs(density - 1) < 0.25)
    assert np.abs(orientational_free_energy(density)).max() < 0.3

    # near the pole and at the phi = +-pi seam: mass reflected back, wrapped around
    theta, azimuth = np.arccos(0.99), np.pi - 0.02
    u = np.array([[np.sin(theta) * np.cos(azimuth), np.sin(theta) * np.sin(azimuth), 0.99]])
    _, phi, density = orientation_density(np.repeat(u, 10, axis=0))
    assert density.mean() == pytest.approx(1.0, rel=0.01)  # integral over the sphere
    assert np.unravel_index(np.argmax(density), density.shape) in [(49, 99), (49, 0)]
    np.testing.assert_allclose(density[:, 0], density[:, -1], rtol=0.25)
    np.testing.assert_allclose(density[:, 3], density[:, -4], rtol=0.25)
    assert density[-1, 50] < 1e-6  # phi = 0 is far away
    assert orientational_free_energy(np.array([0.0, np.exp(-2.0)])).tolist() == [np.inf, 2.0]


# --- symmetry diagnostics and spectra ------------------------------------------------------

def test_angular_momentum_and_torque_statistics_from_a_diagnostics_file(tmp_path):
    rng = np.random.default_rng(10)
    time_ps = np.arange(4000) * 0.01
    drift = np.array([0.5, -1.0, 2.0])  # amu nm^2/ps^2
    momentum = [1.0, 2.0, 3.0] + time_ps[:, None] * drift
    torques = rng.normal(scale=2.0, size=(len(time_ps), 3))
    columns = ["step", "time_ps", "L_x", "L_y", "L_z", "torque_x", "torque_y", "torque_z"]
    rows = np.column_stack([np.arange(len(time_ps)), time_ps, momentum, torques])
    path = tmp_path / "diagnostics.csv"
    path.write_text("# omm-symbreak symmetry diagnostics\n" + ",".join(columns) + "\n"
                    + "\n".join(",".join(f"{v:.10g}" for v in row) for row in rows) + "\n")
    diagnostics = read_diagnostics(path)
    wander, slope = angular_momentum_statistics(diagnostics)
    assert wander == pytest.approx(np.linalg.norm(drift) * time_ps[-1], rel=1e-8)
    np.testing.assert_allclose(slope, drift, rtol=1e-8)
    rms, rms_error = torque_statistics(diagnostics)
    expected = 2.0 * np.sqrt(3)  # three Gaussian components of standard deviation 2
    assert abs(rms - expected) < 4 * rms_error and rms_error < 0.03 * expected


def test_power_spectrum_of_cosines_peaks_at_their_wavenumbers():
    dt = 0.0005  # ps
    t = np.arange(8000) * dt
    c = 2.99792458e-2  # cm/ps
    series = 5.0 + 2.0 * np.cos(2 * np.pi * c * 1600.0 * t) + np.cos(2 * np.pi * c * 3700.0 * t + 1)
    wavenumber, spectrum = power_spectrum(series, dt, max_lag_ps=1.0)
    assert wavenumber[0] == 0 and wavenumber[-1] == pytest.approx(1 / (2 * dt) / c)
    peaks = [i for i in range(1, len(spectrum) - 1)
             if spectrum[i] > spectrum[i - 1] and spectrum[i] > spectrum[i + 1]]
    top = sorted(peaks, key=lambda i: spectrum[i])[-2:]
    np.testing.assert_allclose(sorted(wavenumber[top]), [1600.0, 3700.0], atol=5.0)
    assert spectrum[top[1]] / spectrum[top[0]] == pytest.approx(4.0, rel=0.1)  # amplitude^2
    assert np.trapezoid(spectrum, wavenumber) == pytest.approx(np.var(series), rel=1e-8)
    assert spectrum[0] < 1e-3 * spectrum[top[1]]  # the mean of 5 is removed
    away = np.min(np.abs(wavenumber[:, None] - [1600.0, 3700.0]), axis=1) > 300
    assert np.all(np.abs(spectrum[away]) < 1e-3 * spectrum[top[1]])  # Blackman: little leakage


def test_first_peak_with_block_errors_on_a_vibrating_lattice():
    """Oxygens on a simple cubic lattice (a = 0.3 nm) with Gaussian jitter: the first g_OO peak
    lies near a, with a small block error."""
    rng = np.random.default_rng(11)
    n_side, a, n_frames = 5, 0.3, 40
    lattice = np.stack(np.meshgrid(*[np.arange(n_side) * a] * 3, indexing="ij"), -1).reshape(-1, 3)
    oxygens = lattice + rng.normal(scale=0.01, size=(n_frames, *lattice.shape))
    directions = random_unit_vectors(rng, (n_frames, len(lattice)))
    trajectory = water_trajectory(oxygens, directions, [n_side * a] * 3, rng=rng)
    (position, position_error), (height, height_error) = observables.first_peak_oo(trajectory, 4)
    assert abs(position - a) < 0.005 and 0 < position_error < 0.003
    # 6 neighbours at a, spread by the relative jitter (sqrt 2 x 0.01 nm) and the 0.01 nm
    # smoothing: a Gaussian shell of height 6 / (rho 4 pi a^2 sqrt(2 pi) sigma)
    sigma = np.sqrt(2 * 0.01 ** 2 + 0.01 ** 2)
    expected = 6 / (a ** -3 * 4 * np.pi * a ** 2 * np.sqrt(2 * np.pi) * sigma)
    assert height == pytest.approx(expected, rel=0.1) and 0 < height_error < 0.1 * height
