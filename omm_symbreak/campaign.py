"""Campaigns: sets of independent runs declared in a TOML file, run through dask.distributed.

A campaign file holds an optional ``[settings]`` table shared by every group and one or more
``[[group]]`` tables. Each group declares the product system x strategy x grid x seed x
length_ps: every one of these keys takes a value or a list of values (a grid applies to the
strategies full and mts; the others run once, without one). Any other key is a setting of
``omm_symbreak.settings.RunSettings`` (``timestep_fs``, ``temperature_k``, ``mts_stride``, the
intervals, ...; ``steps`` comes from ``length_ps``, in ps, over ``timestep_fs``); a group's keys
override the shared ones, and ``label`` names a group (a prefix of its run names). Strategy
``"reference"`` runs q-TIP4P/F itself (``omm_symbreak.reference.run``): a Langevin NVT run of a
template, which takes the system, seed, length, temperature, friction, time step, intervals and
platform and ignores the settings of the ML model (model, precision, mts_stride, diagnostics).
Relative paths (``model``, a ``system`` that is a PDB file) are relative to the campaign file;
``load_campaign`` makes every path absolute before anything is submitted.

Every run gets a directory under the campaign's output directory, named
``[label_]system_strategy[-grid]_seedS[_Lps]`` (``_Lps`` only when a group lists several
lengths), e.g. ``liquid-64_mts-Ti_seed1``. ``load_campaign`` checks the whole file and raises
``CampaignError`` listing every problem; ``plan_states`` checks every run directory against its
run (``new``, ``resume``, ``done``). ``run_campaign`` skips the finished runs, resumes the
interrupted ones from their checkpoints and starts the others, one dask task per run; a run that
fails is reported and the others go on. When a worker dies, the scheduler gives its task to
another worker (up to ``distributed.scheduler.allowed-failures`` times), which resumes the run
from its last checkpoint: the dead process's lock went with it (``rundir.hold_lock``).
"""

import contextlib
import ctypes
import dataclasses
import itertools
import json
import os
import secrets
import socket
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from .archive import archive_is_ahead, latest_step, restore_durable_state, save_durable_state
from .checkpoint import checkpoint_step, has_checkpoint
from .reference.run import ReferenceSettings, check_reference_directory, run_reference
from .rundir import check_directory, hold_lock, lock_owner
from .settings import RunSettings
from .strategies import GRID_STRATEGIES
from .units import FS_PER_PS

REFERENCE = "reference"
PRODUCT_KEYS = ("system", "strategy", "grid", "seed", "length_ps")
REQUIRED_KEYS = ("system", "strategy", "length_ps")
SETTING_KEYS = tuple(field.name for field in dataclasses.fields(RunSettings)
                     if field.name not in PRODUCT_KEYS + ("steps",))
# the settings a q-TIP4P/F reference run takes from the campaign (besides system, seed, steps)
REFERENCE_KEYS = ("temperature_k", "friction_per_ps", "timestep_fs", "trajectory_interval",
                  "state_interval", "checkpoint_interval", "platform", "trajectory_format")
POLL_S = 2.0
PROGRESS_TOPIC = "omm-symbreak-progress"
# written by the client in the output directory, one per campaign running on it
MARKER_FILE = "campaign-{token}.json"
# glibc's mallopt parameters, and the values its dynamic thresholds reach in a plain process
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
TRIM_THRESHOLD_BYTES, MMAP_THRESHOLD_BYTES = 64 << 20, 32 << 20


class CampaignError(ValueError):
    """Everything wrong with a campaign file or its run directories, one problem a line."""

    def __init__(self, problems: list):
        self.problems = problems
        super().__init__("\n".join(["the campaign has problems; nothing was run:",
                                    *(f"  - {problem}" for problem in problems)]))


@dataclass(frozen=True)
class PlannedRun:
    """One run of a campaign: its directory name and its settings (``RunSettings``, or
    ``ReferenceSettings`` for a q-TIP4P/F reference run)."""

    name: str
    settings: Union[RunSettings, ReferenceSettings]


@dataclass(frozen=True)
class RunResult:
    """What became of a run: ``status`` done, skipped (finished before) or failed; the wall
    time (s) of the sitting that finished it (None when skipped or failed); the error."""

    name: str
    status: str
    wall_s: Optional[float] = None
    error: Optional[str] = None


def load_campaign(path) -> list:
    """The planned runs of the campaign file ``path``, in the order the file declares them;
    CampaignError listing every problem of the file (unknown keys, bad values, settings that
    ``validate`` refuses, unknown systems, duplicate run names) before anything runs."""
    path = Path(path).resolve()
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CampaignError([f"{path}: {error}"]) from None
    problems = [f"unknown key {key!r} at the top of {path.name}: a campaign holds [settings] "
                f"and [[group]] tables" for key in document if key not in ("settings", "group")]
    shared = document.get("settings", {})
    groups = document.get("group", [])
    if not isinstance(shared, dict):
        problems.append("settings must be a table, [settings]")
        shared = {}
    problems += _unknown_keys(shared, "[settings]", allow_label=False)
    if not groups or not isinstance(groups, list):
        problems.append("no [[group]] table: declare the runs in at least one")
        groups = []
    runs = []
    for number, group in enumerate(groups, start=1):
        if not isinstance(group, dict):
            problems.append(f"group {number} is not a table: declare groups as [[group]]")
            continue
        where = f"group {number}" + (f" ({group['label']})" if "label" in group else "")
        group_problems = _unknown_keys(group, where, allow_label=True)
        if not group_problems:
            group_runs, group_problems = _group_runs({**shared, **group}, where, path.parent)
            runs += group_runs
        problems += group_problems
    names = [run.name for run in runs]
    problems += [f"run name {name} is declared {names.count(name)} times: give the groups "
                 f"different labels (label = \"...\")" for name in sorted(set(names))
                 if names.count(name) > 1]
    if problems:
        raise CampaignError(problems)
    return runs


def _unknown_keys(table: dict, where: str, allow_label: bool) -> list:
    allowed = PRODUCT_KEYS + SETTING_KEYS + (("label",) if allow_label else ())
    return [f"{where}: unknown key {key!r} (known: {', '.join(allowed)})"
            for key in table if key not in allowed]


def _group_runs(group: dict, where: str, base: Path) -> tuple:
    """(planned runs, problems) of one group's product; ``group`` holds the shared settings
    overridden by the group's own."""
    missing = [key for key in REQUIRED_KEYS if key not in group]
    if missing:
        return [], [f"{where}: missing {', '.join(missing)}"]
    values = {key: _as_list(group.get(key)) for key in PRODUCT_KEYS}
    if any(not value for value in values.values()):
        return [], [f"{where}: an empty list for {key}" for key, value in values.items()
                    if not value]
    settings = {key: value for key, value in group.items() if key in SETTING_KEYS}
    if isinstance(settings.get("model"), str):
        settings["model"] = str(base / settings["model"])
    runs, problems = [], []
    for system, strategy, seed, length_ps in itertools.product(
            values["system"], values["strategy"], values["seed"], values["length_ps"]):
        grids = values["grid"] if strategy in GRID_STRATEGIES else [None]
        for grid in grids:
            name = _run_name(group.get("label"), system, strategy, grid, seed, length_ps,
                             several_lengths=len(values["length_ps"]) > 1)
            try:
                run_settings = _settings(settings, _resolve_system(system, base), strategy,
                                         grid, seed, length_ps)
            except (ValueError, TypeError, FileNotFoundError) as error:
                problems.append(f"{where}, run {name}: {error}")
                continue
            runs.append(PlannedRun(name, run_settings))
    return runs, problems


def _as_list(value) -> list:
    """A product key's values: [None] when absent, the list, or the one value as a list."""
    if value is None:
        return [None]
    return list(value) if isinstance(value, list) else [value]


def _resolve_system(system, base: Path):
    """A system that names a PDB file, relative to the campaign file; a template name as is."""
    if isinstance(system, str) and system.lower().endswith(".pdb"):
        return str(base / system)
    return system


def _settings(settings: dict, system, strategy, grid, seed, length_ps):
    """The validated ``RunSettings`` (or ``ReferenceSettings``) of one run of the product;
    ValueError / TypeError / FileNotFoundError for anything wrong with it."""
    from . import systems

    if not (isinstance(length_ps, (int, float)) and length_ps > 0):
        raise ValueError(f"length_ps must be a positive number of ps, not {length_ps!r}")
    timestep_fs = settings.get("timestep_fs", RunSettings.timestep_fs)
    if not (isinstance(timestep_fs, (int, float)) and timestep_fs > 0):
        raise ValueError(f"timestep_fs must be a positive number of fs, not {timestep_fs!r}")
    steps = round(length_ps * FS_PER_PS / timestep_fs)
    if steps < 1:
        raise ValueError(f"length_ps {length_ps} is shorter than one step of {timestep_fs} fs")
    if not isinstance(system, str):
        raise ValueError(f"system must be a template name or a PDB file, not {system!r}")
    if system.lower().endswith(".pdb"):
        if not Path(system).is_file():
            raise FileNotFoundError(f"no PDB file {system}")
    elif system not in systems.available():
        raise ValueError(f"unknown system {system!r}: a PDB file or one of "
                         f"{', '.join(systems.available())}")
    seed = RunSettings.seed if seed is None else seed
    if not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, not {seed!r}")
    if strategy == REFERENCE:
        return _reference_settings(settings, system, seed, steps)
    if "replicate" in settings:
        settings = {**settings, "replicate": tuple(settings["replicate"])}
    run_settings = RunSettings(system=system, strategy=strategy, grid=grid, seed=seed,
                               steps=steps, **settings)
    run_settings.validate()
    return run_settings


def _reference_settings(settings: dict, system: str, seed: int, steps: int) -> ReferenceSettings:
    """The ``ReferenceSettings`` of a q-TIP4P/F run; ValueError for a setting it cannot honour."""
    if settings.get("ensemble", "nvt") != "nvt" or settings.get("thermostat",
                                                                "langevin") != "langevin":
        raise ValueError("the reference runs NVT with the Langevin thermostat only: set "
                         "ensemble = \"nvt\" and thermostat = \"langevin\" for it")
    if tuple(settings.get("replicate", (1, 1, 1))) != (1, 1, 1):
        raise ValueError("the reference runs a template as it is: replicate must be [1, 1, 1]")
    reference = ReferenceSettings(system=system, steps=steps, seed=seed,
                                  **{key: settings[key] for key in REFERENCE_KEYS
                                     if key in settings})
    reference.validate()
    return reference


def _run_name(label, system, strategy, grid, seed, length_ps, several_lengths: bool) -> str:
    """``[label_]system_strategy[-grid]_seedS[_Lps]``: readable, deterministic, one path
    component (a PDB file's stem; ':' and '/' of a grid become '-')."""
    system_name = Path(system).stem if isinstance(system, str) else str(system)
    strategy_name = str(strategy)
    if strategy in GRID_STRATEGIES:
        strategy_name += "-" + _canonical_grid(strategy, grid).replace(":", "-").replace("/", "-")
    parts = [system_name, strategy_name, f"seed{RunSettings.seed if seed is None else seed}"]
    if several_lengths:
        parts.append(f"{length_ps:g}ps")
    return "_".join(([str(label)] if label else []) + parts)


def _canonical_grid(strategy: str, grid) -> str:
    """The grid's canonical notation (``exact:3i`` -> ``Ti``), or as written if it is bad (the
    settings report it)."""
    try:
        return RunSettings(system="", strategy=strategy, grid=grid).grid
    except (ValueError, TypeError):
        return str(grid)


def plan_states(runs: list, output_dir, archive=None) -> dict:
    """The state of every run under ``output_dir`` (or in ``archive``, where its archive is
    later than its directory), {name: "new" | "resume" | "done"}; CampaignError listing every
    directory that holds another run, a run longer than asked, foreign files, or a run another
    process is running now."""
    from .model_kinds import load_energy_model

    fingerprints, states, problems = {}, {}, []
    for run in runs:
        directory = Path(output_dir) / run.name
        try:
            owner = lock_owner(directory)
            if owner is not None:
                raise ValueError(f"{directory} is in use by another process (pid {owner})")
            if archive is not None and archive_is_ahead(Path(archive) / run.name, directory):
                directory = Path(archive) / run.name
            if isinstance(run.settings, ReferenceSettings):
                states[run.name] = _reference_state(directory, run.settings)
                continue
            model = run.settings.model
            if model not in fingerprints:
                fingerprints[model] = load_energy_model(model).fingerprint()
            states[run.name] = _state(directory, run.settings, fingerprints[model])
        except (ValueError, FileNotFoundError) as error:
            problems.append(f"run {run.name}: {error}")
    if problems:
        raise CampaignError(problems)
    return states


def _state(directory: Path, settings: RunSettings, fingerprint: str) -> str:
    """new, resume or done; ValueError (``rundir.check_directory``) for a directory that holds
    something else."""
    if not has_checkpoint(directory):
        check_directory(directory, settings, False, fingerprint)
        return "new"
    check_directory(directory, settings, True, fingerprint)
    return "done" if checkpoint_step(directory) == settings.steps else "resume"


def _reference_state(directory: Path, settings: ReferenceSettings) -> str:
    """new, resume or done of a q-TIP4P/F run; ValueError
    (``reference.run.check_reference_directory``) for a directory that holds another run."""
    if not has_checkpoint(directory):
        return "new"
    check_reference_directory(directory, settings, checkpoint_step(directory))
    return "done" if checkpoint_step(directory) == settings.steps else "resume"


def execute(run: PlannedRun, directory, archive_dir=None, token: Optional[str] = None,
            threads: int = 1) -> float:
    """Run, resume (from its checkpoint, or from its archive ``archive_dir`` where that is
    later) or finish one run in ``directory`` on ``threads`` threads: the task of a dask
    worker, again when a worker died under it. With ``token``, the output directory must hold
    the client's marker file of that token (a filesystem shared with the client). Returns its
    wall time (s)."""
    from .simulate import run as simulate

    started = time.perf_counter()
    directory = Path(directory)
    if token is not None and not (directory.parent / MARKER_FILE.format(token=token)).is_file():
        raise RuntimeError(f"this worker ({socket.gethostname()}) does not see the campaign's "
                           f"output directory {directory.parent}: the output directory and the "
                           f"archive must be on a filesystem the client and every worker share")
    set_run_environment(threads)
    if archive_dir is not None:
        with hold_lock(directory):
            restore_durable_state(archive_dir, directory)

    def on_checkpoint(step: int) -> None:
        if archive_dir is not None:
            save_durable_state(directory, archive_dir)
        _report_progress(run.name, step)

    if isinstance(run.settings, ReferenceSettings):
        run_reference(run.settings, directory, on_checkpoint=on_checkpoint)
    else:
        simulate(run.settings, directory, resume=has_checkpoint(directory), progress=False,
                 on_checkpoint=on_checkpoint)
    return time.perf_counter() - started


def set_run_environment(threads: int = 1) -> None:
    """Set the process for a run of a campaign, whatever started it: ``threads`` threads for
    torch and for OpenMM's CPU platform (its default ``Threads``), and glibc's allocator
    thresholds at the values a plain process reaches.

    ``dask worker`` (through its nanny) starts workers with MALLOC_TRIM_THRESHOLD_=65536,
    which fixes glibc's trim threshold and with it the mmap threshold at 128 kB: every tensor
    above it is mapped and unmapped at each use. Measured here, liquid-64 then spent most of
    its time in the kernel (page faults) and ran ten times slower than in a plain process.
    ``mallopt`` sets both thresholds back to the values glibc's dynamic ones reach.
    """
    import openmm
    import torch

    torch.set_num_threads(threads)
    os.environ["OPENMM_CPU_THREADS"] = str(threads)
    openmm.Platform.getPlatformByName("CPU").setPropertyDefaultValue("Threads", str(threads))
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: its variable does not apply
        return
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


def _report_progress(name: str, step: int) -> None:
    """Send a run's checkpointed step to the client as a dask event (nothing outside a
    worker)."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return
    worker.log_event(PROGRESS_TOPIC, {"run": name, "step": step})


def _missing_directories(paths: list, token: str) -> list:
    """Which of ``paths`` this worker does not see with the client's token file in it (run on
    every worker by ``client.run``)."""
    return [path for path in paths
            if not (Path(path) / f".omm-symbreak-check-{token}").is_file()]


def check_shared_filesystem(client, paths: list) -> None:
    """CampaignError unless every worker of ``client`` sees each of ``paths`` (directories) as
    the client does: a token file written here must be there."""
    token = secrets.token_hex(8)
    files = [Path(path) / f".omm-symbreak-check-{token}" for path in paths]
    try:
        for file in files:
            file.write_text(token)
        missing = client.run(_missing_directories, [str(path) for path in paths], token)
    finally:
        for file in files:
            file.unlink(missing_ok=True)
    problems = [f"worker {worker} does not see {', '.join(paths)}"
                for worker, paths in missing.items() if paths]
    if problems:
        raise CampaignError(problems + [
            "the output directory and the archive must be on a filesystem that the client and "
            "every worker share (NFS, Lustre, ...): choose such paths with -o and --archive"])


def local_cluster(workers: Optional[int] = None, threads_per_run: int = 1):
    """A ``distributed.LocalCluster`` of ``workers`` worker processes, each running one task
    at a time (default: as many as the CPU cores hold runs of ``threads_per_run`` threads;
    each task sets its run's environment, ``set_run_environment``)."""
    from distributed import LocalCluster

    workers = workers or max(1, (os.cpu_count() or 1) // threads_per_run)
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=None)


def run_campaign(runs: list, output_dir, scheduler: Optional[str] = None,
                 workers: Optional[int] = None, progress: bool = True, archive=None,
                 threads_per_run: int = 1) -> list:
    """Run the planned runs in ``output_dir/<name>``, one dask task each, on the scheduler at
    ``scheduler`` or else on a ``local_cluster(workers, threads_per_run)``; with ``archive``,
    each run's durable state is kept in ``archive/<name>`` and runs are restored from it
    (module docstring). Each run computes on ``threads_per_run`` threads (torch and OpenMM's
    CPU platform): more than one where fewer runs than cores are left, a single long run say;
    a worker of a cluster should then own that many cores. Returns a ``RunResult`` per run,
    in the order of ``runs``.

    Finished runs are skipped; every directory is checked first (``plan_states``), and that
    every worker shares the output directory and the archive (``check_shared_filesystem``):
    CampaignError before anything runs. A run that fails is reported with its error and does
    not stop the others. With ``progress``, bars of finished runs and of checkpointed steps.
    """
    from distributed import Client

    if threads_per_run < 1:
        raise ValueError(f"threads_per_run must be a positive number, not {threads_per_run}")
    output_dir = Path(output_dir).resolve()
    archive = None if archive is None else Path(archive).resolve()
    states = plan_states(runs, output_dir, archive)
    to_run = [run for run in runs if states[run.name] != "done"]
    results = {run.name: RunResult(run.name, "skipped") for run in runs
               if states[run.name] == "done"}
    if to_run:
        token = _mark_output_directory(output_dir, archive)
        cluster = (local_cluster(workers, threads_per_run) if scheduler is None
                   else contextlib.nullcontext(scheduler))
        try:
            with cluster as address_or_cluster, Client(address_or_cluster) as client:
                results.update(_submit_and_wait(client, to_run, output_dir, archive, token,
                                                threads_per_run, progress))
        finally:
            (output_dir / MARKER_FILE.format(token=token)).unlink(missing_ok=True)
    return [results[run.name] for run in runs]


def _mark_output_directory(output_dir: Path, archive: Optional[Path]) -> str:
    """Create the output directory and the archive and write this campaign's marker file,
    named by a new token, that each task looks for (``execute``); returns the token. Each
    campaign on one output directory has its own (runs of two campaigns are kept apart by
    their run directories' locks)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if archive is not None:
        archive.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    marker = {"token": token, "client_host": socket.gethostname(), "started": time.time(),
              "archive": None if archive is None else str(archive)}
    (output_dir / MARKER_FILE.format(token=token)).write_text(json.dumps(marker, indent=2))
    return token


def _submit_and_wait(client, runs: list, output_dir: Path, archive: Optional[Path], token: str,
                     threads: int, progress: bool) -> dict:
    """Check the workers' view of the directories, submit a task per run and wait for all of
    them; the progress bars follow the workers' events (``PROGRESS_TOPIC``). {name:
    RunResult}."""
    from tqdm import tqdm

    check_shared_filesystem(client, [str(output_dir)] + ([str(archive)] if archive else []))
    steps = {}
    client.subscribe_topic(PROGRESS_TOPIC,
                           lambda event: steps.__setitem__(event[1]["run"], event[1]["step"]))
    # the file's order is the order of work: a worker free for one run takes the first waiting
    futures = {run.name: client.submit(execute, run, output_dir / run.name,
                                       None if archive is None else archive / run.name, token,
                                       threads, pure=False, priority=len(runs) - index,
                                       key=f"omm-symbreak-{run.name}-{time.time_ns()}")
               for index, run in enumerate(runs)}
    total_steps = sum(run.settings.steps for run in runs)
    run_bar = tqdm(total=len(runs), unit="run", desc="campaign", disable=not progress)
    step_bar = tqdm(total=total_steps, unit="step", desc="checkpointed", disable=not progress)
    results, pending = {}, {run.name: run for run in runs}
    try:
        while pending:
            for name in [name for name in pending if futures[name].done()]:
                results[name] = _result(name, futures[name])
                del pending[name]
                run_bar.update(1)
                if progress:
                    run_bar.write(f"{name}: {results[name].status}"
                                  + (f" ({results[name].error})" if results[name].error else ""))
            done = total_steps - sum(run.settings.steps for run in pending.values())
            done += sum(steps.get(name, 0) for name in pending)
            step_bar.update(done - step_bar.n)
            if pending:
                time.sleep(POLL_S)
    finally:
        client.unsubscribe_topic(PROGRESS_TOPIC)
        run_bar.close()
        step_bar.close()
    return results


def _result(name: str, future) -> RunResult:
    """The RunResult of a finished task: done with its wall time, or failed with its error
    (the run's own, or ``KilledWorker`` when workers died under it too often)."""
    try:
        return RunResult(name, "done", wall_s=future.result())
    except Exception as error:
        return RunResult(name, "failed", error=f"{type(error).__name__}: {error}")


def format_summary(results: list) -> str:
    """A table of the results: run, status, wall time (s), error."""
    width = max([len("run")] + [len(result.name) for result in results])
    lines = [f"{'run':<{width}s}  {'status':<8s} {'wall_s':>9s}  error"]
    for result in results:
        wall = f"{result.wall_s:9.1f}" if result.wall_s is not None else f"{'-':>9s}"
        lines.append(f"{result.name:<{width}s}  {result.status:<8s} {wall}  "
                     f"{result.error or ''}")
    return "\n".join(lines)


def format_plan(runs: list, states: dict, output_dir, archive=None) -> str:
    """A table of the planned runs: run, state (new, resume, done), steps checkpointed (in its
    directory or its archive) of the steps asked, kind."""
    width = max([len("run")] + [len(run.name) for run in runs])
    lines = [f"{'run':<{width}s}  {'state':<7s} {'steps':>15s}  what"]
    for run in runs:
        settings = run.settings
        places = [Path(output_dir) / run.name] + ([Path(archive) / run.name] if archive else [])
        done = latest_step(*places) if states[run.name] != "new" else 0
        what = ("q-TIP4P/F reference" if isinstance(settings, ReferenceSettings)
                else f"{settings.strategy}" + (f" {settings.grid}"
                                               if settings.strategy in GRID_STRATEGIES else ""))
        lines.append(f"{run.name:<{width}s}  {states[run.name]:<7s} "
                     f"{f'{done}/{settings.steps}':>15s}  {what}, {settings.system}, "
                     f"{settings.steps * settings.timestep_fs / FS_PER_PS:g} ps")
    return "\n".join(lines)
