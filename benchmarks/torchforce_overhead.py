"""OpenMM TorchForce overhead: the same TorchScript module called directly vs through OpenMM.

For liquid-64 and the raw model, interleaved: (a) the exported module (nm in, kJ/mol out) with
its forces by autograd, called from Python; (b) ``Context.getState(energy, forces)`` on the CPU
platform after new positions (one force evaluation through TorchForce); (c) one step of a
``VerletIntegrator`` (one force evaluation plus the integration).

    python -m benchmarks.torchforce_overhead [--repeats 20]

Writes benchmarks/results/torchforce_overhead.json.
"""

import argparse
from pathlib import Path

import numpy as np
import openmm
import torch

from omm_symbreak.export import openmm_module
from omm_symbreak.potential import torch_force
from omm_symbreak.units import angstrom_to_nm

from .common import (benchmark_model, interleaved_times, machine, medians, structure,
                     write_result)

RESULTS = Path(__file__).resolve().parent / "results"


def run(repeats: int = 20, model_file=None, results_dir=RESULTS) -> dict:
    model, description = benchmark_model(model_file)
    _, positions, cell, topology = structure("liquid-64", model)
    positions_nm, box_nm = angstrom_to_nm(positions.double()), angstrom_to_nm(cell.double())
    module = openmm_module(topology, model, "none")

    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*box_nm.numpy())
    system.addForce(torch_force(module))
    integrator = openmm.VerletIntegrator(1e-6)  # 1 ns of nothing: positions barely move
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
    jitter = np.random.default_rng(0)

    def direct():
        x = positions_nm.clone().requires_grad_(True)
        energy = module(x, box_nm)
        return torch.autograd.grad(energy, x)[0]

    def through_openmm():
        context.setPositions(positions_nm.numpy() + jitter.normal(0, 1e-6, positions_nm.shape))
        return context.getState(getEnergy=True, getForces=True)

    context.setPositions(positions_nm.numpy())
    variants = {"module": direct, "openmm_getstate": through_openmm,
                "openmm_verlet_step": lambda: integrator.step(1)}
    times = interleaved_times(variants, repeats, warmup=2)
    median = medians(times)
    result = {
        "what": "liquid-64, raw model: one energy+forces evaluation (s), direct vs through "
                "OpenMM's TorchForce (CPU platform), median of interleaved repeats",
        "model": description, "machine": machine(), "repeats": repeats,
        "median_s": median, "all_s": times,
        "overhead_s": {name: median[name] - median["module"] for name in variants
                       if name != "module"},
        "ratio_to_module": {name: median[name] / median["module"] for name in variants},
    }
    write_result(results_dir, "torchforce_overhead", result)
    print({k: f"{1000 * v:.1f} ms" for k, v in median.items()}, flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    run(args.repeats, args.model)


if __name__ == "__main__":
    main()
