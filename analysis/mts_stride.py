"""How the multiple-time-step stride k changes the dynamics of the water molecule (NVE).

    python analysis/mts_stride.py [--quick] [--model FILE]

The gas-phase molecule, NVE from 300 K velocities (seed 1), dt 0.5 fs, RUN_PS per run: the raw
model, the full ``2i`` average, and the raw model plus the ``2i`` correction every k steps
(``openmm.MTSIntegrator``) for each k of STRIDES (k = 1 is the full average, evaluated as two
forces). Per run, from the diagnostics every 8 fs: the drift of the conserved energy (slope of
a straight line, kJ/mol/ns) and its fluctuation about that line (kJ/mol), the wander of the
total angular momentum max_t |L(t) - L(0)| (amu nm^2/ps), the mean net torque that the drift
of L amounts to (|dL/dt|, kJ/mol), and the standard deviation of Delta = E_raw - E_2i (kJ/mol).

The runs are a campaign (one worker process per core) in analysis/runs/mts-stride[-quick]/NAME
and resume. Writes analysis/results/mts_stride[_quick].json (the numbers per run) and .png; the
plotted series go next to the runs, to analysis/runs/mts-stride[-quick]/mts_stride.json.
"""

from pathlib import Path

import numpy as np

from figures import (estimated_wall_time_s, figure_arguments, run_as_campaign, write_figure,
                     write_series)
from omm_symbreak import observables as obs
from omm_symbreak.rundir import read_diagnostics
from omm_symbreak.settings import RunSettings

ROOT = Path(__file__).resolve().parent
STRIDES = (1, 2, 4, 8, 16)
RUN_PS = {"full": 10.0, "quick": 0.16}
SAMPLE_STEPS = 16  # 8 fs: a multiple of every stride


def run_specs(simulated_ps: float, model_file) -> dict:
    """name -> RunSettings."""
    common = dict(system="water-monomer", model=model_file, ensemble="nve",
                  temperature_k=300.0, timestep_fs=0.5, steps=int(round(simulated_ps * 2000)),
                  seed=1, state_interval=25 * SAMPLE_STEPS, trajectory_interval=5 * SAMPLE_STEPS,
                  diagnostics_interval=SAMPLE_STEPS, diagnostic_grid="2i",
                  checkpoint_interval=125 * SAMPLE_STEPS)
    specs = {"raw": RunSettings(strategy="none", **common),
             "full 2i": RunSettings(strategy="full", grid="2i", **common)}
    for k in STRIDES:
        specs[f"mts 2i k={k}"] = RunSettings(strategy="mts", grid="2i", mts_stride=k, **common)
    return specs


def run_directory(run_root: Path, name: str) -> Path:
    """A run's directory: its name without spaces or '=' ("mts 2i k=4" -> mts-2i-k4)."""
    return run_root / name.replace(" ", "-").replace("=", "")


def run_numbers(directory: Path) -> dict:
    """Energy conservation and angular momentum of one NVE run."""
    table = read_diagnostics(directory / "diagnostics.csv")
    time_ps = np.asarray(table["time_ps"], dtype=float)
    conserved = np.asarray(table["conserved_kj_mol"], dtype=float)
    line = np.polyfit(time_ps, conserved, 1)
    wander, drift = obs.angular_momentum_statistics(table)
    return {"simulated_ps": float(time_ps[-1]),
            "energy_drift_kj_mol_per_ns": float(line[0] * 1000),
            "energy_fluctuation_kj_mol": float(np.std(conserved - np.polyval(line, time_ps))),
            "L_wander_amu_nm2_per_ps": float(wander),
            "L_drift_kj_mol": float(np.linalg.norm(drift)),
            "delta_std_kj_mol": float(np.std(table["delta_kj_mol"])),
            "time_ps": time_ps.tolist(),
            "L_norm_change_amu_nm2_per_ps": np.linalg.norm(
                np.column_stack([table[f"L_{a}"] for a in "xyz"])
                - np.array([table[f"L_{a}"][0] for a in "xyz"]), axis=1).tolist(),
            "conserved_change_kj_mol": (conserved - conserved[0]).tolist()}


def plot(numbers: dict):
    """The figure (matplotlib) of ``numbers``."""
    import matplotlib.pyplot as plt

    figure, (l_axis, e_axis, k_axis) = plt.subplots(1, 3, figsize=(15, 4.5))
    for name, entry in numbers.items():
        l_axis.semilogy(entry["time_ps"], np.maximum(entry["L_norm_change_amu_nm2_per_ps"], 1e-9),
                        lw=0.8, label=name)
        e_axis.plot(entry["time_ps"], entry["conserved_change_kj_mol"], lw=0.8, label=name)
    l_axis.set(xlabel="t (ps)", ylabel="|L(t) - L(0)| (amu nm$^2$/ps)",
               title="angular momentum, water molecule NVE")
    e_axis.set(xlabel="t (ps)", ylabel="conserved energy change (kJ/mol)",
               title="energy conservation")
    strides = [k for k in STRIDES if f"mts 2i k={k}" in numbers]
    for key, label in (("L_wander_amu_nm2_per_ps", "L wander (amu nm$^2$/ps)"),
                       ("energy_fluctuation_kj_mol", "energy fluctuation (kJ/mol)")):
        k_axis.loglog(strides, [numbers[f"mts 2i k={k}"][key] for k in strides], "o-",
                      label=label)
    k_axis.loglog(strides, [numbers["raw"]["L_wander_amu_nm2_per_ps"]] * len(strides), ":",
                  color="C0", label="L wander, raw")
    k_axis.set(xlabel="MTS stride k", title="mts 2i against the stride")
    for axis in (l_axis, e_axis, k_axis):
        axis.legend(fontsize=7)
    return figure


def main() -> None:
    args = figure_arguments(__doc__.splitlines()[0])
    mode = "quick" if args.quick else "full"
    run_root = ROOT / "runs" / ("mts-stride" if mode == "full" else "mts-stride-quick")
    specs = run_specs(RUN_PS[mode], args.model)
    directories = {name: run_directory(run_root, name) for name in specs}
    wall_by_directory = run_as_campaign(
        {directories[name].name: settings for name, settings in specs.items()}, run_root)
    wall = {name: wall_by_directory[directory.name] for name, directory in directories.items()}
    numbers = {name: run_numbers(directory) for name, directory in directories.items()}
    summary = {name: {key: value for key, value in entry.items() if not isinstance(value, list)}
               for name, entry in numbers.items()}
    result = {"what": "water molecule NVE: energy conservation and angular momentum against the "
                      "MTS stride of the 2i correction",
              "mode": mode, "simulated_ps_per_run": RUN_PS[mode], "timestep_fs": 0.5,
              "wall_time_s_this_sitting": wall,
              "wall_time_s_estimated_total": {name: estimated_wall_time_s(directory)
                                              for name, directory in directories.items()},
              "summary": summary,
              "plotted_series": write_series(run_root, "mts_stride", numbers)}
    write_figure("mts_stride", args, result, numbers, plot)
    for name, entry in summary.items():
        print(name, {key: f"{value:.3g}" for key, value in entry.items()})


if __name__ == "__main__":
    main()
