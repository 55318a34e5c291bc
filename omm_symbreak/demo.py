"""The demonstration job of ``make demo``: symmetry breaking of the shipped model, in brief.

Four short runs on the CPU platform: the water molecule in NVE with the raw model and with the
grid average, and liquid-64 in NVT with the raw model and with the grid's correction by
multiple time stepping; the grid is the default ``Ti`` (24 rotations, exact to l = 3 and every
odd l, as the study's ``2i`` of 36 is). Prints, per run, the non-equivariant part
Delta = E_raw - E_Ti, the wander of the total angular momentum and the speed, and plots them to
``demo.png``.
"""

import time
from pathlib import Path

import numpy as np

from .rundir import read_diagnostics
from .settings import RunSettings
from .simulate import run
from .strategies import DEFAULT_GRID
from .units import fs_to_ps

RUNS = {
    "monomer raw": dict(system="water-monomer", strategy="none", ensemble="nve", steps=2000),
    f"monomer {DEFAULT_GRID}": dict(system="water-monomer", strategy="full", ensemble="nve", steps=2000),
    "liquid-64 raw": dict(system="liquid-64", strategy="none", ensemble="nvt", steps=80),
    f"liquid-64 mts {DEFAULT_GRID} k=8": dict(system="liquid-64", strategy="mts", mts_stride=8,
                                 ensemble="nvt", steps=80),
}


def _settings(model, seed, steps, **run):
    interval = steps // 40 if run["system"] == "water-monomer" else 8
    return RunSettings(model=model, diagnostic_grid=DEFAULT_GRID, seed=seed, steps=steps,
                       state_interval=interval, trajectory_interval=interval,
                       diagnostics_interval=interval, checkpoint_interval=steps, **run)


def run_demo(output_dir, model=None, seed=0) -> dict:
    """Run the four simulations into ``output_dir`` with the model file ``model`` (None: the
    shipped model) and return {run: summary}."""
    output_dir = Path(output_dir)
    summaries, diagnostics = {}, {}
    for name, spec in RUNS.items():
        settings = _settings(model, seed, **spec)
        directory = output_dir / name.replace(" ", "_")
        start = time.perf_counter()
        run(settings, directory, progress=True)
        seconds = time.perf_counter() - start
        table = read_diagnostics(directory / "diagnostics.csv")
        momentum = np.stack([table[f"L_{axis}"] for axis in "xyz"], axis=1)
        diagnostics[name] = table
        summaries[name] = {
            "delta_mean_kj_mol": float(table["delta_kj_mol"].mean()),
            "delta_std_kj_mol": float(table["delta_kj_mol"].std()),
            "angular_momentum_wander_amu_nm2_ps": float(
                np.linalg.norm(momentum - momentum[0], axis=1).max()),
            "ns_per_day": settings.steps * settings.timestep_fs * 1e-6 / seconds * 86400,
            "simulated_ps": fs_to_ps(settings.steps * settings.timestep_fs),
        }
    _plot(diagnostics, output_dir / "demo.png")
    return summaries


def _plot(diagnostics: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, table in diagnostics.items():
        if name.startswith("monomer"):
            momentum = np.stack([table[f"L_{axis}"] for axis in "xyz"], axis=1)
            left.plot(table["time_ps"], np.linalg.norm(momentum - momentum[0], axis=1), label=name)
        right.plot(table["time_ps"], table["delta_kj_mol"], label=name)
    left.set(xlabel="t (ps)", ylabel="|L(t) - L(0)| (amu nm$^2$/ps)",
             title="water molecule, NVE: angular momentum")
    right.set(xlabel="t (ps)", ylabel=f"$\\Delta = E_{{raw}} - E_{{{DEFAULT_GRID}}}$ (kJ/mol)",
              title="non-equivariant part along the runs")
    left.legend()
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def format_table(summaries: dict) -> str:
    header = (f"{'run':<22s} {'<Delta> kJ/mol':>15s} {'std Delta':>10s} "
              f"{'max|L-L0|':>10s} {'ns/day':>8s} {'ps':>6s}")
    rows = [header, "-" * len(header)]
    for name, s in summaries.items():
        rows.append(f"{name:<22s} {s['delta_mean_kj_mol']:15.4g} {s['delta_std_kj_mol']:10.3g} "
                    f"{s['angular_momentum_wander_amu_nm2_ps']:10.3g} {s['ns_per_day']:8.3g} "
                    f"{s['simulated_ps']:6.3g}")
    return "\n".join(rows)
