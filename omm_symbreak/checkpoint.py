"""The checkpoint of a run: one file, ``checkpoint.pt``, written atomically.

It holds, in one ``torch.save`` dictionary that ``torch.load(..., weights_only=True)`` reads
(no code runs on loading):

- ``step``: the step (of timestep_fs) the state belongs to;
- ``openmm_checkpoint``: ``Context.createCheckpoint()``'s bytes (positions, velocities, box,
  the integrator's random state and step count), as a uint8 tensor.

Nothing else holds random state: the rotations of strategy ``random`` are a function of the
configuration (``kernel.random_rotation``).

The file is written to ``checkpoint.pt.tmp``, flushed to disk and renamed over
``checkpoint.pt``: a kill at any moment leaves the previous checkpoint or the new one, never a
state paired with another step. An OpenMM checkpoint restores on the platform that wrote it.
"""

import os
from pathlib import Path

import torch

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 2  # 1: checkpoint.chk + checkpoint.pt (the step and torch's random state), two renames


def save_checkpoint(simulation, directory: Path, step: int) -> None:
    """Write the checkpoint of ``simulation`` at ``step`` (steps of timestep_fs) into
    ``directory/checkpoint.pt``, atomically."""
    openmm_bytes = bytearray(simulation.context.createCheckpoint())
    payload = {"format": FORMAT, "step": int(step),
               "openmm_checkpoint": torch.frombuffer(openmm_bytes, dtype=torch.uint8)}
    path = Path(directory) / CHECKPOINT_FILE
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def read_checkpoint(directory: Path) -> dict:
    """The checkpoint's dictionary (module docstring); ValueError for a file of the older
    two-file format or one that is not a checkpoint."""
    path = Path(directory) / CHECKPOINT_FILE
    try:
        saved = torch.load(path, weights_only=True)
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"{path} is not a readable checkpoint ({error})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError(f"{path} was written by an older omm-symbreak (a checkpoint.chk beside "
                         f"it): start the run again in a new directory")
    return saved


def has_checkpoint(directory: Path) -> bool:
    """Whether ``directory`` holds a run that reached its first checkpoint."""
    return (Path(directory) / CHECKPOINT_FILE).is_file()


def checkpoint_step(directory: Path) -> int:
    """The step (of timestep_fs) of the checkpoint in ``directory``, 0 without one."""
    return int(read_checkpoint(directory)["step"]) if has_checkpoint(directory) else 0


def load_checkpoint(simulation, directory: Path) -> int:
    """Restore the OpenMM state; returns the checkpoint's step."""
    saved = read_checkpoint(directory)
    simulation.context.loadCheckpoint(saved["openmm_checkpoint"].numpy().tobytes())
    return int(saved["step"])
