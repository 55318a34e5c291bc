"""The liquid runs shared by figures 2 and 3: liquid-64 at 300 K, raw model vs the symmetrized
model (MTS) vs reference.

Three NVT runs from the liquid-64 template (Langevin middle, friction 1/ps, dt 0.5 fs, a frame
every 20 fs), all resumable (run the figure script again after an interruption):

- ``raw``: the raw model (``omm-symbreak simulate``, strategy ``none``);
- ``MTS_RUN`` (``mts-Ti``): the raw model plus the correction E_avg - E_raw of the default grid
  ``Ti`` every 10 steps (outer step 5 fs), as the study did with ``2i``, which is exact to the
  same degree at 36 rotations instead of 24 (the committed results of figures 2 and 3 ran
  ``2i``);
- ``reference``: q-TIP4P/F itself (its M sites are not written: the trajectory has the real
  atoms O, H1, H2 of every molecule, like the other two).

Lengths (``LENGTHS_PS``): 40 ps for the reference, 30 ps raw and 8 ps ``mts-Ti``, which costs
about 3.5 raw evaluations per step (``2i``: 4.7, 0.09 ns/day on one core, against 0.45 for
raw): what the two
ML runs reach side by side, one core each, in one sitting of 2 cores. Raising a length and
running again extends a finished run from its last checkpoint (``simulate.run`` accepts a
longer ``steps`` on resume). The MSD and c_uu(t) of figure 3 are compared over the lags that a
block of the shortest run holds.

The study used stochastic velocity rescaling (a global thermostat); OpenMM has none built in.
The same weak Langevin friction (1/ps, a relaxation time of 1 ps) is applied to all three runs,
so that they compare with each other.
"""

import json
import time
from pathlib import Path

import numpy as np
import openmm
from openmm import app, unit

from figures import estimated_wall_time_s
from omm_symbreak import systems
from omm_symbreak.reference import add_virtual_sites, create_qtip4pf_system
from omm_symbreak.rundir import read_trajectory, truncate_csv, truncate_dcd
from omm_symbreak.settings import RunSettings
from omm_symbreak.simulate import run
from omm_symbreak.symmetrize import DEFAULT_GRID

ROOT = Path(__file__).resolve().parent
MTS_RUN = f"mts-{DEFAULT_GRID}"
LENGTHS_PS = {"full": {"reference": 40.0, "raw": 30.0, MTS_RUN: 8.0},
              "quick": {"reference": 0.4, "raw": 0.4, MTS_RUN: 0.4}}
EQUILIBRATION_PS = 2.0  # dropped from the analysis of runs longer than twice this
FRAME_STEPS = 40  # 20 fs
CHECKPOINT_STEPS = 2000  # 1 ps
SEED = 1


def ml_settings(strategy: str, steps: int, model_file) -> RunSettings:
    return RunSettings(system="liquid-64", model=model_file, strategy=strategy, mts_stride=10,
                       ensemble="nvt", temperature_k=300.0, friction_per_ps=1.0,
                       timestep_fs=0.5, steps=steps, seed=SEED, state_interval=FRAME_STEPS * 10,
                       trajectory_interval=FRAME_STEPS, diagnostics_interval=CHECKPOINT_STEPS,
                       diagnostic_grid=DEFAULT_GRID, checkpoint_interval=CHECKPOINT_STEPS)


def run_reference(directory: Path, steps: int, template: str = "liquid-64",
                  temperature_k: float = 300.0) -> None:
    """q-TIP4P/F NVT of a template (settings as the ML runs) into ``directory``, resumable."""
    directory.mkdir(parents=True, exist_ok=True)
    topology, positions, _ = systems.load(template)
    site_topology, site_positions = add_virtual_sites(topology, positions)
    system = create_qtip4pf_system(site_topology)
    integrator = openmm.LangevinMiddleIntegrator(temperature_k * unit.kelvin, 1 / unit.picosecond,
                                                 0.5 * unit.femtosecond)
    integrator.setRandomNumberSeed(SEED + 1)
    simulation = app.Simulation(site_topology, system, integrator,
                                openmm.Platform.getPlatformByName("CPU"))
    real = [atom.index for atom in site_topology.atoms() if atom.element is not None]
    record = {"settings": {"system": template, "strategy": "reference q-TIP4P/F",
                           "ensemble": "nvt", "temperature_k": temperature_k, "friction_per_ps": 1.0,
                           "timestep_fs": 0.5, "steps": steps, "seed": SEED,
                           "trajectory_interval": FRAME_STEPS},
              "units": {"trajectory.dcd": "positions of O, H1, H2, nm (mdtraj)",
                        "state.csv": "OpenMM StateDataReporter: kJ/mol, K, ps"}}
    progress_path = directory / "progress.json"
    resume = progress_path.is_file()
    if resume:
        step = json.loads(progress_path.read_text())["step"]
        if step > steps:
            raise ValueError(f"{directory} is checkpointed at step {step}, beyond {steps}")
        simulation.loadCheckpoint(str(directory / "checkpoint.chk"))
        truncate_dcd(directory / "trajectory.dcd", step // FRAME_STEPS + 1)
        truncate_csv(directory / "state.csv", step)
    else:
        step = 0
        with open(directory / "topology.pdb", "w") as handle:
            app.PDBFile.writeFile(topology, positions, handle)
        simulation.context.setPositions(site_positions)
        simulation.context.setVelocitiesToTemperature(temperature_k * unit.kelvin, SEED + 1)
    (directory / "run.json").write_text(json.dumps(record, indent=2))  # steps may have changed
    simulation.reporters.append(app.DCDReporter(str(directory / "trajectory.dcd"), FRAME_STEPS,
                                                append=resume, atomSubset=real))
    simulation.reporters.append(app.StateDataReporter(
        str(directory / "state.csv"), FRAME_STEPS * 10, step=True, time=True,
        potentialEnergy=True, temperature=True, speed=True, append=resume))
    if not resume:  # frame 0 is the start, as in the ML runs (DCDReporter begins at a step > 0),
        # wrapped into the box as Simulation does for the reporter's later frames
        periodic = site_topology.getPeriodicBoxVectors() is not None
        simulation.reporters[0].report(simulation, simulation.context.getState(
            getPositions=True, enforcePeriodicBox=periodic))
    while step < steps:
        chunk = min(CHECKPOINT_STEPS, steps - step)
        simulation.step(chunk)
        step += chunk
        simulation.saveCheckpoint(str(directory / "checkpoint.chk"))
        progress_path.write_text(json.dumps({"step": step}))


def run_all(mode: str, model_file) -> tuple:
    """Run (or resume, or extend) the three liquid runs; returns (run directories, wall times
    of this sitting in s, simulated ps), each a dict by run name."""
    root = ROOT / "runs" / ("liquid" if mode == "full" else "liquid-quick")
    directories, wall = {}, {}
    for name in ("reference", "raw", MTS_RUN):
        directory = root / name
        steps = int(round(LENGTHS_PS[mode][name] * 2000))
        started = time.perf_counter()
        if name == "reference":
            run_reference(directory, steps)
        else:
            settings = ml_settings("none" if name == "raw" else "mts", steps, model_file)
            run(settings, directory, resume=(directory / "run.json").is_file())
        wall[name] = time.perf_counter() - started
        directories[name] = directory
        print(f"{name}: {wall[name]:.0f} s this sitting", flush=True)
    return directories, wall, LENGTHS_PS[mode]


def analysed_from_ps(simulated_ps: float) -> float:
    """Where the analysis starts: after EQUILIBRATION_PS, unless the run is too short."""
    return EQUILIBRATION_PS if simulated_ps > 2 * EQUILIBRATION_PS else 0.0


def trajectories(directories: dict) -> dict:
    """Each run's trajectory, frame times in ps, from ``analysed_from_ps`` on."""
    loaded = {}
    for name, directory in directories.items():
        trajectory = read_trajectory(directory)
        start = int(np.searchsorted(trajectory.time, analysed_from_ps(trajectory.time[-1])))
        loaded[name] = trajectory[start:]
    return loaded


def run_record(simulated_ps: dict, wall: dict, directories: dict, n_blocks: int) -> dict:
    """The run facts every liquid figure's JSON states."""
    return {"simulated_ps": simulated_ps,
            "analysed_from_ps": {name: analysed_from_ps(length)
                                 for name, length in simulated_ps.items()},
            "wall_time_s_this_sitting": wall,
            "wall_time_s_estimated_total": {name: estimated_wall_time_s(directory)
                                            for name, directory in directories.items()},
            "errors": f"standard errors over {n_blocks} non-overlapping blocks"}
