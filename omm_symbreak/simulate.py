"""Molecular dynamics with a chosen handling of the model's symmetry breaking.

``run(settings, output_dir)`` runs the simulation of a ``RunSettings`` (``omm_symbreak.settings``)
and writes a run directory (``omm_symbreak.rundir`` describes its files); ``resume=True``
continues it from its last checkpoint, dropping whatever was written after it, so that no frame
is lost or duplicated. A resumed run may be given another ``steps`` (to extend it, or to end it
earlier), as long as it is not below the checkpoint's step; every other setting must match.

Every state is checked before it is written, from step 0 on (``StateCheck``): a NaN, a
temperature far above the thermostat's, a potential energy far from its value at step 0 or a
broken water molecule stops the run with ``SimulationError``, and the outputs end at the last
state that passed. The energies are computed only where a state or diagnostics row is due
(``energy_due``): they cost a model evaluation of every force group, with MTS the whole grid
and the next outer step's recomputation of the slow force. In between, a state is checked
without its potential energy, its temperature taken from its velocities. A fetch of the
energies moves the random-number stream of OpenMM's ``MTSLangevinIntegrator`` (measured: the
frames change with friction 1/ps, not with 0, nor in NVE, nor when only forces are fetched),
so the frames of an MTS Langevin run depend on where its rows are; their statistics do not.

Every count of steps (``steps`` and the intervals) is in units of ``timestep_fs``; with multiple
time stepping (strategy ``mts``) the outer step is ``mts_stride`` of them.
"""

import math
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .devices import checked_device, module_device
from .executor import legacy_executor
from .export import openmm_module
from .model_kinds import load_energy_model
from .potential import create_system
from .strategies import integrator_groups
from .rundir import (RunOutputs, check_directory, claim_directory, create_run_directory,
                     start_potential_kj_mol)
from .settings import RunSettings
from .systems import load_structure
from .units import fs_to_ps, nm_to_angstrom

# Sanity limits of every state. The potential energy may leave its value at step 0 by this
# much per atom: far beyond thermal fluctuations (k_B T = 2.5 kJ/mol at 300 K).
EXPLOSION_KJ_MOL_PER_ATOM = 100.0
# The temperature may reach this many times the thermostat's (the initial one in NVE), and at
# least the floor: a water molecule's 9 degrees of freedom exceed 2000 K from 300 K with
# probability 1e-9 per state.
TEMPERATURE_FACTOR = 5.0
TEMPERATURE_FLOOR_K = 2000.0
# Every O-H bond of a water molecule (residue HOH, atoms O, H1, H2) stays within these lengths:
# outside, the molecule has dissociated or collapsed (equilibrium 0.96 Angstrom).
OH_BOND_ANGSTROM = (0.5, 2.0)


class SimulationError(RuntimeError):
    """The dynamics became unphysical (``StateCheck``); outputs end at the last good state,
    which the message names."""


def make_integrator(settings: RunSettings) -> openmm.Integrator:
    """The integrator of the settings (an MTS one for strategy ``mts``)."""
    step_ps = fs_to_ps(settings.timestep_fs * settings.stride)
    temperature, friction = settings.temperature_k, settings.friction_per_ps
    groups = integrator_groups(settings.strategy, settings.mts_stride)
    if groups is not None:
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


def platform_of(name: str) -> openmm.Platform:
    """The OpenMM platform ``name``; ValueError naming the available ones if it is missing."""
    try:
        return openmm.Platform.getPlatformByName(name)
    except openmm.OpenMMException:
        available = [openmm.Platform.getPlatform(i).getName()
                     for i in range(openmm.Platform.getNumPlatforms())]
        raise ValueError(f"--platform {name} is not available here (OpenMM has "
                         f"{', '.join(available)}): choose one of them") from None


class StateCheck:
    """Absolute sanity limits on a state (module constants): finite positions, velocities and
    energy; temperature; potential energy against its value at step 0,
    ``start_potential_kj_mol``; the O-H bond lengths of every water molecule.

    The temperature counts 3 degrees of freedom per atom, as ``StateDataReporter`` does for
    these systems (no constraints, no centre-of-mass motion remover). A state without energies
    (``problem(state, with_energy=False)``) is checked against its velocities' temperature,
    sum m v^2 / (3 N R), and not against the potential-energy limit.
    """

    def __init__(self, settings: RunSettings, topology, start_potential_kj_mol: float,
                 masses_amu: np.ndarray):
        n_atoms = topology.getNumAtoms()
        self.masses_amu = masses_amu
        self.start_potential_kj_mol = start_potential_kj_mol
        self.max_change_kj_mol = EXPLOSION_KJ_MOL_PER_ATOM * n_atoms
        self.max_temperature_k = max(TEMPERATURE_FACTOR * settings.temperature_k,
                                     TEMPERATURE_FLOOR_K)
        self.degrees_of_freedom = 3 * n_atoms
        self.periodic = topology.getPeriodicBoxVectors() is not None
        waters = [{atom.name: atom.index for atom in residue.atoms()}
                  for residue in topology.residues() if residue.name == "HOH"]
        waters = [atoms for atoms in waters if {"O", "H1", "H2"} <= atoms.keys()]
        self.oxygens = np.array([atoms["O"] for atoms in waters], dtype=int)  # [M]
        self.hydrogens = np.array([[atoms["H1"], atoms["H2"]] for atoms in waters],
                                  dtype=int).reshape(-1, 2)  # [M, 2]

    def temperature_k(self, state) -> float:
        """The instantaneous temperature (K) of ``state``."""
        kinetic = state.getKineticEnergy()
        return (2 * kinetic / (self.degrees_of_freedom * unit.MOLAR_GAS_CONSTANT_R)
                ).value_in_unit(unit.kelvin)

    def temperature_from_velocities_k(self, velocities_nm_ps: np.ndarray) -> float:
        """The temperature (K) of velocities [N, 3] in nm/ps: sum m v^2 / (3 N R)."""
        twice_kinetic = float(np.sum(self.masses_amu[:, None] * velocities_nm_ps ** 2))  # kJ/mol
        gas_constant = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(
            unit.kilojoule_per_mole / unit.kelvin)
        return twice_kinetic / (self.degrees_of_freedom * gas_constant)

    def problem(self, state, with_energy: bool = True) -> Optional[str]:
        """What makes ``state`` unphysical, in words, or None when it passes every check;
        ``with_energy=False`` for a state fetched without energies."""
        nm, ps = unit.nanometer, unit.picosecond
        potential = (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
                     if with_energy else 0.0)
        positions = state.getPositions(asNumpy=True).value_in_unit(nm)
        velocities = state.getVelocities(asNumpy=True).value_in_unit(nm / ps)
        if not (math.isfinite(potential) and np.isfinite(positions).all()
                and np.isfinite(velocities).all()):
            return "a position, velocity or the energy is not a finite number"
        temperature = (self.temperature_k(state) if with_energy
                       else self.temperature_from_velocities_k(velocities))
        if temperature > self.max_temperature_k:
            return (f"temperature {temperature:.0f} K, above the limit "
                    f"{self.max_temperature_k:.0f} K")
        change = potential - self.start_potential_kj_mol
        if with_energy and abs(change) > self.max_change_kj_mol:
            return (f"potential energy {potential:.6g} kJ/mol, {change:+.6g} from step 0 (limit "
                    f"{EXPLOSION_KJ_MOL_PER_ATOM:g} kJ/mol per atom)")
        box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(nm) if self.periodic else None
        return self._bond_problem(positions, box)

    def _bond_problem(self, positions_nm: np.ndarray, box_nm: Optional[np.ndarray]):
        """A water molecule with an O-H bond outside ``OH_BOND_ANGSTROM``, in words, or None;
        positions [N, 3] and box vectors [3, 3] (rows, None without a box) in nm."""
        vectors = positions_nm[self.hydrogens] - positions_nm[self.oxygens][:, None]  # [M, 2, 3]
        if box_nm is not None:  # nearest image, for molecules split across the box
            fractional = vectors @ np.linalg.inv(box_nm)
            vectors = (fractional - np.round(fractional)) @ box_nm
        lengths = nm_to_angstrom(np.linalg.norm(vectors, axis=-1))  # [M, 2]
        shortest, longest = OH_BOND_ANGSTROM
        broken = np.flatnonzero(((lengths < shortest) | (lengths > longest)).any(axis=1))
        if broken.size == 0:
            return None
        molecule = broken[0]
        worst = lengths[molecule][np.argmax(np.abs(lengths[molecule] - 0.96))]
        return (f"water molecule {molecule + 1} (oxygen atom {self.oxygens[molecule] + 1}) has "
                f"an O-H bond of {worst:.2f} Angstrom, outside {shortest}-{longest} Angstrom: "
                f"{len(broken)} molecule(s) dissociated or collapsed")


def run(settings: RunSettings, output_dir, resume: bool = False, progress: bool = True,
        on_checkpoint: Optional[Callable[[int], None]] = None) -> Path:
    """Run (or, with ``resume``, continue) the simulation of ``settings`` into ``output_dir``;
    ``on_checkpoint(step)`` is called after every checkpoint is written (a campaign saves the
    run's durable state there, ``omm_symbreak.archive``).

    Raises ValueError / FileNotFoundError for bad input before any simulation starts (another
    process running in ``output_dir`` included), and SimulationError when the dynamics blows
    up (outputs end at the last good state).
    """
    with legacy_executor():
        return _run(settings, Path(output_dir), resume, progress, on_checkpoint)


def _run(settings: RunSettings, directory: Path, resume: bool, progress: bool,
         on_checkpoint: Optional[Callable[[int], None]]) -> Path:
    """``run``, under the executor that makes a resumed run repeat an uninterrupted one."""
    settings.validate()
    platform = platform_of(settings.platform)
    device = device_of_platform(settings.platform)
    model = load_energy_model(settings.model)
    fingerprint = model.fingerprint()
    check_directory(directory, settings, resume, fingerprint)
    if settings.precision == "double":
        model = model.in_precision(torch.float64)
    topology, positions = load_structure(settings.system, settings.replicate)
    simulation = _simulation(settings, model, topology, positions, platform, device)
    # E_avg - E_raw on the diagnostic grid: Delta = E_raw - E_avg is its negative
    diagnostic = openmm_module(topology, model, "mts", settings.diagnostic_rotation_grid,
                               memory_budget_bytes=settings.memory_budget_bytes,
                               allow_incomplete_water=settings.allow_incomplete_water,
                               device=device)
    outputs = RunOutputs(directory, settings, topology, _masses_amu(simulation.system))

    def checkpoint(step: int) -> None:
        save_checkpoint(simulation, directory, step)
        if on_checkpoint is not None:
            on_checkpoint(step)

    with claim_directory(directory, settings, resume, fingerprint):
        try:
            if resume:
                step = load_checkpoint(simulation, directory)
                outputs.truncate(step)
                check = StateCheck(settings, topology, start_potential_kj_mol(directory),
                                   outputs.masses_amu)
                outputs.open(append=True, step=step)
            else:
                step = 0
                check = _start(simulation, outputs, model, fingerprint, positions, diagnostic,
                               checkpoint)
            _advance(simulation, outputs, diagnostic, check, step, progress, checkpoint)
        finally:
            outputs.close()
    return directory


def device_of_platform(name: str) -> torch.device:
    """The torch device of a simulation on the OpenMM platform ``name`` (its PythonForces and
    its Delta diagnostic): CUDA on ``CUDA``, else the CPU; ValueError when torch here has no
    CUDA (``devices.checked_device``)."""
    return checked_device("cuda" if name == "CUDA" else "cpu")


def _simulation(settings: RunSettings, model, topology, positions,
                platform: openmm.Platform, device: torch.device) -> app.Simulation:
    """The ``app.Simulation`` of the settings' strategy, integrator and platform, a
    PythonForce's module on ``device``."""
    system = create_system(topology, model, settings.strategy, settings.rotation_grid, positions,
                           settings.memory_budget_bytes, settings.allow_incomplete_water, device)
    double_on_device = settings.platform in ("CUDA", "OpenCL") and settings.precision == "double"
    properties = {"Precision": "double"} if double_on_device else {}
    try:
        return app.Simulation(topology, system, make_integrator(settings), platform, properties)
    except openmm.OpenMMException as error:
        raise ValueError(f"OpenMM cannot run on --platform {settings.platform} here ({error}); "
                         f"choose another --platform") from None


def _start(simulation, outputs: RunOutputs, model, fingerprint: str, positions,
           diagnostic, checkpoint: Callable[[int], None]) -> StateCheck:
    """Set up step 0 (positions, velocities at the temperature without centre-of-mass motion),
    check it, then create the run directory's files, write the reports of
    step 0 and the first checkpoint (``checkpoint(0)``); returns the check of the run's later
    states."""
    settings, directory = outputs.settings, outputs.directory
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(settings.temperature_k,
                                                  _openmm_seed(settings.seed))
    _remove_center_of_mass_velocity(simulation, outputs.masses_amu)
    state = _state(simulation)
    check = StateCheck(settings, simulation.topology,
                       state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
                       outputs.masses_amu)
    problem = check.problem(state)
    if problem:
        raise SimulationError(f"the starting state (step 0) fails the checks: {problem}; "
                              f"nothing was run: check the structure, or try a smaller "
                              f"--timestep-fs")
    create_run_directory(directory, settings, model, fingerprint, simulation.topology, positions)
    outputs.open(append=False, step=0)
    _write_reports(simulation, outputs, diagnostic, check, state, 0)
    checkpoint(0)
    return check


def _advance(simulation, outputs: RunOutputs, diagnostic, check: StateCheck, step: int,
             progress: bool, checkpoint: Callable[[int], None]) -> None:
    """Step from ``step`` to ``settings.steps`` (steps of timestep_fs), in chunks that end at
    every report and checkpoint due (``checkpoint(step)``), checking every chunk's state before
    writing it; SimulationError when the dynamics blows up."""
    from tqdm import tqdm

    settings = outputs.settings
    chunk = math.gcd(settings.state_interval, settings.trajectory_interval,
                     settings.diagnostics_interval, settings.checkpoint_interval)
    bar = tqdm(total=settings.steps, initial=step, unit="step", disable=not progress,
               desc=f"{settings.system} {settings.strategy}")
    started, started_step = time.perf_counter(), step
    try:
        while step < settings.steps:
            n = min(chunk, settings.steps - step)
            with_energy = energy_due(settings, step + n)
            try:
                simulation.step(n // settings.stride)
                state = _state(simulation, with_energy)
            except openmm.OpenMMException as error:
                raise SimulationError(f"the force evaluation failed after step {step} "
                                      f"({error}); {_kept(settings, step)}") from error
            problem = check.problem(state, with_energy)
            if problem:
                raise SimulationError(f"the dynamics blew up between steps {step} and "
                                      f"{step + n}: {problem}; {_kept(settings, step)}")
            step += n
            _write_reports(simulation, outputs, diagnostic, check, state, step)
            if step % settings.checkpoint_interval == 0 or step == settings.steps:
                checkpoint(step)
            elapsed = time.perf_counter() - started
            ns_per_day = (step - started_step) * settings.timestep_fs * 1e-6 / elapsed * 86400
            bar.set_postfix(ns_per_day=f"{ns_per_day:.3g}")
            bar.update(n)
    finally:
        bar.close()


def energy_due(settings: RunSettings, step: int) -> bool:
    """Whether a row that needs the energies (a state or diagnostics row) is due at ``step``."""
    return step % settings.state_interval == 0 or step % settings.diagnostics_interval == 0


def _write_reports(simulation, outputs: RunOutputs, diagnostic, check: StateCheck, state,
                   step: int) -> None:
    """Append the reports due at ``step``; ``state`` has energies where ``energy_due``. Delta
    costs a grid of model evaluations: it is computed only when a diagnostics row is due (NaN
    otherwise, and not written)."""
    settings = outputs.settings
    if not energy_due(settings, step):
        outputs.write(state, step, math.nan, math.nan, math.nan)
        return
    periodic = simulation.topology.getPeriodicBoxVectors() is not None
    delta = (_delta_kj_mol(diagnostic, state, periodic)
             if step % settings.diagnostics_interval == 0 else math.nan)
    conserved = _conserved_energy(simulation.integrator, state, step)
    outputs.write(state, step, delta, conserved, check.temperature_k(state))


def _conserved_energy(integrator, state, step: int) -> float:
    """Kinetic + potential energy, plus the heat-bath energy of Nose-Hoover (kJ/mol). At step 0
    the Nose-Hoover chain is at rest, its energy 0, and it is not computed: OpenMM 8.6 crashes
    (segmentation fault) computing it before the first step."""
    energy = (state.getPotentialEnergy() + state.getKineticEnergy()).value_in_unit(
        unit.kilojoule_per_mole)
    if step > 0 and isinstance(integrator, openmm.NoseHooverIntegrator):
        energy += integrator.computeHeatBathEnergy().value_in_unit(unit.kilojoule_per_mole)
    return energy


def _delta_kj_mol(diagnostic, state, periodic: bool) -> float:
    """Delta = E_raw - E_avg on the diagnostic grid (kJ/mol) at the positions of ``state``, from
    the correction module ``diagnostic`` (E_avg - E_raw), on the module's device."""
    device = module_device(diagnostic)
    positions = torch.tensor(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer),
                             device=device)
    box = None
    if periodic:
        box = torch.tensor(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer),
                           device=device)
    with torch.no_grad():
        return -float(diagnostic(positions, box))


def _kept(settings: RunSettings, step: int) -> str:
    return (f"outputs end at the last good frame, step {step} "
            f"(t = {fs_to_ps(step * settings.timestep_fs):g} ps)")


def _state(simulation, with_energy: bool = True):
    """The context's positions and velocities, with the energies and forces if
    ``with_energy``."""
    return simulation.context.getState(positions=True, velocities=True, forces=with_energy,
                                       energy=with_energy)


def _masses_amu(system: openmm.System) -> np.ndarray:
    """The particle masses [N] of a system, amu."""
    return np.array([system.getParticleMass(i).value_in_unit(unit.dalton)
                     for i in range(system.getNumParticles())])


def _remove_center_of_mass_velocity(simulation, masses_amu: np.ndarray) -> None:
    velocities = simulation.context.getState(velocities=True).getVelocities(asNumpy=True)
    velocities = velocities.value_in_unit(unit.nanometer / unit.picosecond)
    velocities -= masses_amu @ velocities / masses_amu.sum()
    simulation.context.setVelocities(velocities)
