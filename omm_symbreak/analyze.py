"""Every observable of a finished run directory of ``omm-symbreak simulate``, to JSON and plots.

``analyze_run(run_dir)`` reads ``run.json``, ``diagnostics.csv`` and the trajectory and writes
``<run_dir>/analysis/observables.json`` and ``<run_dir>/analysis/observables.png``:

- from the diagnostics (every run): Delta = E_raw - E_avg (mean, std), the total angular
  momentum (series, wander and drift), the net torque (series, root mean square), the power
  spectra of the potential energy and of Delta (sampled every diagnostics interval: the bend
  and stretch need an interval of at most about 4 fs; ``spectra_note`` says what is missing);
- from the trajectory (every water system): the orientational density and free energy of the
  molecular direction u in the lab frame, its anisotropy and the anisotropy's isotropic noise
  baseline (``observables.isotropic_anisotropy_baseline``);
- periodic systems of several molecules also: g_OO(r) and its first peak, c_L(r) and c_T(r),
  the oxygen mean-square displacement and diffusion coefficient, c_uu(t) of orders 1 and 2.

Units: nm, ps, kJ/mol, amu as in ``omm_symbreak.observables``; D in nm^2/ps and 1e-5 cm^2/s;
wavenumbers in cm^-1. Errors are standard errors over ``n_blocks`` non-overlapping blocks
(default ``DEFAULT_BLOCKS``, reduced to what a short run allows, at least 2).

Short runs and missing data are said, not turned into numbers: Delta is "not measured" when the
run used ``--diagnostic-grid none`` (Delta is then 0 by construction), and D is "too short for
diffusion" unless the MSD reaches the diffusive regime: the fit starts at ``DIFFUSIVE_AFTER_PS``
(after the ballistic motion and the caging of a molecule by its neighbours, over within about
0.5 ps in liquid water at 300 K) or at a fifth of the longest lag if later, and spans at least
``MIN_DIFFUSION_FIT_PS``; the longest lag is that of one block, at most 5 ps.
"""

import json
import math
import textwrap
from pathlib import Path
from typing import Optional

import numpy as np

from . import observables as obs
from .rundir import read_diagnostics, read_settings, read_trajectory
from .units import SPEED_OF_LIGHT_CM_PER_PS, per_ps_to_wavenumber

NM2_PER_PS_IN_1E5_CM2_PER_S = 1000.0  # 1 nm^2/ps = 1e-14 cm^2 / 1e-12 s = 1e-2 cm^2/s
DEFAULT_BLOCKS = 4
DIFFUSIVE_AFTER_PS = 0.5
MIN_DIFFUSION_FIT_PS = 1.0
NOT_MEASURED = "not measured: the run used --diagnostic-grid none (Delta is 0 by construction)"
# The water bands a power spectrum should reach (cm^-1): the H-O-H bend and the O-H stretch (the
# gas-phase asymmetric stretch is at 3756 cm^-1).
WATER_BANDS_CM = {"H-O-H bend": 1650.0, "O-H stretch": 3800.0}
PANEL_COLUMNS = 3


def _max_lag_ps(n_frames: int, wanted_ps: float, n_blocks: int, dt_ps: float) -> float:
    """The wanted lag, or the longest that fits in one block (at least one frame)."""
    return max(min(wanted_ps, (n_frames // n_blocks - 1) * dt_ps), dt_ps)


def choose_blocks(n_rows: int, n_frames: int, n_blocks: Optional[int] = None) -> tuple:
    """The number of blocks for the errors and a sentence on how it was chosen.

    ``n_rows`` diagnostics rows and ``n_frames`` trajectory frames; a block needs one row and two
    frames. ``n_blocks`` None: ``DEFAULT_BLOCKS``, reduced to what the run allows. ValueError,
    naming the option to change, when fewer than 2 blocks fit or a given ``n_blocks`` does not.
    """
    fits = min(n_rows, n_frames // 2)
    data = f"{n_rows} diagnostics rows and {n_frames} trajectory frames"
    if n_blocks is not None:
        if n_blocks < 2:
            raise ValueError(f"--blocks {n_blocks}: errors need at least 2 blocks")
        if n_blocks > fits:
            raise ValueError(f"{data} cannot make {n_blocks} blocks (one row and two frames "
                             f"each): pass --blocks {fits} or fewer, or run longer")
        return n_blocks, f"{n_blocks} (--blocks)"
    if fits < 2:
        raise ValueError(f"{data} are too few for 2 blocks (one row and two frames each): run "
                         "longer, or write more often with simulate's --diagnostics-interval "
                         "and --trajectory-interval")
    if fits < DEFAULT_BLOCKS:
        return fits, f"{fits} (the default {DEFAULT_BLOCKS} reduced to what {data} allow)"
    return DEFAULT_BLOCKS, f"{DEFAULT_BLOCKS} (default)"


def diagnostics_observables(diagnostics: dict, n_blocks: int, delta_measured: bool = True) -> dict:
    """Delta, angular momentum, torque and power spectra from a diagnostics table; Delta is
    ``NOT_MEASURED`` unless ``delta_measured`` (a diagnostic grid other than none)."""
    delta = diagnostics["delta_kj_mol"]
    wander, drift = obs.angular_momentum_statistics(diagnostics)
    rms_torque, rms_torque_error = obs.torque_statistics(diagnostics, n_blocks)
    result = {
        "delta_kj_mol": ({"mean": float(np.mean(delta)), "std": float(np.std(delta))}
                         if delta_measured else NOT_MEASURED),
        "angular_momentum": {"wander_amu_nm2_per_ps": float(wander),
                             "drift_kj_mol": [float(d) for d in drift]},
        "torque_rms_kj_mol": {"value": float(rms_torque), "error": float(rms_torque_error)},
    }
    result["series"] = {"time_ps": diagnostics["time_ps"].tolist(),
                        **{f"{name}_{axis}": diagnostics[f"{name}_{axis}"].tolist()
                           for name in ("L", "torque") for axis in "xyz"}}
    times = diagnostics["time_ps"]
    if len(times) >= 8:
        dt_ps = float(times[1] - times[0])
        result["spectra_note"] = spectra_note(dt_ps)
        series_of = {"potential": diagnostics["potential_kj_mol"]}
        if delta_measured:
            series_of["delta"] = delta
        for name, series in series_of.items():
            wavenumber, spectrum = obs.power_spectrum(series, dt_ps)
            result[f"power_spectrum_{name}"] = {"wavenumber_cm": wavenumber.tolist(),
                                                "spectrum": spectrum.tolist()}
    return result


def spectra_note(dt_ps: float) -> Optional[str]:
    """What power spectra sampled every ``dt_ps`` (ps) miss of ``WATER_BANDS_CM``, and the
    interval that would show them all (their Nyquist wavenumber 1 / (2 c dt) above the
    highest band), or None when they miss nothing."""
    nyquist_cm = float(per_ps_to_wavenumber(0.5 / dt_ps))
    missing = [f"{name} (~{band:.0f})" for name, band in WATER_BANDS_CM.items()
               if band > nyquist_cm]
    if not missing:
        return None
    needed_fs = 1000 * 0.5 / (max(WATER_BANDS_CM.values()) * SPEED_OF_LIGHT_CM_PER_PS)
    return (f"spectra stop at {nyquist_cm:.0f} cm^-1 (Nyquist of the {1000 * dt_ps:.3g} fs "
            f"diagnostics interval): {' and '.join(missing)} cm^-1 missing; an interval of at "
            f"most {needed_fs:.2g} fs (simulate's --diagnostics-interval, in steps) shows them")


def diffusion_observables(lag_ps: np.ndarray, block_msd_nm2: np.ndarray, n_blocks: int):
    """(fit range [start, stop] in ps or None, D entry) from the block MSDs [n_blocks, K] nm^2 at
    lags [K] ps: D and its error in nm^2/ps and 1e-5 cm^2/s, or "too short for diffusion" with
    the reason when the lags do not reach the diffusive regime (module docstring)."""
    longest_ps = float(lag_ps[-1])
    start_ps = max(DIFFUSIVE_AFTER_PS, longest_ps / 5)
    if longest_ps - start_ps < MIN_DIFFUSION_FIT_PS - 1e-9:
        needed_ps = DIFFUSIVE_AFTER_PS + MIN_DIFFUSION_FIT_PS
        fewer = " or pass fewer --blocks" if n_blocks > 2 else ""
        return None, (f"too short for diffusion: the MSD's lags reach {longest_ps:.3g} ps; D "
                      f"needs lags to {needed_ps:g} ps (a fit from {DIFFUSIVE_AFTER_PS:g} ps "
                      f"over {MIN_DIFFUSION_FIT_PS:g} ps), i.e. {n_blocks} blocks of at least "
                      f"{needed_ps:g} ps: run longer{fewer}")
    diffusion, error = obs.diffusion_coefficient(lag_ps, block_msd_nm2, (start_ps, longest_ps))
    return [start_ps, longest_ps], {
        "nm2_per_ps": float(diffusion), "error_nm2_per_ps": float(error),
        "1e-5_cm2_per_s": float(diffusion * NM2_PER_PS_IN_1E5_CM2_PER_S),
        "error_1e-5_cm2_per_s": float(error * NM2_PER_PS_IN_1E5_CM2_PER_S)}


def trajectory_observables(trajectory, n_blocks: int, periodic: bool) -> dict:
    """Orientation (all water systems) and structure and dynamics (periodic liquids/solids)."""
    u = obs.molecular_direction(trajectory)
    anisotropy, anisotropy_error, bias = obs.orientation_anisotropy(u, n_blocks=n_blocks)
    cos_theta, phi, density = obs.orientation_density(u)
    result = {
        "orientation": {
            "anisotropy": float(anisotropy), "anisotropy_error": float(anisotropy_error),
            "isotropic_baseline_95": obs.isotropic_anisotropy_baseline(u, n_blocks=n_blocks),
            "isotropic_bias_subtracted": float(bias),
            "cos_theta": cos_theta.tolist(), "phi_rad": phi.tolist(),
            "free_energy_kt": obs.orientational_free_energy(density).tolist(),
        }
    }
    if not periodic or u.shape[1] < 2:
        return result
    r, g, g_error = obs.radial_distribution_oo(trajectory, n_blocks=n_blocks)
    peak_position, peak_height = obs.first_peak(r, g)
    r_c, c_l, c_l_error, c_t, c_t_error = obs.orientation_correlations(trajectory,
                                                                       n_blocks=n_blocks)
    dt_ps = float(trajectory.time[1] - trajectory.time[0])
    lag, msd, msd_error, block_msd = obs.mean_square_displacement(
        trajectory, _max_lag_ps(trajectory.n_frames, 5.0, n_blocks, dt_ps), n_blocks=n_blocks)
    fit_range, diffusion = diffusion_observables(lag, block_msd, n_blocks)
    result.update({
        "g_oo": {"r_nm": r.tolist(), "g": g.tolist(), "error": g_error.tolist(),
                 "first_peak_nm": float(peak_position), "first_peak_height": float(peak_height)},
        "orientation_correlations": {"r_nm": r_c.tolist(), "c_l": c_l.tolist(),
                                     "c_l_error": c_l_error.tolist(), "c_t": c_t.tolist(),
                                     "c_t_error": c_t_error.tolist()},
        "msd_oxygen": {"lag_ps": lag.tolist(), "msd_nm2": msd.tolist(),
                       "error": msd_error.tolist(), "fit_range_ps": fit_range},
        "diffusion": diffusion,
    })
    for order in (1, 2):
        lag_u, c_uu, c_uu_error = obs.orientation_autocorrelation(
            trajectory, _max_lag_ps(trajectory.n_frames, 10.0, n_blocks, dt_ps), order, n_blocks)
        result[f"c_uu_order_{order}"] = {"lag_ps": lag_u.tolist(), "c": c_uu.tolist(),
                                         "error": c_uu_error.tolist()}
    return result


def analyze_run(run_dir, output_dir=None, n_blocks: Optional[int] = None) -> dict:
    """Compute the observables of a run; write JSON and a PNG into ``output_dir`` (default
    ``<run_dir>/analysis``) and return the JSON content. ``n_blocks`` None: ``choose_blocks``."""
    run_dir = Path(run_dir)
    settings = read_settings(run_dir)
    diagnostics = read_diagnostics(run_dir / "diagnostics.csv")
    trajectory = read_trajectory(run_dir)
    n_blocks, blocks_chosen = choose_blocks(len(diagnostics["time_ps"]), trajectory.n_frames,
                                            n_blocks)
    delta_measured = settings.get("diagnostic_grid") != "none"
    periodic = trajectory.unitcell_lengths is not None
    result = {
        "run": str(run_dir), "settings": settings, "n_blocks": n_blocks,
        "n_blocks_chosen": blocks_chosen,
        "frames": trajectory.n_frames, "simulated_ps": float(trajectory.time[-1]),
        "units": "nm, ps, kJ/mol, amu; D also in 1e-5 cm^2/s; wavenumbers cm^-1; free "
                 "energies k_B T; errors: standard errors over non-overlapping blocks",
        "diagnostics": diagnostics_observables(diagnostics, n_blocks, delta_measured),
        "trajectory": trajectory_observables(trajectory, n_blocks, periodic),
    }
    output_dir = Path(output_dir) if output_dir is not None else run_dir / "analysis"
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "observables.json").write_text(json.dumps(result, indent=1) + "\n")
    plot_observables(result, output_dir / "observables.png")
    return result


def plot_observables(result: dict, path: Path) -> None:
    """``observables_figure`` written to ``path`` as a PNG."""
    import matplotlib.pyplot as plt

    figure = observables_figure(result)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def observables_figure(result: dict):
    """A near-square grid of panels (at most ``PANEL_COLUMNS`` wide), one per observable of an
    ``analyze_run`` result; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traj, diag = result["trajectory"], result["diagnostics"]
    panels = ["orientation"] + [name for name in ("g_oo", "orientation_correlations",
                                                  "msd_oxygen", "c_uu_order_1") if name in traj]
    panels += ["angular_momentum", "torque"]
    panels += [name for name in ("power_spectrum_potential",) if name in diag]
    columns = min(PANEL_COLUMNS, math.ceil(math.sqrt(len(panels))))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.6 * rows),
                                squeeze=False)
    for axis in axes.flat[len(panels):]:
        axis.remove()
    for axis, name in zip(axes.flat, panels):
        PANELS[name](figure, axis, traj, diag)
    figure.suptitle(f"{result['settings']['system']}, strategy {result['settings']['strategy']}, "
                    f"{result['simulated_ps']:.3g} ps", fontsize=9)
    figure.tight_layout()
    return figure


def _orientation_panel(figure, axis, traj: dict, diag: dict) -> None:
    o = traj["orientation"]
    image = axis.pcolormesh(o["phi_rad"], o["cos_theta"], o["free_energy_kt"], shading="auto",
                            cmap="viridis")
    figure.colorbar(image, ax=axis, label="F (k$_B$T)")
    axis.set(xlabel="$\\phi$ (rad)", ylabel="cos $\\theta$",
             title=f"anisotropy {o['anisotropy']:.3g} $\\pm$ {o['anisotropy_error']:.2g}\n"
                   f"(isotropic noise: < {o['isotropic_baseline_95']:.2g} in 95%)")


def _g_oo_panel(figure, axis, traj: dict, diag: dict) -> None:
    g = traj["g_oo"]
    axis.plot(g["r_nm"], g["g"])
    axis.set(xlabel="r (nm)", ylabel="g$_{OO}$(r)", title="O-O pair correlation")


def _orientation_correlations_panel(figure, axis, traj: dict, diag: dict) -> None:
    c = traj["orientation_correlations"]
    axis.plot(c["r_nm"], c["c_l"], label="c$_L$")
    axis.plot(c["r_nm"], c["c_t"], label="c$_T$")
    axis.legend()
    axis.set(xlabel="r (nm)", ylabel="c(r)", title="orientation correlations")


def _msd_panel(figure, axis, traj: dict, diag: dict) -> None:
    m, d = traj["msd_oxygen"], traj["diffusion"]
    axis.errorbar(m["lag_ps"], m["msd_nm2"], m["error"])
    title = ("too short for diffusion" if isinstance(d, str) else
             f"D = {d['1e-5_cm2_per_s']:.3g} $\\pm$ {d['error_1e-5_cm2_per_s']:.2g} "
             "1e-5 cm$^2$/s")
    axis.set(xlabel="t (ps)", ylabel="MSD (nm$^2$)", title=title)


def _reorientation_panel(figure, axis, traj: dict, diag: dict) -> None:
    for order in (1, 2):
        c = traj[f"c_uu_order_{order}"]
        axis.plot(c["lag_ps"], c["c"], label=f"order {order}")
    axis.legend()
    axis.set(xlabel="t (ps)", ylabel="c$_{uu}$(t)", title="reorientation")


def _vector_series_panel(axis, diag: dict, name: str, symbol: str, unit: str,
                         title: str) -> None:
    """The x, y, z components of the diagnostics series ``name`` against time."""
    series = diag["series"]
    for component in "xyz":
        axis.plot(series["time_ps"], series[f"{name}_{component}"],
                  label=f"{symbol}$_{component}$")
    axis.legend(fontsize=8)
    axis.set(xlabel="t (ps)", ylabel=f"{symbol} ({unit})", title=title)


def _angular_momentum_panel(figure, axis, traj: dict, diag: dict) -> None:
    wander = diag["angular_momentum"]["wander_amu_nm2_per_ps"]
    _vector_series_panel(axis, diag, "L", "L", "amu nm$^2$/ps",
                         f"angular momentum (wander {wander:.2g})")


def _torque_panel(figure, axis, traj: dict, diag: dict) -> None:
    rms = diag["torque_rms_kj_mol"]
    _vector_series_panel(axis, diag, "torque", "$\\tau$", "kJ/mol",
                         f"net torque (rms {rms['value']:.2g} $\\pm$ {rms['error']:.2g})")


def _spectra_panel(figure, axis, traj: dict, diag: dict) -> None:
    for series in [n for n in ("potential", "delta") if f"power_spectrum_{n}" in diag]:
        s = diag[f"power_spectrum_{series}"]
        axis.semilogy(s["wavenumber_cm"], np.maximum(s["spectrum"], 1e-30), label=series)
    axis.legend()
    axis.set(xlabel="wavenumber (cm$^{-1}$)", ylabel="power ((kJ/mol)$^2$ cm)",
             title="power spectra")
    note = diag.get("spectra_note")
    if note is not None:
        axis.text(0.02, 0.02, textwrap.fill(note, 48), transform=axis.transAxes, fontsize=7,
                  va="bottom", bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})


PANELS = {"orientation": _orientation_panel, "g_oo": _g_oo_panel,
          "orientation_correlations": _orientation_correlations_panel,
          "msd_oxygen": _msd_panel, "c_uu_order_1": _reorientation_panel,
          "angular_momentum": _angular_momentum_panel, "torque": _torque_panel,
          "power_spectrum_potential": _spectra_panel}
