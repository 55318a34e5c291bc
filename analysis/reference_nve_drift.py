"""NVE energy drift of q-TIP4P/F liquid-64 with OpenMM's VerletIntegrator on the CPU platform.

    python analysis/reference_nve_drift.py [--duration-ps 5] [--timesteps-fs 0.25 0.5]
                                           [--diagnostic-switching-nm 0.5]

Starts from the liquid-64 template with 300 K Maxwell-Boltzmann velocities (seed 1), runs NVE for
every time step, samples the total energy every 10 fs and fits a straight line; the drift is its
slope per molecule. A diagnostic run at the largest time step adds a Lennard-Jones switching
function from ``--diagnostic-switching-nm`` to the cutoff (not part of q-TIP4P/F): it separates the
energy jumps of pairs crossing the plain Lennard-Jones cutoff (0.62 nm here, half the box) from
the integrator's error. Writes analysis/results/reference_nve_drift.json (with wall times).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import openmm
from openmm import unit

from omm_symbreak import systems
from omm_symbreak.reference import add_virtual_sites, create_qtip4pf_system

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "reference_nve_drift.json"
SAMPLE_INTERVAL_PS = 0.01
TEMPERATURE_K = 300.0
SEED = 1


def nve_run(timestep_fs: float, duration_ps: float, switching_nm: float | None = None) -> dict:
    """One NVE run of liquid-64; returns drift (kJ/mol/ns per molecule), fluctuations, temperature and wall time."""
    topology, positions = add_virtual_sites(*systems.load("liquid-64")[:2])
    system = create_qtip4pf_system(topology)
    if switching_nm is not None:
        system.getForce(2).setUseSwitchingFunction(True)
        system.getForce(2).setSwitchingDistance(switching_nm)
    integrator = openmm.VerletIntegrator(timestep_fs * 1e-3)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(positions)
    context.setVelocitiesToTemperature(TEMPERATURE_K, SEED)
    steps_per_sample = round(SAMPLE_INTERVAL_PS / (timestep_fs * 1e-3))
    n_samples = round(duration_ps / SAMPLE_INTERVAL_PS) + 1
    time_ps, total_kj_mol, kinetic_kj_mol = [], [], []
    start = time.perf_counter()
    for sample in range(n_samples):
        if sample:
            integrator.step(steps_per_sample)
        state = context.getState(getEnergy=True)
        kinetic = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        time_ps.append(state.getTime().value_in_unit(unit.picosecond))
        kinetic_kj_mol.append(kinetic)
        total_kj_mol.append(kinetic + state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    wall_time_s = time.perf_counter() - start
    slope_kj_mol_ps, intercept = np.polyfit(time_ps, total_kj_mol, 1)
    residual = np.array(total_kj_mol) - (slope_kj_mol_ps * np.array(time_ps) + intercept)
    n_molecules = topology.getNumResidues()
    gas_constant_kj_mol_k = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)
    degrees_of_freedom = 3 * 3 * n_molecules
    return {
        "timestep_fs": timestep_fs,
        "lennard_jones": "plain cutoff (q-TIP4P/F)" if switching_nm is None else f"switched from {switching_nm} nm (diagnostic)",
        "duration_ps": duration_ps,
        "steps": steps_per_sample * (n_samples - 1),
        "drift_kj_mol_ns_per_molecule": slope_kj_mol_ps * 1e3 / n_molecules,
        "total_energy_change_kj_mol": total_kj_mol[-1] - total_kj_mol[0],
        "total_energy_rms_about_fit_kj_mol": float(np.sqrt(np.mean(residual**2))),
        "kinetic_energy_rms_kj_mol": float(np.std(kinetic_kj_mol)),
        "mean_temperature_k": float(2 * np.mean(kinetic_kj_mol) / (degrees_of_freedom * gas_constant_kj_mol_k)),
        "wall_time_s": wall_time_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ps", type=float, default=5.0)
    parser.add_argument("--timesteps-fs", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--diagnostic-switching-nm", type=float, default=0.5)
    arguments = parser.parse_args()
    start = time.perf_counter()
    runs = [nve_run(timestep_fs, arguments.duration_ps) for timestep_fs in arguments.timesteps_fs]
    runs.append(nve_run(max(arguments.timesteps_fs), arguments.duration_ps, arguments.diagnostic_switching_nm))
    result = {
        "system": "liquid-64 (64 q-TIP4P/F molecules, PME, cutoff = half box)",
        "integrator": "VerletIntegrator",
        "platform": "CPU",
        "command": " ".join(["python", "analysis/reference_nve_drift.py", *sys.argv[1:]]),
        "openmm_version": openmm.__version__,
        "runs": runs,
        "wall_time_s": time.perf_counter() - start,
    }
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
