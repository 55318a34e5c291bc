"""Datasets on disk: ASE extended XYZ with energies (eV) and forces (eV/Angstrom).

Convention (docs/design.md, "Data on disk"). Frames are written with an ASE
``SinglePointCalculator`` holding the energy and forces, which ASE's writer stores as
``energy=...`` in the comment line and a ``forces:R:3`` column; periodic frames carry
``Lattice="ax ay az bx by bz cx cy cz"`` (rows of the cell, Angstrom) and ``pbc="T T T"``,
others ``pbc="F F F"`` and no lattice. Per-frame metadata (temperature, density, ...) go to
``info`` and appear as further ``key=value`` pairs.

Reading accepts both forms ASE knows: the labels as results of the frame's calculator (what
ASE makes of ``energy``/``forces`` on reading), or as ``atoms.info[energy_key]`` and
``atoms.arrays[forces_key]`` (other key names, e.g. ``REF_energy``). Only fully periodic or
fully non-periodic frames are supported.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import numpy as np


@dataclass
class Frame:
    """One labelled structure, model units.

    atomic_numbers: [N] int; positions_angstrom: [N, 3]; cell_angstrom: [3, 3] rows a, b, c
    (periodic along all three) or None; energy_ev: total energy or None;
    forces_ev_per_angstrom: [N, 3] or None; info: scalar metadata (str, int, float, bool).
    """

    atomic_numbers: np.ndarray
    positions_angstrom: np.ndarray
    cell_angstrom: Optional[np.ndarray] = None
    energy_ev: Optional[float] = None
    forces_ev_per_angstrom: Optional[np.ndarray] = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.atomic_numbers = np.asarray(self.atomic_numbers, dtype=np.int64).reshape(-1)
        n = len(self.atomic_numbers)
        self.positions_angstrom = np.asarray(self.positions_angstrom, dtype=np.float64)
        if self.positions_angstrom.shape != (n, 3):
            raise ValueError(f"positions must have shape [{n}, 3] for {n} atoms, "
                             f"got {list(self.positions_angstrom.shape)}")
        if self.cell_angstrom is not None:
            self.cell_angstrom = np.asarray(self.cell_angstrom, dtype=np.float64)
            if self.cell_angstrom.shape != (3, 3):
                raise ValueError(f"cell must have shape [3, 3], got {list(self.cell_angstrom.shape)}")
        if self.energy_ev is not None:
            self.energy_ev = float(self.energy_ev)
        if self.forces_ev_per_angstrom is not None:
            self.forces_ev_per_angstrom = np.asarray(self.forces_ev_per_angstrom, dtype=np.float64)
            if self.forces_ev_per_angstrom.shape != (n, 3):
                raise ValueError(f"forces must have shape [{n}, 3] for {n} atoms, "
                                 f"got {list(self.forces_ev_per_angstrom.shape)}")

    @property
    def n_atoms(self) -> int:
        return len(self.atomic_numbers)

    @property
    def has_labels(self) -> bool:
        return self.energy_ev is not None and self.forces_ev_per_angstrom is not None


def to_atoms(frame: Frame):
    """The frame as ``ase.Atoms`` with a SinglePointCalculator for whatever labels it has."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    periodic = frame.cell_angstrom is not None
    atoms = Atoms(numbers=frame.atomic_numbers, positions=frame.positions_angstrom,
                  cell=frame.cell_angstrom if periodic else None, pbc=periodic)
    atoms.info.update(frame.info)
    results = {}
    if frame.energy_ev is not None:
        results["energy"] = frame.energy_ev
    if frame.forces_ev_per_angstrom is not None:
        results["forces"] = frame.forces_ev_per_angstrom
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def from_atoms(atoms, energy_key: str = "energy", forces_key: str = "forces") -> Frame:
    """A Frame from ``ase.Atoms``: labels from its calculator's results, else from
    ``info[energy_key]`` / ``arrays[forces_key]``; missing labels become None."""
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any() and not pbc.all():
        raise ValueError(f"partially periodic frames (pbc={pbc.tolist()}) are not supported")
    results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    energy = results.get(energy_key, atoms.info.get(energy_key))
    forces = results.get(forces_key, atoms.arrays.get(forces_key))
    info = {key: value.item() if isinstance(value, np.generic) else value
            for key, value in atoms.info.items() if key != energy_key}
    return Frame(
        atomic_numbers=atoms.numbers.copy(),
        positions_angstrom=atoms.positions.copy(),
        cell_angstrom=np.array(atoms.cell[:]) if pbc.all() else None,
        energy_ev=None if energy is None else float(energy),
        forces_ev_per_angstrom=None if forces is None else np.array(forces, dtype=np.float64),
        info=info,
    )


def write_frames(path, frames: Iterable[Frame], force: bool = False) -> Path:
    """Write frames to an extended XYZ file; FileExistsError if it exists (unless ``force``)."""
    import ase.io

    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists: pass --force to overwrite it")
    atoms = [to_atoms(frame) for frame in frames]
    if not atoms:
        raise ValueError(f"no frames to write to {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(path, atoms, format="extxyz")
    return path


def read_frames(path, require_labels: bool = True, energy_key: str = "energy",
                forces_key: str = "forces") -> List[Frame]:
    """Read every frame of an extended XYZ file.

    With ``require_labels`` (default), a frame without an energy or without forces is a
    ValueError naming the file, the frame and the keys looked for. A missing file is a
    FileNotFoundError, an empty or unreadable one a ValueError.
    """
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no dataset file {path}")
    try:
        images = ase.io.read(path, index=":", format="extxyz")
    except Exception as error:  # ase raises many kinds of errors on malformed files
        raise ValueError(f"{path} is not a readable extended XYZ file: {error}") from error
    if not images:
        raise ValueError(f"{path} holds no frames")
    frames = [from_atoms(atoms, energy_key, forces_key) for atoms in images]
    if require_labels:
        for number, frame in enumerate(frames):
            missing = [name for name, value in (("energy", frame.energy_ev),
                                                ("forces", frame.forces_ev_per_angstrom))
                       if value is None]
            if missing:
                raise ValueError(
                    f"{path}, frame {number}: no {' and no '.join(missing)} (looked for "
                    f"'{energy_key}' in the comment line and a '{forces_key}:R:3' column); "
                    "training and evaluation need the energy (eV) and forces (eV/Angstrom) "
                    "of every frame")
    return frames


def read_datasets(paths: Sequence, require_labels: bool = True) -> List[Frame]:
    """The frames of several extended XYZ files, concatenated in order."""
    frames: List[Frame] = []
    for path in paths:
        frames.extend(read_frames(path, require_labels=require_labels))
    return frames


def rotate_frame(frame: Frame, rotation: np.ndarray) -> Frame:
    """The frame rotated by ``rotation`` [3, 3] (proper or improper): r -> R r, F -> R F.

    The cell rows are rotated as well; for an improper R they are then negated, which gives the
    same lattice (the vectors -a, -b, -c span it too) with a right-handed cell.
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    cell = None
    if frame.cell_angstrom is not None:
        cell = frame.cell_angstrom @ rotation.T * np.sign(np.linalg.det(rotation))
    forces = frame.forces_ev_per_angstrom
    return Frame(frame.atomic_numbers, frame.positions_angstrom @ rotation.T, cell,
                 frame.energy_ev, None if forces is None else forces @ rotation.T,
                 dict(frame.info))
