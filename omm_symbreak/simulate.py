"""Molecular dynamics with a chosen handling of the model's symmetry breaking.

``run(settings, output_dir)`` runs one simulation and writes, into ``output_dir``:

- ``run.json``: the settings, the model, the units of every output, versions;
- ``topology.pdb``: the starting structure (the topology for mdtraj);
- ``trajectory.dcd``: positions (``mdtraj.load("trajectory.dcd", top="topology.pdb")``, nm);
- ``velocities.dcd`` (with ``velocities=True``): velocities stored as DCD coordinates, so that
  the ``xyz`` mdtraj reads from it are velocities in nm/ps;
- ``state.csv``: ``openmm.app.StateDataReporter`` columns (kJ/mol, K, ps, ns/day);
- ``diagnostics.csv``: the symmetry diagnostics (units in its ``#`` header lines): Delta =
  E_raw - E_avg on ``diagnostic_grid``, total angular momentum, net torque about the centre of
  mass, kinetic / potential / conserved energy, and each molecule's angular momentum for
  systems of at most ``PER_MOLECULE_MAX`` molecules;
- ``checkpoint.chk`` + ``checkpoint.pt``: the OpenMM checkpoint and the step and torch random
  state it belongs to, written every ``checkpoint_interval`` steps; ``resume=True`` continues
  from them, dropping whatever was written after the checkpoint, so that no frame is lost or
  duplicated. A resumed run may be given another ``steps`` (to extend it, or to end it
  earlier), as long as it is not below the checkpoint's step; every other setting must match.

Every count of steps (``steps`` and the intervals) is in units of ``timestep_fs``; with multiple
time stepping (strategy ``mts``) the outer step is ``mts_stride`` of them and every count must
be a multiple of ``mts_stride``.
"""

import dataclasses
import json
import math
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

import openmm
import openmm.app as app
import openmm.unit as unit

from .export import openmm_module
from .grids import parse_grid
from .model import load_checkpoint, model_fingerprint
from .observables import angular_momentum, torque
from .potential import FAST_GROUP, SLOW_GROUP, STRATEGIES, create_system
from . import systems

ENSEMBLES = ("nve", "nvt")
THERMOSTATS = ("langevin", "nose-hoover")
PLATFORMS = ("Reference", "CPU", "CUDA", "OpenCL")
PER_MOLECULE_MAX = 8
# Stop when the potential energy leaves the starting value by more than this per atom: far
# beyond thermal fluctuations (k_B T = 2.5 kJ/mol at 300 K), typical of a broken molecule.
EXPLOSION_KJ_MOL_PER_ATOM = 100.0


class SimulationError(RuntimeError):
    """The dynamics became unphysical (NaN or exploding energy); outputs end at the last good
    frame, which the message names."""


@dataclass(frozen=True)
class RunSettings:
    """Everything that defines a run. Steps and intervals count steps of ``timestep_fs``."""

    system: str
    checkpoint: Optional[str] = None
    strategy: str = "none"
    grid: str = "2i"
    mts_stride: int = 4
    ensemble: str = "nvt"
    thermostat: str = "langevin"
    temperature_k: float = 300.0
    friction_per_ps: float = 1.0
    timestep_fs: float = 0.5
    steps: int = 1000
    platform: str = "CPU"
    precision: str = "single"
    seed: int = 0
    state_interval: int = 100
    trajectory_interval: int = 100
    diagnostics_interval: int = 100
    diagnostic_grid: str = "2i"
    checkpoint_interval: int = 1000
    velocities: bool = False

    @property
    def stride(self) -> int:
        """Steps of ``timestep_fs`` per integrator step (``mts_stride`` for ``mts``, else 1)."""
        return self.mts_stride if self.strategy == "mts" else 1

    def validate(self) -> None:
        """ValueError, with what to change, for any inconsistent setting."""
        choices = dict(strategy=STRATEGIES, ensemble=ENSEMBLES, thermostat=THERMOSTATS,
                       platform=PLATFORMS, precision=("single", "double"))
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}: choose one of "
                                 f"{', '.join(allowed)}")
        parse_grid(self.grid)
        if parse_grid(self.diagnostic_grid).is_random:
            raise ValueError("the diagnostic grid must be deterministic, not 'random'")
        if self.strategy in ("full", "mts") and parse_grid(self.grid).is_random:
            raise ValueError("use strategy 'random' for random rotations, not grid 'random'")
        if self.strategy == "random" and self.ensemble == "nve":
            raise ValueError("strategy 'random' gives noisy, non-conservative forces: it needs "
                             "a thermostat (ensemble nvt), not NVE")
        if self.strategy == "mts" and self.thermostat == "nose-hoover" and self.ensemble == "nvt":
            raise ValueError("multiple time stepping runs with Langevin (nvt) or NVE; "
                             "OpenMM has no multiple-time-step Nose-Hoover integrator")
        for name in ("steps", "state_interval", "trajectory_interval", "diagnostics_interval",
                     "checkpoint_interval", "mts_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive number of steps")
            if name != "mts_stride" and getattr(self, name) % self.stride:
                raise ValueError(f"{name} = {getattr(self, name)} is not a multiple of the "
                                 f"mts stride {self.stride}")
        if not self.timestep_fs > 0 or not self.temperature_k > 0:
            raise ValueError("timestep_fs and temperature_k must be positive")


def make_integrator(settings: RunSettings) -> openmm.Integrator:
    """The integrator of the settings (an MTS one for strategy ``mts``)."""
    step_ps = settings.timestep_fs * settings.stride / 1000.0
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


def load_structure(name_or_pdb: str):
    """(topology, positions) of a template of ``systems/`` or of a PDB file."""
    if name_or_pdb.lower().endswith(".pdb"):
        if not Path(name_or_pdb).is_file():
            raise FileNotFoundError(f"no PDB file {name_or_pdb}")
        pdb = app.PDBFile(name_or_pdb)
        return pdb.topology, pdb.positions
    topology, positions, _ = systems.load(name_or_pdb)
    return topology, positions


class _Outputs:
    """The files of a run directory, appended to frame by frame, truncated on resume."""

    def __init__(self, directory: Path, settings: RunSettings, topology):
        self.directory = directory
        self.settings = settings
        self.topology = topology
        self.molecules = [[atom.index for atom in residue.atoms()]
                          for residue in topology.residues()]

    def path(self, name: str) -> Path:
        return self.directory / name

    def open(self, simulation: app.Simulation, append: bool) -> None:
        dt_ps = self.settings.timestep_fs / 1000.0
        self.files = {}
        self.dcd = {}
        names = ["trajectory"] + (["velocities"] if self.settings.velocities else [])
        for name in names:
            handle = open(self.path(f"{name}.dcd"), "r+b" if append else "wb")
            self.files[name] = handle
            self.dcd[name] = app.DCDFile(handle, self.topology, dt_ps, 0,
                                         self.settings.trajectory_interval, append=append)
        self.files["state"] = open(self.path("state.csv"), "a" if append else "w")
        self.state = app.StateDataReporter(
            self.files["state"], self.settings.state_interval, step=True, time=True,
            potentialEnergy=True, kineticEnergy=True, totalEnergy=True, temperature=True,
            speed=True, append=append)
        self.diagnostics = open(self.path("diagnostics.csv"), "a")
        if not append:
            self.diagnostics.write(self._diagnostics_header())
        self.masses = np.array([simulation.system.getParticleMass(i).value_in_unit(unit.dalton)
                                for i in range(simulation.system.getNumParticles())])

    def _diagnostics_columns(self):
        columns = ["step", "time_ps", "potential_kj_mol", "kinetic_kj_mol", "conserved_kj_mol",
                   "delta_kj_mol", "L_x", "L_y", "L_z", "L_norm", "torque_x", "torque_y",
                   "torque_z", "torque_norm"]
        if len(self.molecules) <= PER_MOLECULE_MAX:
            columns += [f"L{m}_{axis}" for m in range(len(self.molecules)) for axis in "xyz"]
        return columns

    def _diagnostics_header(self) -> str:
        return (
            "# omm-symbreak symmetry diagnostics\n"
            f"# delta_kj_mol = E_raw - E_avg on grid {self.settings.diagnostic_grid} (kJ/mol)\n"
            "# energies kJ/mol; conserved = kinetic + potential (+ heat-bath energy for "
            "Nose-Hoover; not conserved under Langevin)\n"
            "# L_* total angular momentum about the centre of mass, amu nm^2/ps; "
            "L<m>_* that of molecule m about its own centre of mass\n"
            "# torque_* net torque of all forces about the centre of mass, kJ/mol\n"
            + ",".join(self._diagnostics_columns()) + "\n"
        )

    def write(self, simulation, state, step: int, delta_kj_mol: float, conserved_kj_mol: float):
        """Append the reports due at ``step`` (in steps of timestep_fs)."""
        settings = self.settings
        positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        if step % settings.trajectory_interval == 0:
            box = state.getPeriodicBoxVectors() if self.topology.getPeriodicBoxVectors() else None
            self.dcd["trajectory"].writeModel(positions * unit.nanometer, periodicBoxVectors=box)
            if settings.velocities:
                velocities = state.getVelocities(asNumpy=True).value_in_unit(
                    unit.nanometer / unit.picosecond)
                self.dcd["velocities"].writeModel(velocities * unit.nanometer,
                                                  periodicBoxVectors=box)
        if step % settings.state_interval == 0:
            self.state.report(simulation, state)
        if step % settings.diagnostics_interval == 0:
            self.diagnostics.write(",".join(
                f"{value:.10g}" for value in
                self._diagnostics_row(state, step, delta_kj_mol, conserved_kj_mol)) + "\n")
        for handle in [*self.files.values(), self.diagnostics]:
            handle.flush()

    def _diagnostics_row(self, state, step, delta_kj_mol, conserved_kj_mol):
        positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        velocities = state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
        forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        total_l = angular_momentum(positions, velocities, self.masses)
        total_tau = torque(positions, forces, self.masses)
        row = [step, step * self.settings.timestep_fs / 1000.0,
               state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
               state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole),
               conserved_kj_mol, delta_kj_mol, *total_l, np.linalg.norm(total_l),
               *total_tau, np.linalg.norm(total_tau)]
        if len(self.molecules) <= PER_MOLECULE_MAX:
            for atoms in self.molecules:
                row += list(angular_momentum(positions[atoms], velocities[atoms],
                                             self.masses[atoms]))
        return row

    def truncate(self, step: int) -> None:
        """Drop every report written after ``step`` (steps of timestep_fs), before appending."""
        settings = self.settings
        for name in ["trajectory"] + (["velocities"] if settings.velocities else []):
            _truncate_dcd(self.path(f"{name}.dcd"), step // settings.trajectory_interval + 1)
        _truncate_csv(self.path("state.csv"), step,
                      step_of=lambda row: int(row.split(",")[0]) * settings.stride)
        _truncate_csv(self.path("diagnostics.csv"), step,
                      step_of=lambda row: int(row.split(",")[0]))

    def close(self) -> None:
        for handle in [*self.files.values(), self.diagnostics]:
            handle.close()


def _truncate_dcd(path: Path, n_frames: int) -> None:
    """Keep the first ``n_frames`` frames of a DCD file written by ``openmm.app.DCDFile``.

    Layout (DCDFile): the frame count at byte 8, first step and interval at 12 and 16, the
    last step at 20, the unit-cell flag at 48, a title block whose size is at 92, then the
    atom count; every frame has the same size. A frame cut short by a kill is dropped too.
    """
    with open(path, "r+b") as handle:
        header = handle.read(96)
        written, first_step, interval = struct.unpack("<3i", header[8:20])
        has_box = struct.unpack("<i", header[48:52])[0]
        header_bytes = 92 + 4 + struct.unpack("<i", header[92:96])[0] + 4 + 12
        handle.seek(header_bytes - 8)
        n_atoms = struct.unpack("<i", handle.read(4))[0]
        if n_frames > written:
            raise ValueError(f"{path} has {written} frames, fewer than the {n_frames} of the "
                             "checkpoint: the run directory is inconsistent")
        frame_bytes = (56 if has_box else 0) + 3 * (8 + 4 * n_atoms)
        handle.truncate(header_bytes + n_frames * frame_bytes)
        handle.seek(8)
        handle.write(struct.pack("<i", n_frames))
        handle.seek(20)
        handle.write(struct.pack("<i", first_step + (n_frames - 1) * interval))


def _truncate_csv(path: Path, step: int, step_of) -> None:
    """Keep header/comment lines and the data rows whose step is at most ``step``."""
    lines = path.read_text().splitlines(keepends=True)
    kept = []
    for line in lines:
        if not line.endswith("\n"):
            break  # a row cut short by a kill
        is_data = line[:1].isdigit()
        if not is_data or step_of(line) <= step:
            kept.append(line)
    path.write_text("".join(kept))


def _prepare_directory(directory: Path, settings: RunSettings, resume: bool,
                       fingerprint: str) -> None:
    """Refuse, before any work, a directory that holds another run, or nothing to resume.

    On resume, a changed ``steps`` extends or shortens the run: it is recorded in run.json.
    The model must be the one the run started with (its ``model_fingerprint`` in run.json; runs
    written before it was recorded are not checked): the same checkpoint path, the shipped
    model's say, may hold another model by then, and another path may hold the same model.
    """
    run_file = directory / "run.json"
    if run_file.exists():
        record = json.loads(run_file.read_text())
        wanted = dataclasses.asdict(settings)
        changed = sorted(k for k in record["settings"] if record["settings"][k] != wanted.get(k))
        if record.get("model_fingerprint") == fingerprint and "checkpoint" in changed:
            changed.remove("checkpoint")  # the same model under another path (a copy, say)
        if changed and not (resume and changed == ["steps"]):
            raise ValueError(f"{directory} holds a different run (settings differ: "
                             f"{', '.join(changed)}); choose another output directory")
        if not resume:
            raise ValueError(f"{directory} already holds this run: pass --resume to continue it")
        if record.get("model_fingerprint", fingerprint) != fingerprint:
            raise ValueError(f"{directory} was run with another model (fingerprint "
                             f"{record['model_fingerprint']}, this one {fingerprint}): pass the "
                             f"checkpoint it started with")
        if not (directory / "checkpoint.chk").exists():
            raise ValueError(f"{directory} has no checkpoint to resume from")
        if changed:
            done = int(torch.load(directory / "checkpoint.pt", weights_only=True)["step"])
            if settings.steps < done:
                raise ValueError(f"{directory} is checkpointed at step {done}: --steps "
                                 f"{settings.steps} would end the run before it")
            record["settings"]["steps"] = settings.steps
            temporary = run_file.with_suffix(".json.tmp")
            temporary.write_text(json.dumps(record, indent=2))
            temporary.replace(run_file)
    elif resume:
        raise ValueError(f"nothing to resume in {directory} (no run.json)")
    elif directory.exists() and any(directory.iterdir()):
        raise ValueError(f"{directory} is not empty; choose a new output directory")


def _conserved_energy(integrator, state) -> float:
    energy = (state.getPotentialEnergy() + state.getKineticEnergy()).value_in_unit(
        unit.kilojoule_per_mole)
    if isinstance(integrator, openmm.NoseHooverIntegrator):
        energy += integrator.computeHeatBathEnergy().value_in_unit(unit.kilojoule_per_mole)
    return energy


def _delta_kj_mol(diagnostic, state, periodic: bool) -> float:
    """E_raw - E_avg on the diagnostic grid (kJ/mol) at the positions of ``state``."""
    positions = torch.tensor(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    box = None
    if periodic:
        box = torch.tensor(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
    with torch.no_grad():
        return -float(diagnostic(positions, box))


def run(settings: RunSettings, output_dir, resume: bool = False, progress: bool = True) -> Path:
    """Run (or, with ``resume``, continue) the simulation of ``settings`` into ``output_dir``.

    Raises ValueError / FileNotFoundError for bad input before any simulation starts, and
    SimulationError when the dynamics blows up (outputs end at the last good frame).
    """
    from tqdm import tqdm

    directory = Path(output_dir)
    settings.validate()
    model = load_checkpoint(settings.checkpoint)
    fingerprint = model_fingerprint(model)
    _prepare_directory(directory, settings, resume, fingerprint)
    if settings.precision == "double":
        model = model.double()
    topology, positions = load_structure(settings.system)
    system = create_system(topology, model, settings.strategy, settings.grid, positions)
    diagnostic = openmm_module(topology, model, settings.diagnostic_grid, "correction")
    integrator = make_integrator(settings)
    platform = openmm.Platform.getPlatformByName(settings.platform)
    properties = {"Precision": "double"} if settings.platform in ("CUDA", "OpenCL") and \
        settings.precision == "double" else {}
    simulation = app.Simulation(topology, system, integrator, platform, properties)
    periodic = topology.getPeriodicBoxVectors() is not None
    outputs = _Outputs(directory, settings, topology)

    if resume:
        simulation.loadCheckpoint(str(directory / "checkpoint.chk"))
        saved = torch.load(directory / "checkpoint.pt", weights_only=True)
        torch.set_rng_state(saved["torch_rng_state"])
        step = int(saved["step"])
        outputs.truncate(step)
        outputs.open(simulation, append=True)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(settings.seed)
        simulation.context.setPositions(positions)
        simulation.context.setVelocitiesToTemperature(settings.temperature_k,
                                                      _openmm_seed(settings.seed))
        _remove_center_of_mass_velocity(simulation)
        record = _run_record(settings, model, fingerprint)
        (directory / "run.json").write_text(json.dumps(record, indent=2))
        with open(directory / "topology.pdb", "w") as handle:
            app.PDBFile.writeFile(topology, positions, handle)
        step = 0
        outputs.open(simulation, append=False)
        state = _state(simulation)
        outputs.write(simulation, state, 0, _delta_kj_mol(diagnostic, state, periodic),
                      _conserved_energy(integrator, state))
        _save_checkpoint(simulation, directory, 0)

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
            if not _is_sane(state, energy, reference_energy, topology.getNumAtoms()):
                raise SimulationError(
                    f"the dynamics blew up between steps {step} and {step + n} (potential energy "
                    f"{energy:.6g} kJ/mol); {_kept(settings, step)}")
            step += n
            # Delta costs a grid of model evaluations: only when a diagnostics row is due
            delta = (_delta_kj_mol(diagnostic, state, periodic)
                     if step % settings.diagnostics_interval == 0 else math.nan)
            outputs.write(simulation, state, step, delta, _conserved_energy(integrator, state))
            if step % settings.checkpoint_interval == 0 or step == settings.steps:
                _save_checkpoint(simulation, directory, step)
            elapsed = time.perf_counter() - started
            ns_per_day = (step - started_step) * settings.timestep_fs * 1e-6 / elapsed * 86400
            bar.set_postfix(ns_per_day=f"{ns_per_day:.3g}")
            bar.update(n)
    finally:
        bar.close()
        outputs.close()
    return directory


def _kept(settings: RunSettings, step: int) -> str:
    return (f"outputs end at the last good frame, step {step} "
            f"(t = {step * settings.timestep_fs / 1000:g} ps)")


def _state(simulation):
    return simulation.context.getState(positions=True, velocities=True, forces=True,
                                       energy=True)


def _is_sane(state, energy: float, reference_energy: float, n_atoms: int) -> bool:
    positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return (math.isfinite(energy) and bool(np.all(np.isfinite(positions)))
            and abs(energy - reference_energy) < EXPLOSION_KJ_MOL_PER_ATOM * n_atoms)


def _remove_center_of_mass_velocity(simulation) -> None:
    system = simulation.system
    masses = np.array([system.getParticleMass(i).value_in_unit(unit.dalton)
                       for i in range(system.getNumParticles())])
    velocities = simulation.context.getState(velocities=True).getVelocities(asNumpy=True)
    velocities = velocities.value_in_unit(unit.nanometer / unit.picosecond)
    velocities -= masses @ velocities / masses.sum()
    simulation.context.setVelocities(velocities)


def _save_checkpoint(simulation, directory: Path, step: int) -> None:
    """OpenMM checkpoint + step and torch RNG state, each written atomically (temp + rename)."""
    chk, pt = directory / "checkpoint.chk", directory / "checkpoint.pt"
    simulation.saveCheckpoint(str(chk) + ".tmp")
    torch.save({"step": step, "torch_rng_state": torch.get_rng_state()}, str(pt) + ".tmp")
    Path(str(chk) + ".tmp").replace(chk)
    Path(str(pt) + ".tmp").replace(pt)


def _run_record(settings: RunSettings, model, fingerprint: str) -> dict:
    from . import __version__

    return {
        "settings": dataclasses.asdict(settings),
        "model_fingerprint": fingerprint,
        "model_hyperparameters": model.hyperparameters,
        "versions": {"omm_symbreak": __version__, "openmm": openmm.__version__,
                     "torch": torch.__version__},
        "units": {
            "trajectory.dcd": "positions, nm (mdtraj)", "velocities.dcd": "velocities, nm/ps "
            "(the xyz mdtraj reads)", "state.csv": "OpenMM StateDataReporter: kJ/mol, K, ps; its "
            "Step column counts integrator steps (outer steps for mts)",
            "diagnostics.csv": "see its # header lines; step counts steps of timestep_fs",
        },
    }


def read_diagnostics(path) -> dict:
    """The columns of a ``diagnostics.csv`` as {name: array [n_rows]} (units in its header)."""
    lines = [line for line in Path(path).read_text().splitlines() if not line.startswith("#")]
    names = lines[0].split(",")
    values = np.loadtxt(lines[1:], delimiter=",", ndmin=2)
    return {name: values[:, i] for i, name in enumerate(names)}


def read_trajectory(run_dir):
    """The positions of a run as an ``mdtraj.Trajectory`` (nm) with its times in ps.

    mdtraj numbers DCD frames instead of reading their times; the times are rebuilt from the
    run's settings (a frame every ``trajectory_interval`` steps of ``timestep_fs``).
    """
    import mdtraj

    run_dir = Path(run_dir)
    settings = json.loads((run_dir / "run.json").read_text())["settings"]
    trajectory = mdtraj.load(str(run_dir / "trajectory.dcd"), top=str(run_dir / "topology.pdb"))
    interval_ps = settings["trajectory_interval"] * settings["timestep_fs"] / 1000.0
    trajectory.time = np.arange(trajectory.n_frames) * interval_ps
    return trajectory

