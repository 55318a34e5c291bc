"""Shared pieces of the benchmarks: machine facts, the model, structures, interleaved timing."""

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, Optional

import torch

from omm_symbreak import systems
from omm_symbreak.export import topology_atomic_numbers
from omm_symbreak.model import UnconstrainedPET, load_model
from omm_symbreak.units import as_nm_array, nm_to_angstrom

# name -> (template, replicate): the water molecule, liquid-64 and a 512-molecule liquid
SYSTEMS = {
    "water-monomer": ("water-monomer", (1, 1, 1)),
    "liquid-64": ("liquid-64", (1, 1, 1)),
    "liquid-512": ("liquid-64", (2, 2, 2)),
}


def machine() -> dict:
    """Where the numbers were measured."""
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "processor": platform.processor() or platform.machine()}


def benchmark_model(model_file: Optional[str] = None):
    """(model, description): the model file, else the shipped model, else random weights of the
    default sizes (the cost does not depend on the weights)."""
    try:
        return load_model(model_file), model_file or "shipped"
    except FileNotFoundError:
        if model_file is not None:
            raise
        torch.manual_seed(0)
        return UnconstrainedPET([1, 8]).eval(), "random initialisation, default sizes"


def structure(name: str, model: UnconstrainedPET, replicate=None):
    """(species [N], positions [N, 3] Angstrom, cell [3, 3] Angstrom or None, topology) of a
    ``SYSTEMS`` entry (or of a template with ``replicate``), float32."""
    template, copies = SYSTEMS.get(name, (name, (1, 1, 1)))
    topology, positions, box = systems.load(template, replicate or copies)
    species = model.species_of(topology_atomic_numbers(topology))
    positions = torch.tensor(nm_to_angstrom(as_nm_array(positions)), dtype=torch.float32)
    cell = None if box is None else torch.tensor(nm_to_angstrom(as_nm_array(box)),
                                                 dtype=torch.float32)
    return species, positions, cell, topology


def energy_and_forces(module, species, positions, cell):
    """Energy (eV) and forces [N, 3] (eV/Angstrom) of a model-side energy module."""
    x = positions.clone().requires_grad_(True)
    energy = module(species, x, cell)
    (gradient,) = torch.autograd.grad(energy, x)
    return energy.detach(), -gradient


def interleaved_times(variants: Dict[str, Callable[[], object]], repeats: int,
                      warmup: int = 1) -> Dict[str, list]:
    """Wall times (s) of every variant, ``repeats`` rounds that run each variant once in turn
    (after ``warmup`` untimed rounds)."""
    for _ in range(warmup):
        for run in variants.values():
            run()
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def medians(times: Dict[str, list]) -> Dict[str, float]:
    return {name: statistics.median(samples) for name, samples in times.items()}


def write_result(results_dir, name: str, result: dict) -> dict:
    """Write ``result`` to ``results_dir/<name>.json`` (folder created) and return it."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
