"""Trajectory files of a run, DCD or XTC: written frame by frame, cut back on resume.

DCD keeps positions in single precision (12 bytes per atom and frame); XTC keeps them to
0.001 nm, compressed (about 4 bytes per atom for liquid water), the compact form for a run's
durable state (``omm_symbreak.archive``). mdtraj reads both.
"""

import struct
from pathlib import Path

import openmm.app as app

TRAJECTORY_FORMATS = ("dcd", "xtc")


class FrameWriter:
    """Appends frames to ``path`` (its suffix, .dcd or .xtc, picks the format), one every
    ``interval`` steps of ``step_ps``; ``append`` continues an existing file."""

    def __init__(self, path: Path, topology, step_ps: float, interval: int, append: bool):
        self.handle = None
        if path.suffix == ".xtc":
            self.file = app.XTCFile(str(path), topology, step_ps, 0, interval, append=append)
        else:
            self.handle = open(path, "r+b" if append else "wb")
            self.file = app.DCDFile(self.handle, topology, step_ps, 0, interval, append=append)

    def write(self, positions, box_vectors) -> None:
        """One frame: positions (a Quantity, [N, 3]) and box vectors (None without a box)."""
        self.file.writeModel(positions, periodicBoxVectors=box_vectors)
        if self.handle is not None:
            self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def truncate_frames(path: Path, n_frames: int) -> None:
    """Keep the first ``n_frames`` frames of a trajectory file (DCD or XTC, by its suffix); a
    frame cut short by a kill is dropped too. ValueError if the file has fewer frames."""
    if Path(path).suffix == ".xtc":
        truncate_xtc(path, n_frames)
    else:
        truncate_dcd(path, n_frames)


def truncate_xtc(path: Path, n_frames: int) -> None:
    """Keep the first ``n_frames`` frames of an XTC file; its frames are found by mdtraj's
    scan of the frame headers (a frame cut short is found, and dropped, as the last one)."""
    from mdtraj.formats import XTCTrajectoryFile

    with XTCTrajectoryFile(str(path)) as xtc:
        offsets = list(xtc.offsets)
    # a frame cut short by a kill comes after every frame of the checkpoint: it is always cut
    if n_frames > len(offsets):
        raise ValueError(f"{path} has {len(offsets)} frames, fewer than the {n_frames} of the "
                         "checkpoint: the run directory is inconsistent")
    if n_frames < len(offsets):
        with open(path, "r+b") as handle:
            handle.truncate(offsets[n_frames])


def truncate_dcd(path: Path, n_frames: int) -> None:
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
