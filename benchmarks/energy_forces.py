"""Wall time of one energy + forces evaluation: raw model, batched grid, per-rotation loop.

The per-rotation loop is how i-PI's <ffrotations> and metatomic's SymmetrizedCalculator
evaluate an averaged model: one call of the raw model per rotated structure (cell rotated too).
All variants are timed side by side, interleaved, in one process.

    python benchmarks/energy_forces.py [--system liquid-64] [--grid 2i] [--repeats 5]

Writes benchmarks/results/energy_forces_<system>_<grid>.json.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from omm_symbreak import systems
from omm_symbreak.export import topology_atomic_numbers
from omm_symbreak.grids import parse_grid
from omm_symbreak.model import UnconstrainedPET, load_checkpoint
from omm_symbreak.symmetrize import averaged

RESULTS = Path(__file__).resolve().parent / "results"


def energy_and_forces(module, species, positions, cell):
    x = positions.clone().requires_grad_(True)
    energy = module(species, x, cell)
    (gradient,) = torch.autograd.grad(energy, x)
    return energy.detach(), -gradient


def per_rotation_loop(raw, grid, species, positions, cell):
    """sum_g w_g E(R_g x), one raw call per rotation; forces rotated back."""
    total, forces = 0.0, torch.zeros_like(positions)
    for rotation, weight in zip(grid.rotations, grid.weights):
        r = torch.as_tensor(rotation, dtype=positions.dtype)
        rotated_cell = None if cell is None else torch.det(r) * cell @ r.T
        e, f = energy_and_forces(raw, species, positions @ r.T, rotated_cell)
        total = total + weight * e
        forces = forces + weight * (f @ r)
    return total, forces


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="liquid-64")
    parser.add_argument("--grid", default="2i")
    parser.add_argument("--checkpoint", default=None,
                        help="model checkpoint (default: the shipped model, else a random one)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    try:
        model = load_checkpoint(args.checkpoint)
        model_name = args.checkpoint or "shipped"
    except FileNotFoundError:
        torch.manual_seed(0)
        model = UnconstrainedPET([1, 8]).eval()
        model_name = "random initialisation, default sizes"
    grid = parse_grid(args.grid)
    topology, positions, box = systems.load(args.system)
    species = model.species_of(topology_atomic_numbers(topology))
    positions = torch.tensor(np.asarray(positions.value_in_unit(positions.unit)) * 10,
                             dtype=torch.float32)
    cell = None if box is None else torch.tensor(
        [[v.x * 10, v.y * 10, v.z * 10] for v in box], dtype=torch.float32)
    raw = torch.jit.script(averaged(model, "none"))
    batched = torch.jit.script(averaged(model, grid))
    variants = {
        "raw": lambda: energy_and_forces(raw, species, positions, cell),
        f"batched_{grid.spec}": lambda: energy_and_forces(batched, species, positions, cell),
        f"loop_{grid.spec}": lambda: per_rotation_loop(raw, grid, species, positions, cell),
    }
    e_batched, f_batched = variants[f"batched_{grid.spec}"]()
    e_loop, f_loop = variants[f"loop_{grid.spec}"]()
    times = {name: [] for name in variants}
    for _ in range(2):  # warm-up (TorchScript profiling executor specialises on the first calls)
        for run in variants.values():
            run()
    for _ in range(args.repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "what": "wall time of one energy+forces evaluation (seconds), median of repeats",
        "system": args.system, "n_atoms": int(len(species)), "grid": grid.spec,
        "grid_size": grid.size, "model": model_name, "hyperparameters": model.hyperparameters,
        "median_s": medians, "all_s": times, "repeats": args.repeats,
        "batched_over_loop": medians[f"batched_{grid.spec}"] / medians[f"loop_{grid.spec}"],
        "batched_vs_loop_energy_difference_ev": float(abs(e_batched - e_loop)),
        "batched_vs_loop_max_force_difference_ev_per_angstrom":
            float((f_batched - f_loop).abs().max()),
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "processor": platform.processor()},
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"energy_forces_{args.system}_{grid.spec}.json"
    out.write_text(json.dumps(result, indent=2))
    for name, median in medians.items():
        print(f"{name:>14s}: {1000 * median:9.1f} ms")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
