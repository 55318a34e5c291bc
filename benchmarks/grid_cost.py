"""The cheapest grid for each exactness degree against the anchors' grids: evaluations and the
wall time of one energy + forces evaluation of liquid-64, every grid timed side by side.

For every degree l in 2..5, without and with inversion: ``grids.cheapest_grid(l, inversion)``
against the grids that i-PI's ``<ffrotations>`` would use for the same exactness (Legendre-Euler
of the smallest order exact to l, ``N``; Lebedev points times L in-plane rotations,
``lebedev:L``; with inversion the ``i`` forms), and the evaluation counts of metatomic-ase's
``SymmetrizedCalculator`` where known (84 at l_max = 3 with inversion; metatomic's
``SymmetrizedModel`` takes 24 for energies at its default). Each grid average is the batched
TorchScript module of ``symmetrize.averaged``; all grids run interleaved, round after round.

    python -m benchmarks.grid_cost [--repeats 3] [--system liquid-64] [--model FILE]

Writes benchmarks/results/grid_cost.json.
"""

import argparse
from pathlib import Path

import torch

from omm_symbreak.grids import NO_ROTATION, cheapest_grid, parse_grid
from omm_symbreak.symmetrize import averaged

from .common import (benchmark_model, energy_and_forces, interleaved_times, machine, medians,
                     structure, write_result)

RESULTS = Path(__file__).resolve().parent / "results"
DEGREES = (2, 3, 4, 5)
METATOMIC_EVALUATIONS = {(3, True): 84}  # SymmetrizedCalculator, l_max = 3 with inversion


def anchor_specs(l: int, inversion: bool) -> dict:
    """{anchor: grid spec} of i-PI's two grid families for exactness degree ``l``."""
    suffix = "i" if inversion else ""
    legendre = next(n for n in range(1, 50)
                    if parse_grid(f"{n}{suffix}").l_exact >= l)
    lebedev = next(d for d in range(1, 50) if parse_grid(f"lebedev:{d}{suffix}").l_exact >= l)
    return {"i-PI legendre": f"{legendre}{suffix}", "i-PI lebedev": f"lebedev:{lebedev}{suffix}"}


def run(repeats: int = 3, model_file=None, system: str = "liquid-64",
        results_dir=RESULTS) -> dict:
    model, description = benchmark_model(model_file)
    species, positions, cell, _ = structure(system, model)
    rows = []
    for inversion in (False, True):
        for l in DEGREES:
            rows.append({"l": l, "inversion": inversion, "cheapest": cheapest_grid(l, inversion).spec,
                         **anchor_specs(l, inversion),
                         "metatomic evaluations": METATOMIC_EVALUATIONS.get((l, inversion))})
    specs = sorted({row[key] for row in rows for key in ("cheapest", "i-PI legendre",
                                                         "i-PI lebedev")},
                   key=lambda spec: parse_grid(spec).size)
    modules = {"none": torch.jit.script(averaged(model, NO_ROTATION))}
    modules.update((spec, torch.jit.script(averaged(model, parse_grid(spec)))) for spec in specs)
    variants = {spec: (lambda m=module: energy_and_forces(m, species, positions, cell))
                for spec, module in modules.items()}
    median = medians(interleaved_times(variants, repeats))
    for row in rows:
        for key in ("cheapest", "i-PI legendre", "i-PI lebedev"):
            grid = parse_grid(row[key])
            row[key] = {"grid": grid.spec, "evaluations": grid.size, "l_exact": grid.l_exact,
                        "energy_forces_s": median[grid.spec]}
        print(row, flush=True)
    return write_result(results_dir, "grid_cost", {
        "what": "evaluations and energy+forces wall time (s, median of interleaved repeats, "
                "float32) of the cheapest grid per exactness degree against the anchors'",
        "system": system, "n_atoms": int(len(species)), "repeats": repeats,
        "model": description, "machine": machine(), "raw_energy_forces_s": median["none"],
        "rows": rows})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--system", default="liquid-64")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    run(args.repeats, args.model, args.system)


if __name__ == "__main__":
    main()
