"""MD throughput (ns/day) through OpenMM TorchForce per symmetrization strategy, and the NVE
energy drift where the dynamics is conservative.

liquid-64 on the CPU platform, dt 0.5 fs, from the template with 300 K velocities (seed 1):
``none``, ``full 2i``, ``mts 2i`` with k = 4, 8, 16 (NVE: Verlet / ``openmm.MTSIntegrator``)
and ``random`` (Langevin middle: it cannot run NVE). All six simulations are built first and
then advanced in rounds, each round stepping every one of them by its own chunk (chunks
chosen so that every simulation takes a similar time per round), so that the speeds are
measured side by side. The drift is the slope of a linear fit of the total energy sampled
after every round, in kJ/mol per ns per molecule, over the (short) simulated time stated.

    python -m benchmarks.md_throughput [--rounds 4] [--checkpoint CKPT]

Writes benchmarks/results/md_throughput.json.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import openmm
from openmm import unit

from omm_symbreak import systems
from omm_symbreak.potential import create_system
from omm_symbreak.simulate import RunSettings, make_integrator

from .common import benchmark_model, machine

RESULTS = Path(__file__).resolve().parent / "results"
# name -> (RunSettings fields, steps of 0.5 fs per round)
VARIANTS = {
    "none": (dict(strategy="none", ensemble="nve"), 160),
    "full 2i": (dict(strategy="full", ensemble="nve"), 8),
    "mts 2i k=4": (dict(strategy="mts", mts_stride=4, ensemble="nve"), 48),
    "mts 2i k=8": (dict(strategy="mts", mts_stride=8, ensemble="nve"), 64),
    "mts 2i k=16": (dict(strategy="mts", mts_stride=16, ensemble="nve"), 96),
    "random": (dict(strategy="random", ensemble="nvt"), 160),
}


def run(rounds: int = 4, checkpoint=None, system_name: str = "liquid-64",
        results_dir=RESULTS) -> dict:
    model, description = benchmark_model(checkpoint)
    topology, positions, _ = systems.load(system_name)
    simulations = {}
    for name, (fields, chunk) in VARIANTS.items():
        settings = RunSettings(system=system_name, grid="2i", seed=1, **fields)
        system = create_system(topology, model, settings.strategy, settings.grid, positions)
        integrator = make_integrator(settings)
        context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
        context.setPositions(positions)
        context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
        simulations[name] = dict(settings=settings, integrator=integrator, context=context,
                                 chunk=chunk, seconds=0.0, steps=0, times_ps=[], energies=[])
    for _ in range(rounds):
        for name, s in simulations.items():
            outer_steps = s["chunk"] // s["settings"].stride
            start = time.perf_counter()
            s["integrator"].step(outer_steps)
            s["seconds"] += time.perf_counter() - start
            s["steps"] += s["chunk"]
            state = s["context"].getState(getEnergy=True)
            s["times_ps"].append(s["steps"] * s["settings"].timestep_fs / 1000)
            s["energies"].append((state.getPotentialEnergy() + state.getKineticEnergy())
                                 .value_in_unit(unit.kilojoule_per_mole))
        print("round done:", ", ".join(f"{name} {s['seconds']:.0f} s"
                                       for name, s in simulations.items()), flush=True)
    results = {}
    for name, s in simulations.items():
        simulated_ns = s["steps"] * s["settings"].timestep_fs * 1e-6
        conservative = s["settings"].ensemble == "nve"
        slope = np.polyfit(np.array(s["times_ps"]) / 1000, s["energies"], 1)[0] if conservative else None
        results[name] = {
            "ns_per_day": simulated_ns / s["seconds"] * 86400,
            "ms_per_step": 1000 * s["seconds"] / s["steps"],
            "simulated_ps": simulated_ns * 1000,
            "wall_s": s["seconds"],
            "drift_kj_mol_per_ns_per_molecule": (None if slope is None else
                                                 float(slope) / topology.getNumResidues()),
            "total_energy_kj_mol": s["energies"],
        }
    result = {
        "what": "MD speed per strategy (interleaved rounds), CPU platform, dt 0.5 fs, and the NVE "
                "drift over the simulated time",
        "system": system_name, "rounds": rounds, "model": description, "machine": machine(),
        "results": results,
        "speed_over_none": {name: r["ns_per_day"] / results["none"]["ns_per_day"]
                            for name, r in results.items()},
    }
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "md_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    run(args.rounds, args.checkpoint)


if __name__ == "__main__":
    main()
