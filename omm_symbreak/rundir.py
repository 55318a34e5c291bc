"""The run directory of ``omm_symbreak.simulate.run``: its files, writing and reading them.

A run directory holds:

- ``run.json``: the settings, the model, the units of every output, versions;
- ``topology.pdb``: the starting structure (the topology for mdtraj);
- ``trajectory.dcd`` (``trajectory.xtc`` with ``trajectory_format="xtc"``): positions
  (``read_trajectory``, or ``mdtraj.load("trajectory.dcd", top="topology.pdb")``, nm);
- ``velocities.dcd`` / ``.xtc`` (with ``velocities=True``): velocities stored as coordinates, so
  that the ``xyz`` mdtraj reads from it are velocities in nm/ps;
- ``state.csv``: the columns of ``openmm.app.StateDataReporter`` (kJ/mol, K, ps, ns/day);
- ``diagnostics.csv``: the symmetry diagnostics (units in its ``#`` header lines): Delta =
  E_raw - E_avg on ``diagnostic_grid``, total angular momentum, net torque about the centre of
  mass, kinetic / potential / conserved energy, and each molecule's angular momentum for
  systems of at most ``PER_MOLECULE_MAX`` molecules;
- ``checkpoint.pt``: the OpenMM checkpoint with its step, one file
  written atomically (``omm_symbreak.checkpoint``) every ``checkpoint_interval`` steps, the
  first at step 0. Resuming continues from it, dropping whatever was written after it
  (``RunOutputs.truncate``), so that no frame is lost or duplicated;
- ``run.lock``: the lock a running process holds (``claim_directory``).

Every step column (``step`` of diagnostics.csv, ``Step`` of state.csv) counts steps of
``timestep_fs``, with multiple time stepping too (an integrator step is then ``mts_stride`` of
them). A directory without a checkpoint holds a run that never started: the next start clears it.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import torch

from .checkpoint import CHECKPOINT_FILE, checkpoint_step, has_checkpoint
from .frames import TRAJECTORY_FORMATS, FrameWriter, truncate_frames
from .model_kinds.base import file_fingerprint
from .observables.mechanics import angular_momentum, torque
from .quiet import c_stdout_dropped
from .settings import RunSettings, flag
from .strategies import DEFAULT_GRID
from .units import fs_to_ps

PER_MOLECULE_MAX = 8
LOCK_FILE = "run.lock"
# Every file a run writes but its lock: a directory without a checkpoint that holds only these
# is cleared by the next start.
RUN_FILES = ("run.json", "run.json.tmp", "topology.pdb",
             *(f"{stem}.{suffix}" for stem in ("trajectory", "velocities")
               for suffix in TRAJECTORY_FORMATS),
             "state.csv", "diagnostics.csv", CHECKPOINT_FILE, CHECKPOINT_FILE + ".tmp")
STATE_COLUMNS = ("Time (ps)", "Potential Energy (kJ/mole)", "Kinetic Energy (kJ/mole)",
                 "Total Energy (kJ/mole)", "Temperature (K)", "Speed (ns/day)")


class RunOutputs:
    """The output files of a run directory, appended to frame by frame, truncated on resume.

    ``masses_amu`` [N]: the particle masses, for the angular momenta and torques.
    """

    def __init__(self, directory: Path, settings: RunSettings, topology, masses_amu: np.ndarray):
        self.directory = directory
        self.settings = settings
        self.topology = topology
        self.masses_amu = masses_amu
        self.molecules = [[atom.index for atom in residue.atoms()]
                          for residue in topology.residues()]
        self.files, self.frames = {}, {}

    def path(self, name: str) -> Path:
        return self.directory / name

    def _frame_files(self) -> dict:
        """{what: file name} of the trajectory files: positions, and velocities if asked."""
        names = ["trajectory"] + (["velocities"] if self.settings.velocities else [])
        return {name: f"{name}.{self.settings.trajectory_format}" for name in names}

    def open(self, append: bool, step: int) -> None:
        """Open every output, to append to it (resume) or as a new file with its header;
        ``step`` (of timestep_fs) is where this sitting starts, for the speed column."""
        settings = self.settings
        for name, file_name in self._frame_files().items():
            self.frames[name] = FrameWriter(self.path(file_name), self.topology,
                                            fs_to_ps(settings.timestep_fs),
                                            settings.trajectory_interval, append)
        for name, header in (("state", self._state_header()),
                             ("diagnostics", self._diagnostics_header())):
            self.files[name] = open(self.path(f"{name}.csv"), "a" if append else "w")
            if not append:
                self.files[name].write(header)
        self.sitting = (time.perf_counter(), step)

    def _state_header(self) -> str:
        """StateDataReporter's one header line, its Step column named with its unit."""
        step = f"Step (of {flag('timestep_fs')} {self.settings.timestep_fs:g} fs)"
        return "#" + ",".join(f'"{name}"' for name in (step, *STATE_COLUMNS)) + "\n"

    def _diagnostics_columns(self) -> list:
        columns = ["step", "time_ps", "potential_kj_mol", "kinetic_kj_mol", "conserved_kj_mol",
                   "delta_kj_mol", "L_x", "L_y", "L_z", "L_norm", "torque_x", "torque_y",
                   "torque_z", "torque_norm"]
        if len(self.molecules) <= PER_MOLECULE_MAX:
            columns += [f"L{m}_{axis}" for m in range(len(self.molecules)) for axis in "xyz"]
        return columns

    def _diagnostics_header(self) -> str:
        return (
            "# omm-symbreak symmetry diagnostics\n"
            f"# step counts steps of {flag('timestep_fs')} {self.settings.timestep_fs:g} fs "
            "(as the Step column of state.csv; an mts integrator step is --mts-stride of them)\n"
            f"# delta_kj_mol = E_raw - E_avg on grid {self.settings.diagnostic_grid} (kJ/mol)\n"
            "# energies kJ/mol; conserved = kinetic + potential (+ the heat-bath energy for "
            "Nose-Hoover, 0 at step 0 where the chain starts at rest; not conserved under "
            "Langevin)\n"
            "# L_* total angular momentum about the centre of mass, amu nm^2/ps; "
            "L<m>_* that of molecule m about its own centre of mass\n"
            "# torque_* net torque of all forces about the centre of mass, kJ/mol\n"
            + ",".join(self._diagnostics_columns()) + "\n"
        )

    def write(self, state, step: int, delta_kj_mol: float, conserved_kj_mol: float,
              temperature_k: float) -> None:
        """Append the reports due at ``step`` (in steps of timestep_fs); energies in kJ/mol.
        The energies of ``state``, the forces, ``delta_kj_mol``, ``conserved_kj_mol`` and
        ``temperature_k`` are read only where a state or diagnostics row is due."""
        settings = self.settings
        if step % settings.trajectory_interval == 0:
            positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            box = state.getPeriodicBoxVectors() if self.topology.getPeriodicBoxVectors() else None
            self.frames["trajectory"].write(positions * unit.nanometer, box)
            if settings.velocities:
                velocities = state.getVelocities(asNumpy=True).value_in_unit(
                    unit.nanometer / unit.picosecond)
                self.frames["velocities"].write(velocities * unit.nanometer, box)
        if step % settings.state_interval == 0:
            self.files["state"].write(self._state_row(state, step, temperature_k))
        if step % settings.diagnostics_interval == 0:
            self.files["diagnostics"].write(",".join(
                f"{value:.10g}" for value in
                self._diagnostics_row(state, step, delta_kj_mol, conserved_kj_mol)) + "\n")
        for handle in self.files.values():
            handle.flush()

    def _state_row(self, state, step: int, temperature_k: float) -> str:
        """A state.csv row: step, time (ps), energies (kJ/mol), temperature (K) and the speed
        of this sitting (ns/day; "--" at its first step, as StateDataReporter writes)."""
        kj_mol = unit.kilojoule_per_mole
        potential = state.getPotentialEnergy().value_in_unit(kj_mol)
        kinetic = state.getKineticEnergy().value_in_unit(kj_mol)
        started, first_step = self.sitting
        elapsed_days = (time.perf_counter() - started) / 86400
        simulated_ns = (step - first_step) * self.settings.timestep_fs * 1e-6
        speed = f"{simulated_ns / elapsed_days:.3g}" if step > first_step else "--"
        values = [f"{value:.10g}" for value in (fs_to_ps(step * self.settings.timestep_fs),
                                                 potential, kinetic, potential + kinetic,
                                                 temperature_k)]
        return ",".join([str(step), *values, speed]) + "\n"

    def _diagnostics_row(self, state, step, delta_kj_mol, conserved_kj_mol) -> list:
        nm, ps, kj_mol = unit.nanometer, unit.picosecond, unit.kilojoule_per_mole
        positions = state.getPositions(asNumpy=True).value_in_unit(nm)
        velocities = state.getVelocities(asNumpy=True).value_in_unit(nm / ps)
        forces = state.getForces(asNumpy=True).value_in_unit(kj_mol / nm)
        masses = self.masses_amu
        total_l = angular_momentum(positions, velocities, masses)
        total_tau = torque(positions, forces, masses)
        row = [step, fs_to_ps(step * self.settings.timestep_fs),
               state.getPotentialEnergy().value_in_unit(kj_mol),
               state.getKineticEnergy().value_in_unit(kj_mol), conserved_kj_mol, delta_kj_mol,
               *total_l, np.linalg.norm(total_l), *total_tau, np.linalg.norm(total_tau)]
        if len(self.molecules) <= PER_MOLECULE_MAX:
            for atoms in self.molecules:
                row += list(angular_momentum(positions[atoms], velocities[atoms], masses[atoms]))
        return row

    def truncate(self, step: int) -> None:
        """Drop every report written after ``step`` (steps of timestep_fs), before appending."""
        for file_name in self._frame_files().values():
            truncate_frames(self.path(file_name), step // self.settings.trajectory_interval + 1)
        truncate_csv(self.path("state.csv"), step)
        truncate_csv(self.path("diagnostics.csv"), step)

    def close(self) -> None:
        for handle in [*self.files.values(), *self.frames.values()]:
            handle.close()


def truncate_csv(path: Path, last_step: int) -> None:
    """Keep the header and comment lines of a CSV file and the data rows up to ``last_step``.

    A data row starts with a digit, its first column the step. A row cut short by a kill (no
    final newline) is dropped, with everything after it.
    """
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        if not line[:1].isdigit() or int(line.split(",")[0]) <= last_step:
            kept.append(line)
    path.write_text("".join(kept))


# settings that change what a run costs, what it accepts, or how much an interruption loses,
# not what it computes (a checkpoint leaves the state as it was): a resume may change them
COST_SETTINGS = ("memory_gb", "allow_large_grid", "allow_incomplete_water",
                 "checkpoint_interval")


def check_directory(directory: Path, settings: RunSettings, resume: bool,
                    fingerprint: str) -> None:
    """Refuse a directory that holds another run, a run to be resumed without ``resume``, or
    nothing to resume; changes nothing (``claim_directory`` checks again under its lock).

    A directory without a checkpoint holds a run that never started (it died before its first
    checkpoint): it is started again, not resumed. On resume, ``steps`` may change (to extend
    or shorten the run, not below the checkpoint), and so may the ``COST_SETTINGS``, nothing
    else; the model must be the one
    the run started with, by its ``model_fingerprint`` in run.json: the same model path, the
    shipped model's say, may hold another model by then, and another path the same model.
    A system that is a PDB file may move too (an archive extended on another checkout): its
    ``system_fingerprint`` in run.json, the file's content, decides.
    """
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"-o {directory} is a file: name a directory for the run's outputs")
    if not has_checkpoint(directory):
        _check_unstarted(directory, resume)
        return
    record = json.loads((directory / "run.json").read_text())
    wanted = json.loads(json.dumps(dataclasses.asdict(settings)))  # as run.json: lists
    changed = sorted(k for k in record["settings"] if record["settings"][k] != wanted.get(k))
    if record.get("model_fingerprint") == fingerprint and "model" in changed:
        changed.remove("model")  # the same model under another path (a copy, say)
    if "system" in changed and record.get("system_fingerprint") is not None \
            and record["system_fingerprint"] == system_fingerprint(settings.system):
        changed.remove("system")  # the same PDB file under another path
    changed = [name for name in changed if name not in COST_SETTINGS]
    if changed == ["steps"] and not resume:
        steps = record["settings"]["steps"]
        change = "extend it to" if settings.steps > steps else "end it at"
        raise ValueError(f"{directory} holds this run with --steps {steps}: pass --resume to "
                         f"{change} --steps {settings.steps}, or choose another output directory")
    if changed and not (resume and changed == ["steps"]):
        # a resume may change steps: the message names what it may not
        named = [name for name in changed if not (resume and name == "steps")]
        raise ValueError(_different_run(directory, record["settings"], wanted, named))
    if not resume:
        raise ValueError(f"{directory} already holds this run: pass --resume to continue it")
    if record.get("model_fingerprint", fingerprint) != fingerprint:
        raise ValueError(f"{directory} was run with another model (fingerprint "
                         f"{record['model_fingerprint']}, this one {fingerprint}): pass the "
                         f"--model it started with")
    done = checkpoint_step(directory)
    if settings.steps < done:
        raise ValueError(f"{directory} is checkpointed at step {done}: --steps "
                         f"{settings.steps} would end the run before it")


def system_fingerprint(system: str):
    """The ``file_fingerprint`` of a system that is a PDB file (``systems.load_structure``);
    None for a template of systems/, named rather than read, or a file that is not there."""
    path = Path(system)
    return file_fingerprint(path) if system.lower().endswith(".pdb") and path.is_file() else None


# the defaults of an earlier version, {setting: (then, now)}: a run started then differs in them
CHANGED_DEFAULTS = {"grid": ("2i", DEFAULT_GRID), "diagnostic_grid": ("2i", DEFAULT_GRID)}


def _different_run(directory: Path, recorded: dict, wanted: dict, changed: list) -> str:
    """The message for a directory whose run differs from the settings in ``changed``
    (``recorded``: run.json's settings, ``wanted``: the new ones, as JSON)."""
    differences = ", ".join(f"{flag(name)} {recorded[name]} in the run, {wanted.get(name)} now"
                            for name in changed)
    defaults = [name for name in changed if name in CHANGED_DEFAULTS
                and (recorded[name], wanted.get(name)) == CHANGED_DEFAULTS[name]]
    hint = ""
    if defaults:
        then, now = CHANGED_DEFAULTS[defaults[0]]
        hint = (f"; the default of {' and '.join(flag(name) for name in defaults)} changed from "
                f"{then} to {now} since it started")
    return (f"{directory} holds a different run (settings differ: {differences}{hint}): pass "
            f"the run's values to resume it, or choose another output directory")


def _check_unstarted(directory: Path, resume: bool) -> None:
    """Refuse to resume a run that never started, or to start one among foreign files."""
    names = sorted(path.name for path in directory.iterdir()) if directory.is_dir() else []
    if resume:
        why = ("its run never reached its first checkpoint" if "run.json" in names
               else "it holds no run")
        raise ValueError(f"nothing to resume in {directory}: {why}; start the run without "
                         f"--resume")
    foreign = [name for name in names if name not in (*RUN_FILES, LOCK_FILE)]
    if foreign:
        raise ValueError(f"{directory} is not empty (it holds {', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}); choose a new output directory")


@contextlib.contextmanager
def claim_directory(directory: Path, settings: RunSettings, resume: bool, fingerprint: str):
    """Create ``directory`` and hold its lock for the ``with`` block: ``check_directory`` again
    under the lock, then clear a run that never started, or record a resumed run's new
    ``steps`` in run.json.

    The lock (``hold_lock``) is ``fcntl.flock`` on ``run.lock``, which holds the owner's process
    id: a second process is refused (ValueError) while the first runs, and the operating system
    releases the lock when its process ends, a ``kill -9`` included, so that the run can be
    resumed.
    """
    with hold_lock(directory):
        check_directory(directory, settings, resume, fingerprint)
        if resume:
            _record_steps(directory, settings.steps)
        else:
            for name in RUN_FILES:
                (directory / name).unlink(missing_ok=True)
        yield


@contextlib.contextmanager
def hold_lock(directory: Path):
    """Create ``directory`` and hold its lock, ``run.lock``, for the ``with`` block; ValueError
    naming the owner's process id when another process holds it.

    The lock is ``fcntl.flock``: the operating system releases it when its process ends, a
    ``kill -9`` included, so that a killed run's directory can be taken over at once (the pid
    left in the file is then only a record).
    """
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "unknown"
            raise ValueError(f"{directory} is in use by another omm-symbreak process (pid "
                             f"{owner}): wait for it to finish, or stop it and pass --resume "
                             f"to continue its run") from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


def lock_owner(directory: Path):
    """The process id (a string) holding ``directory``'s lock, or None when no process holds
    it: a lock file left by a process that ended, ``kill -9`` included, holds no lock."""
    path = directory / LOCK_FILE
    if not path.is_file():
        return None
    with open(path) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return lock.read().strip() or "unknown"
        fcntl.flock(lock, fcntl.LOCK_UN)
        return None


def _record_steps(directory: Path, steps: int) -> None:
    """Write a resumed run's ``steps`` (of timestep_fs) into its run.json, atomically."""
    run_file = directory / "run.json"
    record = json.loads(run_file.read_text())
    if record["settings"]["steps"] != steps:
        record["settings"]["steps"] = steps
        temporary = run_file.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(record, indent=2))
        temporary.replace(run_file)


def create_run_directory(directory: Path, settings: RunSettings, model, fingerprint: str,
                         topology, positions) -> None:
    """Write the ``run.json`` (with the settings' ``notes`` on rounded defaults) and
    ``topology.pdb`` (positions in nm) of a new run."""
    from . import __version__

    record = {
        "settings": dataclasses.asdict(settings),
        "notes": list(settings.notes),
        "model_fingerprint": fingerprint,
        "system_fingerprint": system_fingerprint(settings.system),
        "model_description": model.description(),
        "versions": {"omm_symbreak": __version__, "openmm": openmm.__version__,
                     "torch": torch.__version__},
        "units": {
            "trajectory.dcd/.xtc": "positions, nm (mdtraj)",
            "velocities.dcd/.xtc": "velocities, nm/ps (the xyz mdtraj reads)",
            "state.csv": "OpenMM StateDataReporter columns: kJ/mol, K, ps, ns/day",
            "diagnostics.csv": "see its # header lines",
            "step": "every step column counts steps of timestep_fs (an mts integrator step is "
                    "mts_stride of them)",
        },
    }
    (directory / "run.json").write_text(json.dumps(record, indent=2))
    with open(directory / "topology.pdb", "w") as handle:
        app.PDBFile.writeFile(topology, positions, handle)


def start_potential_kj_mol(directory: Path) -> float:
    """The potential energy (kJ/mol) at step 0: the first data row of diagnostics.csv."""
    with open(directory / "diagnostics.csv") as handle:
        names = next(line for line in handle if not line.startswith("#")).strip().split(",")
        return float(next(handle).split(",")[names.index("potential_kj_mol")])


def read_settings(run_dir) -> dict:
    """The settings of a run as recorded in its run.json (FileNotFoundError without one)."""
    record_path = Path(run_dir) / "run.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not an omm-symbreak run directory (no run.json)")
    return json.loads(record_path.read_text())["settings"]


def read_diagnostics(path) -> dict:
    """The columns of a ``diagnostics.csv`` as {name: array [n_rows]} (units in its header)."""
    lines = [line for line in Path(path).read_text().splitlines() if not line.startswith("#")]
    names = lines[0].split(",")
    values = np.loadtxt(lines[1:], delimiter=",", ndmin=2)
    return {name: values[:, i] for i, name in enumerate(names)}


def read_trajectory(run_dir):
    """The positions of a run as an ``mdtraj.Trajectory`` (nm) with its times in ps, from its
    trajectory.dcd or trajectory.xtc (``trajectory_format``).

    The times are rebuilt from the run's settings (a frame every ``trajectory_interval`` steps
    of ``timestep_fs``): mdtraj numbers DCD frames instead of reading their times.
    """
    import mdtraj

    run_dir = Path(run_dir)
    settings = read_settings(run_dir)
    name = f"trajectory.{settings.get('trajectory_format', 'dcd')}"
    with c_stdout_dropped():  # the "dcdplugin) ..." lines of mdtraj's DCD reader
        trajectory = mdtraj.load(str(run_dir / name), top=str(run_dir / "topology.pdb"))
    interval_ps = fs_to_ps(settings["trajectory_interval"] * settings["timestep_fs"])
    trajectory.time = np.arange(trajectory.n_frames) * interval_ps
    return trajectory
