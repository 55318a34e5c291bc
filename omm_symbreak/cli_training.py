"""The data, training and evaluation commands of ``omm-symbreak``: ``reference sample``,
``reference distort``, ``train`` and ``evaluate`` (their parsers and what they run)."""

import json
from pathlib import Path

from .cli_common import grid_argument

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
    s.add_argument("--spacing-ps", type=float, default=DEFAULT_SPACING_PS,
                   help="time between frames, ps")
    s.add_argument("--equilibration-ps", type=float, default=DEFAULT_EQUILIBRATION_PS,
                   help="equilibration per state before the first frame, ps")
    s.add_argument("--friction", type=float, default=1.0, help="Langevin friction, 1/ps")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument("--platform", default="CPU", help="OpenMM platform name")
    s.add_argument("--threads", type=int, default=None,
                   help="CPU platform threads (default: OpenMM's choice)")
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
    d.add_argument("--seed", type=int, default=0, help="random seed")
    d.add_argument("--threads", type=int, default=None,
                   help="CPU platform threads (default: OpenMM's choice)")
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


TRAIN_MODEL_OPTIONS = {  # hyperparameters of UnconstrainedPET: help text with the unit
    "cutoff": "radial cutoff, Angstrom",
    "cutoff_width": "width of the smooth switch below the cutoff, Angstrom",
    "max_neighbors": "padded neighbour slots per atom (a count)",
    "width": "features per atom and edge (a count)",
    "n_blocks": "message-passing blocks, at least 2 (a count)",
    "n_layers": "transformer layers per block (a count)",
    "n_heads": "attention heads (a count)",
    "ffn_width": "hidden width of the feed-forward layers (a count)",
    "n_radial": "Gaussians of the edge length in the edge input (a count)",
    "long_range": "also learn a charge per atom, whose Ewald (or direct) energy is added",
    "ewald_cutoff": "real-space cutoff of the Ewald sum of --long-range, Angstrom",
}


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
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                   help="AdamW weight decay")
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
    p.add_argument("--seed", type=int, default=defaults.seed,
                   help="random seed (initial weights, batches, rotations)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT.resume with its stored settings")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    model = p.add_argument_group(
        "model hyperparameters (ignored with --resume and --init-from, except that --long-range "
        "with --init-from adds a charge head to a short-range model)")
    for name, text in TRAIN_MODEL_OPTIONS.items():
        default = MODEL_DEFAULTS[name]
        if isinstance(default, bool):
            model.add_argument("--" + name.replace("_", "-"), action="store_true", help=text)
        else:
            model.add_argument("--" + name.replace("_", "-"), type=type(default),
                               default=default, help=text)
    p.set_defaults(run=run_train)


def run_evaluate(args) -> None:
    from .evaluate import evaluate_files

    result = evaluate_files(args.model, args.dataset, args.output, args.grids,
                            args.rotations, args.max_structures, args.seed, args.float64,
                            args.force, progress=not args.quiet,
                            grid_rotations=args.grid_rotations,
                            report=lambda text: print(text, flush=True))
    summary = {spec: {**entry["accuracy"], **entry["rotational"]}
               for spec, entry in result["grids"].items()}
    print(json.dumps(summary, indent=1))
    if args.output is not None:
        print(f"wrote {args.output}")


def add_evaluate_parser(commands) -> None:
    from .evaluate import DEFAULT_GRID_ROTATIONS, DEFAULT_ROTATIONS

    p = commands.add_parser(
        "evaluate", help="test-set errors and rotational symmetry breaking of a model",
        description="Energy (meV/atom) and force (meV/Angstrom) MAE/RMSE, and the spread over "
                    "random rotations of energies and rotated-back forces, for the raw model "
                    "and each --grids average.")
    p.add_argument("--model", type=Path, default=None,
                   help="model file: an omm-symbreak model, a TorchForce module or a metatomic "
                        "model (default: the shipped model)")
    p.add_argument("dataset", type=Path, help="labelled extended XYZ file")
    p.add_argument("--rotations", type=int, default=DEFAULT_ROTATIONS,
                   help="random rotations per structure")
    p.add_argument("--grids", nargs="*", type=grid_argument, default=[],
                   help="grids to compare with the raw model (default: none, the raw "
                        "model only)")
    p.add_argument("--grid-rotations", type=int, default=None,
                   help=f"evaluate the grids at only the first of the random rotations "
                        f"(default: {DEFAULT_GRID_ROTATIONS}, at most --rotations; a grid of G "
                        f"rotations costs G raw evaluations)")
    p.add_argument("--max-structures", type=int, default=None,
                   help="use only the first structures of the file (default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the rotations")
    p.add_argument("--float64", action="store_true",
                   help="evaluate the built-in model in double precision (other kinds run in "
                        "their own)")
    p.add_argument("-o", "--output", type=Path, default=None, help="metrics JSON file")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_evaluate)
