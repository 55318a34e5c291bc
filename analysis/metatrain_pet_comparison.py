"""metatrain's PET (trained by analysis/train_metatrain_pet.sh) beside the shipped built-in model.

    python analysis/metatrain_pet_comparison.py [--pet FILE] [--rotations 20] [--max-structures N]

On the held-out 300 K frames (analysis/data/test.extxyz), for each model, with the same code
(``omm_symbreak.evaluate``): energy and force RMSE, and the rotational spread of the
rotated-back forces over random rotations (O(3), seeded). Beside them, when their result files
exist: the MD cost per evaluation on liquid-64 (benchmarks/results/model_kinds.json) and the
20 ps raw-MD stability (analysis/results/raw_md_stability.json and
raw_md_stability_metatrain_pet.json; analysis/raw_md_stability.py --help).

Writes analysis/results/metatrain_pet_comparison.json (meV/atom, meV/Angstrom, s) and prints a
markdown table.
"""

import argparse
import json
import time
from pathlib import Path

from omm_symbreak.evaluate import evaluate_files

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data" / "test.extxyz"
RESULTS = ROOT / "results"
DEFAULT_PET = ROOT / "metatrain_pet" / "model.pt"
BENCHMARK = ROOT.parent / "benchmarks" / "results" / "model_kinds.json"


def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pet", type=Path, default=DEFAULT_PET)
    parser.add_argument("--rotations", type=int, default=20)
    parser.add_argument("--max-structures", type=int, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = {}
    for name, model in (("built-in (shipped)", None), ("metatrain PET", args.pet)):
        metrics = evaluate_files(model, DATA, n_rotations=args.rotations,
                                 max_structures=args.max_structures, progress=True)
        raw = metrics["grids"]["none"]
        rows[name] = {"model": str(model or "shipped"),
                      "model_fingerprint": metrics["model_fingerprint"],
                      "energy_rmse_mev_per_atom": raw["accuracy"]["energy_rmse_mev_per_atom"],
                      "force_rmse_mev_per_angstrom": raw["accuracy"][
                          "force_rmse_mev_per_angstrom"],
                      "rotational_force_std_mev_per_angstrom": raw["rotational"][
                          "force_std_mev_per_angstrom"]}
    benchmark = _read(BENCHMARK)
    if benchmark is not None:
        rows["built-in (shipped)"]["evaluation_s_liquid64"] = benchmark["median_s"][
            "builtin_raw_torchforce"]
        rows["metatrain PET"]["evaluation_s_liquid64"] = benchmark["median_s"][
            "pet_raw_pythonforce"]
    for name, stability in (("built-in (shipped)", "raw_md_stability"),
                            ("metatrain PET", "raw_md_stability_metatrain_pet")):
        result = _read(RESULTS / f"{stability}.json")
        if result is not None:
            rows[name]["raw_md"] = {key: result[key] for key in (
                "simulated_ps", "molecules_lost", "max_oh_angstrom",
                "min_intermolecular_oo_angstrom", "ns_per_day_median")}
    result = {"what": "held-out 300 K liquid-64 frames (analysis/data/test.extxyz): raw-model "
                      "errors and rotational force spread; MD cost and 20 ps raw-MD stability "
                      "from their own result files",
              "command": "python analysis/metatrain_pet_comparison.py"
                         + (f" --rotations {args.rotations}" if args.rotations != 20 else ""),
              "dataset": str(DATA.relative_to(ROOT.parent)), "n_rotations": args.rotations,
              "models": rows, "wall_time_s": time.perf_counter() - started}
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.max_structures is None else "_quick"
    (RESULTS / f"metatrain_pet_comparison{suffix}.json").write_text(
        json.dumps(result, indent=2) + "\n")
    print("| model | energy RMSE (meV/atom) | force RMSE (meV/A) | rotational force std (meV/A) |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['energy_rmse_mev_per_atom']:.2f} | "
              f"{row['force_rmse_mev_per_angstrom']:.1f} | "
              f"{row['rotational_force_std_mev_per_angstrom']:.2f} |")


if __name__ == "__main__":
    main()
