"""Figure 2: structure of liquid water at 300 K, raw model vs symmetrized (MTS) vs q-TIP4P/F.

    python analysis/fig2_liquid_structure.py [--quick] [--model FILE] [--analyse-only]
                                             [--archive DIR]

Runs (or resumes) the three liquid-64 runs of ``liquid_runs.py`` and plots, with block errors:
orientational free energy maps F(cos theta, phi) of the molecular direction u in the lab frame
(raw, MTS, reference) with their anisotropy A; g_OO(r); the longitudinal and transverse
orientation correlations c_L(r), c_T(r) (averages over the pairs at distance r, i.e. already
divided by g). A comes from products of non-adjacent blocks' means
(``observables.anisotropy_between_blocks``): the per-block estimate is raised by the frames'
time correlation (about 0.25 over 5 ps for the reference, whose true A is 0), this one is not.

The JSON's "verdicts" (``verdicts.py``) hold, for the first peak of g_OO (position, height),
c_L and c_T in the bin CORRELATION_BIN_NM and A: each run's value and error at 4 blocks, the
error at other block lengths (its convergence), the correlation time the blocks must exceed
(of the series named there), and the verdicts raw vs MTS, raw vs reference and MTS vs reference
at 2 combined standard errors, with the smallest difference the data rule out where they are
the same. A run too short for a quantity's blocks is "not measured" there.
The JSON also gives Delta = E_raw - E_avg (the diagnostic grid) of the whole box along the two
ML runs (from their diagnostics, every 1 ps). Writes
analysis/results/fig2_liquid_structure[_quick].json and .png; the free-energy maps go next to
the runs (``liquid_runs.run_root``: analysis/campaigns/liquid/, or analysis/runs/liquid-quick/),
to fig2_liquid_structure.json (with all the other numbers).
"""

import functools
import json

import mdtraj
import numpy as np

import verdicts
from figures import figure_arguments, without_series, write_figure, write_series
from liquid_runs import (ARCHIVE, COMPARISONS, MTS_RUN, analysed_from_ps, run_all, run_record,
                         run_root, trajectories)
from omm_symbreak import observables as obs
from omm_symbreak.rundir import read_diagnostics
from omm_symbreak.units import nm_to_angstrom

N_BLOCKS = verdicts.CHOSEN_BLOCKS
LABELS = {"raw": "raw", MTS_RUN: f"{MTS_RUN.removeprefix('mts-')} (MTS k=10)",
          "reference": "q-TIP4P/F"}
# what the figure plots but the results JSON leaves out (written next to the runs)
SERIES = {"cos_theta", "phi_rad", "free_energy_kt"}
# the bin of c_L and c_T that docs/findings.md reports as "3.5 Angstrom" (orientation_correlations'
# bins of 0.01 nm)
CORRELATION_BIN_NM = (0.34, 0.35)
PEAK_HALF_WIDTH_NM = 0.01  # the pairs whose count carries the first peak's fluctuations


def structure_numbers(trajectory) -> dict:
    """What the figure plots of one run, at N_BLOCKS blocks (lengths nm, F in k_B T)."""
    u = obs.molecular_direction(trajectory)
    anisotropy, anisotropy_error = obs.anisotropy_between_blocks(u, n_blocks=N_BLOCKS)
    cos_theta, phi, density = obs.orientation_density(u)
    r, g, g_error = obs.radial_distribution_oo(trajectory, n_blocks=N_BLOCKS)
    r_c, c_l, c_l_error, c_t, c_t_error = obs.orientation_correlations(trajectory,
                                                                       n_blocks=N_BLOCKS)
    return {
        "frames": trajectory.n_frames,
        "anisotropy": anisotropy, "anisotropy_error": anisotropy_error,
        "cos_theta": cos_theta.tolist(), "phi_rad": phi.tolist(),
        "free_energy_kt": obs.orientational_free_energy(density).tolist(),
        "r_nm": r.tolist(), "g_oo": g.tolist(), "g_oo_error": g_error.tolist(),
        "r_pairs_nm": r_c.tolist(), "c_l": c_l.tolist(), "c_l_error": c_l_error.tolist(),
        "c_t": c_t.tolist(), "c_t_error": c_t_error.tolist(),
    }


def oxygen_pair_vectors(trajectory) -> np.ndarray:
    """Minimum-image vectors [F, P, 3] (nm) between the oxygens of all molecule pairs i < j."""
    oxygens, _, _ = obs.water_atom_indices(trajectory.topology)
    i, j = np.triu_indices(len(oxygens), 1)
    return mdtraj.compute_displacements(trajectory, np.column_stack([oxygens[i], oxygens[j]]),
                                        periodic=True).astype(float)


def peak_pair_counts(vectors: np.ndarray, peak_nm: float) -> np.ndarray:
    """Per frame, the number of O-O pairs within PEAK_HALF_WIDTH_NM of the first peak of g_OO at
    ``peak_nm``: [F], from the pair vectors [F, P, 3] (nm)."""
    distances = np.linalg.norm(vectors, axis=-1)
    return np.sum(np.abs(distances - peak_nm) < PEAK_HALF_WIDTH_NM, axis=1).astype(float)


def pair_orientation_series(vectors: np.ndarray, u: np.ndarray, c_l: float,
                            c_t: float) -> np.ndarray:
    """The fluctuations of c_L and c_T in CORRELATION_BIN_NM frame by frame: [F, 2].

    vectors [F, P, 3]: O-O vectors (nm) of the pairs i < j; u [F, M, 3]: molecular directions;
    c_l, c_t: the run's values. c_L is a ratio of sums over frames, sum_t L_t / sum_t N_t (L_t
    the sum over the frame's pairs in the bin of (r_hat . u_i)(r_hat . u_j), N_t their number),
    so its fluctuation per frame is (L_t - c_L N_t) / <N>; c_T's likewise with
    u_i . u_j - (r_hat . u_i)(r_hat . u_j).
    """
    i, j = np.triu_indices(u.shape[1], 1)
    distances = np.linalg.norm(vectors, axis=-1)
    inside = (distances >= CORRELATION_BIN_NM[0]) & (distances < CORRELATION_BIN_NM[1])
    r_hat = vectors / distances[..., None]
    longitudinal = np.sum(r_hat * u[:, i], axis=-1) * np.sum(r_hat * u[:, j], axis=-1)
    transverse = np.sum(u[:, i] * u[:, j], axis=-1) - longitudinal
    counts = inside.sum(axis=1)
    return np.column_stack([np.sum(values * inside, axis=1) - value * counts
                            for values, value in ((longitudinal, c_l), (transverse, c_t))]
                           ) / counts.mean()


def run_measurements(trajectory) -> dict:
    """The ``verdicts.measurement`` of each compared quantity of one run, by quantity."""
    n_frames, frame_ps = trajectory.n_frames, float(trajectory.time[1] - trajectory.time[0])
    u = obs.molecular_direction(trajectory)
    vectors = functools.cache(lambda: oxygen_pair_vectors(trajectory))
    peaks = functools.cache(lambda blocks: obs.first_peak_oo(trajectory, blocks))
    correlations = functools.cache(
        lambda blocks: obs.orientation_correlations(trajectory, n_blocks=blocks))

    def in_bin(blocks: int, column: int) -> tuple:
        r, c_l, c_l_error, c_t, c_t_error = correlations(blocks)
        index = int(np.argmin(np.abs(r - np.mean(CORRELATION_BIN_NM))))
        return ((c_l[index], c_l_error[index]), (c_t[index], c_t_error[index]))[column]

    def peak_time() -> float:
        counts = peak_pair_counts(vectors(), peaks(N_BLOCKS)[0][0])
        return obs.integrated_correlation_time(counts, frame_ps)

    def pair_time() -> float:
        series = pair_orientation_series(vectors(), u, in_bin(N_BLOCKS, 0)[0],
                                         in_bin(N_BLOCKS, 1)[0])
        return max(obs.integrated_correlation_time(column, frame_ps) for column in series.T)

    def measure(estimate, correlation_time, min_block_frames=1, **options):
        return verdicts.measurement(estimate, correlation_time, n_frames, frame_ps,
                                    min_block_frames, **options)

    return {
        # first_peak_oo splits each block in two
        "g_oo_first_peak_angstrom": measure(
            lambda blocks: tuple(nm_to_angstrom(np.array(peaks(blocks)[0]))), peak_time, 2),
        "g_oo_first_peak_height": measure(lambda blocks: peaks(blocks)[1], peak_time, 2),
        "c_l": measure(lambda blocks: in_bin(blocks, 0), pair_time),
        "c_t": measure(lambda blocks: in_bin(blocks, 1), pair_time),
        # pairs of non-adjacent blocks need 3 blocks, and their error grows towards 3 blocks
        # by construction (fewer pairs)
        "anisotropy": measure(
            lambda blocks: obs.anisotropy_between_blocks(u, n_blocks=blocks),
            lambda: obs.orientation_correlation_time(u, frame_ps),
            block_counts=[count for count in verdicts.BLOCK_COUNTS if count >= 3],
            longer_blocks=()),
    }


QUANTITIES = {
    "g_oo_first_peak_angstrom": (
        "position of the first peak of g_OO (Angstrom)",
        "the number of O-O pairs within 0.1 Angstrom of the peak, per frame"),
    "g_oo_first_peak_height": (
        "height of the first peak of g_OO",
        "the number of O-O pairs within 0.1 Angstrom of the peak, per frame"),
    "c_l": ("c_L = <(r_hat . u_i)(r_hat . u_j)> over the pairs 3.4-3.5 Angstrom apart",
            "the fluctuation of c_L and of c_T per frame (the longer correlation time)"),
    "c_t": ("c_T = <u_i . u_j> - c_L over the pairs 3.4-3.5 Angstrom apart",
            "the fluctuation of c_L and of c_T per frame (the longer correlation time)"),
    "anisotropy": ("anisotropy A of the distribution of u (l = 1..4) between non-adjacent "
                   "blocks; 0 for an isotropic liquid",
                   "the molecule-averaged spherical harmonics of u of each degree (the longest)"),
}


def structure_verdicts(loaded: dict) -> dict:
    """The verdicts of every quantity of QUANTITIES (``verdicts.quantity``) for the runs."""
    measured = {name: run_measurements(trajectory) for name, trajectory in loaded.items()}
    return {key: verdicts.quantity(what, series, {name: measured[name][key] for name in loaded},
                                   COMPARISONS)
            for key, (what, series) in QUANTITIES.items()}


def delta_numbers(directory, simulated_ps: float) -> dict:
    """Mean and standard deviation of Delta (kJ/mol, whole box) over the analysed rows."""
    table = read_diagnostics(directory / "diagnostics.csv")
    delta = table["delta_kj_mol"][table["time_ps"] >= analysed_from_ps(simulated_ps)]
    return {"mean_kj_mol": float(np.mean(delta)), "std_kj_mol": float(np.std(delta)),
            "samples": int(delta.size)}


def plot(numbers: dict):
    """The figure (matplotlib) of ``numbers``."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for axis, name in zip(axes[0], LABELS):
        entry = numbers[name]
        image = axis.pcolormesh(entry["phi_rad"], entry["cos_theta"], entry["free_energy_kt"],
                                shading="auto", cmap="RdBu_r", vmin=-0.1, vmax=0.1)
        figure.colorbar(image, ax=axis, label="F (k$_B$T)")
        axis.set(xlabel="$\\phi$ (rad)", ylabel="cos $\\theta$",
                 title=f"{LABELS[name]}: anisotropy {entry['anisotropy']:.2g} $\\pm$ "
                       f"{entry['anisotropy_error']:.1g}")
    g_axis, l_axis, t_axis = axes[1]
    for name, label in LABELS.items():
        entry = numbers[name]
        r = nm_to_angstrom(np.array(entry["r_nm"]))
        g, error = np.array(entry["g_oo"]), np.array(entry["g_oo_error"])
        line, = g_axis.plot(r, g, label=label)
        g_axis.fill_between(r, g - error, g + error, color=line.get_color(), alpha=0.3)
        rp = nm_to_angstrom(np.array(entry["r_pairs_nm"]))
        for axis, key in ((l_axis, "c_l"), (t_axis, "c_t")):
            value, error = np.array(entry[key]), np.array(entry[f"{key}_error"])
            axis.plot(rp, value, color=line.get_color(), label=label)
            axis.fill_between(rp, value - error, value + error, color=line.get_color(), alpha=0.3)
    g_axis.set(xlabel="r ($\\AA$)", ylabel="g$_{OO}$(r)", title="O-O pair correlation")
    l_axis.set(xlabel="r ($\\AA$)", ylabel="c$_L$(r)", title="longitudinal orientation")
    t_axis.set(xlabel="r ($\\AA$)", ylabel="c$_T$(r)", title="transverse orientation")
    for axis in axes[1]:
        axis.legend(fontsize=8)
    return figure


def main() -> None:
    args = figure_arguments(__doc__.splitlines()[0], archive=ARCHIVE)
    mode = "quick" if args.quick else "full"
    directories, wall, simulated_ps = run_all(mode, args.model, args.analyse_only, args.archive)
    loaded = trajectories(directories)
    numbers = {name: structure_numbers(t) for name, t in loaded.items()}
    delta = {name: delta_numbers(directories[name], simulated_ps[name])
             for name in ("raw", MTS_RUN)}
    comparisons = structure_verdicts(loaded)
    write_figure("fig2_liquid_structure", args, {
        "what": "liquid-64 at 300 K: orientational free energy, g_OO, c_L, c_T; lengths "
                "in nm, energies in k_B T; delta: E_raw - E_avg of the box in kJ/mol",
        **run_record(simulated_ps, wall, directories, N_BLOCKS), "delta": delta,
        "verdicts": comparisons,
        "plotted_series": write_series(run_root(mode), "fig2_liquid_structure", numbers),
        **without_series(numbers, SERIES)},
        numbers, plot)
    print(json.dumps({key: {"runs": {name: [m.get("value"), m.get("verdict_error"),
                                            m["analysed_ps"]]
                                     for name, m in entry["runs"].items()},
                            "verdicts": {pair: [v["verdict"], v.get("detection_limit")]
                                         for pair, v in entry["comparisons"].items()}}
                      for key, entry in comparisons.items()} | {"delta": delta}, indent=1))


if __name__ == "__main__":
    main()
