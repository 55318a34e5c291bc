"""The long-range model's Coulomb sum: Ewald (plain torch) against the mesh (torch-pme's PME),
energy + forces of liquid water at growing sizes. Sets ``electrostatics.MESH_MIN_ATOMS``.

    python -m benchmarks.coulomb [--repeats N] [--threads T]

Each size (liquid-64 replicated) runs both routes interleaved, in float32 with the shipped
model's real-space cutoff and tolerance (6 Angstrom, 1e-6), for one charge set (a raw MD step)
and for the 24 charge sets of grid Ti in the kernel's chunks (on CPUs about 512 atoms per call,
so one set per call from 512 atoms on, with one setup per structure). Also the largest relative
difference of the two routes' energies and forces. Writes benchmarks/results/coulomb.json.
"""

import argparse
import time
from pathlib import Path

import torch

from omm_symbreak import systems
from omm_symbreak.model.electrostatics import Coulomb
from omm_symbreak.units import as_nm_array, nm_to_angstrom

from .common import benchmark_model, interleaved_times, machine, medians, write_result

RESULTS = Path(__file__).resolve().parent / "results"
REPLICATES = [(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2), (3, 3, 2), (3, 3, 3)]
CHARGE_SETS = 24  # grid Ti
CPU_BATCH_ATOMS = 512  # the kernel's default chunk on CPUs


def liquid(replicate):
    """(positions [N, 3], cell [3, 3]) in Angstrom (float32) and charges [N] (e) of liquid-64
    replicated, with charges -0.8 e on O and 0.4 e on H."""
    topology, positions, box = systems.load("liquid-64", replicate)
    charges = [-0.8 if atom.element.symbol == "O" else 0.4 for atom in topology.atoms()]
    return (torch.tensor(nm_to_angstrom(as_nm_array(positions)), dtype=torch.float32),
            torch.tensor(nm_to_angstrom(as_nm_array(box)), dtype=torch.float32),
            torch.tensor(charges, dtype=torch.float32))


def energies_and_forces(coulomb, positions, cell, charge_sets, chunk):
    """Energies [B] (eV) and the forces of their sum [N, 3] (eV/A): one setup, ``chunk`` sets
    per ``energies`` call."""
    x = positions.clone().requires_grad_(True)
    setup = coulomb.setup(x, cell)
    energies = torch.cat([coulomb.energies(setup, charge_sets[start:start + chunk])
                          for start in range(0, charge_sets.shape[0], chunk)])
    (gradient,) = torch.autograd.grad(energies.sum(), x)
    return energies.detach(), -gradient


def benchmark_size(replicate, cutoff: float, tolerance: float, repeats: int) -> dict:
    positions, cell, charges = liquid(replicate)
    n_atoms = positions.shape[0]
    scales = 1.0 + 0.1 * torch.randn(CHARGE_SETS, 1, generator=torch.Generator().manual_seed(0))
    charge_sets = {"1 set": charges[None], f"{CHARGE_SETS} sets": charges[None] * scales}
    chunk = max(1, CPU_BATCH_ATOMS // n_atoms)
    routes = {"ewald": Coulomb(cutoff, tolerance, mesh_min_atoms=n_atoms + 1),
              "mesh": Coulomb(cutoff, tolerance, mesh_min_atoms=0)}
    variants = {f"{route} {sets}": (lambda c=coulomb, q=q: energies_and_forces(
        c, positions, cell, q, chunk))
        for route, coulomb in routes.items() for sets, q in charge_sets.items()}
    (e_ewald, f_ewald), (e_mesh, f_mesh) = (variants[f"{route} 1 set"]() for route in routes)
    return {
        "atoms": n_atoms, "replicate": list(replicate), "charge_sets_per_call": chunk,
        "median_s": medians(interleaved_times(variants, repeats)),
        "mesh_vs_ewald": {
            "energy_relative": float(((e_mesh - e_ewald) / e_ewald).abs().max()),
            "force_relative_to_max": float((f_mesh - f_ewald).abs().max()
                                           / f_ewald.abs().max())},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model, _ = benchmark_model()
    sizes = []
    for replicate in REPLICATES:
        sizes.append(benchmark_size(replicate, model.ewald_cutoff, model.ewald_tolerance,
                                    args.repeats))
        entry = sizes[-1]
        print(entry["atoms"], "atoms:", {k: round(v, 3) for k, v in entry["median_s"].items()},
              entry["mesh_vs_ewald"], flush=True)
    mesh_wins = [entry["atoms"] for entry in sizes
                 if entry["median_s"]["mesh 1 set"] < entry["median_s"]["ewald 1 set"]]
    result = {"machine": machine(), "cutoff_angstrom": model.ewald_cutoff,
              "tolerance": model.ewald_tolerance, "sizes": sizes,
              "smallest_size_where_the_mesh_wins_for_one_set": min(mesh_wins, default=None),
              "wall_time_s": time.perf_counter() - start}
    write_result(args.output, "coulomb", result)
    return result


if __name__ == "__main__":
    main()
