"""MD throughput (ns/day) and NVE energy drift of liquid-64 per symmetrization strategy.

    python benchmarks/md_throughput.py [--checkpoint model.ckpt] [--steps 400]

Runs, one after the other on the CPU platform, ``none``, ``full 2i``, ``mts 2i`` with k = 4, 8,
16 (NVE) and ``random`` (NVT: it cannot run NVE), each for ``--steps`` steps of 0.5 fs from the
same start, and writes benchmarks/results/md_throughput.json. The drift is the slope of a
linear fit of the conserved energy, in kJ/mol per ns per molecule.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import mdtraj
import numpy as np
import torch

from omm_symbreak.simulate import RunSettings, read_diagnostics, run

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {
    "none": dict(strategy="none", ensemble="nve"),
    "full 2i": dict(strategy="full", ensemble="nve"),
    "mts 2i k=4": dict(strategy="mts", mts_stride=4, ensemble="nve"),
    "mts 2i k=8": dict(strategy="mts", mts_stride=8, ensemble="nve"),
    "mts 2i k=16": dict(strategy="mts", mts_stride=16, ensemble="nve"),
    "random": dict(strategy="random", ensemble="nvt"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    parser.add_argument("--system", default="liquid-64")
    parser.add_argument("--steps", type=int, default=400, help="a multiple of 16")
    parser.add_argument("--only", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.only:
            settings = RunSettings(system=args.system, checkpoint=args.checkpoint, grid="2i",
                                   steps=args.steps, state_interval=16, trajectory_interval=16,
                                   diagnostics_interval=16, diagnostic_grid="none",
                                   checkpoint_interval=args.steps, **VARIANTS[name])
            start = time.perf_counter()
            directory = run(settings, Path(scratch) / name.replace(" ", "_"), progress=False)
            seconds = time.perf_counter() - start
            table = read_diagnostics(directory / "diagnostics.csv")
            time_ns = table["time_ps"] / 1000
            slope = np.polyfit(time_ns, table["conserved_kj_mol"], 1)[0]
            results[name] = {
                "ns_per_day": args.steps * settings.timestep_fs * 1e-6 / seconds * 86400,
                "wall_s": seconds,
                "drift_kj_mol_per_ns_per_molecule": (
                    float(slope) / count_molecules(directory) if settings.ensemble == "nve"
                    else None),
            }
            print(name, results[name], flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "md_throughput.json"
    out.write_text(json.dumps({
        "what": "MD speed and NVE drift per strategy, CPU platform, dt 0.5 fs",
        "system": args.system, "steps": args.steps, "checkpoint": args.checkpoint or "shipped",
        "results": results,
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()},
    }, indent=2))
    print(f"wrote {out}")


def count_molecules(directory: Path) -> int:
    """Residues (water molecules) of the run's topology."""
    return mdtraj.load_topology(str(directory / "topology.pdb")).n_residues


if __name__ == "__main__":
    main()
