"""The liquid runs shared by figures 2 and 3: liquid-64 at 300 K, raw model vs the symmetrized
model (MTS) vs reference.

Three NVT runs from the liquid-64 template (Langevin middle, friction 1/ps, dt 0.5 fs, a frame
every 20 fs), all resumable (run the figure script again after an interruption):

- ``raw``: the raw model (``omm-symbreak simulate``, strategy ``none``);
- ``MTS_RUN`` (``mts-Ti``): the raw model plus the correction E_avg - E_raw of the default grid
  ``Ti`` every 10 steps (outer step 5 fs), as the study did with ``2i``, which is exact to the
  same degree at 36 rotations instead of 24 (the committed results of figures 2 and 3 ran
  ``2i``);
- ``reference``: q-TIP4P/F itself (``omm_symbreak.reference.run``; its M sites are not
  written: the trajectory has the real atoms O, H1, H2 of every molecule, like the other two).

They run as a campaign (``omm_symbreak.campaign.run_campaign``): each in a worker process of
its own, one per core, finished runs skipped, interrupted ones resumed from their checkpoints.
``analysis/campaigns/liquid.toml`` declares the same runs, 32 ps each, for
``omm-symbreak campaign``.

Lengths (``LENGTHS_PS``): 32 ps each, 30 ps after the EQUILIBRATION_PS that the analysis drops,
so that the three runs are compared over the same windows. ``mts-Ti`` costs about 3.5 raw
evaluations per step: about 6 h on one core against 1.7 h for raw, so the full runs take
several sittings; run the script again and every run resumes from its last checkpoint. Raising
a length and running again extends a finished run (``simulate.run`` accepts a longer ``steps``
on resume).

The study used stochastic velocity rescaling (a global thermostat); OpenMM has none built in.
The same weak Langevin friction (1/ps, a relaxation time of 1 ps) is applied to all three runs,
so that they compare with each other.
"""

from pathlib import Path

import numpy as np

from figures import estimated_wall_time_s, run_as_campaign
from omm_symbreak.reference.run import ReferenceSettings
from omm_symbreak.rundir import read_trajectory
from omm_symbreak.settings import RunSettings
from omm_symbreak.symmetrize import DEFAULT_GRID

ROOT = Path(__file__).resolve().parent
MTS_RUN = f"mts-{DEFAULT_GRID}"
LENGTHS_PS = {"full": {"reference": 32.0, "raw": 32.0, MTS_RUN: 32.0},
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


def reference_settings(steps: int) -> ReferenceSettings:
    """q-TIP4P/F NVT of liquid-64 with the settings of the ML runs."""
    return ReferenceSettings(system="liquid-64", steps=steps, temperature_k=300.0,
                             friction_per_ps=1.0, timestep_fs=0.5, seed=SEED,
                             trajectory_interval=FRAME_STEPS, state_interval=FRAME_STEPS * 10,
                             checkpoint_interval=CHECKPOINT_STEPS)


def planned_runs(mode: str, model_file) -> dict:
    """The three runs, {directory name: settings}."""
    steps = {name: int(round(length_ps * 2000)) for name, length_ps in LENGTHS_PS[mode].items()}
    return {"reference": reference_settings(steps["reference"]),
            "raw": ml_settings("none", steps["raw"], model_file),
            MTS_RUN: ml_settings("mts", steps[MTS_RUN], model_file)}


def run_all(mode: str, model_file) -> tuple:
    """Run (or resume, or extend) the three liquid runs as a campaign (``run_as_campaign``);
    returns (run directories, wall times of this sitting in s, 0 for a run finished before,
    simulated ps), each a dict by run name. RuntimeError if a run failed."""
    root = ROOT / "runs" / ("liquid" if mode == "full" else "liquid-quick")
    runs = planned_runs(mode, model_file)
    wall = run_as_campaign(runs, root)
    return {name: root / name for name in runs}, wall, LENGTHS_PS[mode]


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
