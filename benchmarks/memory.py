"""Peak memory of symmetrized energies and forces (issue: memory must be bounded and visible).

Each case runs in a fresh process, which reports its peak resident set size (ru_maxrss):

- ``export``: building and checking the TorchScript module (``export.openmm_module`` with the
  template's positions, evaluated once);
- ``torchforce``: that, then one energy + forces evaluation through ``openmmtorch.TorchForce``
  on the CPU platform (OpenMM freezes the module).

    python -m benchmarks.memory [--system liquid-256] [--grid 2i] [--memory-gb 1]

Writes ``benchmarks/results/memory.json`` (MiB) with the wall time; a target of the reliability
issue is at most 2 GB for ``2i`` on liquid-256.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from .common import machine

RESULTS = Path(__file__).resolve().parent / "results"


def measure(system: str, grid: str, memory_gb: float, stage: str) -> dict:
    """Run one case in this process and return its peak RSS (MiB) and time (s)."""
    import openmm

    from omm_symbreak.export import openmm_module
    from omm_symbreak.grids import parse_grid
    from omm_symbreak.model import load_model
    from omm_symbreak.potential import torch_force
    from omm_symbreak.systems import load_structure

    start = time.perf_counter()
    topology, positions = load_structure(system)
    module = openmm_module(topology, load_model(), "full", parse_grid(grid), positions,
                           memory_budget_bytes=int(memory_gb * 2**30))
    if stage == "torchforce":
        system_ = openmm.System()
        for atom in topology.atoms():
            system_.addParticle(atom.element.mass)
        system_.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
        system_.addForce(torch_force(module))
        context = openmm.Context(system_, openmm.VerletIntegrator(1e-3),
                                 openmm.Platform.getPlatformByName("CPU"))
        context.setPositions(positions)
        context.getState(energy=True, forces=True)
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "seconds": time.perf_counter() - start}


def run(system: str = "liquid-256", grid: str = "2i", memory_gb: float = 1.0,
        results_dir=RESULTS) -> dict:
    """Every stage in its own process; writes ``memory.json``."""
    started = time.perf_counter()
    cases = {}
    for stage in ("export", "torchforce"):
        output = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", "--one", stage, "--system", system,
             "--grid", grid, "--memory-gb", str(memory_gb)],
            check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        cases[stage] = json.loads(output.stdout.strip().splitlines()[-1])
    result = {"system": system, "grid": grid, "memory_budget_gb": memory_gb, "cases": cases,
              "machine": machine(), "wall_time_s": time.perf_counter() - started}
    Path(results_dir).mkdir(parents=True, exist_ok=True)
    (Path(results_dir) / "memory.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--system", default="liquid-256")
    parser.add_argument("--grid", default="2i")
    parser.add_argument("--memory-gb", type=float, default=1.0)
    parser.add_argument("--one", choices=("export", "torchforce"), default=None,
                        help="measure one stage in this process (used by run)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.system, args.grid, args.memory_gb, args.one)))
    else:
        run(args.system, args.grid, args.memory_gb)


if __name__ == "__main__":
    main()
