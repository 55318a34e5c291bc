"""Checks of an input structure before any model evaluation: overlapping atoms, water
molecules that are not whole, elements named for messages.

The neighbour search drops pairs at distance 0, so an atom placed on another would otherwise be
seen as a different, physically impossible structure with a finite (and wrong) energy. A water
model evaluates a bare oxygen or an OH fragment as readily as a molecule, far outside what it
was trained on, and the dynamics runs on without a sign of it.
"""

import itertools
from collections import Counter
from typing import Iterable, List, Optional, Tuple

import numpy as np
from openmm.app import Element
from scipy.spatial import cKDTree

# the atoms of one water molecule, by element symbol
WATER_COMPOSITION = Counter({"O": 1, "H": 2})

MIN_DISTANCE_ANGSTROM = 0.5  # far below any bond (O-H: 0.96 Angstrom) or contact distance


def close_pairs(positions_angstrom: np.ndarray, cell_angstrom: Optional[np.ndarray],
                threshold_angstrom: float = MIN_DISTANCE_ANGSTROM) -> List[Tuple[int, int, float]]:
    """Pairs (i, j, distance in Angstrom), i < j, of atoms closer than the threshold, sorted by
    distance; with a cell (rows a, b, c), the closest periodic images count.

    positions_angstrom [N, 3]; cell_angstrom [3, 3] or None.
    """
    positions = np.asarray(positions_angstrom, dtype=float)
    n_atoms = len(positions)
    if cell_angstrom is None:
        images, owners = positions, np.arange(n_atoms)
    else:
        cell = np.asarray(cell_angstrom, dtype=float)
        fractional = positions @ np.linalg.inv(cell)
        positions = (fractional - np.floor(fractional)) @ cell
        shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float) @ cell
        images = (positions[None] + shifts[:, None]).reshape(-1, 3)
        owners = np.tile(np.arange(n_atoms), len(shifts))
    found = {}
    for i, neighbours in enumerate(cKDTree(images).query_ball_point(positions,
                                                                   threshold_angstrom)):
        for image in neighbours:
            j = int(owners[image])
            if j != i:
                distance = float(np.linalg.norm(images[image] - positions[i]))
                key = (min(i, j), max(i, j))
                found[key] = min(distance, found.get(key, np.inf))
    return sorted(((i, j, d) for (i, j), d in found.items()), key=lambda pair: pair[2])


def check_no_overlaps(topology, positions_angstrom: np.ndarray,
                      cell_angstrom: Optional[np.ndarray],
                      threshold_angstrom: float = MIN_DISTANCE_ANGSTROM) -> None:
    """ValueError naming the atoms (index, name, residue) of every pair closer than the
    threshold, the closest first (at most five named)."""
    pairs = close_pairs(positions_angstrom, cell_angstrom, threshold_angstrom)
    if not pairs:
        return
    atoms = list(topology.atoms())

    def name(index: int) -> str:
        atom = atoms[index]
        return f"{index} ({atom.name} of {atom.residue.name} {atom.residue.index})"

    listed = "; ".join(f"atoms {name(i)} and {name(j)} are {d:.3f} Angstrom apart"
                       for i, j, d in pairs[:5])
    more = f" (and {len(pairs) - 5} more pairs)" if len(pairs) > 5 else ""
    raise ValueError(f"overlapping atoms, closer than {threshold_angstrom} Angstrom: {listed}"
                     f"{more}. Fix the structure (duplicated or misplaced atoms, or positions "
                     "in the wrong unit: OpenMM positions are in nm)")


def element_names(atomic_numbers: Iterable[int]) -> str:
    """The elements of ``atomic_numbers``, sorted, as "H (hydrogen), O (oxygen)" (an unknown
    number as "atomic number Z")."""
    names = []
    for number in sorted(set(atomic_numbers)):
        try:
            element = Element.getByAtomicNumber(number)
            names.append(f"{element.symbol} ({element.name})")
        except KeyError:
            names.append(f"atomic number {number}")
    return ", ".join(names)


def incomplete_water_residues(topology) -> List[str]:
    """The residues of ``topology`` that are not one whole water molecule (one O, two H), each
    as "NAME NUMBER (its element symbols)", in topology order."""
    found = []
    for residue in topology.residues():
        symbols = [atom.element.symbol if atom.element else "?" for atom in residue.atoms()]
        if Counter(symbols) != WATER_COMPOSITION:
            found.append(f"{residue.name} {residue.id} ({' '.join(symbols)})")
    return found


def check_whole_water(topology) -> None:
    """ValueError naming (at most five of) the residues that are not whole water molecules."""
    residues = incomplete_water_residues(topology)
    if not residues:
        return
    more = f" and {len(residues) - 5} more" if len(residues) > 5 else ""
    raise ValueError(f"the water model takes whole water molecules, one O and two H per "
                     f"residue: residue{'s' if len(residues) > 1 else ''} "
                     f"{', '.join(residues[:5])}{more} "
                     f"{'are' if len(residues) > 1 else 'is'} not. Complete the structure, or "
                     f"pass --allow-incomplete-water (allow_incomplete_water=True in Python) to "
                     f"run it as it is")
