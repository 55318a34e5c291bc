"""The README's performance tables, in Markdown, from benchmarks/results/*.json.

    python -m benchmarks.table [DIR]
"""

import json
import sys
from pathlib import Path

from .energy_forces import RESULTS


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def tables(results_dir: Path = RESULTS) -> str:
    ef = json.loads((results_dir / "energy_forces.json").read_text())
    md = json.loads((results_dir / "md_throughput.json").read_text())
    scaling = json.loads((results_dir / "scaling.json").read_text())
    overhead = json.loads((results_dir / "torchforce_overhead.json").read_text())
    grids = json.loads((results_dir / "grid_cost.json").read_text())
    machine = ef["machine"]
    grid_sizes = max((s["grid_sizes"] for s in ef["systems"].values()), key=len)
    all_specs = list(grid_sizes)
    lines = [f"Machine: {machine['cpu_count']} cores, {machine['torch_threads']} torch threads, "
             f"torch {machine['torch']}; model: {ef['model']}. Medians of interleaved repeats.",
             "", "Energy + forces, batched in the module / as one raw call per rotation:", "",
             "| system | atoms | raw | " + " | ".join(
                 f"`{spec}` ({size})" for spec, size in grid_sizes.items()) + " |",
             "|---|---|---|" + "---|" * len(all_specs)]
    for name, entry in ef["systems"].items():
        median = entry["median_s"]
        cells = [f"{_ms(median[f'batched {spec}'])} / {_ms(median[f'loop {spec}'])}"
                 if f"batched {spec}" in median else "-" for spec in all_specs]
        lines.append(f"| {name} | {entry['n_atoms']} | {_ms(median['none'])} | "
                     + " | ".join(cells) + " |")
    lines += ["", f"MD of {md['system']} through TorchForce (CPU platform, dt 0.5 fs):", "",
              "| strategy | ns/day | x raw | NVE drift (kJ/mol/ns/molecule) | simulated |",
              "|---|---|---|---|---|"]
    for name, entry in md["results"].items():
        drift = entry["drift_kj_mol_per_ns_per_molecule"]
        lines.append(f"| {name} | {entry['ns_per_day']:.3g} | {md['speed_over_none'][name]:.3f} | "
                     f"{'-' if drift is None else f'{drift:.3g}'} | {entry['simulated_ps']:.3g} ps |")
    lines += ["", f"The cheapest grid per exactness degree against the anchors' grids: rotations "
              f"and energy + forces of {grids['system']} (raw: "
              f"{_ms(grids['raw_energy_forces_s'])}), side by side:", "",
              "| l | inversion | cheapest | i-PI Legendre | i-PI Lebedev | metatomic |",
              "|---|---|---|---|---|---|"]
    for row in grids["rows"]:
        cells = [f"`{row[key]['grid']}` {row[key]['evaluations']}, "
                 f"{_ms(row[key]['energy_forces_s'])}"
                 for key in ("cheapest", "i-PI legendre", "i-PI lebedev")]
        metatomic = row["metatomic evaluations"]
        lines.append(f"| {row['l']} | {'yes' if row['inversion'] else 'no'} | "
                     + " | ".join(cells) + f" | {metatomic or '-'} |")
    lines += ["", "Raw model vs size (liquid-64 tiled): " + ", ".join(
        f"{s['n_atoms']} atoms {_ms(s['median_s'])} ({s['peak_memory_mib']:.0f} MiB)"
        for s in scaling["sizes"]) + f"; ratio {scaling['time_ratio_largest_over_smallest']:.2f} "
        f"for {scaling['atom_ratio']:.0f} times the atoms.",
              "", "TorchForce overhead (liquid-64, raw): " + ", ".join(
        f"{name} {_ms(value)}" for name, value in overhead["median_s"].items()) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(tables(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS))
