"""What the finite rotation groups buy: the water molecule averaged over ``T``, ``Ti``, ``O``,
``I`` beside the study's ``2``, ``2i``, ``3``, ``3i``.

    python analysis/group_grids.py [--quick] [--model MODEL]

The gas-phase set-up of fig1 (water molecule, dt 0.5 fs, seed 1), the model averaged over each
grid of ``GRIDS`` (strategy full), two runs per grid, ``LENGTHS_PS`` each:
- NVT (Langevin middle, 300 K, friction 1/ps): root-mean-square net torque, block errors;
- NVE from 300 K velocities: the wander of the total angular momentum max_t |L(t) - L(0)| and
  its drift |dL/dt| (the mean net torque it amounts to).
A grid average exact to degree l leaves the torque of the components above l; at the float32
floor the torque is rounding. The liquid side (ns/day and NVE drift of ``mts`` with ``Ti``,
``T+random`` and ``2i`` at k = 4, 8, 10) is ``python -m benchmarks.md_throughput``: the figure's
third panel plots benchmarks/results/md_throughput.json when it is there.

The runs are a campaign (one worker process per core) in analysis/runs/group-grids[-quick]/NAME
and resume where a previous sitting stopped.
Writes analysis/results/group_grids[_quick].json (numbers with errors, run lengths, wall times)
and .png.
"""

import json
from pathlib import Path

import numpy as np

from figures import (REPOSITORY, estimated_wall_time_s, figure_arguments, run_as_campaign,
                     write_figure)
from omm_symbreak import observables as obs
from omm_symbreak.grids import parse_grid
from omm_symbreak.rundir import read_diagnostics
from omm_symbreak.settings import RunSettings

ROOT = Path(__file__).resolve().parent
GRIDS = ("T", "Ti", "O", "I", "2", "2i", "3", "3i")
LENGTHS_PS = {"full": 1.5, "quick": 0.05}
N_BLOCKS = 4
MD_THROUGHPUT = REPOSITORY / "benchmarks" / "results" / "md_throughput.json"
# the targets on the water molecule: the first grid leaves no more torque than the second
TORQUE_COMPARISONS = (("Ti", "2i"), ("I", "3"))


def run_specs(length_ps: float, model_file) -> dict:
    """name -> RunSettings: "nvt-G" and "nve-G" for every grid G."""
    common = dict(system="water-monomer", model=model_file, strategy="full", temperature_k=300.0,
                  timestep_fs=0.5, seed=1, steps=int(round(length_ps * 2000)),
                  state_interval=200, trajectory_interval=200, checkpoint_interval=2000,
                  diagnostic_grid="none")
    if length_ps < 1:  # the quick lengths
        common.update(state_interval=20, trajectory_interval=20, checkpoint_interval=100)
    specs = {}
    for grid in GRIDS:
        specs[f"nvt-{grid}"] = RunSettings(grid=grid, ensemble="nvt", diagnostics_interval=20,
                                           **common)
        specs[f"nve-{grid}"] = RunSettings(grid=grid, ensemble="nve", diagnostics_interval=8,
                                           **common)
    return specs


def grid_numbers(run_root: Path, grid: str) -> dict:
    """Torque (NVT) and angular momentum (NVE) of one grid, kJ/mol and amu nm^2/ps."""
    rms, error = obs.torque_statistics(read_diagnostics(run_root / f"nvt-{grid}" /
                                                        "diagnostics.csv"), N_BLOCKS)
    nve = read_diagnostics(run_root / f"nve-{grid}" / "diagnostics.csv")
    wander, drift = obs.angular_momentum_statistics(nve)
    momentum = np.column_stack([nve[f"L_{axis}"] for axis in "xyz"])
    rotation_grid = parse_grid(grid)
    return {"evaluations": rotation_grid.size, "l_exact": rotation_grid.l_exact,
            "inversion": rotation_grid.inversion,
            "torque_rms_kj_mol": float(rms), "torque_rms_error_kj_mol": float(error),
            "L_wander_amu_nm2_per_ps": float(wander),
            "L_drift_kj_mol": float(np.linalg.norm(drift)),
            "time_ps": np.asarray(nve["time_ps"], dtype=float).tolist(),
            "L_change_amu_nm2_per_ps": np.linalg.norm(momentum - momentum[0], axis=1).tolist()}


def comparisons(numbers: dict) -> dict:
    """For each pair of ``TORQUE_COMPARISONS``: the torques, their difference in units of the
    combined error, and whether the first is no larger (within two combined errors)."""
    result = {}
    for first, second in TORQUE_COMPARISONS:
        a, b = numbers[first], numbers[second]
        combined = float(np.hypot(a["torque_rms_error_kj_mol"], b["torque_rms_error_kj_mol"]))
        difference = a["torque_rms_kj_mol"] - b["torque_rms_kj_mol"]
        result[f"{first} vs {second}"] = {
            "torque_ratio": a["torque_rms_kj_mol"] / b["torque_rms_kj_mol"],
            "difference_in_errors": difference / combined,
            "first_no_larger": bool(difference <= 2 * combined)}
    return result


def plot(numbers: dict, liquid: dict):
    """(a) torque and (b) NVE angular-momentum wander against evaluations per step, (c) the
    liquid's MTS speed against the stride (from the benchmark, when measured)."""
    import matplotlib.pyplot as plt

    figure, (torque_axis, wander_axis, speed_axis) = plt.subplots(1, 3, figsize=(15, 4.5))
    for number, (grid, entry) in enumerate(numbers.items()):
        group = grid.rstrip("i") in ("T", "O", "I")
        style = dict(marker="o" if group else "s", color="C3" if group else "C0")
        torque_axis.errorbar(entry["evaluations"], entry["torque_rms_kj_mol"],
                             entry["torque_rms_error_kj_mol"], **style)
        wander_axis.plot(entry["evaluations"], entry["L_wander_amu_nm2_per_ps"], ls="", **style)
        for axis, key in ((torque_axis, "torque_rms_kj_mol"),
                          (wander_axis, "L_wander_amu_nm2_per_ps")):
            axis.annotate(f"{grid} (l={entry['l_exact']})", (entry["evaluations"], entry[key]),
                          fontsize=7, xytext=(4, 2 - 10 * (number % 2)),
                          textcoords="offset points")  # alternate: Ti and O coincide
    torque_axis.set(xscale="log", yscale="log", xlabel="evaluations per step",
                    ylabel="rms |$\\tau$| (kJ/mol)",
                    title="(a) water molecule, NVT 300 K: torque\n(red: groups, blue: study's)")
    wander_axis.set(xscale="log", yscale="log", xlabel="evaluations per step",
                    ylabel="max |L(t) - L(0)| (amu nm$^2$/ps)",
                    title="(b) water molecule, NVE: angular-momentum wander")
    if liquid:
        for grid in ("2i", "Ti", "T+random"):
            strides = [k for k in (4, 8, 10) if f"mts {grid} k={k}" in liquid]
            speed_axis.plot(strides, [liquid[f"mts {grid} k={k}"] for k in strides], "o-",
                            label=f"mts {grid}")
        speed_axis.legend()
    speed_axis.set(xlabel="MTS stride k", ylabel="ns/day over the raw model's",
                   title="(c) liquid-64: cost of the correction\n(benchmarks.md_throughput)")
    return figure


def main() -> None:
    args = figure_arguments(__doc__.splitlines()[0])
    mode = "quick" if args.quick else "full"
    run_root = ROOT / "runs" / ("group-grids-quick" if args.quick else "group-grids")
    specs = run_specs(LENGTHS_PS[mode], args.model)
    wall = run_as_campaign(specs, run_root)
    numbers = {grid: grid_numbers(run_root, grid) for grid in GRIDS}
    liquid = (json.loads(MD_THROUGHPUT.read_text())["speed_over_none"]
              if MD_THROUGHPUT.is_file() else {})
    summary = {grid: {key: value for key, value in entry.items() if not isinstance(value, list)}
               for grid, entry in numbers.items()}
    write_figure("group_grids", args, {
        "what": "water molecule, the model averaged over each grid: rms net torque (NVT 300 K) "
                "and angular-momentum wander and drift (NVE); units in the keys",
        "simulated_ps_per_run": LENGTHS_PS[mode],
        "wall_time_s_this_sitting": wall,
        "wall_time_s_estimated_total": {name: estimated_wall_time_s(run_root / name)
                                        for name in specs},
        "errors": f"standard errors over {N_BLOCKS} non-overlapping blocks",
        "grids": summary, "comparisons": comparisons(numbers),
        "liquid_mts_speed_over_raw": {name: value for name, value in liquid.items()
                                      if name.startswith("mts")},
    }, numbers, lambda values: plot(values, liquid))
    print(json.dumps({"grids": summary, "comparisons": comparisons(numbers)}, indent=1))


if __name__ == "__main__":
    main()
