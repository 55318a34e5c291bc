"""The cost of the ASE route: one rotated copy against one call of the calculator alone.

Liquid-64 (192 atoms), OpenMM's CPU platform, one energy+forces evaluation per call
(``Context.getState`` after new positions), interleaved repeats, for three calculators: the
tests' analytic polynomial (``tests/ase_models.py``: almost free, so the route's own overhead
shows), ASE's ``LennardJones`` and ``EMT`` (real work, with neighbour lists). Per calculator:

- ``call``: the calculator alone as ASE runs it (``Atoms.get_potential_energy`` and
  ``get_forces`` after positions moved by 1e-5 Angstrom; a neighbour list is updated, not rebuilt);
- ``call_rotated``: the same on positions turned by a new rotation at every call, as each copy
  of a grid is (a neighbour list is rebuilt);
- ``none``: the raw calculator through ``create_system`` (``PythonForce``): one copy;
- ``Ti``: the average over ``Ti`` (24 copies); ``Ti_per_copy`` is its time / 24.

Targets (issue 33): ``none / call`` and ``Ti_per_copy / call_rotated`` at most 1.2.

    python -m benchmarks.ase_route [--repeats 10]

Writes benchmarks/results/ase_route.json.
"""

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import openmm
from ase import Atoms
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from omm_symbreak.grids import parse_grid
from omm_symbreak.potential import create_system
from omm_symbreak.systems import load_structure
from omm_symbreak.units import as_nm_array, nm_to_angstrom
from tests.ase_models import PolynomialCalculator

from .common import interleaved_times, machine, medians, write_result

RESULTS = Path(__file__).resolve().parent / "results"
JITTER_NM = 1e-6


def calculators() -> dict:
    """name -> a fresh calculator of each kind measured."""
    return {"polynomial": PolynomialCalculator(),
            "lennard_jones": LennardJones(sigma=3.0, epsilon=0.01, rc=7.0),
            "emt": EMT()}


def calculator_call(atoms: Atoms, centred: np.ndarray, rng, rotations=None):
    """One energy+forces call of ``atoms``' calculator at ``centred`` [N, 3] (Angstrom)
    jittered, turned by the next of ``rotations`` (an iterator of [3, 3]) when given."""
    cell = atoms.cell.array.copy()

    def call():
        positions = centred + rng.normal(0, 10 * JITTER_NM, centred.shape)
        if rotations is not None:
            rotation = next(rotations)
            positions = positions @ rotation.T
            atoms.set_cell(np.linalg.det(rotation) * cell @ rotation.T)
        atoms.set_positions(positions)
        return atoms.get_potential_energy(), atoms.get_forces()
    return call


def context_call(context: openmm.Context, positions_nm: np.ndarray, rng):
    """One energy+forces evaluation of ``context`` at ``positions_nm`` jittered."""
    def call():
        context.setPositions(positions_nm + rng.normal(0, JITTER_NM, positions_nm.shape))
        return context.getState(getEnergy=True, getForces=True)
    return call


def cpu_context(system: openmm.System) -> openmm.Context:
    return openmm.Context(system, openmm.VerletIntegrator(1e-6),
                          openmm.Platform.getPlatformByName("CPU"))


def variants_of(name: str, topology, positions_nm, box_nm, grid, rng) -> dict:
    """The four timed calls of one calculator (module docstring)."""
    centred = nm_to_angstrom(positions_nm - positions_nm.mean(axis=0))
    numbers = [atom.element.atomic_number for atom in topology.atoms()]
    turns = itertools.cycle(parse_grid("I").rotations)
    timed = {}
    for label, rotations in (("call", None), ("call_rotated", turns)):
        atoms = Atoms(numbers=numbers, positions=centred, cell=nm_to_angstrom(box_nm), pbc=True)
        atoms.calc = calculators()[name]
        timed[f"{name}_{label}"] = calculator_call(atoms, centred, rng, rotations)
    for label, strategy, strategy_grid in (("none", "none", None), (grid.spec, "full", grid)):
        system = create_system(topology, calculators()[name], strategy, strategy_grid)
        timed[f"{name}_{label}"] = context_call(cpu_context(system), positions_nm, rng)
    return timed


def run(repeats: int = 10, results_dir=RESULTS) -> dict:
    started = time.perf_counter()
    topology, positions = load_structure("liquid-64")
    positions_nm = as_nm_array(positions)
    box_nm = as_nm_array(topology.getPeriodicBoxVectors())
    grid = parse_grid("Ti")
    rng = np.random.default_rng(0)
    variants = {}
    for name in calculators():
        variants.update(variants_of(name, topology, positions_nm, box_nm, grid, rng))
    times = interleaved_times(variants, repeats, warmup=1)
    median = medians(times)
    ratios = {}
    for name in calculators():
        per_copy = median[f"{name}_{grid.spec}"] / grid.size
        median[f"{name}_{grid.spec}_per_copy"] = per_copy
        ratios[f"{name}_none_over_call"] = median[f"{name}_none"] / median[f"{name}_call"]
        ratios[f"{name}_{grid.spec}_per_copy_over_call_rotated"] = (
            per_copy / median[f"{name}_call_rotated"])
    result = {
        "what": "liquid-64 (192 atoms), one energy+forces evaluation (s): an ASE calculator "
                "alone (call: jittered positions; call_rotated: turned at every call) and "
                "through create_system's PythonForce on OpenMM's CPU platform (none: one "
                "copy; Ti: 24), median of interleaved repeats",
        "grid": grid.spec, "machine": machine(), "repeats": repeats, "median_s": median,
        "ratios": ratios, "target": "none_over_call and Ti_per_copy_over_call_rotated <= 1.2",
        "all_s": times, "wall_time_s": time.perf_counter() - started,
    }
    write_result(results_dir, "ase_route", result)
    print({name: f"{1000 * value:.2f} ms" for name, value in median.items()}, flush=True)
    print({name: f"{value:.3f}" for name, value in ratios.items()}, flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    run(args.repeats)


if __name__ == "__main__":
    main()
