"""MD throughput (ns/day) through OpenMM TorchForce per symmetrization strategy, and the NVE
energy drift where the dynamics is conservative.

liquid-64 on the CPU platform, dt 0.5 fs, from the template with 300 K velocities (seed 1):
``none``, ``full Ti``, ``mts`` with the corrections of ``2i`` (the study's, 36 rotations),
``Ti`` (24, exact to the same degree) and ``T+random`` (12, turned at random every evaluation)
at k = 4, 8, 10 (NVE: Verlet / ``openmm.MTSIntegrator``), and ``random`` (Langevin middle).
``T+random`` runs NVE here only to measure how far its random correction is from conserving
energy: ``omm-symbreak simulate`` runs it with a thermostat only. All simulations are built
first, each advanced by one untimed outer step (TorchScript optimises a module in its first
calls), and then advanced in rounds, each round stepping every one of them by 1/rounds of its
simulated time, so that the speeds are measured side by side; the simulated time is the
context's own clock. The drift is the slope of a linear fit of the total energy, sampled every
lcm(``SAMPLE_FS``, k dt), in kJ/mol per ns per molecule; the simulated times
(``VARIANTS``: 0.5 ps for ``none`` and ``random``, 0.1 ps for ``mts``, less for the full
average) are what fits in about twenty minutes on 2 cores, so a drift is only resolved where it
is large.

    python -m benchmarks.md_throughput [--rounds 5] [--scale 1.0] [--model FILE]
        [--only NAME ...] [--sample-fs 20] [--name md_throughput]

Writes benchmarks/results/NAME.json (default md_throughput.json). Every energy query of an MTS
run costs one more evaluation of the correction inside the next timed step (OpenMM evaluates
all force groups for the energy, and the integrator then evaluates the slow group again), so
``--sample-fs`` sets the energy interval: 20 fs resolves a drift, a longer one (one sample per
round with ``--sample-fs 0``) measures the speed of production runs, whose reporters query the
energy every 50 fs or less often.
"""

import argparse
import math
import time
from pathlib import Path

import numpy as np
import openmm
from openmm import unit

from omm_symbreak import systems
from omm_symbreak.potential import create_system
from omm_symbreak.settings import RunSettings
from omm_symbreak.simulate import make_integrator

from .common import benchmark_model, machine, write_result

RESULTS = Path(__file__).resolve().parent / "results"
# name -> (RunSettings fields, simulated ps)
VARIANTS = {
    "none": (dict(strategy="none", ensemble="nve"), 0.5),
    "full Ti": (dict(strategy="full", grid="Ti", ensemble="nve"), 0.04),
    **{f"mts {grid} k={k}": (dict(strategy="mts", grid=grid, mts_stride=k, ensemble="nve"), 0.1)
       for grid in ("2i", "Ti", "T+random") for k in (4, 8, 10)},
    "random": (dict(strategy="random", ensemble="nvt"), 0.5),
}
SAMPLE_FS = 20.0  # energies every 20 fs (40 steps: a multiple of every stride, 4, 8, 10)


def run(rounds: int = 5, model_file=None, system_name: str = "liquid-64",
        results_dir=RESULTS, scale: float = 1.0, only=None, sample_fs: float = SAMPLE_FS,
        result_name: str = "md_throughput") -> dict:
    """``scale`` multiplies every simulated time (a quick run: 0.1); ``only``: the names of
    ``VARIANTS`` to run (default all; ``none`` always runs); ``sample_fs``: the interval of the
    energy samples (0: one per round); ``result_name``: the results file's name."""
    model, description = benchmark_model(model_file)
    topology, positions, _ = systems.load(system_name)
    unknown = set(only or ()) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}: choose from {list(VARIANTS)}")
    simulations = {}
    for variant, (fields, simulated_ps) in VARIANTS.items():
        if only and variant != "none" and variant not in only:
            continue
        settings = RunSettings(system=system_name, seed=1, **fields)
        steps_per_round = simulated_ps * scale * 2000 / rounds
        # energies every sample_fs, or every MTS outer step if that is longer
        sample = math.lcm(max(1, int(round(sample_fs / settings.timestep_fs))), settings.stride)
        if sample_fs <= 0:  # one sample per round
            sample = max(1, int(round(steps_per_round / settings.stride))) * settings.stride
        chunk = max(1, int(round(steps_per_round / sample))) * sample
        system = create_system(topology, model, settings.strategy, settings.rotation_grid,
                               positions)
        integrator = make_integrator(settings)
        context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
        context.setPositions(positions)
        context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
        integrator.step(1)  # the warm-up outer step, not timed
        start_ps = context.getState().getTime().value_in_unit(unit.picosecond)
        simulations[variant] = dict(settings=settings, integrator=integrator, context=context,
                                 sample=sample, chunk=chunk, seconds=0.0, start_ps=start_ps,
                                 times_ps=[], energies=[])
    for _ in range(rounds):
        for name, s in simulations.items():
            for _ in range(s["chunk"] // s["sample"]):
                start = time.perf_counter()
                s["integrator"].step(s["sample"] // s["settings"].stride)
                s["seconds"] += time.perf_counter() - start
                state = s["context"].getState(getEnergy=True)
                s["times_ps"].append(state.getTime().value_in_unit(unit.picosecond))
                s["energies"].append((state.getPotentialEnergy() + state.getKineticEnergy())
                                     .value_in_unit(unit.kilojoule_per_mole))
        print("round done:", ", ".join(f"{name} {s['seconds']:.0f} s"
                                       for name, s in simulations.items()), flush=True)
    results = {}
    for name, s in simulations.items():
        simulated_ns = (s["times_ps"][-1] - s["start_ps"]) / 1000  # the context's own clock
        steps = round(simulated_ns * 1e6 / s["settings"].timestep_fs)
        conservative = s["settings"].ensemble == "nve"
        slope = np.polyfit(np.array(s["times_ps"]) / 1000, s["energies"], 1)[0] if conservative else None
        results[name] = {
            "ns_per_day": simulated_ns / s["seconds"] * 86400,
            "ms_per_step": 1000 * s["seconds"] / steps,
            "simulated_ps": simulated_ns * 1000,
            "wall_s": s["seconds"],
            "drift_kj_mol_per_ns_per_molecule": (None if slope is None else
                                                 float(slope) / topology.getNumResidues()),
            "total_energy_rms_about_fit_kj_mol": (None if slope is None else float(np.std(
                np.array(s["energies"]) - np.polyval(np.polyfit(np.array(s["times_ps"]) / 1000,
                                                                s["energies"], 1),
                                                     np.array(s["times_ps"]) / 1000)))),
            "total_energy_kj_mol": s["energies"],
        }
    result = {
        "what": "MD speed per strategy (interleaved rounds), CPU platform, dt 0.5 fs, and the NVE "
                "drift over the simulated time",
        "system": system_name, "rounds": rounds, "energy_sample_fs": sample_fs,
        "model": description, "machine": machine(),
        "results": results,
        "speed_over_none": {name: r["ns_per_day"] / results["none"]["ns_per_day"]
                            for name, r in results.items()},
    }
    write_result(results_dir, result_name, result)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="times every simulated time")
    parser.add_argument("--model", default=None)
    parser.add_argument("--only", nargs="+", default=None, metavar="VARIANT",
                        help=f"run only these (and none) of: {', '.join(VARIANTS)}")
    parser.add_argument("--sample-fs", type=float, default=SAMPLE_FS,
                        help="fs between energy samples (0: one per round)")
    parser.add_argument("--name", default="md_throughput", help="results file name")
    args = parser.parse_args()
    run(args.rounds, args.model, scale=args.scale, only=args.only, sample_fs=args.sample_fs,
        result_name=args.name)


if __name__ == "__main__":
    main()
