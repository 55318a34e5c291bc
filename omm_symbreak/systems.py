"""Water systems from the PDB templates in ``systems/``: (topology, positions, box vectors).

Every template holds HOH residues with atoms O, H1, H2 in that order (bonds O-H1 and O-H2 come
from OpenMM's standard HOH template when the file is read), molecules whole (no O-H bond crosses
the box), and a CRYST1 record when periodic. ``systems/generate.py`` regenerates them.

- ``water-monomer``: one molecule at the q-TIP4P/F minimum (r_OH 0.9419 Angstrom, 107.4 deg, to
  the 0.001 Angstrom precision of PDB coordinates), no box.
- ``liquid-64``, ``liquid-256``: 64 / 256 molecules at 0.997 g/cm^3 in a cubic box, equilibrated
  with q-TIP4P/F at 300 K.
- ``ice-ih``: 128 molecules of proton-disordered hexagonal ice (ice rules, near-zero net dipole)
  in an orthorhombic cell, relaxed with q-TIP4P/F.

The templates live in the repository's ``systems/`` folder, which installs as the package
``omm_symbreak.templates``.
"""
import itertools
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
from openmm import Vec3, app, unit

# the folder of the templates, an importlib.resources Traversable (``TEMPLATES / "name.pdb"``)
TEMPLATES = resources.files("omm_symbreak.templates")


def available() -> list[str]:
    """Names of the templates, sorted (their ``.pdb`` file names without the suffix)."""
    return sorted(entry.name.removesuffix(".pdb") for entry in TEMPLATES.iterdir()
                  if entry.name.endswith(".pdb"))


def load(name: str, replicate: tuple[int, int, int] = (1, 1, 1)):
    """Load a template, optionally tiled periodically.

    Args:
        name: one of ``available()``; anything else raises ValueError listing them.
        replicate: copies of the periodic cell along a, b, c (positive integers); the non-periodic
            ``water-monomer`` accepts only (1, 1, 1).

    Returns:
        (topology, positions, box_vectors): an ``openmm.app.Topology`` (HOH residues with atoms
        O, H1, H2, bonded; periodic box set when periodic), positions as a numpy [n_atoms, 3]
        Quantity in nm (replica-major order: all of copy (0,0,0), then (0,0,1), ...), and the box
        vectors (a Quantity of three Vec3 in nm, as ``Topology.getPeriodicBoxVectors``) or None.
    """
    if name not in available():
        raise ValueError(f"unknown system {name!r}; available: {', '.join(available())}")
    counts = tuple(int(count) for count in replicate)
    if len(counts) != 3 or min(counts) < 1:
        raise ValueError(f"replicate needs three positive integers; got {replicate!r}")
    with resources.as_file(TEMPLATES / f"{name}.pdb") as path:
        pdb = app.PDBFile(str(path))
    topology = pdb.topology
    positions_nm = pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    if counts != (1, 1, 1):
        if topology.getPeriodicBoxVectors() is None:
            raise ValueError(f"system {name!r} has no periodic box; replicate must be (1, 1, 1), got {replicate!r}")
        topology, positions_nm = _replicate(topology, positions_nm, counts)
    return topology, unit.Quantity(np.asarray(positions_nm), unit.nanometer), topology.getPeriodicBoxVectors()


def water_topology(n_molecules: int, box_vectors_nm: np.ndarray | None = None) -> app.Topology:
    """A topology of ``n_molecules`` HOH residues (atoms O, H1, H2; bonds O-H1, O-H2; one chain,
    residues numbered 1, 2, ...), with periodic box vectors [3, 3] in nm (rows a, b, c) if given."""
    topology = app.Topology()
    chain = topology.addChain()
    for number in range(1, n_molecules + 1):
        residue = topology.addResidue("HOH", chain, str(number))
        oxygen = topology.addAtom("O", app.element.oxygen, residue)
        for name in ("H1", "H2"):
            topology.addBond(oxygen, topology.addAtom(name, app.element.hydrogen, residue))
    if box_vectors_nm is not None:
        topology.setPeriodicBoxVectors(_box_quantity(box_vectors_nm))
    return topology


def _box_quantity(box_vectors_nm: np.ndarray):
    """[3, 3] box vectors in nm as the Quantity of three Vec3 that OpenMM topologies hold."""
    return [Vec3(*map(float, vector)) for vector in box_vectors_nm] * unit.nanometer


def _replicate(topology: app.Topology, positions_nm: np.ndarray, counts: tuple[int, int, int]):
    """Tile a periodic water template counts[0] x counts[1] x counts[2] times.

    Returns a fresh ``water_topology`` of all copies (box vectors multiplied by the counts) and
    the [n_copies * n_atoms, 3] positions in nm, copy (i, j, k) shifted by i a + j b + k c.
    """
    box_nm = np.array(topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer))
    cells = np.array(list(itertools.product(*(range(count) for count in counts))))
    tiled_positions_nm = np.concatenate([positions_nm + cell @ box_nm for cell in cells])
    tiled = water_topology(topology.getNumResidues() * len(cells), box_nm * np.array(counts)[:, None])
    return tiled, tiled_positions_nm


def proton_disordered_ice_ih(seed: int, replicate: tuple[int, int, int] = (2, 2, 2)):
    """A proton-disordered ice Ih cell from GenIce2 (``pip install genice2``), unrelaxed.

    ``genice2 1h --rep A B C --seed SEED --format gromacs``: rigid TIP3P-shaped molecules with
    their centres of mass on the ideal lattice sites (the same for every seed), oriented by the
    ice rules with strict depolarisation (zero net polarisation of the hydrogen-bond network);
    the seed picks the proton arrangement. 16 molecules per unit cell: 128 for the default
    (2, 2, 2), in an orthorhombic cell.

    Returns:
        (topology, positions_nm): a periodic ``water_topology`` and [n_atoms, 3] positions in nm,
        each molecule whole (hydrogens at the minimum image of their oxygen).
    """
    executable = shutil.which("genice2", path=str(Path(sys.executable).parent)) or shutil.which("genice2")
    if executable is None:
        raise RuntimeError("genice2 not found; install it with `pip install genice2` "
                           "(or the package's extra: `pip install omm-symbreak[analysis]`)")
    command = [executable, "1h", "--rep", *map(str, replicate), "--seed", str(seed),
               "--format", "gromacs", "--quiet"]
    text = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    positions_nm, box_nm = _parse_gro(text)
    molecules_nm = positions_nm.reshape(-1, 3, 3)
    hydrogen_offsets_nm = molecules_nm[:, 1:] - molecules_nm[:, :1]
    hydrogen_offsets_nm -= np.round(hydrogen_offsets_nm @ np.linalg.inv(box_nm)) @ box_nm
    molecules_nm[:, 1:] = molecules_nm[:, :1] + hydrogen_offsets_nm
    return water_topology(len(molecules_nm), box_nm), molecules_nm.reshape(-1, 3)


def _parse_gro(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions [n_atoms, 3] and the diagonal box [3, 3] in nm of a rectangular .gro file."""
    lines = text.splitlines()
    n_atoms = int(lines[1])
    positions_nm = np.array([[float(line[20 + 8 * k: 28 + 8 * k]) for k in range(3)]
                             for line in lines[2: 2 + n_atoms]])
    return positions_nm, np.diag([float(value) for value in lines[2 + n_atoms].split()[:3]])


def load_structure(name_or_pdb: str, replicate: tuple[int, int, int] = (1, 1, 1)):
    """(topology, positions in nm) of a template of ``systems/``, tiled ``replicate`` times along
    its box vectors (``load``: periodic templates only), or of a PDB file (``*.pdb``, not
    replicated)."""
    if name_or_pdb.lower().endswith(".pdb"):
        if tuple(replicate) != (1, 1, 1):
            raise ValueError(f"replicate (--replicate) applies to the periodic templates of "
                             f"systems/, not to the PDB file {name_or_pdb}")
        pdb = read_pdb_file(name_or_pdb)
        return pdb.topology, pdb.positions
    topology, positions, _ = load(name_or_pdb, replicate)
    return topology, positions


def read_pdb_file(path: str) -> app.PDBFile:
    """The ``app.PDBFile`` of ``path``; FileNotFoundError if there is none, ValueError naming
    the file if it holds no atoms or OpenMM cannot read it."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no PDB file {path}")
    with open(path, errors="replace") as handle:
        if not any(line.startswith(("ATOM", "HETATM")) for line in handle):
            raise ValueError(f"the PDB file {path} holds no atoms (no ATOM or HETATM records)")
    try:
        return app.PDBFile(path)
    except (IndexError, KeyError, ValueError) as error:
        raise ValueError(f"OpenMM cannot read the PDB file {path} "
                         f"({type(error).__name__}: {error})") from None
