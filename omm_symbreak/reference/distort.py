"""Distorted water frames labelled by q-TIP4P/F: the edges of configuration space.

Thermal frames leave the repulsive and dissociative sides of every interaction unlabelled, and
a network trained on them alone can have holes there (docs/model.md, "Lessons behind the
training recipe"). Each distorted frame is a thermal frame in which a few molecules are moved
out of the thermal range:

- ``stretch``: one O-H bond set to a length drawn uniformly from ``STRETCH_ANGSTROM``;
- ``bend``: the H-O-H angle set to a value drawn from ``BEND_DEGREES`` (closed or opened,
  H2 rotated about the molecule's normal through O);
- ``pair``: the molecule moved rigidly along the O-O axis towards its nearest neighbour
  (minimum image) to an O-O distance drawn from ``PAIR_ANGSTROM``.

Different molecules are used for every distortion of a frame. The ranges reach a little
beyond the thermal data, where the reference forces grow to about 10 eV/Angstrom, not into
the far repulsive wall (where they reach hundreds and would dominate a squared-error loss).
Units: Angstrom, degrees, eV.
"""

from typing import List, Optional, Sequence

import numpy as np
import openmm

from ..data import Frame
from ..systems import water_topology
from ..units import angstrom_to_nm
from .qtip4pf import add_virtual_sites, create_qtip4pf_system
from .sample import _frame

STRETCH_ANGSTROM = (1.1, 1.35)
BEND_DEGREES = ((60.0, 85.0), (135.0, 165.0))
PAIR_ANGSTROM = (2.1, 2.4)


def _minimum_image(vector: np.ndarray, cell: np.ndarray) -> np.ndarray:
    fractional = vector @ np.linalg.inv(cell)
    return (fractional - np.round(fractional)) @ cell


def distort_positions(positions: np.ndarray, cell: np.ndarray, rng: np.random.Generator,
                      n_stretch: int, n_bend: int, n_pairs: int):
    """Positions [3M, 3] (Angstrom, molecules O, H1, H2) with distortions applied, and a
    description of each: list of (kind, molecule, value)."""
    positions = np.array(positions, dtype=float)
    n_molecules = len(positions) // 3
    if n_stretch + n_bend + 2 * n_pairs > n_molecules:
        raise ValueError(f"{n_stretch} stretches, {n_bend} bends and {n_pairs} pairs need more "
                         f"than the {n_molecules} molecules of the frame")
    chosen = iter(rng.permutation(n_molecules))
    done = []
    for _ in range(n_stretch):
        molecule, hydrogen = next(chosen), 1 + rng.integers(2)
        o, h = 3 * molecule, 3 * molecule + hydrogen
        bond = _minimum_image(positions[h] - positions[o], cell)
        length = rng.uniform(*STRETCH_ANGSTROM)
        positions[h] = positions[o] + bond / np.linalg.norm(bond) * length
        done.append(("stretch", int(molecule), float(length)))
    for _ in range(n_bend):
        molecule = next(chosen)
        o = 3 * molecule
        v1 = _minimum_image(positions[o + 1] - positions[o], cell)
        v2 = _minimum_image(positions[o + 2] - positions[o], cell)
        normal = np.cross(v1, v2)
        normal /= np.linalg.norm(normal)
        low, high = BEND_DEGREES[rng.integers(len(BEND_DEGREES))]
        angle = np.radians(rng.uniform(low, high))
        # H2 at the new angle from H1, in the molecular plane, keeping its bond length
        in_plane = np.cross(normal, v1 / np.linalg.norm(v1))
        direction = np.cos(angle) * v1 / np.linalg.norm(v1) + np.sin(angle) * in_plane
        positions[o + 2] = positions[o] + direction * np.linalg.norm(v2)
        done.append(("bend", int(molecule), float(np.degrees(angle))))
    used = {m for _, m, _ in done}
    for _ in range(n_pairs):
        molecule = next(chosen)
        while molecule in used:
            molecule = next(chosen)
        o = 3 * molecule
        separations = _minimum_image(positions[0::3] - positions[o], cell)
        distances = np.linalg.norm(separations, axis=1)
        distances[list(used | {molecule})] = np.inf
        partner = int(np.argmin(distances))
        target = rng.uniform(*PAIR_ANGSTROM)
        shift = separations[partner] / distances[partner] * (distances[partner] - target)
        positions[o:o + 3] += shift
        used |= {int(molecule), partner}
        done.append(("pair", int(molecule), float(target)))
    return positions, done


def distorted_frames(frames: Sequence[Frame], n_frames: int, n_stretch: int = 2,
                     n_bend: int = 2, n_pairs: int = 2, seed: int = 0,
                     platform: str = "CPU", threads: Optional[int] = None) -> List[Frame]:
    """``n_frames`` distorted copies of frames drawn (without replacement while possible) from
    periodic water ``frames``, labelled by q-TIP4P/F (energy eV, forces eV/Angstrom)."""
    if n_frames < 1:
        raise ValueError(f"need at least one frame, got {n_frames}")
    for number, frame in enumerate(frames):
        if frame.cell_angstrom is None:
            raise ValueError(f"frame {number} is not periodic: distortions are for bulk water")
        if not np.array_equal(frame.atomic_numbers, np.tile([8, 1, 1], frame.n_atoms // 3)):
            raise ValueError(f"frame {number} is not water in the order O, H1, H2")
    rng = np.random.default_rng(seed)
    picks = np.concatenate([rng.permutation(len(frames))
                            for _ in range(-(-n_frames // len(frames)))])[:n_frames]
    properties = {"Threads": str(threads)} if threads and platform == "CPU" else {}
    contexts = {}
    labelled = []
    for pick in picks:
        source = frames[pick]
        positions, done = distort_positions(source.positions_angstrom, source.cell_angstrom, rng,
                                            n_stretch, n_bend, n_pairs)
        key = (source.n_atoms, tuple(np.round(source.cell_angstrom, 6).ravel()))
        if key not in contexts:
            topology = water_topology(source.n_atoms // 3, angstrom_to_nm(source.cell_angstrom))
            site_topology, _ = add_virtual_sites(topology, angstrom_to_nm(positions))
            system = create_qtip4pf_system(site_topology)
            contexts[key] = (topology, openmm.Context(
                system, openmm.VerletIntegrator(0.001),
                openmm.Platform.getPlatformByName(platform), properties))
        topology, context = contexts[key]
        _, site_positions = add_virtual_sites(topology, angstrom_to_nm(positions))
        context.setPositions(site_positions)
        context.computeVirtualSites()
        info = {key: value for key, value in source.info.items()}
        info.update(distortions=";".join(f"{kind}:{m}:{value:.3f}" for kind, m, value in done),
                    distortion_seed=seed, source_frame=int(pick))
        labelled.append(_frame(context, source.atomic_numbers, info))
    return labelled
