"""Figure 3: dynamics of liquid water at 300 K, raw model vs symmetrized (MTS) vs q-TIP4P/F.

    python analysis/fig3_liquid_dynamics.py [--quick] [--model FILE] [--analyse-only]

Runs (or resumes) the three liquid-64 runs of ``liquid_runs.py`` (shared with figure 2) and
plots, with block errors as shaded bands: the oxygen mean-square displacement relative to the
box's centre of mass (which the Langevin thermostat lets diffuse;
``observables.mean_square_displacement``), to 5 ps or the longest lag that a block of the
shortest run holds (every run over the same lags), with the diffusion coefficient from a
linear fit over its second half, and the reorientation
correlation c_uu(t) = <u(0).u(t)> (to 10 ps, or as the MSD; first and second Legendre order).
The JSON also gives the exponent alpha of MSD ~ t^alpha over the fit range (1 where the motion
is diffusive, ``observables.msd_exponent``) and D with the Yeh-Hummer finite-size correction
for the box (``observables.yeh_hummer_correction``, with water's measured viscosity at 300 K,
WATER_VISCOSITY_PA_S: the same shift for the three runs, which share the box, so it changes no
comparison between them).
Writes analysis/results/fig3_liquid_dynamics[_quick].json and .png.
"""

import json

import numpy as np

from figures import figure_arguments, write_figure
from liquid_runs import ARCHIVE, MTS_RUN, run_all, run_record, trajectories
from omm_symbreak import observables as obs
from omm_symbreak.analyze import _max_lag_ps

N_BLOCKS = 4
WATER_VISCOSITY_PA_S = 0.854e-3  # liquid water at 300 K and 0.1 MPa (IAPWS 2008)
LABELS = {"raw": "raw", MTS_RUN: f"{MTS_RUN.removeprefix('mts-')} (MTS k=10)",
          "reference": "q-TIP4P/F"}


def max_lag_ps(trajectories: dict, wanted_ps: float) -> float:
    """The longest lag up to ``wanted_ps`` that a block of every trajectory holds, so that all
    runs are compared over the same lags (and D fitted over the same range)."""
    return min(_max_lag_ps(t.n_frames, wanted_ps, N_BLOCKS, float(t.time[1] - t.time[0]))
               for t in trajectories.values())


def dynamics_numbers(trajectory, msd_lag_ps: float, c_uu_lag_ps: float) -> dict:
    lag, msd, msd_error, block_msd = obs.mean_square_displacement(
        trajectory, msd_lag_ps, n_blocks=N_BLOCKS)
    fit_range = (lag[-1] / 2, lag[-1])
    diffusion, diffusion_error = obs.diffusion_coefficient(lag, block_msd, fit_range)
    alpha, alpha_error = obs.msd_exponent(lag, block_msd, fit_range)
    box_nm = float(trajectory.unitcell_lengths[0, 0])
    correction = obs.yeh_hummer_correction(box_nm, 300.0, WATER_VISCOSITY_PA_S)
    numbers = {"frames": trajectory.n_frames, "lag_ps": lag.tolist(), "msd_nm2": msd.tolist(),
               "msd_error_nm2": msd_error.tolist(), "fit_range_ps": list(fit_range),
               "msd_exponent_over_fit_range": [float(alpha), float(alpha_error)],
               "diffusion_1e-5_cm2_per_s": [1000 * float(diffusion), 1000 * float(diffusion_error)],
               "box_nm": box_nm,
               "yeh_hummer_correction_1e-5_cm2_per_s": 1000 * correction,
               "diffusion_corrected_1e-5_cm2_per_s": [1000 * float(diffusion + correction),
                                                      1000 * float(diffusion_error)]}
    for order in (1, 2):
        lag_u, c_uu, c_uu_error = obs.orientation_autocorrelation(
            trajectory, c_uu_lag_ps, order, N_BLOCKS)
        numbers[f"c_uu_{order}"] = {"lag_ps": lag_u.tolist(), "c": c_uu.tolist(),
                                    "error": c_uu_error.tolist()}
    return numbers


def plot(numbers: dict):
    """The figure (matplotlib) of ``numbers``."""
    import matplotlib.pyplot as plt

    figure, (msd_axis, cuu_axis) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, label in LABELS.items():
        entry = numbers[name]
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
    msd_lag_ps, c_uu_lag_ps = max_lag_ps(loaded, 5.0), max_lag_ps(loaded, 10.0)
    numbers = {name: dynamics_numbers(t, msd_lag_ps, c_uu_lag_ps) for name, t in loaded.items()}
    write_figure("fig3_liquid_dynamics", args, {
        "what": "liquid-64 at 300 K: oxygen MSD and diffusion, c_uu(t); nm, ps",
        **run_record(simulated_ps, wall, directories, N_BLOCKS), **numbers}, numbers, plot)
    print(json.dumps({name: n["diffusion_1e-5_cm2_per_s"] for name, n in numbers.items()}))


if __name__ == "__main__":
    main()
