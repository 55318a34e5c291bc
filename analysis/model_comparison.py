"""Models side by side: accuracy and symmetry breaking on the held-out 300 K frames, MD cost,
and raw-MD stability.

    python analysis/model_comparison.py NAME --model LABEL=FILE [--model LABEL=FILE ...]
        [--stability LABEL=JSON ...] [--rotations 20] [--repeats 10] [--max-structures N]

``--model``: models of any kind (an empty FILE: the shipped model), in table order. For each,
with the same code:

- on analysis/data/test.extxyz (``omm_symbreak.evaluate``): energy and force RMSE of the raw
  model, and the rotational spread of its rotated-back forces over random rotations (O(3),
  seeded);
- the MD cost: one energy+forces evaluation of the raw model on liquid-64 through its OpenMM
  route (``potential.create_system``: TorchForce or PythonForce) on the CPU platform, the
  median of repeats interleaved between the models, so that their ratio is measured on the
  same machine state (run it on quiet cores);
- ``--stability``: the model's 20 ps raw-MD stability, read from the JSON of
  analysis/raw_md_stability.py.

Writes analysis/results/NAME.json (``_quick`` appended with --max-structures; meV/atom,
meV/Angstrom, s) and prints a markdown table. Used for metatrain's PET (issue 19) and the
long-range model (issue 20); the commands are in docs/model.md.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import openmm

from figures import labelled
from omm_symbreak.evaluate import evaluate_files
from omm_symbreak.model_kinds import load_energy_model
from omm_symbreak.potential import create_system
from omm_symbreak.systems import load_structure
from omm_symbreak.units import as_nm_array

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data" / "test.extxyz"
RESULTS = ROOT / "results"
STABILITY_KEYS = ("simulated_ps", "molecules_lost", "max_oh_angstrom",
                  "min_intermolecular_oo_angstrom", "ns_per_day_median", "hoh_range_degrees",
                  "temperature_mean_k")


def evaluation_seconds(model_files: dict, repeats: int) -> dict:
    """{label: median s} of one raw energy+forces evaluation of liquid-64 per model, on the CPU
    platform, repeats interleaved between the models (after one untimed warm-up each)."""
    topology, positions = load_structure("liquid-64")
    positions_nm = as_nm_array(positions)
    jitter = np.random.default_rng(0)
    contexts = {}
    for label, model_file in model_files.items():
        system = create_system(topology, load_energy_model(model_file), "none")
        contexts[label] = openmm.Context(system, openmm.VerletIntegrator(1e-6),
                                         openmm.Platform.getPlatformByName("CPU"))
    times = {label: [] for label in contexts}
    for repeat in range(repeats + 1):
        for label, context in contexts.items():
            context.setPositions(positions_nm + jitter.normal(0, 1e-6, positions_nm.shape))
            started = time.perf_counter()
            context.getState(getEnergy=True, getForces=True)
            if repeat > 0:
                times[label].append(time.perf_counter() - started)
    return {label: float(np.median(values)) for label, values in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="results file name (analysis/results/NAME.json)")
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=FILE",
                        help="a model of any kind; an empty FILE is the shipped model")
    parser.add_argument("--stability", action="append", default=[], metavar="LABEL=JSON",
                        help="the model's analysis/raw_md_stability.py result")
    parser.add_argument("--rotations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--max-structures", type=int, default=None)
    args = parser.parse_args(argv)
    try:  # bad input fails here, before the long work
        models = {label: file or None for label, file in labelled(args.model, "--model").items()}
        stability = labelled(args.stability, "--stability")
        for model_file in models.values():
            load_energy_model(model_file)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    unknown = sorted(set(stability) - set(models))
    missing = [path for path in stability.values() if not Path(path).is_file()]
    if unknown or missing:
        sys.exit(f"--stability: labels without a --model {unknown}, missing files {missing}")
    started = time.perf_counter()
    rows = {}
    for label, model_file in models.items():
        metrics = evaluate_files(model_file, DATA, n_rotations=args.rotations,
                                 max_structures=args.max_structures, progress=True)
        raw = metrics["grids"]["none"]
        rows[label] = {"model": str(model_file or "shipped"),
                       "model_fingerprint": metrics["model_fingerprint"],
                       "energy_rmse_mev_per_atom": raw["accuracy"]["energy_rmse_mev_per_atom"],
                       "force_rmse_mev_per_angstrom": raw["accuracy"][
                           "force_rmse_mev_per_angstrom"],
                       "rotational_force_std_mev_per_angstrom": raw["rotational"][
                           "force_std_mev_per_angstrom"]}
    for label, seconds in evaluation_seconds(models, args.repeats).items():
        rows[label]["evaluation_s_liquid64"] = seconds
    for label, path in stability.items():
        result = json.loads(Path(path).read_text())
        rows[label]["raw_md"] = {key: result[key] for key in STABILITY_KEYS}
    command = " ".join(["python analysis/model_comparison.py", args.name]
                       + [f"--model {pair}" for pair in args.model]
                       + [f"--stability {pair}" for pair in args.stability])
    result = {"what": "held-out 300 K liquid-64 frames (analysis/data/test.extxyz): raw-model "
                      "errors and rotational force spread; raw energy+forces evaluation of "
                      "liquid-64 on OpenMM's CPU platform (median s, interleaved); 20 ps "
                      "raw-MD stability from analysis/raw_md_stability.py",
              "command": command, "dataset": str(DATA.relative_to(ROOT.parent)),
              "n_rotations": args.rotations, "repeats": args.repeats, "models": rows,
              "wall_time_s": time.perf_counter() - started}
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.max_structures is None else "_quick"
    (RESULTS / f"{args.name}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    first = next(iter(rows.values()))["evaluation_s_liquid64"]
    print("| model | energy RMSE (meV/atom) | force RMSE (meV/A) | rotational force std (meV/A) "
          "| evaluation, liquid-64 (ms) | raw NVT MD at 300 K |")
    print("|---|---|---|---|---|---|")
    for label, row in rows.items():
        md = row.get("raw_md")
        md_text = "not run" if md is None else (
            f"{md['simulated_ps']:.0f} ps, {md['molecules_lost']} molecules lost, H-O-H "
            f"{md['hoh_range_degrees'][0]:.0f}-{md['hoh_range_degrees'][1]:.0f} deg, "
            f"mean {md['temperature_mean_k']:.0f} K")
        print(f"| {label} | {row['energy_rmse_mev_per_atom']:.2f} | "
              f"{row['force_rmse_mev_per_angstrom']:.1f} | "
              f"{row['rotational_force_std_mev_per_angstrom']:.2f} | "
              f"{1000 * row['evaluation_s_liquid64']:.0f} "
              f"(x{row['evaluation_s_liquid64'] / first:.2f}) | {md_text} |")


if __name__ == "__main__":
    main()
