"""Energy + forces wall time: raw model vs grid averages, batched in the module vs one call of
the raw module per rotation.

The per-rotation loop is how i-PI's ``<ffrotations>`` and metatomic's
``SymmetrizedCalculator`` evaluate an averaged model: one call of the raw model per rotated
structure (cell rotated too), forces rotated back. For every system all variants run
interleaved, round after round.

    python -m benchmarks.energy_forces [--systems ...] [--grids ...] [--repeats N]

Writes benchmarks/results/energy_forces.json.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from omm_symbreak.grids import NO_ROTATION, parse_grid
from omm_symbreak.symmetrize import averaged

from .common import (SYSTEMS, benchmark_model, energy_and_forces, interleaved_times, machine,
                     medians, structure, write_result)

RESULTS = Path(__file__).resolve().parent / "results"
GRIDS = ("1i", "2", "2i", "3i", "lebedev:5i")
# the 512-molecule liquid stops at 2i: 3i and lebedev:5i (150 and 168 rotations) would take
# about 3 minutes per round there, and the cost per rotation is already clear
LARGEST_GRID_SIZE = {"liquid-512": 36}
REPEATS = {"water-monomer": 5, "liquid-64": 3, "liquid-512": 2}


def per_rotation_loop(raw, grid, species, positions, cell):
    """sum_g w_g E(R_g x) with one raw call per rotation; forces rotated back (eV, eV/A)."""
    total, forces = 0.0, torch.zeros_like(positions)
    for rotation, weight in zip(grid.rotations, grid.weights):
        r = torch.as_tensor(rotation, dtype=positions.dtype)
        rotated_cell = None if cell is None else torch.det(r) * cell @ r.T
        e, f = energy_and_forces(raw, species, positions @ r.T, rotated_cell)
        total = total + weight * e
        forces = forces + weight * (f @ r)
    return total, forces


def benchmark_system(model, name: str, grids, repeats: int) -> dict:
    """Timings (s) and batched-vs-loop agreement of one system."""
    species, positions, cell, _ = structure(name, model)
    raw = torch.jit.script(averaged(model, NO_ROTATION))
    variants = {"none": lambda: energy_and_forces(raw, species, positions, cell)}
    agreement = {}
    for spec in grids:
        grid = parse_grid(spec)
        batched = torch.jit.script(averaged(model, grid))
        variants[f"batched {spec}"] = (lambda m=batched: energy_and_forces(m, species, positions,
                                                                           cell))
        variants[f"loop {spec}"] = (lambda g=grid: per_rotation_loop(raw, g, species, positions,
                                                                     cell))
        (e_batched, f_batched), (e_loop, f_loop) = variants[f"batched {spec}"](), variants[f"loop {spec}"]()
        agreement[spec] = {"energy_ev": float(abs(e_batched - e_loop)),
                           "max_force_ev_per_angstrom": float((f_batched - f_loop).abs().max())}
    # the agreement check above ran every variant once: it is the warm-up
    times = interleaved_times(variants, repeats, warmup=0)
    median = medians(times)
    return {
        "n_atoms": int(len(species)),
        "repeats": repeats,
        "grid_sizes": {spec: parse_grid(spec).size for spec in grids},
        "median_s": median,
        "all_s": times,
        "batched_over_loop": {spec: median[f"batched {spec}"] / median[f"loop {spec}"]
                              for spec in grids},
        "cost_over_raw": {spec: median[f"batched {spec}"] / median["none"] for spec in grids},
        "batched_vs_loop_difference": agreement,
    }


def run(systems=tuple(SYSTEMS), grids=GRIDS, repeats=None, model_file=None,
        results_dir=RESULTS) -> dict:
    model, description = benchmark_model(model_file)
    result = {
        "what": "wall time of one energy+forces evaluation (s), float32, median of repeats; "
                "variants of a system interleaved",
        "model": description, "hyperparameters": model.hyperparameters, "machine": machine(),
        "systems": {},
    }
    for name in systems:
        count = (repeats or {}).get(name, REPEATS.get(name, 3))
        largest = LARGEST_GRID_SIZE.get(name, np.inf)
        used = [spec for spec in grids if parse_grid(spec).size <= largest]
        result["systems"][name] = benchmark_system(model, name, used, count)
        print(name, {k: f"{1000 * v:.1f} ms" for k, v in result["systems"][name]["median_s"].items()},
              flush=True)
    write_result(results_dir, "energy_forces", result)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--grids", nargs="+", default=list(GRIDS))
    parser.add_argument("--repeats", type=int, default=None, help="default: 5 / 3 / 1 by size")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    repeats = None if args.repeats is None else {name: args.repeats for name in args.systems}
    run(args.systems, args.grids, repeats, args.model)


if __name__ == "__main__":
    main()
