"""Figure 2: structure of liquid water at 300 K, raw model vs symmetrized (MTS) vs q-TIP4P/F.

    python analysis/fig2_liquid_structure.py [--quick] [--model FILE] [--analyse-only]

Runs (or resumes) the three liquid-64 runs of ``liquid_runs.py`` and plots, with block errors:
orientational free energy maps F(cos theta, phi) of the molecular direction u in the lab frame
(raw, MTS, reference) with their anisotropy; g_OO(r); the longitudinal and transverse
orientation correlations c_L(r), c_T(r) (averages over the pairs at distance r, i.e. already
divided by g). The anisotropy estimator is biased upwards by correlated samples, the more so
the shorter the run, so it is also given over windows as long as the shortest run: the
reference's windows (true value 0) show the bias, and a model above them prefers orientations.
The JSON also gives Delta = E_raw - E_avg (the diagnostic grid) of the whole box along the two
ML runs (from their diagnostics, every 1 ps). Writes
analysis/results/fig2_liquid_structure[_quick].json and .png; the free-energy maps go next to
the runs (analysis/campaigns/liquid/, or analysis/runs/liquid-quick/), to
fig2_liquid_structure.json (with all the other numbers).
"""

import json

import numpy as np

from figures import figure_arguments, without_series, write_figure, write_series
from liquid_runs import (ARCHIVE, MTS_RUN, analysed_from_ps, run_all, run_record, run_root,
                         trajectories)
from omm_symbreak import observables as obs
from omm_symbreak.rundir import read_diagnostics
from omm_symbreak.units import nm_to_angstrom

N_BLOCKS = 4
LABELS = {"raw": "raw", MTS_RUN: f"{MTS_RUN.removeprefix('mts-')} (MTS k=10)",
          "reference": "q-TIP4P/F"}
# what the figure plots but the results JSON leaves out (written next to the runs)
SERIES = {"cos_theta", "phi_rad", "free_energy_kt"}


def window_anisotropies(u, window_frames: int) -> list:
    """The anisotropy of u [frames, molecules, 3] in each whole window of ``window_frames``."""
    return [float(obs.orientation_anisotropy(u[start:start + window_frames], n_blocks=N_BLOCKS)[0])
            for start in range(0, u.shape[0] - window_frames + 1, window_frames)]


def structure_numbers(trajectory, window_frames: int) -> dict:
    u = obs.molecular_direction(trajectory)
    anisotropy, anisotropy_error, _ = obs.orientation_anisotropy(u, n_blocks=N_BLOCKS)
    windows = window_anisotropies(u, window_frames)
    cos_theta, phi, density = obs.orientation_density(u)
    r, g, g_error = obs.radial_distribution_oo(trajectory, n_blocks=N_BLOCKS)
    peak_position, peak_height = obs.first_peak_oo(trajectory, N_BLOCKS)
    r_c, c_l, c_l_error, c_t, c_t_error = obs.orientation_correlations(trajectory,
                                                                       n_blocks=N_BLOCKS)
    return {
        "frames": trajectory.n_frames,
        "anisotropy": float(anisotropy), "anisotropy_error": float(anisotropy_error),
        "anisotropy_windows": windows,
        "anisotropy_window_mean": [float(np.mean(windows)), float(
            np.std(windows, ddof=1) / np.sqrt(len(windows))) if len(windows) > 1 else None],
        "cos_theta": cos_theta.tolist(), "phi_rad": phi.tolist(),
        "free_energy_kt": obs.orientational_free_energy(density).tolist(),
        "r_nm": r.tolist(), "g_oo": g.tolist(), "g_oo_error": g_error.tolist(),
        "g_oo_first_peak_nm": [float(v) for v in peak_position],  # value, error
        "g_oo_first_peak_height": [float(v) for v in peak_height],
        "r_pairs_nm": r_c.tolist(), "c_l": c_l.tolist(), "c_l_error": c_l_error.tolist(),
        "c_t": c_t.tolist(), "c_t_error": c_t_error.tolist(),
    }


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
                       f"{entry['anisotropy_error']:.1g}\nper window: "
                       + ", ".join(f"{a:.2f}" for a in entry["anisotropy_windows"]))
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
    window_frames = min(t.n_frames for t in loaded.values())
    frame_ps = float(loaded["raw"].time[1] - loaded["raw"].time[0])
    numbers = {name: structure_numbers(t, window_frames) for name, t in loaded.items()}
    delta = {name: delta_numbers(directories[name], simulated_ps[name])
             for name in ("raw", MTS_RUN)}
    write_figure("fig2_liquid_structure", args, {
        "what": "liquid-64 at 300 K: orientational free energy, g_OO, c_L, c_T; lengths "
                "in nm, energies in k_B T; delta: E_raw - E_avg of the box in kJ/mol",
        **run_record(simulated_ps, wall, directories, N_BLOCKS),
        "anisotropy_window_ps": window_frames * frame_ps, "delta": delta,
        "plotted_series": write_series(run_root(mode), "fig2_liquid_structure", numbers),
        **without_series(numbers, SERIES)},
        numbers, plot)
    print(json.dumps({name: {"anisotropy": [n["anisotropy"], n["anisotropy_error"]],
                             "anisotropy_windows": n["anisotropy_windows"],
                             "g_oo_first_peak": [n["g_oo_first_peak_nm"],
                                                 n["g_oo_first_peak_height"]]}
                      for name, n in numbers.items()} | {"delta": delta}, indent=1))


if __name__ == "__main__":
    main()
