"""The cost of bringing a model: PythonForce against TorchForce, and a metatomic PET symmetrized.

Liquid-64 on OpenMM's CPU platform, one energy+forces evaluation per call
(``Context.getState`` after new positions), interleaved repeats:

- the built-in model, raw, in a ``TorchForce`` and in a ``PythonForce`` (the same TorchScript
  module called from Python at every evaluation: the per-step overhead of the PythonForce
  route), and one ``VerletIntegrator`` step of each;
- a metatomic PET (``--pet``, default the trained ``analysis/metatrain_pet/model.pt``), raw and
  averaged over the cheapest grid exact to l = 3 (``Ti``, 24 copies in one call), through
  ``PythonForce``; the built-in model's ``Ti`` average through ``TorchForce`` beside it.

    python -m benchmarks.model_kinds [--repeats 10] [--pet FILE]

Writes benchmarks/results/model_kinds.json. The cost does not depend on the weights: any
checkpoint of the same architecture measures the same (exported with ``mtt export``).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import openmm

from omm_symbreak.grids import cheapest_grid
from omm_symbreak.model_kinds import BuiltinModel, load_energy_model
from omm_symbreak.potential import create_forces, python_force, torch_force
from omm_symbreak.export import openmm_module
from omm_symbreak.systems import load_structure
from omm_symbreak.units import as_nm_array

from .common import benchmark_model, interleaved_times, machine, medians, write_result

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_PET = Path(__file__).resolve().parents[1] / "analysis" / "metatrain_pet" / "model.pt"


def _context(topology, forces):
    """A CPU Context of ``topology`` with ``forces`` and a Verlet integrator of 1e-6 ps."""
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    for force in forces:
        system.addForce(force)
    integrator = openmm.VerletIntegrator(1e-6)
    return openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU")), integrator


def run(repeats: int = 10, pet_file=DEFAULT_PET, model_file=None, results_dir=RESULTS) -> dict:
    started = time.perf_counter()
    network, description = benchmark_model(model_file)
    builtin = BuiltinModel(network)
    pet = load_energy_model(pet_file)
    grid = cheapest_grid(3, inversion=True)
    topology, positions = load_structure("liquid-64")
    positions_nm = as_nm_array(positions)
    raw_module = openmm_module(topology, builtin, "none")
    contexts = {
        "builtin_raw_torchforce": _context(topology, [torch_force(raw_module)]),
        "builtin_raw_pythonforce": _context(topology, [python_force(raw_module)]),
        f"builtin_{grid.spec}_torchforce": _context(
            topology, create_forces(topology, builtin, "full", grid)),
        "pet_raw_pythonforce": _context(topology, create_forces(topology, pet, "none")),
        f"pet_{grid.spec}_pythonforce": _context(topology, create_forces(topology, pet, "full",
                                                                         grid)),
    }
    jitter = np.random.default_rng(0)

    def evaluation(context):
        def call():
            context.setPositions(positions_nm + jitter.normal(0, 1e-6, positions_nm.shape))
            return context.getState(getEnergy=True, getForces=True)
        return call

    variants = {name: evaluation(context) for name, (context, _) in contexts.items()}
    for name in ("builtin_raw_torchforce", "builtin_raw_pythonforce"):
        context, integrator = contexts[name]
        variants[name.replace("raw", "verlet_step")] = (
            lambda integrator=integrator: integrator.step(1))
    for context, _ in contexts.values():
        context.setPositions(positions_nm)
    times = interleaved_times(variants, repeats, warmup=1)
    median = medians(times)
    result = {
        "what": "liquid-64 (192 atoms), one energy+forces evaluation (s) on OpenMM's CPU "
                "platform (Context.getState after new positions; *_verlet_step: one "
                "VerletIntegrator step), median of interleaved repeats",
        "builtin_model": description, "metatomic_model": str(pet_file),
        "metatomic_model_description": pet.description(), "grid": grid.spec,
        "machine": machine(), "repeats": repeats, "median_s": median, "all_s": times,
        "pythonforce_overhead_s": {
            "evaluation": median["builtin_raw_pythonforce"] - median["builtin_raw_torchforce"],
            "verlet_step": (median["builtin_verlet_step_pythonforce"]
                            - median["builtin_verlet_step_torchforce"])},
        "ratios": {
            "pythonforce_over_torchforce": (median["builtin_raw_pythonforce"]
                                            / median["builtin_raw_torchforce"]),
            f"pet_{grid.spec}_over_raw": (median[f"pet_{grid.spec}_pythonforce"]
                                          / median["pet_raw_pythonforce"]),
            f"builtin_{grid.spec}_over_raw": (median[f"builtin_{grid.spec}_torchforce"]
                                              / median["builtin_raw_torchforce"]),
            "pet_raw_over_builtin_raw": (median["pet_raw_pythonforce"]
                                         / median["builtin_raw_torchforce"])},
        "wall_time_s": time.perf_counter() - started,
    }
    write_result(results_dir, "model_kinds", result)
    print({name: f"{1000 * value:.1f} ms" for name, value in median.items()}, flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--pet", type=Path, default=DEFAULT_PET,
                        help="an exported metatomic PET (default: the one trained here)")
    parser.add_argument("--model", default=None, help="built-in model file (default: shipped)")
    args = parser.parse_args()
    run(args.repeats, args.pet, args.model)


if __name__ == "__main__":
    main()
