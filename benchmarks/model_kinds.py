"""The cost of bringing a model: PythonForce against TorchForce, and a metatomic PET symmetrized
here and by metatomic-ase.

Liquid-64 (192 atoms) on the CPU, ``--threads`` threads (default 1) for torch and OpenMM's CPU
platform, one energy+forces evaluation per call after positions jittered by 1e-5 Angstrom
(``Context.getState`` on OpenMM's side), interleaved repeats:

- the built-in model, raw, in a ``TorchForce`` and in a ``PythonForce`` (the same TorchScript
  module called from Python at every evaluation: the per-step overhead of the PythonForce
  route), and one ``VerletIntegrator`` step of each;
- a metatomic PET (``--pet``; default the trained ``analysis/metatrain_pet/model.pt``, else
  metatrain's PET of the same architecture, randomly initialised), raw and averaged over the
  cheapest grid exact to l = 3 with inversion (``Ti``, 24 copies), through ``PythonForce``; the
  built-in model's ``Ti`` average through ``TorchForce`` beside it;
- the same PET file through metatomic-ase: ``MetatomicCalculator`` raw, and
  ``SymmetrizedCalculator(l_max=3)`` around it with its other defaults (Lebedev rule of degree 3
  times 7 in-plane angles, with inversion: 84 rotated copies in one batch, exact to l = 3, after
  one call of the raw calculator whose result the average replaces: 85 evaluations). Both
  return the stress too (the box is periodic), from the same backward pass.

Issue 33's targets: metatomic-ase's l_max = 3 average at least 5 times our ``Ti``, and our raw
PET at most 1.15 times metatomic-ase's raw call.

    python -m benchmarks.model_kinds [--repeats 10] [--threads 1] [--pet FILE] [--quick]

Writes benchmarks/results/model_kinds.json (``--quick``: one repeat, no warm-up round, to a
temporary folder). The cost does not depend on the weights: any checkpoint of the same
architecture measures the same (exported with ``mtt export``).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import openmm
from openmm import unit
import torch
from ase import Atoms
from metatomic_ase import MetatomicCalculator, SymmetrizedCalculator

from omm_symbreak.grids import cheapest_grid
from omm_symbreak.model_kinds import BuiltinModel, load_energy_model
from omm_symbreak.potential import create_forces, python_force, torch_force
from omm_symbreak.export import openmm_module
from omm_symbreak.systems import load_structure
from omm_symbreak.units import as_nm_array, kj_mol_nm_to_ev_angstrom, kj_mol_to_ev, nm_to_angstrom

from .common import benchmark_model, interleaved_times, machine, medians, write_result

RESULTS = Path(__file__).resolve().parent / "results"
PET_FOLDER = Path(__file__).resolve().parents[1] / "analysis" / "metatrain_pet"
DEFAULT_PET = PET_FOLDER / "model.pt"
JITTER_NM = 1e-6  # standard deviation of the position jitter before every call
KJ_MOL = unit.kilojoule_per_mole
TARGETS = {"metatomic_ase_lmax3_over_pet_Ti": ">= 5", "pet_raw_over_metatomic_ase_raw": "<= 1.15"}


def export_random_pet(path: Path) -> Path:
    """Exports metatrain's PET of ``analysis/metatrain_pet/options.yaml``'s architecture (H and
    O, energy in eV, lengths in Angstrom), randomly initialised (seed 0), float32, to ``path``."""
    import yaml  # metatrain's dependency
    from metatrain.pet import PET
    from metatrain.utils.architectures import get_default_hypers
    from metatrain.utils.data import DatasetInfo
    from metatrain.utils.data.target_info import get_energy_target_info

    options = yaml.safe_load((PET_FOLDER / "options.yaml").read_text())
    hypers = {**get_default_hypers("pet")["model"], **options["architecture"]["model"]}
    energy = get_energy_target_info("energy", {"quantity": "energy", "unit": "eV"})
    info = DatasetInfo(length_unit="angstrom", atomic_types=[1, 8], targets={"energy": energy})
    torch.manual_seed(0)
    PET(hypers, info).export().save(str(path))
    return path


def _context(topology, forces, threads: int):
    """A CPU Context of ``topology`` with ``forces``, ``threads`` threads and a Verlet
    integrator of 1e-6 ps."""
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    for force in forces:
        system.addForce(force)
    integrator = openmm.VerletIntegrator(1e-6)
    platform = openmm.Platform.getPlatformByName("CPU")
    return openmm.Context(system, integrator, platform, {"Threads": str(threads)}), integrator


def _ase_call(atoms: Atoms, positions_angstrom: np.ndarray, jitter):
    """One energy+forces call of ``atoms``' calculator at ``positions_angstrom`` jittered. Forces
    first, as ASE's integrators ask: ``SymmetrizedCalculator`` differentiates its copies only
    when forces are asked, and the energy comes with them (asked first, the energy would cost
    a second pass over the copies)."""
    def call():
        atoms.set_positions(positions_angstrom
                            + jitter.normal(0, nm_to_angstrom(JITTER_NM),
                                            positions_angstrom.shape))
        return atoms.get_forces(), atoms.get_potential_energy()
    return call


def default_pet(scratch: Path) -> tuple:
    """(file, origin) of the PET measured by default: the trained ``DEFAULT_PET`` if present,
    else ``export_random_pet`` into the folder ``scratch``."""
    if DEFAULT_PET.exists():
        return DEFAULT_PET, "trained (analysis/train_metatrain_pet.sh)"
    return (export_random_pet(scratch / "pet.pt"), "random initialisation (seed 0) of the "
            "architecture of analysis/metatrain_pet/options.yaml")


def run(repeats: int, pet_file: Path, pet_origin: str, model_file=None, results_dir=RESULTS,
        threads: int = 1, warmup: int = 1) -> dict:
    """Measures every variant (module docstring) with ``threads`` threads and writes
    ``results_dir/model_kinds.json``; ``pet_origin``: where ``pet_file`` comes from, in words."""
    started = time.perf_counter()
    torch.set_num_threads(threads)
    network, description = benchmark_model(model_file)
    builtin = BuiltinModel(network)
    pet = load_energy_model(pet_file)
    grid = cheapest_grid(3, inversion=True)
    topology, positions = load_structure("liquid-64")
    positions_nm = as_nm_array(positions)
    raw_module = openmm_module(topology, builtin, "none")
    contexts = {
        "builtin_raw_torchforce": [torch_force(raw_module)],
        "builtin_raw_pythonforce": [python_force(raw_module)],
        f"builtin_{grid.spec}_torchforce": create_forces(topology, builtin, "full", grid),
        "pet_raw_pythonforce": create_forces(topology, pet, "none"),
        f"pet_{grid.spec}_pythonforce": create_forces(topology, pet, "full", grid),
    }
    contexts = {name: _context(topology, forces, threads) for name, forces in contexts.items()}
    jitter = np.random.default_rng(0)

    def evaluation(context):
        def call():
            context.setPositions(positions_nm + jitter.normal(0, JITTER_NM, positions_nm.shape))
            return context.getState(getEnergy=True, getForces=True)
        return call

    variants = {name: evaluation(context) for name, (context, _) in contexts.items()}
    for name in ("builtin_raw_torchforce", "builtin_raw_pythonforce"):
        context, integrator = contexts[name]
        variants[name.replace("raw", "verlet_step")] = (
            lambda integrator=integrator: integrator.step(1))

    positions_angstrom = nm_to_angstrom(positions_nm)
    box_angstrom = nm_to_angstrom(as_nm_array(topology.getPeriodicBoxVectors()))
    numbers = [atom.element.atomic_number for atom in topology.atoms()]
    calculators = {
        "metatomic_ase_raw": MetatomicCalculator(pet_file, device="cpu"),
        "metatomic_ase_lmax3": SymmetrizedCalculator(
            MetatomicCalculator(pet_file, device="cpu"), l_max=3),
    }
    ase_atoms = {}
    for name, calculator in calculators.items():
        ase_atoms[name] = Atoms(numbers=numbers, positions=positions_angstrom,
                                cell=box_angstrom, pbc=True)
        ase_atoms[name].calc = calculator
        variants[name] = _ase_call(ase_atoms[name], positions_angstrom, jitter)

    for context, _ in contexts.values():
        context.setPositions(positions_nm)
    # the two raw routes evaluate the same model on the same atoms: their difference (float32)
    ours = contexts["pet_raw_pythonforce"][0].getState(getEnergy=True, getForces=True)
    theirs = ase_atoms["metatomic_ase_raw"]
    raw_agreement = {
        "energy_ev": (kj_mol_to_ev(ours.getPotentialEnergy().value_in_unit(KJ_MOL))
                      - theirs.get_potential_energy()),
        "max_force_ev_per_angstrom": float(np.abs(kj_mol_nm_to_ev_angstrom(
            ours.getForces(asNumpy=True).value_in_unit(KJ_MOL / unit.nanometer))
            - theirs.get_forces()).max())}

    times = interleaved_times(variants, repeats, warmup=warmup)
    median = medians(times)
    symmetrized = calculators["metatomic_ase_lmax3"]
    result = {
        "what": "liquid-64 (192 atoms), one energy+forces evaluation (s) on the CPU after "
                "positions jittered by 1e-5 Angstrom: OpenMM's CPU platform (Context.getState; "
                "*_verlet_step: one VerletIntegrator step) and metatomic-ase's calculators "
                "(get_forces, get_potential_energy), median of interleaved repeats",
        "builtin_model": description, "metatomic_model": str(pet_file),
        "metatomic_model_origin": pet_origin,
        "metatomic_model_description": pet.description(),
        "metatomic_model_parameters": sum(p.numel() for p in pet.model.parameters()),
        "grid": grid.spec,
        "exactness": {
            f"pet_{grid.spec}": {"l_exact": grid.l_exact, "inversion": grid.inversion,
                                 "evaluations": grid.size},
            "metatomic_ase_lmax3": {
                "l_max": symmetrized.l_max, "inversion": symmetrized.include_inversion,
                "rotated_copies": len(symmetrized.quadrature_rotations),
                "batch_size": symmetrized.batch_size,
                # its calculate() runs the raw calculator before the copies (metatomic-ase 0.1.4)
                "evaluations": len(symmetrized.quadrature_rotations) + 1}},
        "raw_agreement_ours_minus_metatomic_ase": raw_agreement,
        "machine": machine(), "threads": threads, "repeats": repeats, "warmup": warmup,
        "median_s": median, "all_s": times,
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
                                         / median["builtin_raw_torchforce"]),
            "metatomic_ase_lmax3_over_pet_Ti": (median["metatomic_ase_lmax3"]
                                                / median[f"pet_{grid.spec}_pythonforce"]),
            "pet_raw_over_metatomic_ase_raw": (median["pet_raw_pythonforce"]
                                               / median["metatomic_ase_raw"])},
        "targets": TARGETS,
        "wall_time_s": time.perf_counter() - started,
    }
    write_result(results_dir, "model_kinds", result)
    print({name: f"{1000 * value:.1f} ms" for name, value in median.items()}, flush=True)
    print({name: f"{value:.3f}" for name, value in result["ratios"].items()}, flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of torch and of OpenMM's CPU platform (default 1)")
    parser.add_argument("--pet", type=Path, default=None,
                        help="an exported metatomic PET (default: the one trained here if "
                             "present, else the same architecture randomly initialised)")
    parser.add_argument("--model", default=None, help="built-in model file (default: shipped)")
    parser.add_argument("--quick", action="store_true",
                        help="one repeat, no warm-up round, written to a temporary folder")
    args = parser.parse_args()
    output = Path(tempfile.mkdtemp(prefix="benchmarks-")) if args.quick else RESULTS
    with tempfile.TemporaryDirectory() as scratch:
        pet_file, pet_origin = ((args.pet, "given (--pet)") if args.pet is not None
                                else default_pet(Path(scratch)))
        run(1 if args.quick else args.repeats, pet_file, pet_origin, args.model, output,
            args.threads, warmup=0 if args.quick else 1)
    print(f"wrote {output / 'model_kinds.json'}", flush=True)


if __name__ == "__main__":
    main()
