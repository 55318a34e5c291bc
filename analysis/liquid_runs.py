"""The liquid runs shared by figures 2 and 3: liquid-64 at 300 K, raw model vs the symmetrized
model (MTS) vs reference.

The runs are the campaign ``analysis/campaigns/liquid.toml`` (its header has the settings):
three NVT runs from the liquid-64 template (Langevin middle, friction 1/ps, dt 0.5 fs, a frame
every 20 fs); the analysis drops the first EQUILIBRATION_PS of each and compares the three over
the same windows and lags (those of the shortest run):

- ``raw``: the raw model (strategy ``none``);
- ``MTS_RUN`` (``mts-Ti``): the raw model plus the correction E_avg - E_raw of the default grid
  ``Ti`` every 10 steps (outer step 5 fs), as the study did with ``2i``, which is exact to the
  same degree at 36 rotations instead of 24;
- ``reference``: q-TIP4P/F itself (``omm_symbreak.reference.run``; its M sites are not
  written: the trajectory has the real atoms O, H1, H2 of every molecule, like the other two).

The figure scripts run them (``run_as_campaign``: one worker process per core, finished runs
skipped, interrupted ones resumed from their checkpoints) in the campaign's own directory,
analysis/campaigns/liquid/, with the campaign's durable state in ARCHIVE (in git), so that
``omm-symbreak campaign analysis/campaigns/liquid.toml --archive
analysis/campaigns/archive/liquid`` (with ``--workers 1`` beside other work, say) and the
figures share them, across sittings and machines; the figures analyse the archive.
``--analyse-only`` analyses the archive as it is, however long its runs have grown, without
running anything; ``--archive`` reads another copy of it (another checkout's, say).
``--model`` replaces the campaign's model (the shipped one), and a run of another model is
refused.
``mts-Ti`` costs about 3.4 raw evaluations per step (a ``Ti`` evaluation of 24 copies costs
about 19 raw ones, every 10 steps). With the shipped model on one core (the other one busy) it
runs at 0.06 ns/day (24 minutes per ps), raw at 0.2 ns/day (7 minutes per ps), q-TIP4P/F in
seconds per ps; the campaign's lengths are what one sitting of 2 cores allows (its header).
Longer runs take several sittings: every sitting extends the runs from the archive.
``--quick`` runs them QUICK_PS long in analysis/runs/liquid-quick/.

The study used stochastic velocity rescaling (a global thermostat); OpenMM has none built in.
The same weak Langevin friction (1/ps, a relaxation time of 1 ps) is applied to all three runs,
so that they compare with each other.
"""

import dataclasses
from pathlib import Path

import numpy as np

from figures import estimated_wall_time_s, read_state, repository_path, run_as_campaign
from omm_symbreak.campaign import load_campaign
from omm_symbreak.checkpoint import checkpoint_step, has_checkpoint
from omm_symbreak.observables import block_average
from omm_symbreak.rundir import read_trajectory
from omm_symbreak.settings import RunSettings
from omm_symbreak.strategies import DEFAULT_GRID
from omm_symbreak.units import FS_PER_PS

ROOT = Path(__file__).resolve().parent
CAMPAIGN = ROOT / "campaigns" / "liquid.toml"
ARCHIVE = ROOT / "campaigns" / "archive" / "liquid"
MTS_RUN = f"mts-{DEFAULT_GRID}"
# the figures' names of the campaign's runs
CAMPAIGN_RUNS = {"raw": "liquid-64_none_seed1", MTS_RUN: f"liquid-64_mts-{DEFAULT_GRID}_seed1",
                 "reference": "liquid-64_reference_seed1"}
# the verdicts' pairs of runs (issue 35)
COMPARISONS = (("raw", MTS_RUN), ("raw", "reference"), (MTS_RUN, "reference"))
QUICK_PS = 0.4
EQUILIBRATION_PS = 2.0  # dropped from the analysis of runs longer than twice this


def planned_runs(mode: str, model_file) -> dict:
    """The campaign's three runs, {directory name: settings}, with ``model_file`` (None: the
    campaign's) and, in mode "quick", QUICK_PS long."""
    declared = {run.name: run.settings for run in load_campaign(CAMPAIGN)}
    runs = {}
    for name in CAMPAIGN_RUNS.values():
        if name not in declared:
            raise ValueError(f"{CAMPAIGN} declares no run {name} (it declares "
                             f"{', '.join(declared)})")
        settings = declared[name]
        if mode == "quick":
            steps = int(round(QUICK_PS * FS_PER_PS / settings.timestep_fs))
            settings = dataclasses.replace(settings, steps=steps)
        if isinstance(settings, RunSettings) and model_file is not None:
            settings = dataclasses.replace(settings, model=model_file)
        runs[name] = settings
    return runs


def run_root(mode: str) -> Path:
    """Where the runs of ``mode`` ("full", "quick") run, and the figures write what they plot:
    analysis/campaigns/liquid/ (not kept), or analysis/runs/liquid-quick/."""
    return CAMPAIGN.with_suffix("") if mode == "full" else ROOT / "runs" / "liquid-quick"


def run_all(mode: str, model_file, analyse_only: bool = False, archive: Path = ARCHIVE) -> tuple:
    """Run (or resume, or extend) the three liquid runs as a campaign (``run_as_campaign``),
    in mode "full" with the campaign's durable state in ``archive``; with ``analyse_only`` run
    nothing. Returns (the directories to analyse: the archive's in mode "full", wall times of
    this sitting in s, 0 for a run finished before, simulated ps: each run's checkpointed
    length), each a dict by the figures' run names. RuntimeError if a run failed;
    FileNotFoundError when there is nothing to analyse."""
    root = run_root(mode)
    archive = archive if mode == "full" else None
    runs = planned_runs(mode, model_file)
    wall = ({name: 0.0 for name in runs} if analyse_only
            else run_as_campaign(runs, root, archive=archive))
    directories = {label: (archive or root) / name for label, name in CAMPAIGN_RUNS.items()}
    missing = [str(d) for d in directories.values() if not has_checkpoint(d)]
    if missing:
        raise FileNotFoundError(f"nothing to analyse in {', '.join(missing)}: run the campaign "
                                f"(without --analyse-only) first")
    return (directories,
            {label: wall[name] for label, name in CAMPAIGN_RUNS.items()},
            {label: checkpoint_step(directories[label]) * runs[name].timestep_fs / FS_PER_PS
             for label, name in CAMPAIGN_RUNS.items()})


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


def mean_temperature_k(directory, n_blocks: int) -> list:
    """[mean, standard error] of a run's kinetic temperature (K, OpenMM's, from state.csv) over
    its analysed rows, in up to ``n_blocks`` blocks (error None below 2 rows): the thermostat's
    300 K unless the dynamics heats (a diffusion coefficient changes by about 2.5 % per K near
    300 K)."""
    state = read_state(directory)
    temperature = state["Temperature"][state["Time"] >= analysed_from_ps(state["Time"][-1])]
    if len(temperature) < 2:
        return [float(np.mean(temperature)), None]
    mean, error = block_average(temperature, min(n_blocks, len(temperature)))
    return [float(mean), float(error)]


def run_record(simulated_ps: dict, wall: dict, directories: dict, n_blocks: int) -> dict:
    """The run facts every liquid figure's JSON states (the directories it read among them)."""
    return {"run_directories": {name: repository_path(directory)
                                for name, directory in directories.items()},
            "simulated_ps": simulated_ps,
            "analysed_from_ps": {name: analysed_from_ps(length)
                                 for name, length in simulated_ps.items()},
            "analysed_ps": {name: length - analysed_from_ps(length)
                            for name, length in simulated_ps.items()},
            "temperature_k": {name: mean_temperature_k(directory, n_blocks)
                              for name, directory in directories.items()},
            "wall_time_s_this_sitting": wall,
            "wall_time_s_estimated_total": {name: estimated_wall_time_s(directory)
                                            for name, directory in directories.items()},
            "errors": f"standard errors over {n_blocks} non-overlapping blocks"}
