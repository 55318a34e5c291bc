"""The ``omm-symbreak`` command line."""

import argparse
import sys
from pathlib import Path

from .export import MODES


def load_structure(name_or_pdb: str):
    """(topology, positions) of a template of ``systems/`` or of a PDB file."""
    from openmm.app import PDBFile

    from . import systems

    if name_or_pdb.lower().endswith(".pdb"):
        if not Path(name_or_pdb).is_file():
            raise FileNotFoundError(f"no PDB file {name_or_pdb}")
        pdb = PDBFile(name_or_pdb)
        return pdb.topology, pdb.positions
    topology, positions, _ = systems.load(name_or_pdb)
    return topology, positions


def run_export(args) -> None:
    from .export import export
    from .grids import parse_grid
    from .model import load_checkpoint

    grid = parse_grid(args.grid)
    if args.output.exists() and not args.force:
        raise FileExistsError(f"{args.output} exists: pass --force to overwrite it")
    model = load_checkpoint(args.checkpoint)
    topology, positions = load_structure(args.system)
    path = export(topology, model, args.output, grid, args.mode, positions)
    periodic = topology.getPeriodicBoxVectors() is not None
    print(f"wrote {path}: {topology.getNumAtoms()} atoms, grid {grid.spec} "
          f"({grid.size} evaluations), mode {args.mode}, periodic {periodic}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omm-symbreak",
        description="Unconstrained ML potentials in OpenMM with controlled rotational symmetry.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    export = commands.add_parser(
        "export", help="write a TorchScript file for openmmtorch.TorchForce",
        description="Write a TorchScript module (positions nm, box nm -> energy kJ/mol) for the "
                    "atoms of a system, with the chosen rotational symmetrization embedded.")
    export.add_argument("checkpoint", nargs="?", default=None,
                        help="model checkpoint (default: the shipped model)")
    export.add_argument("--system", default="water-monomer",
                        help="a template name of systems/ or a PDB file (default: water-monomer)")
    export.add_argument("--grid", default="none",
                        help="rotation grid: none, N, Ni, lebedev:L, lebedev:Li, random")
    export.add_argument("--mode", default="full", choices=MODES,
                        help="full: averaged energy; correction: E_avg - E_raw; random: one "
                             "random rotation per call")
    export.add_argument("-o", "--output", type=Path, required=True, help="output .pt file")
    export.add_argument("--force", action="store_true", help="overwrite an existing output")
    export.set_defaults(run=run_export)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"omm-symbreak {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
