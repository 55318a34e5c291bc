"""Molecular dynamics of the reference itself: q-TIP4P/F NVT (Langevin middle) of a water
template, resumable, for comparison with the ML runs.

``run_reference(settings, directory)`` writes, in the run directory:

- ``run.json``: the settings (``ReferenceSettings``, plus ``strategy`` "reference q-TIP4P/F" and
  ``ensemble`` "nvt") and the units of the outputs;
- ``topology.pdb``: the starting structure, the real atoms O, H1, H2 of every molecule;
- ``trajectory.dcd`` (``trajectory.xtc`` with ``trajectory_format="xtc"``): their positions,
  nm, a frame every ``trajectory_interval`` steps from step 0 on (the M sites are not written:
  the trajectory reads like an ML run's, ``omm_symbreak.rundir.read_trajectory``);
- ``state.csv``: ``openmm.app.StateDataReporter``'s step, time (ps), potential energy (kJ/mol),
  temperature (K) and speed (ns/day), a row every ``state_interval`` steps;
- ``checkpoint.pt``: the checkpoint with its step, one file written atomically
  (``omm_symbreak.checkpoint``), every ``checkpoint_interval`` steps and at the end;
- ``run.lock``: the lock of the process running in the directory (``rundir.hold_lock``).

Every count of steps is in units of ``timestep_fs``. A directory with a checkpoint is resumed:
the state comes from the checkpoint (which holds its own step), the trajectory and state.csv are
cut back to it, and ``steps`` may grow (or shrink, not below the checkpoint); any other setting
that differs from run.json's is refused.
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import openmm
from openmm import app, unit

from .. import systems
from ..checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from ..frames import TRAJECTORY_FORMATS, truncate_frames
from ..rundir import COST_SETTINGS, hold_lock, truncate_csv
from .qtip4pf import add_virtual_sites, create_qtip4pf_system

STRATEGY = "reference q-TIP4P/F"


@dataclass(frozen=True)
class ReferenceSettings:
    """A q-TIP4P/F NVT run of a template of ``systems/``: Langevin middle at ``temperature_k``
    (K) with ``friction_per_ps`` (1/ps), time step ``timestep_fs`` (fs); ``steps`` and the
    intervals count steps of ``timestep_fs``. ``seed`` gives the velocities and the Langevin
    noise (OpenMM gets ``seed + 1``: it takes 0 to mean "pick one", as in ``simulate``)."""

    system: str = "liquid-64"
    steps: int = 2000
    temperature_k: float = 300.0
    friction_per_ps: float = 1.0
    timestep_fs: float = 0.5
    seed: int = 1
    trajectory_interval: int = 40
    state_interval: int = 400
    checkpoint_interval: int = 2000
    platform: str = "CPU"
    trajectory_format: str = "dcd"

    def validate(self) -> None:
        """ValueError naming the setting, for an unknown template or platform or a count, time
        step, temperature or friction that is not positive."""
        if self.system not in systems.available():
            raise ValueError(f"the reference runs a template of systems/ "
                             f"({', '.join(systems.available())}), not {self.system!r}")
        for name in ("steps", "trajectory_interval", "state_interval", "checkpoint_interval"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"{name} must be a positive number of steps, not "
                                 f"{getattr(self, name)!r}")
        if self.trajectory_format not in TRAJECTORY_FORMATS:
            raise ValueError(f"trajectory_format must be one of {', '.join(TRAJECTORY_FORMATS)}, "
                             f"not {self.trajectory_format!r}")
        for name in ("temperature_k", "friction_per_ps", "timestep_fs"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        try:
            openmm.Platform.getPlatformByName(self.platform)
        except openmm.OpenMMException:
            raise ValueError(f"platform {self.platform!r} is not available here") from None


def run_reference(settings: ReferenceSettings, directory,
                  on_checkpoint: Optional[Callable[[int], None]] = None) -> Path:
    """Run, or continue from its checkpoint, the q-TIP4P/F run of ``settings`` in
    ``directory`` (files: the module docstring); returns the directory. ``on_checkpoint(step)``
    is called after every checkpoint is written.

    ValueError before any step for bad settings, a directory that holds a different run or a
    checkpoint beyond ``steps``, or one that another process is running in.
    """
    settings.validate()
    directory = Path(directory)
    with hold_lock(directory):
        resume = has_checkpoint(directory)
        simulation, topology, positions, site_positions = _simulation(settings)
        real = [atom.index for atom in simulation.topology.atoms() if atom.element is not None]
        trajectory = str(directory / f"trajectory.{settings.trajectory_format}")
        if resume:
            step = load_checkpoint(simulation, directory)
            check_reference_directory(directory, settings, step)
            truncate_frames(Path(trajectory), step // settings.trajectory_interval + 1)
            truncate_csv(directory / "state.csv", step)
        else:
            step = 0
            with open(directory / "topology.pdb", "w") as handle:
                app.PDBFile.writeFile(topology, positions, handle)
            simulation.context.setPositions(site_positions)
            simulation.context.setVelocitiesToTemperature(settings.temperature_k * unit.kelvin,
                                                          settings.seed + 1)
        _write_record(directory, settings)
        reporter = app.XTCReporter if settings.trajectory_format == "xtc" else app.DCDReporter
        simulation.reporters.append(reporter(trajectory, settings.trajectory_interval,
                                             append=resume, atomSubset=real))
        simulation.reporters.append(app.StateDataReporter(
            str(directory / "state.csv"), settings.state_interval, step=True, time=True,
            potentialEnergy=True, temperature=True, speed=True, append=resume))
        if not resume:  # frame 0 is the start, as in the ML runs (DCDReporter begins at a step
            # > 0), wrapped into the box as Simulation does for the reporter's later frames
            periodic = simulation.topology.getPeriodicBoxVectors() is not None
            simulation.reporters[0].report(simulation, simulation.context.getState(
                getPositions=True, enforcePeriodicBox=periodic))
        while step < settings.steps:
            chunk = min(settings.checkpoint_interval - step % settings.checkpoint_interval,
                        settings.steps - step)
            simulation.step(chunk)
            step += chunk
            save_checkpoint(simulation, directory, step)
            if on_checkpoint is not None:
                on_checkpoint(step)
    return directory


def _simulation(settings: ReferenceSettings) -> tuple:
    """(``app.Simulation`` with the M sites, the 3-site topology and positions, the positions
    with M sites) of the settings' template."""
    topology, positions, _ = systems.load(settings.system)
    site_topology, site_positions = add_virtual_sites(topology, positions)
    integrator = openmm.LangevinMiddleIntegrator(
        settings.temperature_k * unit.kelvin, settings.friction_per_ps / unit.picosecond,
        settings.timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(settings.seed + 1)
    simulation = app.Simulation(site_topology, create_qtip4pf_system(site_topology), integrator,
                                openmm.Platform.getPlatformByName(settings.platform))
    return simulation, topology, positions, site_positions


def check_reference_directory(directory: Path, settings: ReferenceSettings, step: int) -> None:
    """ValueError unless the checkpointed run in ``directory``, at ``step``, can go on as the
    run of ``settings``: the same settings in its run.json but ``steps``, not below ``step``,
    and the ``rundir.COST_SETTINGS`` (the checkpoint interval)."""
    if step > settings.steps:
        raise ValueError(f"{directory} is checkpointed at step {step}, beyond the "
                         f"{settings.steps} steps asked for")
    recorded = json.loads((directory / "run.json").read_text())["settings"]
    wanted = dataclasses.asdict(settings)
    changed = sorted(name for name in wanted
                     if name != "steps" and name not in COST_SETTINGS and name in recorded
                     and recorded[name] != wanted[name])
    if changed:
        differences = ", ".join(f"{name} {recorded[name]!r} in the run, {wanted[name]!r} now"
                                for name in changed)
        raise ValueError(f"{directory} holds a different reference run ({differences}): choose "
                         f"another directory")


def _write_record(directory: Path, settings: ReferenceSettings) -> None:
    """run.json: the settings (``steps`` may have changed on resume) and the outputs' units."""
    record = {"settings": {**dataclasses.asdict(settings), "strategy": STRATEGY,
                           "ensemble": "nvt"},
              "units": {"trajectory.dcd/.xtc": "positions of O, H1, H2, nm (mdtraj)",
                        "state.csv": "OpenMM StateDataReporter: kJ/mol, K, ps",
                        "step": "every step column counts steps of timestep_fs"}}
    _write_atomically(directory / "run.json", json.dumps(record, indent=2))


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)
