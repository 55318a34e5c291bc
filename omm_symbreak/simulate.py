"""Molecular dynamics with a chosen handling of the model's symmetry breaking.

``run(settings, output_dir)`` runs the simulation of a ``RunSettings`` (``omm_symbreak.settings``)
and writes a run directory (``omm_symbreak.rundir`` describes its files); ``resume=True``
continues it from its last checkpoint, dropping whatever was written after it, so that no frame
is lost or duplicated. A resumed run may be given another ``steps`` (to extend it, or to end it
earlier), as long as it is not below the checkpoint's step; every other setting must match.

Every count of steps (``steps`` and the intervals) is in units of ``timestep_fs``; with multiple
time stepping (strategy ``mts``) the outer step is ``mts_stride`` of them.
"""

import math
import time
from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import torch

from .export import openmm_module
from .model import load_model, model_fingerprint
from .potential import FAST_GROUP, SLOW_GROUP, create_system
from .rundir import (RunOutputs, create_run_directory, load_checkpoint, prepare_directory,
                     save_checkpoint)
from .settings import RunSettings
from .systems import load_structure
from .units import fs_to_ps

# Stop when the potential energy leaves the starting value by more than this per atom: far
# beyond thermal fluctuations (k_B T = 2.5 kJ/mol at 300 K), typical of a broken molecule.
EXPLOSION_KJ_MOL_PER_ATOM = 100.0


class SimulationError(RuntimeError):
    """The dynamics became unphysical (NaN or exploding energy); outputs end at the last good
    frame, which the message names."""


def make_integrator(settings: RunSettings) -> openmm.Integrator:
    """The integrator of the settings (an MTS one for strategy ``mts``)."""
    step_ps = fs_to_ps(settings.timestep_fs * settings.stride)
    temperature, friction = settings.temperature_k, settings.friction_per_ps
    if settings.strategy == "mts":
        groups = [(SLOW_GROUP, 1), (FAST_GROUP, settings.mts_stride)]
        if settings.ensemble == "nve":
            return openmm.MTSIntegrator(step_ps, groups)
        integrator = openmm.MTSLangevinIntegrator(temperature, friction, step_ps, groups)
    elif settings.ensemble == "nve":
        return openmm.VerletIntegrator(step_ps)
    elif settings.thermostat == "nose-hoover":
        return openmm.NoseHooverIntegrator(temperature, friction, step_ps)
    else:
        integrator = openmm.LangevinMiddleIntegrator(temperature, friction, step_ps)
    integrator.setRandomNumberSeed(_openmm_seed(settings.seed))
    return integrator


def _openmm_seed(seed: int) -> int:
    """OpenMM takes a seed of 0 to mean "pick one at random": shift seeds to keep runs
    reproducible for every user seed, 0 included."""
    return seed + 1


def run(settings: RunSettings, output_dir, resume: bool = False, progress: bool = True) -> Path:
    """Run (or, with ``resume``, continue) the simulation of ``settings`` into ``output_dir``.

    Raises ValueError / FileNotFoundError for bad input before any simulation starts, and
    SimulationError when the dynamics blows up (outputs end at the last good frame).
    """
    directory = Path(output_dir)
    settings.validate()
    model = load_model(settings.model)
    fingerprint = model_fingerprint(model)
    prepare_directory(directory, settings, resume, fingerprint)
    if settings.precision == "double":
        model = model.double()
    topology, positions = load_structure(settings.system)
    simulation = _simulation(settings, model, topology, positions)
    # E_avg - E_raw on the diagnostic grid: Delta = E_raw - E_avg is its negative
    diagnostic = openmm_module(topology, model, "mts", settings.diagnostic_rotation_grid)
    masses_amu = _masses_amu(simulation.system)
    outputs = RunOutputs(directory, settings, topology, masses_amu)
    if resume:
        step = load_checkpoint(simulation, directory)
        outputs.truncate(step)
        outputs.open(append=True)
    else:
        step = 0
        create_run_directory(directory, settings, model, fingerprint, topology, positions)
        torch.manual_seed(settings.seed)
        simulation.context.setPositions(positions)
        simulation.context.setVelocitiesToTemperature(settings.temperature_k,
                                                      _openmm_seed(settings.seed))
        _remove_center_of_mass_velocity(simulation, masses_amu)
        outputs.open(append=False)
    try:
        if not resume:
            _write_reports(simulation, outputs, diagnostic, _state(simulation), 0)
            save_checkpoint(simulation, directory, 0)
        _advance(simulation, outputs, diagnostic, step, progress)
    finally:
        outputs.close()
    return directory


def _simulation(settings: RunSettings, model, topology, positions) -> app.Simulation:
    """The ``app.Simulation`` of the settings' strategy, integrator and platform."""
    system = create_system(topology, model, settings.strategy, settings.rotation_grid, positions)
    platform = openmm.Platform.getPlatformByName(settings.platform)
    double_on_device = settings.platform in ("CUDA", "OpenCL") and settings.precision == "double"
    properties = {"Precision": "double"} if double_on_device else {}
    return app.Simulation(topology, system, make_integrator(settings), platform, properties)


def _advance(simulation, outputs: RunOutputs, diagnostic, step: int, progress: bool) -> None:
    """Step from ``step`` to ``settings.steps`` (steps of timestep_fs), in chunks that end at
    every report and checkpoint due; SimulationError when the dynamics blows up."""
    from tqdm import tqdm

    settings = outputs.settings
    n_atoms = simulation.topology.getNumAtoms()
    reference_energy = None
    chunk = math.gcd(settings.state_interval, settings.trajectory_interval,
                     settings.diagnostics_interval, settings.checkpoint_interval)
    bar = tqdm(total=settings.steps, initial=step, unit="step", disable=not progress,
               desc=f"{settings.system} {settings.strategy}")
    started, started_step = time.perf_counter(), step
    try:
        while step < settings.steps:
            n = min(chunk, settings.steps - step)
            try:
                simulation.step(n // settings.stride)
                state = _state(simulation)
            except openmm.OpenMMException as error:
                raise SimulationError(f"the force evaluation failed after step {step} "
                                      f"({error}); {_kept(settings, step)}") from error
            energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            reference_energy = energy if reference_energy is None else reference_energy
            if not _is_sane(state, energy, reference_energy, n_atoms):
                raise SimulationError(
                    f"the dynamics blew up between steps {step} and {step + n} (potential energy "
                    f"{energy:.6g} kJ/mol); {_kept(settings, step)}")
            step += n
            _write_reports(simulation, outputs, diagnostic, state, step)
            if step % settings.checkpoint_interval == 0 or step == settings.steps:
                save_checkpoint(simulation, outputs.directory, step)
            elapsed = time.perf_counter() - started
            ns_per_day = (step - started_step) * settings.timestep_fs * 1e-6 / elapsed * 86400
            bar.set_postfix(ns_per_day=f"{ns_per_day:.3g}")
            bar.update(n)
    finally:
        bar.close()


def _write_reports(simulation, outputs: RunOutputs, diagnostic, state, step: int) -> None:
    """Append the reports due at ``step``. Delta costs a grid of model evaluations: it is
    computed only when a diagnostics row is due (NaN otherwise, and not written)."""
    settings = outputs.settings
    periodic = simulation.topology.getPeriodicBoxVectors() is not None
    delta = (_delta_kj_mol(diagnostic, state, periodic)
             if step % settings.diagnostics_interval == 0 else math.nan)
    outputs.write(simulation, state, step, delta, _conserved_energy(simulation.integrator, state))


def _conserved_energy(integrator, state) -> float:
    """Kinetic + potential energy, plus the heat-bath energy of Nose-Hoover (kJ/mol)."""
    energy = (state.getPotentialEnergy() + state.getKineticEnergy()).value_in_unit(
        unit.kilojoule_per_mole)
    if isinstance(integrator, openmm.NoseHooverIntegrator):
        energy += integrator.computeHeatBathEnergy().value_in_unit(unit.kilojoule_per_mole)
    return energy


def _delta_kj_mol(diagnostic, state, periodic: bool) -> float:
    """Delta = E_raw - E_avg on the diagnostic grid (kJ/mol) at the positions of ``state``, from
    the correction module ``diagnostic`` (E_avg - E_raw)."""
    positions = torch.tensor(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    box = None
    if periodic:
        box = torch.tensor(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
    with torch.no_grad():
        return -float(diagnostic(positions, box))


def _kept(settings: RunSettings, step: int) -> str:
    return (f"outputs end at the last good frame, step {step} "
            f"(t = {fs_to_ps(step * settings.timestep_fs):g} ps)")


def _state(simulation):
    return simulation.context.getState(positions=True, velocities=True, forces=True,
                                       energy=True)


def _is_sane(state, energy: float, reference_energy: float, n_atoms: int) -> bool:
    positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return (math.isfinite(energy) and bool(np.all(np.isfinite(positions)))
            and abs(energy - reference_energy) < EXPLOSION_KJ_MOL_PER_ATOM * n_atoms)


def _masses_amu(system: openmm.System) -> np.ndarray:
    """The particle masses [N] of a system, amu."""
    return np.array([system.getParticleMass(i).value_in_unit(unit.dalton)
                     for i in range(system.getNumParticles())])


def _remove_center_of_mass_velocity(simulation, masses_amu: np.ndarray) -> None:
    velocities = simulation.context.getState(velocities=True).getVelocities(asNumpy=True)
    velocities = velocities.value_in_unit(unit.nanometer / unit.picosecond)
    velocities -= masses_amu @ velocities / masses_amu.sum()
    simulation.context.setVelocities(velocities)
