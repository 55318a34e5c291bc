"""Durable run state: what a run needs to be extended and analysed on another machine, kept
in an archive directory that outlives the run's own (scratch space, a job's machine).

A run's archive, ``ARCHIVE/<run name>/``, holds its run.json, topology.pdb, state.csv,
diagnostics.csv (model runs), trajectory (and velocities, if written) and ``checkpoint.pt``:
the run directory less its lock. ``save_durable_state`` copies them after every checkpoint,
each file atomically (a temporary file, then a rename) and the checkpoint last, so that the
archive's checkpoint never runs ahead of its frames and rows; whatever the archive holds past
its checkpoint is dropped on resume, as in the run directory itself. ``restore_durable_state``
copies an archive into a run directory that is behind it (or has nothing), and the run resumes
from there frame-exactly: the files are the run directory's own.

Its size is that of the run's outputs: with ``trajectory_format = "xtc"`` a frame of
liquid-64 takes about 0.8 kB, so 32 ps at a frame every 20 fs about 1.3 MB in all; a DCD
trajectory takes 2.3 kB a frame.
"""

import shutil
from pathlib import Path

from .checkpoint import CHECKPOINT_FILE, checkpoint_step, has_checkpoint
from .rundir import RUN_FILES

# a run directory's files that are copied; checkpoint.pt goes last
DURABLE_FILES = tuple(name for name in RUN_FILES
                      if not name.endswith(".tmp") and name != CHECKPOINT_FILE)


def save_durable_state(run_dir, archive_dir) -> None:
    """Copy the durable files of ``run_dir`` into ``archive_dir`` (created), checkpoint last;
    call it right after a checkpoint, while no other file is being written."""
    run_dir, archive_dir = Path(run_dir), Path(archive_dir)
    archive_dir.mkdir(parents=True, exist_ok=True)
    for name in (*DURABLE_FILES, CHECKPOINT_FILE):
        if (run_dir / name).is_file():
            _copy_atomically(run_dir / name, archive_dir / name)


def restore_durable_state(archive_dir, run_dir) -> bool:
    """Copy the archive into ``run_dir`` when the archive's checkpoint is later than the run
    directory's (or it has none): every run file of ``run_dir`` is replaced, checkpoint last.
    Returns whether it copied. Call it with the run directory's lock held (``hold_lock``)."""
    archive_dir, run_dir = Path(archive_dir), Path(run_dir)
    if not archive_is_ahead(archive_dir, run_dir):
        return False
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in (*DURABLE_FILES, CHECKPOINT_FILE):
        if (archive_dir / name).is_file():
            _copy_atomically(archive_dir / name, run_dir / name)
    return True


def archive_is_ahead(archive_dir, run_dir) -> bool:
    """Whether a run's archive holds a later checkpoint than its run directory (or the run
    directory has none)."""
    archive_dir, run_dir = Path(archive_dir), Path(run_dir)
    return has_checkpoint(archive_dir) and (not has_checkpoint(run_dir) or
                                            checkpoint_step(archive_dir) >
                                            checkpoint_step(run_dir))


def latest_step(*directories) -> int:
    """The latest checkpoint step (of timestep_fs) among the directories, 0 without one."""
    return max([checkpoint_step(Path(d)) for d in directories if has_checkpoint(Path(d))] or [0])


def _copy_atomically(source: Path, target: Path) -> None:
    temporary = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, temporary)
    temporary.replace(target)
