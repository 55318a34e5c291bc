"""Cost of the raw model vs system size: liquid-64 tiled to 192, 384, 768 and 1536 atoms.

Each size runs in a fresh subprocess. Peak memory: the peak resident set size during the
evaluations (Linux VmHWM, reset just before them through /proc/self/clear_refs) minus the
resident set size just before them (MiB).

    python -m benchmarks.scaling [--repeats 5]

Writes benchmarks/results/scaling.json.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from omm_symbreak.grids import NO_ROTATION
from omm_symbreak.symmetrize import averaged

from .common import (benchmark_model, energy_and_forces, interleaved_times, machine, medians,
                     structure, write_result)

RESULTS = Path(__file__).resolve().parent / "results"
REPLICATES = ((1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2))


def _status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak_memory() -> None:
    """Make VmHWM restart from the current resident set size (Linux 4.0+)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def measure_one(replicate, repeats: int, model_file=None) -> dict:
    """Time (s) and peak memory (MiB) of the raw model's energy + forces, in this process."""
    model, _ = benchmark_model(model_file)
    species, positions, cell, _ = structure("liquid-64", model, replicate)
    raw = torch.jit.script(averaged(model, NO_ROTATION))
    _reset_peak_memory()
    before = _status_mib("VmRSS")
    times = interleaved_times({"raw": lambda: energy_and_forces(raw, species, positions, cell)},
                              repeats)["raw"]
    peak = _status_mib("VmHWM")
    return {"replicate": list(replicate), "n_atoms": int(len(species)), "repeats": repeats,
            "median_s": medians({"raw": times})["raw"], "all_s": times,
            "peak_memory_mib": peak - before}


def run(repeats: int = 5, model_file=None, results_dir=RESULTS, replicates=REPLICATES) -> dict:
    sizes = []
    for replicate in replicates:
        command = [sys.executable, "-m", "benchmarks.scaling", "--one", *map(str, replicate),
                   "--repeats", str(repeats)] + (["--model", model_file] if model_file else [])
        output = subprocess.run(command, check=True, capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent.parent).stdout
        sizes.append(json.loads(output.strip().splitlines()[-1]))
        print(sizes[-1]["n_atoms"], "atoms:", f"{1000 * sizes[-1]['median_s']:.1f} ms,",
              f"{sizes[-1]['peak_memory_mib']:.0f} MiB", flush=True)
    _, description = benchmark_model(model_file)
    result = {
        "what": "raw model energy+forces vs system size (liquid-64 tiled), float32; each size in "
                "its own process",
        "model": description, "machine": machine(), "sizes": sizes,
        "time_ratio_largest_over_smallest": sizes[-1]["median_s"] / sizes[0]["median_s"],
        "atom_ratio": sizes[-1]["n_atoms"] / sizes[0]["n_atoms"],
    }
    write_result(results_dir, "scaling", result)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default=None)
    parser.add_argument("--one", type=int, nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure_one(tuple(args.one), args.repeats, args.model)))
    else:
        run(args.repeats, args.model)


if __name__ == "__main__":
    main()
