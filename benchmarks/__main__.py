"""Run every benchmark and draw the summary: ``python -m benchmarks [--quick] [-o DIR]``.

Parts (each also runs alone as ``python -m benchmarks.<part>``): ``energy_forces`` (raw vs
grid averages, batched vs per-rotation loop, three system sizes), ``md_throughput`` (ns/day
per strategy through TorchForce), ``grid_cost`` (the cheapest grid per exactness degree
against the anchors' grids), ``scaling`` (time and peak memory vs size) and
``torchforce_overhead``; ``memory`` (peak memory of a grid average) runs alone only. Writes
``DIR/*.json`` (default benchmarks/results) and ``DIR/summary.png``, and prints the total wall
time. ``--quick`` is a smoke test of a minute or two with tiny settings, written to a temporary
directory unless ``-o`` is given.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from . import energy_forces, grid_cost, md_throughput, scaling, torchforce_overhead
from .common import SYSTEMS

RESULTS = Path(__file__).resolve().parent / "results"


def plot_summary(results: dict, path: Path) -> None:
    """Four panels: cost vs grid size, batched/loop, ns/day per strategy, time vs atoms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    ef = results["energy_forces"]["systems"]
    for name, entry in ef.items():
        specs = list(entry["grid_sizes"])
        sizes = [1] + [entry["grid_sizes"][s] for s in specs]
        batched = [entry["median_s"]["none"]] + [entry["median_s"][f"batched {s}"] for s in specs]
        loop = [entry["median_s"]["none"]] + [entry["median_s"][f"loop {s}"] for s in specs]
        line, = axes[0, 0].loglog(sizes, batched, "o-", label=f"{name} batched")
        axes[0, 0].loglog(sizes, loop, "s--", color=line.get_color(), label=f"{name} loop")
        axes[0, 1].semilogx([entry["grid_sizes"][s] for s in specs],
                            [entry["batched_over_loop"][s] for s in specs], "o-", label=name)
    axes[0, 0].set(xlabel="rotations in the grid", ylabel="energy+forces (s)",
                   title="cost of a grid average")
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].axhline(0.5, color="grey", ls=":", label="target 0.5")
    axes[0, 1].set(xlabel="rotations in the grid", ylabel="batched / per-rotation loop",
                   title="batching gain")
    axes[0, 1].legend(fontsize=7)
    md = results["md_throughput"]["results"]
    axes[1, 0].bar(list(md), [r["ns_per_day"] for r in md.values()])
    axes[1, 0].set(ylabel="ns/day", title=f"MD throughput, {results['md_throughput']['system']}")
    axes[1, 0].tick_params(axis="x", rotation=30)
    sizes = results["scaling"]["sizes"]
    atoms = [s["n_atoms"] for s in sizes]
    axes[1, 1].loglog(atoms, [s["median_s"] for s in sizes], "o-", label="raw model")
    axes[1, 1].loglog(atoms, [sizes[0]["median_s"] * n / atoms[0] for n in atoms], ":",
                      color="grey", label="linear")
    axes[1, 1].set(xlabel="atoms", ylabel="energy+forces (s)", title="scaling with size")
    axes[1, 1].legend(fontsize=7)
    machine = results["energy_forces"]["machine"]
    figure.suptitle(f"{machine['cpu_count']} cores, {machine['torch_threads']} torch threads, "
                    f"model: {results['energy_forces']['model']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test settings")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="results folder (default benchmarks/results; a temporary one "
                             "with --quick)")
    parser.add_argument("--model", default=None,
                        help="default: the shipped model, else random weights")
    args = parser.parse_args()
    output = args.output or (Path(tempfile.mkdtemp(prefix="benchmarks-")) if args.quick
                             else RESULTS)
    started = time.perf_counter()
    if args.quick:
        results = {
            "energy_forces": energy_forces.run(("water-monomer", "liquid-64"), ("1i", "2i"),
                                               {name: 1 for name in SYSTEMS}, args.model,
                                               output),
            "md_throughput": md_throughput.run(2, args.model, results_dir=output,
                                               scale=0.2),
            "grid_cost": grid_cost.run(1, args.model, "water-monomer", output),
            "scaling": scaling.run(1, args.model, output, scaling.REPLICATES[:2]),
            "torchforce_overhead": torchforce_overhead.run(2, args.model, output),
        }
    else:
        results = {
            "energy_forces": energy_forces.run(model_file=args.model, results_dir=output),
            "md_throughput": md_throughput.run(model_file=args.model, results_dir=output),
            "grid_cost": grid_cost.run(model_file=args.model, results_dir=output),
            "scaling": scaling.run(model_file=args.model, results_dir=output),
            "torchforce_overhead": torchforce_overhead.run(model_file=args.model,
                                                           results_dir=output),
        }
    plot_summary(results, output / "summary.png")
    wall_s = time.perf_counter() - started
    (output / "run.json").write_text(json.dumps(
        {"command": "python -m benchmarks" + (" --quick" if args.quick else ""),
         "wall_time_s": wall_s}, indent=2) + "\n")
    print(f"benchmarks done in {wall_s:.0f} s: {output}")


if __name__ == "__main__":
    main()
