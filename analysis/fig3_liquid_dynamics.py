"""Figure 3: dynamics of liquid water at 300 K, raw model vs symmetrized (MTS) vs q-TIP4P/F.

    python analysis/fig3_liquid_dynamics.py [--quick] [--model FILE] [--analyse-only]
                                            [--archive DIR]

Runs (or resumes) the three liquid-64 runs of ``liquid_runs.py`` (shared with figure 2) and
plots, with block errors as shaded bands: the oxygen mean-square displacement relative to the
box's centre of mass (which the Langevin thermostat lets diffuse;
``observables.mean_square_displacement``), to MSD_LAG_PS or the longest lag that a block of the
longest run holds (every run over the same lags), with the diffusion coefficient from a linear
fit over its second half, and the reorientation correlation c_uu(t) = <P_l(u(0).u(t))> (to
C_UU_PLOT_LAG_PS, or as the MSD; first and second Legendre order). A run whose blocks do not
hold these lags is not plotted (its entry says why).
The JSON also gives the exponent alpha of MSD ~ t^alpha over the fit range (1 where the motion
is diffusive, ``observables.msd_exponent``) and D with the Yeh-Hummer finite-size correction
for the box (``observables.yeh_hummer_correction``, with water's measured viscosity at 300 K,
WATER_VISCOSITY_PA_S: the same shift for the three runs, which share the box, so it changes no
comparison between them).

The JSON's "verdicts" (``verdicts.py``) hold, for D (with the correction) and c_uu at the lags
C_UU_LAGS_PS (both orders): each run's value and error at 4 blocks, the error at other block
lengths (its convergence), the correlation time the blocks must exceed (of the series named
there), and the verdicts raw vs MTS, raw vs reference and MTS vs reference at 2 combined
standard errors, with the smallest difference the data rule out where they are the same. A run
too short for a quantity's blocks is "not measured" there.
Writes analysis/results/fig3_liquid_dynamics[_quick].json and .png.
"""

import functools
import json

import numpy as np
from scipy.special import eval_legendre

import verdicts
from figures import figure_arguments, write_figure
from liquid_runs import ARCHIVE, COMPARISONS, MTS_RUN, run_all, run_record, trajectories
from omm_symbreak import observables as obs

N_BLOCKS = verdicts.CHOSEN_BLOCKS
WATER_VISCOSITY_PA_S = 0.854e-3  # liquid water at 300 K and 0.1 MPa (IAPWS 2008)
MSD_LAG_PS = 5.0
C_UU_PLOT_LAG_PS = 10.0
C_UU_LAGS_PS = (1.0, 5.0)
LABELS = {"raw": "raw", MTS_RUN: f"{MTS_RUN.removeprefix('mts-')} (MTS k=10)",
          "reference": "q-TIP4P/F"}


def frame_interval_ps(trajectory) -> float:
    return float(trajectory.time[1] - trajectory.time[0])


def lag_frames(trajectory, lag_ps: float) -> int:
    """The frames of a lag time (ps), rounded."""
    return int(round(lag_ps / frame_interval_ps(trajectory)))


def shared_lag_ps(trajectories: dict, wanted_ps: float) -> float:
    """``wanted_ps``, or the longest lag that a block (of N_BLOCKS) of the longest trajectory
    holds: every run is compared over the same lags, and a shorter run that cannot hold them is
    left out rather than shortening them for all."""
    longest = max(trajectories.values(), key=lambda t: t.n_frames)
    return min(wanted_ps, (longest.n_frames // N_BLOCKS - 1) * frame_interval_ps(longest))


def diffusion(trajectory, lag_ps: float, n_blocks: int) -> dict:
    """D (1e-5 cm^2/s, without and with the Yeh-Hummer correction) from a linear fit of the
    MSD over its second half (lag_ps / 2 to lag_ps), its exponent alpha there, and the MSD."""
    lag, msd, msd_error, block_msd = obs.mean_square_displacement(trajectory, lag_ps,
                                                                  n_blocks=n_blocks)
    fit_range = (lag[-1] / 2, lag[-1])
    d, d_error = obs.diffusion_coefficient(lag, block_msd, fit_range)
    box_nm = float(trajectory.unitcell_lengths[0, 0])
    correction = obs.yeh_hummer_correction(box_nm, 300.0, WATER_VISCOSITY_PA_S)
    return {"lag_ps": lag.tolist(), "msd_nm2": msd.tolist(), "msd_error_nm2": msd_error.tolist(),
            "fit_range_ps": list(fit_range),
            "msd_exponent_over_fit_range": [float(v) for v in obs.msd_exponent(
                lag, block_msd, fit_range)],
            "diffusion_1e-5_cm2_per_s": [1000 * float(d), 1000 * float(d_error)],
            "box_nm": box_nm, "yeh_hummer_correction_1e-5_cm2_per_s": 1000 * correction,
            "diffusion_corrected_1e-5_cm2_per_s": [1000 * float(d + correction),
                                                   1000 * float(d_error)]}


def dynamics_numbers(trajectory, msd_lag_ps: float, c_uu_lag_ps: float) -> dict:
    """What the figure plots of one run at N_BLOCKS blocks (nm, ps), or why not: blocks too
    short for the lags."""
    needed = lag_frames(trajectory, max(msd_lag_ps, c_uu_lag_ps)) + 1
    if trajectory.n_frames // N_BLOCKS < needed:
        return {"frames": trajectory.n_frames, "not_analysed": (
            f"{trajectory.n_frames} frames make {N_BLOCKS} blocks of "
            f"{trajectory.n_frames // N_BLOCKS}, fewer than the {needed} frames of the lags")}
    numbers = {"frames": trajectory.n_frames, **diffusion(trajectory, msd_lag_ps, N_BLOCKS)}
    for order in (1, 2):
        lag_u, c_uu, c_uu_error = obs.orientation_autocorrelation(
            trajectory, c_uu_lag_ps, order, N_BLOCKS)
        numbers[f"c_uu_{order}"] = {"lag_ps": lag_u.tolist(), "c": c_uu.tolist(),
                                    "error": c_uu_error.tolist()}
    return numbers


def displacement_series(trajectory, lag_ps: float) -> np.ndarray:
    """Per time origin t0, the mean over the oxygens of |r(t0 + lag) - r(t0)|^2 (nm^2), r
    relative to the system's centre of mass as in ``observables.mean_square_displacement``:
    [F - lag frames], one origin per frame."""
    positions = obs.unwrapped_positions(trajectory)
    masses_amu = [atom.element.mass for atom in trajectory.topology.atoms]
    positions = positions - obs.center_of_mass(positions, masses_amu)[:, None, :]
    oxygens = positions[:, trajectory.topology.select("name O")]
    k = lag_frames(trajectory, lag_ps)
    return np.mean(np.sum((oxygens[k:] - oxygens[:-k]) ** 2, axis=-1), axis=1)


def reorientation_series(u: np.ndarray, lag: int, order: int) -> np.ndarray:
    """Per time origin t0, the mean over molecules of P_order(u(t0) . u(t0 + lag)), u [F, M, 3]
    the molecular directions and ``lag`` in frames: [F - lag]."""
    return np.mean(eval_legendre(order, np.sum(u[lag:] * u[:-lag], axis=-1)), axis=1)


def run_measurements(trajectory, msd_lag_ps: float) -> dict:
    """The ``verdicts.measurement`` of each compared quantity of one run, by quantity."""
    n_frames, frame_ps = trajectory.n_frames, frame_interval_ps(trajectory)
    u = functools.cache(lambda: obs.molecular_direction(trajectory))

    def measure(estimate, correlation_time, lag_ps):
        return verdicts.measurement(estimate, correlation_time, n_frames, frame_ps,
                                    min_block_frames=lag_frames(trajectory, lag_ps) + 1)

    def corrected_d(blocks: int) -> list:
        return diffusion(trajectory, msd_lag_ps, blocks)["diffusion_corrected_1e-5_cm2_per_s"]

    def c_uu(lag_ps: float, order: int, blocks: int) -> tuple:
        _, c, error = obs.orientation_autocorrelation(trajectory, lag_ps, order, blocks)
        return c[-1], error[-1]

    def reorientation_time(lag_ps: float, order: int) -> float:
        series = reorientation_series(u(), lag_frames(trajectory, lag_ps), order)
        return obs.integrated_correlation_time(series, frame_ps)

    measured = {"diffusion_corrected": measure(
        corrected_d, lambda: obs.integrated_correlation_time(
            displacement_series(trajectory, msd_lag_ps), frame_ps), msd_lag_ps)}
    for lag_ps in C_UU_LAGS_PS:
        for order in (1, 2):
            measured[f"c_uu_{order}_at_{lag_ps:g}_ps"] = measure(
                functools.partial(c_uu, lag_ps, order),
                functools.partial(reorientation_time, lag_ps, order), lag_ps)
    return measured


def quantities(msd_lag_ps: float) -> dict:
    """{quantity: (what, the series of its correlation time)} of ``run_measurements``."""
    entries = {"diffusion_corrected": (
        f"D of the oxygens relative to the system's centre of mass, fitted over "
        f"{msd_lag_ps / 2:g}-{msd_lag_ps:g} ps, plus the Yeh-Hummer correction (1e-5 cm^2/s)",
        f"the mean squared oxygen displacement over {msd_lag_ps:g} ps, per time origin")}
    for lag_ps in C_UU_LAGS_PS:
        for order in (1, 2):
            entries[f"c_uu_{order}_at_{lag_ps:g}_ps"] = (
                f"c_uu(t) = <P_{order}(u(0) . u(t))> at t = {lag_ps:g} ps",
                f"the mean over molecules of P_{order}(u(t0) . u(t0 + {lag_ps:g} ps)), per "
                f"time origin")
    return entries


def dynamics_verdicts(loaded: dict, msd_lag_ps: float) -> dict:
    """The verdicts of every quantity (``verdicts.quantity``) for the runs."""
    measured = {name: run_measurements(t, msd_lag_ps) for name, t in loaded.items()}
    return {key: verdicts.quantity(what, series, {name: measured[name][key] for name in loaded},
                                   COMPARISONS)
            for key, (what, series) in quantities(msd_lag_ps).items()}


def plot(numbers: dict):
    """The figure (matplotlib) of ``numbers`` (runs with "not_analysed" left out)."""
    import matplotlib.pyplot as plt

    figure, (msd_axis, cuu_axis) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, label in LABELS.items():
        entry = numbers[name]
        if "not_analysed" in entry:
            continue
        lag, msd, error = (np.array(entry[key]) for key in ("lag_ps", "msd_nm2", "msd_error_nm2"))
        d, d_error = entry["diffusion_1e-5_cm2_per_s"]
        line, = msd_axis.plot(lag, msd * 100, label=f"{label}: D = {d:.2f} $\\pm$ {d_error:.2f}")
        msd_axis.fill_between(lag, (msd - error) * 100, (msd + error) * 100,
                              color=line.get_color(), alpha=0.3)
        for order, style in ((1, "-"), (2, "--")):
            c = entry[f"c_uu_{order}"]
            t, value, err = np.array(c["lag_ps"]), np.array(c["c"]), np.array(c["error"])
            cuu_axis.plot(t, value, style, color=line.get_color(), label=f"{label}, P$_{order}$")
            cuu_axis.fill_between(t, value - err, value + err, color=line.get_color(), alpha=0.3)
    msd_axis.set(xlabel="t (ps)", ylabel="oxygen MSD ($\\AA^2$)",
                 title="diffusion (D in 10$^{-5}$ cm$^2$/s)")
    cuu_axis.set(xlabel="t (ps)", ylabel="c$_{uu}$(t)", title="reorientation of u")
    msd_axis.legend(fontsize=8)
    cuu_axis.legend(fontsize=7)
    return figure


def main() -> None:
    args = figure_arguments(__doc__.splitlines()[0], archive=ARCHIVE)
    directories, wall, simulated_ps = run_all("quick" if args.quick else "full", args.model,
                                              args.analyse_only, args.archive)
    loaded = trajectories(directories)
    msd_lag_ps = shared_lag_ps(loaded, MSD_LAG_PS)
    c_uu_lag_ps = shared_lag_ps(loaded, C_UU_PLOT_LAG_PS)
    numbers = {name: dynamics_numbers(t, msd_lag_ps, c_uu_lag_ps) for name, t in loaded.items()}
    comparisons = dynamics_verdicts(loaded, msd_lag_ps)
    write_figure("fig3_liquid_dynamics", args, {
        "what": "liquid-64 at 300 K: oxygen MSD and diffusion, c_uu(t); nm, ps",
        **run_record(simulated_ps, wall, directories, N_BLOCKS), "verdicts": comparisons,
        **numbers}, numbers, plot)
    print(json.dumps({key: {"runs": {name: [m.get("value"), m.get("verdict_error"),
                                            m["analysed_ps"]]
                                     for name, m in entry["runs"].items()},
                            "verdicts": {pair: [v["verdict"], v.get("detection_limit")]
                                         for pair, v in entry["comparisons"].items()}}
                      for key, entry in comparisons.items()}, indent=1))


if __name__ == "__main__":
    main()
