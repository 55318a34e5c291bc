"""The ``omm-symbreak`` command line."""

import argparse
import json
import sys
from pathlib import Path

from .grids import GRID_FORMS, parse_grid
from .settings import DEFAULT_GRID
from .symmetrize import GRID_STRATEGIES, STRATEGIES


def grid_argument(spec: str):
    """argparse type of a grid option: the parsed ``RotationGrid``, or the parser's message."""
    try:
        return parse_grid(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_export(args) -> None:
    from .export import export
    from .model import load_model
    from .systems import load_structure

    if args.output.exists() and not args.force:
        raise FileExistsError(f"{args.output} exists: pass --force to overwrite it")
    grid = args.grid if args.strategy in GRID_STRATEGIES else None
    if args.grid is not None and grid is None:
        raise ValueError(f"--grid applies to strategies full and mts, not {args.strategy}")
    if args.strategy in GRID_STRATEGIES and grid is None:
        grid = parse_grid(DEFAULT_GRID)
    model = load_model(args.model)
    topology, positions = load_structure(args.system)
    path = export(topology, model, args.output, args.strategy, grid, positions)
    periodic = topology.getPeriodicBoxVectors() is not None
    evaluated = "1 evaluation" if grid is None else f"grid {grid.spec} ({grid.size} evaluations)"
    print(f"wrote {path}: {args.system}, {topology.getNumAtoms()} atoms, strategy "
          f"{args.strategy}, {evaluated}, periodic {periodic}")


def run_simulate(args) -> None:
    from .settings import RunSettings
    from .simulate import SimulationError, run
    from .units import FS_PER_PS

    steps = (args.steps if args.time_ps is None
             else round(args.time_ps * FS_PER_PS / args.timestep_fs))
    settings = RunSettings(
        system=args.system, model=args.model, strategy=args.strategy, grid=args.grid,
        mts_stride=args.mts_stride, ensemble=args.ensemble, thermostat=args.thermostat,
        temperature_k=args.temperature, friction_per_ps=args.friction,
        timestep_fs=args.timestep_fs, steps=steps, platform=args.platform,
        precision=args.precision, seed=args.seed, state_interval=args.state_interval,
        trajectory_interval=args.trajectory_interval,
        diagnostics_interval=args.diagnostics_interval, diagnostic_grid=args.diagnostic_grid,
        checkpoint_interval=args.checkpoint_interval, velocities=args.velocities)
    try:
        directory = run(settings, args.output, resume=args.resume, progress=not args.quiet)
    except SimulationError as error:
        raise ValueError(str(error)) from error
    print(f"finished {settings.steps} steps; outputs in {directory}")


def add_simulate_parser(commands) -> None:
    from .settings import DEFAULT_GRID, ENSEMBLES, PLATFORMS, PRECISIONS, THERMOSTATS, RunSettings

    d = RunSettings(system="")
    p = commands.add_parser(
        "simulate", help="run MD with a chosen symmetrization strategy",
        description="Molecular dynamics of a water system with the ML model, writing a DCD "
                    "trajectory, an OpenMM state CSV and symmetry diagnostics (units in each "
                    "file). Step counts are in units of --timestep-fs.")
    p.add_argument("system", help="a template of systems/ or a PDB file")
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.add_argument("--strategy", default=d.strategy, choices=STRATEGIES)
    p.add_argument("--grid", default=None, help=f"grid of strategies full and mts (default "
                                                f"{DEFAULT_GRID}); notation in docs/design.md")
    p.add_argument("--mts-stride", type=int, default=d.mts_stride,
                   help="inner steps per evaluation of the correction (strategy mts)")
    p.add_argument("--ensemble", default=d.ensemble, choices=ENSEMBLES)
    p.add_argument("--thermostat", default=d.thermostat, choices=THERMOSTATS)
    p.add_argument("--temperature", type=float, default=d.temperature_k, help="K")
    p.add_argument("--friction", type=float, default=d.friction_per_ps,
                   help="Langevin friction or Nose-Hoover collision frequency, 1/ps")
    p.add_argument("--timestep-fs", type=float, default=d.timestep_fs)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=d.steps)
    length.add_argument("--time-ps", type=float, default=None)
    p.add_argument("--platform", default=d.platform, choices=PLATFORMS)
    p.add_argument("--precision", default=d.precision, choices=PRECISIONS,
                   help="model precision (double also selects it on CUDA/OpenCL)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--state-interval", type=int, default=d.state_interval)
    p.add_argument("--trajectory-interval", type=int, default=d.trajectory_interval)
    p.add_argument("--diagnostics-interval", type=int, default=d.diagnostics_interval)
    p.add_argument("--diagnostic-grid", default=d.diagnostic_grid)
    p.add_argument("--checkpoint-interval", type=int, default=d.checkpoint_interval)
    p.add_argument("--velocities", action="store_true", help="also write velocities.dcd")
    p.add_argument("-o", "--output", type=Path, required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_simulate)


def run_reference(args) -> None:
    from tqdm import tqdm

    from .data import write_frames
    from .reference.sample import sample_system

    if args.output.exists() and not args.force:
        raise FileExistsError(f"{args.output} exists: pass --force to overwrite it")
    with tqdm(total=args.frames, desc=f"q-TIP4P/F {args.system}", unit="frame",
              disable=args.quiet) as bar:
        frames = sample_system(
            args.system, args.temperatures, args.densities, n_frames=args.frames,
            spacing_ps=args.spacing_ps, equilibration_ps=args.equilibration_ps, seed=args.seed,
            friction_per_ps=args.friction, platform=args.platform, threads=args.threads,
            progress=lambda done, total: bar.update(1))
    write_frames(args.output, frames, force=args.force)
    print(f"wrote {args.output}: {len(frames)} frames of {args.system} "
          f"({frames[0].n_atoms} atoms), spacing {frames[0].info['spacing_ps']} ps")


def add_reference_parser(commands) -> None:
    from .reference.sample import DEFAULT_EQUILIBRATION_PS, DEFAULT_SPACING_PS

    p = commands.add_parser("reference", help="label data with the q-TIP4P/F reference")
    actions = p.add_subparsers(dest="action", required=True)
    s = actions.add_parser(
        "sample", help="q-TIP4P/F MD frames (energies eV, forces eV/Angstrom) as extended XYZ",
        description="Langevin MD (dt 0.5 fs) of a bulk water template with q-TIP4P/F at every "
                    "temperature x density; after --equilibration-ps per state, one frame every "
                    "--spacing-ps. --frames is the total, split evenly over the states.")
    s.add_argument("--system", default="liquid-64", help="a periodic template of systems/")
    s.add_argument("--temperatures", type=float, nargs="+", default=[300.0], help="K")
    s.add_argument("--densities", type=float, nargs="+", default=None,
                   help="g/cm^3 (default: the template's density)")
    s.add_argument("--frames", type=int, default=100, help="frames in total")
    s.add_argument("--spacing-ps", type=float, default=DEFAULT_SPACING_PS)
    s.add_argument("--equilibration-ps", type=float, default=DEFAULT_EQUILIBRATION_PS)
    s.add_argument("--friction", type=float, default=1.0, help="Langevin friction, 1/ps")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--platform", default="CPU", help="OpenMM platform name")
    s.add_argument("--threads", type=int, default=None, help="CPU platform threads")
    s.add_argument("-o", "--output", type=Path, required=True, help="output .extxyz file")
    s.add_argument("--force", action="store_true", help="overwrite an existing output")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(run=run_reference)
    d = actions.add_parser(
        "distort", help="distorted copies of water frames, labelled by q-TIP4P/F",
        description="Copies of periodic water frames in which a few molecules have a stretched "
                    "O-H bond, a closed or opened angle, or a too-close neighbour (ranges in "
                    "omm_symbreak.reference.distort), relabelled with q-TIP4P/F.")
    d.add_argument("source", type=Path, nargs="+", help="extended XYZ file(s) of water frames")
    d.add_argument("--frames", type=int, default=100, help="distorted frames to write")
    d.add_argument("--stretch", type=int, default=2, help="stretched O-H bonds per frame")
    d.add_argument("--bend", type=int, default=2, help="distorted angles per frame")
    d.add_argument("--pairs", type=int, default=2, help="compressed molecule pairs per frame")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--threads", type=int, default=None, help="CPU platform threads")
    d.add_argument("-o", "--output", type=Path, required=True, help="output .extxyz file")
    d.add_argument("--force", action="store_true", help="overwrite an existing output")
    d.set_defaults(run=run_distort)


def run_distort(args) -> None:
    from .data import read_datasets, write_frames
    from .reference.distort import distorted_frames

    if args.output.exists() and not args.force:
        raise FileExistsError(f"{args.output} exists: pass --force to overwrite it")
    frames = distorted_frames(read_datasets(args.source), args.frames, args.stretch, args.bend,
                              args.pairs, args.seed, threads=args.threads)
    write_frames(args.output, frames, force=args.force)
    print(f"wrote {args.output}: {len(frames)} distorted frames")


def run_train(args) -> None:
    from .train import train_files
    from .train_settings import TrainSettings

    settings = TrainSettings(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
        weight_decay=args.weight_decay, patience=args.patience,
        warmup_epochs=args.warmup_epochs, energy_weight=args.energy_weight,
        schedule=args.schedule, refit=not args.no_refit, init_from=args.init_from,
        hyperparameters={name: getattr(args, name) for name in TRAIN_MODEL_OPTIONS})
    train_files(args.train, args.valid or [], args.output, settings, file_weights=args.weights,
                resume=args.resume, force=args.force, progress=not args.quiet)


TRAIN_MODEL_OPTIONS = ("cutoff", "cutoff_width", "max_neighbors", "width", "n_blocks",
                       "n_layers", "n_heads", "ffn_width", "n_radial")


def add_train_parser(commands) -> None:
    from .train import MODEL_DEFAULTS
    from .train_settings import SCHEDULES, TrainSettings

    defaults = TrainSettings()

    p = commands.add_parser(
        "train", help="train the unconstrained model on extended XYZ energies and forces",
        description="Train an UnconstrainedPET (Angstrom, eV) with a fresh random rotation "
                    "(improper half the time) of every structure every time it is seen. Writes "
                    "the model file every epoch and its resume state OUTPUT.resume for --resume.")
    p.add_argument("train", type=Path, nargs="+", help="training extended XYZ file(s)")
    p.add_argument("--valid", type=Path, nargs="+", default=None,
                   help="validation extended XYZ file(s)")
    p.add_argument("--weights", type=float, nargs="+", default=None,
                   help="loss weight of each training file's structures, in the order of the "
                        "files (default 1 each)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output model file (.ckpt)")
    p.add_argument("--epochs", type=int, default=defaults.epochs,
                   help="total epochs (also when resuming)")
    p.add_argument("--lr", type=float, default=defaults.lr, help="AdamW learning rate")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size,
                   help="structures per step")
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--patience", type=int, default=defaults.patience,
                   help="epochs without improvement before the learning rate is halved")
    p.add_argument("--energy-weight", type=float, default=defaults.energy_weight,
                   help="weight of the (eV/atom)^2 energy term against the (eV/Angstrom)^2 "
                        "force term")
    p.add_argument("--warmup-epochs", type=float, default=defaults.warmup_epochs,
                   help="linear learning-rate warm-up, in epochs")
    p.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule,
                   help="after the warm-up: halve the rate on a plateau of the validation "
                        "loss (--patience), or decay it along a cosine to lr/100 at --epochs")
    p.add_argument("--no-refit", action="store_true",
                   help="do not refit the per-species energy baseline after every epoch")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from this model file's weights (fine-tuning; its "
                        "hyperparameters are kept)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT.resume with its stored settings")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    model = p.add_argument_group("model hyperparameters (ignored with --resume and --init-from)")
    for name in TRAIN_MODEL_OPTIONS:
        default = MODEL_DEFAULTS[name]
        model.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                           help=f"default {default}")
    p.set_defaults(run=run_train)


def run_evaluate(args) -> None:
    from .evaluate import evaluate_files

    result = evaluate_files(args.model, args.dataset, args.output, args.grids,
                            args.rotations, args.max_structures, args.seed, args.float64,
                            args.force, progress=not args.quiet,
                            grid_rotations=args.grid_rotations)
    summary = {spec: {**entry["accuracy"], **entry["rotational"]}
               for spec, entry in result["grids"].items()}
    print(json.dumps(summary, indent=1))
    if args.output is not None:
        print(f"wrote {args.output}")


def add_evaluate_parser(commands) -> None:
    from .evaluate import DEFAULT_ROTATIONS

    p = commands.add_parser(
        "evaluate", help="test-set errors and rotational symmetry breaking of a model",
        description="Energy (meV/atom) and force (meV/Angstrom) MAE/RMSE, and the spread over "
                    "random rotations of energies and rotated-back forces, for the raw model "
                    "and each --grids average.")
    p.add_argument("--model", type=Path, default=None,
                   help="model file (default: the shipped model)")
    p.add_argument("dataset", type=Path, help="labelled extended XYZ file")
    p.add_argument("--rotations", type=int, default=DEFAULT_ROTATIONS,
                   help="random rotations per structure")
    p.add_argument("--grids", nargs="*", type=grid_argument, default=[],
                   help="grids to compare with the raw model")
    p.add_argument("--grid-rotations", type=int, default=None,
                   help="evaluate the grids at only the first of the random rotations "
                        "(default: all; a grid of G rotations costs G raw evaluations)")
    p.add_argument("--max-structures", type=int, default=None,
                   help="use only the first structures of the file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float64", action="store_true", help="evaluate in double precision")
    p.add_argument("-o", "--output", type=Path, default=None, help="metrics JSON file")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_evaluate)


def run_demo(args) -> None:
    from .demo import format_table, run_demo as demo

    if args.output.exists() and any(args.output.iterdir()):
        raise ValueError(f"{args.output} is not empty: remove it or pass another -o")
    summaries = demo(args.output, args.model)
    (args.output / "summary.json").write_text(json.dumps(summaries, indent=2))
    print(format_table(summaries))
    print(f"angular momentum in amu nm^2/ps; plot: {args.output / 'demo.png'}")


def add_demo_parser(commands) -> None:
    p = commands.add_parser("demo", help="short runs showing the symmetry breaking (make demo)",
                            description="Water molecule raw vs 2i (NVE) and liquid-64 raw vs "
                                        "mts 2i (NVT): Delta, angular momentum, speed, a plot.")
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.add_argument("-o", "--output", type=Path, default=Path("demo-output"))
    p.set_defaults(run=run_demo)


def run_analyze(args) -> None:
    from .analyze import analyze_run

    result = analyze_run(args.run_dir, args.output, args.blocks)
    output = args.output or args.run_dir / "analysis"
    summary = {"delta_kj_mol": result["diagnostics"]["delta_kj_mol"],
               "torque_rms_kj_mol": result["diagnostics"]["torque_rms_kj_mol"],
               "orientation_anisotropy": result["trajectory"]["orientation"]["anisotropy"]}
    for key in ("diffusion", "g_oo"):
        if key in result["trajectory"]:
            entry = result["trajectory"][key]
            summary[key] = {k: v for k, v in entry.items() if not isinstance(v, list)}
    print(json.dumps(summary, indent=1))
    print(f"wrote {output / 'observables.json'} and {output / 'observables.png'}")


def add_analyze_parser(commands) -> None:
    p = commands.add_parser(
        "analyze", help="observables of a finished run (JSON and plots)",
        description="Delta, angular momentum, torque and spectra from the diagnostics; the "
                    "orientational free energy and anisotropy; for periodic systems g_OO, "
                    "c_L/c_T, oxygen MSD and diffusion, c_uu(t); errors from blocks.")
    p.add_argument("run_dir", type=Path, help="output directory of omm-symbreak simulate")
    p.add_argument("--blocks", type=int, default=4, help="non-overlapping blocks for errors")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="output folder (default RUN_DIR/analysis)")
    p.set_defaults(run=run_analyze)


def add_export_parser(commands) -> None:
    p = commands.add_parser(
        "export", help="write a TorchScript file for openmmtorch.TorchForce",
        description="Write a TorchScript module (positions nm, box nm -> energy kJ/mol) for the "
                    "atoms of a system, with the chosen rotational symmetrization embedded.")
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.add_argument("--system", default="water-monomer",
                   help="a template name of systems/ or a PDB file (default: water-monomer)")
    p.add_argument("--strategy", default="none", choices=STRATEGIES,
                   help="none: the raw model; full: the grid average; mts: the correction "
                        "E_avg - E_raw (the slow force of multiple time stepping; the fast force "
                        "is the file of --strategy none); random: a random orientation per call "
                        "(default: none)")
    p.add_argument("--grid", type=grid_argument, default=None,
                   help=f"rotation grid of full and mts (default {DEFAULT_GRID}): {GRID_FORMS}")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .pt file")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(run=run_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omm-symbreak",
        description="Unconstrained ML potentials in OpenMM with controlled rotational symmetry.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    add_export_parser(commands)
    add_simulate_parser(commands)
    add_demo_parser(commands)
    add_reference_parser(commands)
    add_train_parser(commands)
    add_evaluate_parser(commands)
    add_analyze_parser(commands)
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
