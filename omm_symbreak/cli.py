"""The ``omm-symbreak`` command line."""

import argparse
import json
import sys
from pathlib import Path

from .cli_common import Parser, add_replicate_argument, grid_argument
from .cli_training import add_evaluate_parser, add_reference_parser, add_train_parser
from .frames import TRAJECTORY_FORMATS
from .grids import GRID_FORMS, MAX_GRID_EVALUATIONS, check_grid_size, parse_grid
from .kernel import DEFAULT_MEMORY_BUDGET_BYTES
from .strategies import DEFAULT_GRID, GRID_STRATEGIES, STRATEGIES


MODEL_HELP = ("model file: an omm-symbreak model (.ckpt), a TorchForce module or an exported "
              "metatomic model, recognised by content (default: the shipped model)")


def _grid_of(args):
    """The RotationGrid of ``--grid`` for ``--strategy`` (DEFAULT_GRID for full and mts without
    one, None for the others), checked for size; ValueError for a grid given to none / random."""
    grid = args.grid if args.strategy in GRID_STRATEGIES else None
    if args.grid is not None and grid is None:
        raise ValueError(f"--grid applies to strategies full and mts, not {args.strategy}")
    if args.strategy in GRID_STRATEGIES and grid is None:
        grid = parse_grid(DEFAULT_GRID)
    if grid is not None:
        check_grid_size(grid, args.allow_large_grid)
    return grid


def _file_to_write(args, model_file):
    """(grid, memory budget in bytes, model) of ``export`` / ``symmetrize``, once the output,
    the grid and the model are checked (a metatomic model has no TorchScript file to write)."""
    from .export import check_exportable
    from .model_kinds import load_energy_model

    if args.output.exists() and not args.force:
        raise FileExistsError(f"{args.output} exists: pass --force to overwrite it")
    grid = _grid_of(args)
    budget = memory_budget_bytes(args.memory_gb)
    model = load_energy_model(model_file)
    check_exportable(model)
    return grid, budget, model


def run_export(args) -> None:
    from .export import evaluation_cost, export
    from .systems import load_structure

    topology, positions = load_structure(args.system, tuple(args.replicate))
    grid, budget, model = _file_to_write(args, args.model)
    print(evaluation_cost(model, topology.getNumAtoms(), args.strategy, grid, budget), flush=True)
    path = export(topology, model, args.output, args.strategy, grid, positions, budget,
                  args.allow_incomplete_water)
    periodic = topology.getPeriodicBoxVectors() is not None
    print(f"wrote {path}: {args.system}, {topology.getNumAtoms()} atoms, strategy "
          f"{args.strategy}" + (f", grid {grid.spec}" if grid else "") + f", periodic {periodic}")


def run_symmetrize(args) -> None:
    from .export import symmetrized_module
    from .symmetrize import copies_per_evaluation

    grid, budget, model = _file_to_write(args, args.module)
    if model.kind == "built-in":
        raise ValueError(f"{args.module} is an omm-symbreak model file: it is exported for a "
                         f"system with omm-symbreak export --model {args.module} --system SYSTEM "
                         f"--strategy {args.strategy}")
    module = symmetrized_module(model, args.strategy, grid, budget)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(args.output))
    copies = copies_per_evaluation(args.strategy, grid)
    print(f"wrote {args.output}: strategy {args.strategy}"
          + (f", grid {grid.spec}" if grid else "")
          + f", {copies} evaluations of {args.module} per call, periodic {model.periodic}"
          + ("; the fast force of mts is the module itself" if args.strategy == "mts" else ""))


def add_symmetrize_parser(commands) -> None:
    p = commands.add_parser(
        "symmetrize", help="symmetrize a TorchForce module (a TorchScript file)",
        description="Wrap a TorchScript module of the openmmtorch.TorchForce contract "
                    "(forward(positions nm[, boxvectors nm]) -> energy kJ/mol) in a new one with "
                    "the same contract: its energy averaged over a rotation grid (full), the "
                    "correction E_avg - E_raw (mts: the slow force; the original module is the "
                    "fast force) or a random orientation per call (random). A periodic module "
                    "gets rotated box vectors, not in OpenMM's reduced form: it must handle "
                    "general triclinic boxes.")
    p.add_argument("module", type=Path, help="the TorchScript file of the module")
    p.add_argument("--strategy", required=True, choices=[s for s in STRATEGIES if s != "none"],
                   help="full: the grid average; mts: the correction; random: a random "
                        "orientation per call")
    p.add_argument("--grid", type=grid_argument, default=None,
                   help=f"rotation grid of full and mts (default {DEFAULT_GRID}): {GRID_FORMS}")
    add_cost_arguments(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="output .pt file")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(run=run_symmetrize)


def memory_budget_bytes(memory_gb: float) -> int:
    """--memory-gb in bytes; ValueError unless positive."""
    if not memory_gb > 0:
        raise ValueError(f"--memory-gb must be positive, got {memory_gb}")
    return int(memory_gb * 2**30)


def add_cost_arguments(parser) -> None:
    """``--memory-gb`` and ``--allow-large-grid``: what the rotated copies may cost."""
    parser.add_argument("--memory-gb", type=float, default=DEFAULT_MEMORY_BUDGET_BYTES / 2**30,
                        help="activation memory (GB) the rotated copies of one evaluation may "
                             "hold at once: they go through the model in chunks that fit")
    parser.add_argument("--allow-large-grid", action="store_true",
                        help=f"accept grids of more than {MAX_GRID_EVALUATIONS} rotations")


def add_incomplete_water_argument(parser) -> None:
    """``--allow-incomplete-water``: a water model runs residues that are not whole molecules."""
    parser.add_argument("--allow-incomplete-water", action="store_true",
                        help="let a water model (the shipped one) run residues that are not one "
                             "O and two H, such as a bare oxygen or an OH fragment, far from "
                             "its training data (refused otherwise)")


def run_simulate(args) -> None:
    from .settings import RunSettings
    from .simulate import SimulationError, run

    steps = args.steps if args.time_ps is None else steps_of_time(args)
    settings = RunSettings(
        system=args.system, model=args.model, strategy=args.strategy, grid=args.grid,
        mts_stride=args.mts_stride, ensemble=args.ensemble, thermostat=args.thermostat,
        temperature_k=args.temperature, friction_per_ps=args.friction,
        timestep_fs=args.timestep_fs, steps=steps, platform=args.platform,
        precision=args.precision, seed=args.seed, state_interval=args.state_interval,
        trajectory_interval=args.trajectory_interval,
        diagnostics_interval=args.diagnostics_interval, diagnostic_grid=args.diagnostic_grid,
        checkpoint_interval=args.checkpoint_interval, velocities=args.velocities,
        trajectory_format=args.trajectory_format, replicate=tuple(args.replicate),
        memory_gb=args.memory_gb, allow_large_grid=args.allow_large_grid,
        allow_incomplete_water=args.allow_incomplete_water)
    settings.validate()
    for note in settings.notes:
        print(f"note: {note}", flush=True)
    print_cost(settings)
    try:
        directory = run(settings, args.output, resume=args.resume, progress=not args.quiet)
    except SimulationError as error:
        raise ValueError(str(error)) from error
    print(f"finished {settings.steps} steps; outputs in {directory}")


def steps_of_time(args) -> int:
    """The steps of --timestep-fs in --time-ps, a multiple of --mts-stride with --strategy mts
    (the nearest, noted when it is not the exact count); ValueError unless both are positive and
    the time holds a step."""
    from .settings import round_to_stride
    from .units import FS_PER_PS

    if not (args.time_ps > 0 and args.timestep_fs > 0):
        raise ValueError(f"--time-ps {args.time_ps} and --timestep-fs {args.timestep_fs} "
                         f"must be positive")
    steps = round(args.time_ps * FS_PER_PS / args.timestep_fs)
    if steps == 0:
        raise ValueError(f"--time-ps {args.time_ps} is shorter than one step of "
                         f"--timestep-fs {args.timestep_fs}: ask for a longer time")
    if args.strategy != "mts" or args.mts_stride < 1 or steps % args.mts_stride == 0:
        return steps
    rounded = round_to_stride(steps, args.mts_stride)
    print(f"note: --time-ps {args.time_ps} is {steps} steps, rounded to {rounded}, a multiple "
          f"of --mts-stride {args.mts_stride}", flush=True)
    return rounded


def print_cost(settings) -> None:
    """The model evaluations and activation memory of a run's forces, before it starts."""
    from .export import evaluation_cost
    from .model_kinds import load_energy_model
    from .systems import load_structure

    topology, _ = load_structure(settings.system, settings.replicate)
    grid = settings.rotation_grid if settings.strategy in GRID_STRATEGIES else None
    print(evaluation_cost(load_energy_model(settings.model), topology.getNumAtoms(),
                          settings.strategy, grid, settings.memory_budget_bytes,
                          on_cpu=settings.platform != "CUDA"), flush=True)


def stride_default(name: str) -> str:
    """The help text's end of a count of steps whose default is rounded to the mts stride."""
    from .settings import DEFAULT_STEP_COUNTS

    return (f" (default: {DEFAULT_STEP_COUNTS[name]}); a default becomes the nearest multiple "
            f"of --mts-stride with --strategy mts")


def add_simulate_parser(commands) -> None:
    from .settings import ENSEMBLES, PLATFORMS, PRECISIONS, THERMOSTATS, RunSettings

    d = RunSettings(system="")
    p = commands.add_parser(
        "simulate", help="run MD with a chosen symmetrization strategy",
        description="Molecular dynamics of a water system with the ML model, writing a DCD "
                    "trajectory, an OpenMM state CSV and symmetry diagnostics (units in each "
                    "file). Step counts are in units of --timestep-fs.")
    p.add_argument("system", help="a template of systems/ or a PDB file")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--strategy", default=d.strategy, choices=STRATEGIES,
                   help="what the run does about the symmetry breaking (docs/design.md)")
    p.add_argument("--grid", default=None, help=f"grid of strategies full and mts (default "
                                                f"{DEFAULT_GRID}; the study's is 2i; 'omm-symbreak "
                                                f"grids' lists them by cost): {GRID_FORMS}")
    p.add_argument("--mts-stride", type=int, default=d.mts_stride,
                   help="steps of --timestep-fs per evaluation of the correction (mts)")
    p.add_argument("--ensemble", default=d.ensemble, choices=ENSEMBLES,
                   help="nve: no thermostat; nvt: --thermostat at --temperature")
    p.add_argument("--thermostat", default=d.thermostat, choices=THERMOSTATS,
                   help="thermostat of nvt")
    p.add_argument("--temperature", type=float, default=d.temperature_k,
                   help="thermostat and initial velocities, K")
    p.add_argument("--friction", type=float, default=d.friction_per_ps,
                   help="Langevin friction or Nose-Hoover collision frequency, 1/ps")
    p.add_argument("--timestep-fs", type=float, default=d.timestep_fs,
                   help="MD time step (the inner one with mts), fs")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None,
                        help="run length, steps of --timestep-fs" + stride_default("steps"))
    length.add_argument("--time-ps", type=float, default=None,
                        help="run length, ps (instead of --steps; with --strategy mts the "
                             "nearest whole number of outer steps)")
    p.add_argument("--platform", default=d.platform, choices=PLATFORMS,
                   help="OpenMM platform")
    p.add_argument("--precision", default=d.precision, choices=PRECISIONS,
                   help="precision of the built-in model (double also selects it on CUDA/OpenCL); "
                        "a TorchForce module or metatomic model runs in its own")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="random seed (velocities, Langevin noise, random rotations)")
    p.add_argument("--state-interval", type=int, default=None,
                   help="steps of --timestep-fs between rows of state.csv"
                        + stride_default("state_interval"))
    p.add_argument("--trajectory-interval", type=int, default=None,
                   help="steps of --timestep-fs between frames of the trajectory"
                        + stride_default("trajectory_interval"))
    p.add_argument("--diagnostics-interval", type=int, default=None,
                   help="steps of --timestep-fs between rows of diagnostics.csv"
                        + stride_default("diagnostics_interval"))
    p.add_argument("--diagnostic-grid", default=d.diagnostic_grid,
                   help="grid of Delta = E_raw - E_avg in diagnostics.csv (none: not measured)")
    p.add_argument("--checkpoint-interval", type=int, default=None,
                   help="steps of --timestep-fs between checkpoints"
                        + stride_default("checkpoint_interval"))
    p.add_argument("--velocities", action="store_true",
                   help="also write the velocities (velocities.dcd or .xtc)")
    p.add_argument("--trajectory-format", choices=TRAJECTORY_FORMATS, default="dcd",
                   help="dcd (single precision) or xtc (0.001 nm, compressed: about a third of "
                        "the size)")
    add_replicate_argument(p)
    add_cost_arguments(p)
    add_incomplete_water_argument(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_simulate)


def run_campaign(args) -> None:
    from .campaign import format_plan, format_summary, load_campaign, plan_states
    from .campaign import run_campaign as campaign

    runs = load_campaign(args.file)
    output_dir = (args.output_dir or args.file.with_suffix("")).resolve()
    archive = None if args.archive is None else args.archive.resolve()
    if output_dir == args.file.resolve():
        raise ValueError(f"{args.file} has no suffix such as .toml: pass -o/--output-dir")
    if archive is not None and archive == output_dir:
        raise ValueError("--archive must be another directory than the output directory")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be a positive number of processes, not {args.workers}")
    if args.threads_per_run < 1:
        raise ValueError(f"--threads-per-run must be a positive number, not "
                         f"{args.threads_per_run}")
    if args.dry_run:
        print(format_plan(runs, plan_states(runs, output_dir, archive), output_dir, archive))
        print(f"{len(runs)} runs in {output_dir}"
              + (f", durable state in {archive}" if archive else ""))
        return
    results = campaign(runs, output_dir, scheduler=args.scheduler, workers=args.workers,
                       progress=not args.quiet, archive=archive,
                       threads_per_run=args.threads_per_run)
    print(format_summary(results))
    failed = [result.name for result in results if result.status == "failed"]
    if failed:
        raise ValueError(f"{len(failed)} of {len(results)} runs failed ({', '.join(failed)}); "
                         f"the others are in {output_dir}")
    print(f"outputs in {output_dir}")


def add_campaign_parser(commands) -> None:
    p = commands.add_parser(
        "campaign", help="run a set of independent runs declared in a TOML file (dask)",
        description="Run every run a campaign file declares (system x strategy x grid x seed x "
                    "length_ps per [[group]], shared [settings]; strategy \"reference\": "
                    "q-TIP4P/F; docs/design.md, \"Campaigns\") through dask.distributed, each "
                    "in OUTPUT_DIR/<run name>. The whole file and every run directory are "
                    "checked before anything runs; finished runs are skipped, interrupted ones "
                    "resume from their checkpoints, and a failed run does not stop the others "
                    "(exit status 2 if any failed).")
    p.add_argument("file", type=Path, help="the campaign file (TOML)")
    p.add_argument("-o", "--output-dir", type=Path, default=None,
                   help="where the run directories go (default: next to FILE, its name without "
                        ".toml)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help="worker processes of the local dask cluster, one run at a time each "
                            "(default: the CPU cores over --threads-per-run)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="the address of a running dask scheduler (dask-jobqueue, ...) to "
                            "use instead of a local cluster")
    p.add_argument("--archive", type=Path, default=None, metavar="DIR",
                   help="keep each run's durable state (settings, checkpoint, rows, frames) in "
                        "DIR/<run name>, updated after every checkpoint, and extend runs from "
                        "it on a new machine or checkout (use trajectory_format = \"xtc\" to "
                        "keep it small)")
    p.add_argument("--threads-per-run", type=int, default=1, metavar="N",
                   help="threads of torch and of OpenMM's CPU platform for each run (default "
                        "1): more where fewer runs than cores are left, one long run say")
    p.add_argument("--dry-run", action="store_true",
                   help="print the planned runs and their state (new, resume, done) and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run_campaign)


def run_demo(args) -> None:
    from .demo import format_table, run_demo as demo
    from .simulate import SimulationError

    if args.output.exists() and any(args.output.iterdir()):
        raise ValueError(f"{args.output} is not empty: remove it or pass another -o")
    try:
        summaries = demo(args.output, args.model)
    except SimulationError as error:
        raise ValueError(str(error)) from error
    (args.output / "summary.json").write_text(json.dumps(summaries, indent=2))
    print(format_table(summaries))
    print(f"angular momentum in amu nm^2/ps; plot: {args.output / 'demo.png'}")


def add_demo_parser(commands) -> None:
    p = commands.add_parser("demo", help="short runs showing the symmetry breaking (make demo)",
                            description=f"Water molecule raw vs {DEFAULT_GRID} (NVE) and liquid-64 raw "
                                        f"vs mts {DEFAULT_GRID} (NVT): Delta, angular momentum, "
                                        "speed, a plot.")
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.add_argument("-o", "--output", type=Path, default=Path("demo-output"),
                   help="output folder (empty or new)")
    p.set_defaults(run=run_demo)


def run_analyze(args) -> None:
    from .analyze import analyze_run

    result = analyze_run(args.run_dir, args.output, args.blocks)
    output = args.output or args.run_dir / "analysis"
    summary = {"blocks": result["n_blocks_chosen"],
               "delta_kj_mol": result["diagnostics"]["delta_kj_mol"],
               "torque_rms_kj_mol": result["diagnostics"]["torque_rms_kj_mol"],
               "orientation_anisotropy": result["trajectory"]["orientation"]["anisotropy"],
               "isotropic_baseline_95":
                   result["trajectory"]["orientation"]["isotropic_baseline_95"]}
    for key in ("diffusion", "g_oo"):
        if key in result["trajectory"]:
            entry = result["trajectory"][key]
            summary[key] = (entry if isinstance(entry, str) else
                            {k: v for k, v in entry.items() if not isinstance(v, list)})
    print(json.dumps(summary, indent=1))
    if result["diagnostics"].get("spectra_note"):
        print(f"note: {result['diagnostics']['spectra_note']}")
    print(f"wrote {output / 'observables.json'} and {output / 'observables.png'}")


def add_analyze_parser(commands) -> None:
    from .analyze import DEFAULT_BLOCKS, DIFFUSIVE_AFTER_PS, MIN_DIFFUSION_FIT_PS

    p = commands.add_parser(
        "analyze", help="observables of a finished run (JSON and plots)",
        description="Delta, angular momentum, torque and spectra from the diagnostics; the "
                    "orientational free energy and anisotropy; for periodic systems g_OO, "
                    "c_L/c_T, oxygen MSD and diffusion, c_uu(t); errors from blocks. Delta is "
                    f"'not measured' for runs with --diagnostic-grid none, D 'too short for "
                    f"diffusion' unless one block spans at least "
                    f"{DIFFUSIVE_AFTER_PS + MIN_DIFFUSION_FIT_PS:g} ps.")
    p.add_argument("run_dir", type=Path, help="output directory of omm-symbreak simulate")
    p.add_argument("--blocks", type=int, default=None,
                   help=f"non-overlapping blocks for the errors, at least 2 (default: "
                        f"{DEFAULT_BLOCKS}, or fewer when the run has too few rows or frames)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="output folder (default: RUN_DIR/analysis)")
    p.set_defaults(run=run_analyze)


def add_export_parser(commands) -> None:
    p = commands.add_parser(
        "export", help="write a TorchScript file for openmmtorch.TorchForce",
        description="Write a TorchScript module (positions nm, box nm -> energy kJ/mol) for the "
                    "atoms of a system, with the chosen rotational symmetrization embedded.")
    p.add_argument("--model", default=None, help=MODEL_HELP + "; not a metatomic model, "
                   "which runs through openmm.PythonForce")
    p.add_argument("--system", required=True,
                   help="a template of systems/ (water-monomer, liquid-64, liquid-256, ice-ih) "
                        "or a PDB file: the module is made for its atoms")
    p.add_argument("--strategy", default="none", choices=STRATEGIES,
                   help="none: the raw model; full: the grid average; mts: the correction "
                        "E_avg - E_raw (the slow force of multiple time stepping; the fast force "
                        "is the file of --strategy none); random: a random orientation per call "
                        "(default: none)")
    p.add_argument("--grid", type=grid_argument, default=None,
                   help=f"rotation grid of full and mts (default {DEFAULT_GRID}): {GRID_FORMS}")
    add_replicate_argument(p)
    add_cost_arguments(p)
    add_incomplete_water_argument(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="output .pt file")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(run=run_export)


def run_grids(args) -> None:
    from .grids import cheapest_grid, grid_catalogue

    if args.exact_to is not None:
        grid = cheapest_grid(args.exact_to, args.inversion)
        print(f"{grid.spec}: {grid.size} rotations, exact to l = {grid.l_exact}"
              + (" and every odd l" if grid.inversion else ""))
        return
    print(f"{'grid':<12s} {'rotations':>9s} {'l_exact':>7s}  every odd l")
    for grid in grid_catalogue(args.max_rotations):
        print(f"{grid.spec:<12s} {grid.size:9d} {grid.l_exact:7d}  "
              f"{'yes' if grid.inversion else 'no'}")


def add_grids_parser(commands) -> None:
    p = commands.add_parser(
        "grids", help="the rotation grids by cost, or the cheapest one exact to a degree",
        description="List the rotation grids by their number of rotations (model evaluations per "
                    "averaged evaluation) with the degree l_exact to which they average exactly, "
                    "or print the cheapest grid exact to --exact-to (the grid notation "
                    "exact:L / exact:Li chooses the same).")
    p.add_argument("--exact-to", type=int, default=None, metavar="L",
                   help="print the cheapest grid exact to degree L")
    p.add_argument("--inversion", action="store_true",
                   help="with --exact-to: among grids with improper copies (every odd l exact)")
    p.add_argument("--max-rotations", type=int, default=200,
                   help="list the grids of at most this many rotations")
    p.set_defaults(run=run_grids)


def run_diagnose(args) -> None:
    from .diagnose import diagnose

    result = diagnose(args.model, args.system, args.output, tuple(args.replicate),
                      args.max_degree, args.rotations, args.tolerance, args.md_steps, args.seed,
                      args.force)
    spread, recommended = result["spread"], result["recommended"]
    shares = ", ".join(f"l={l} {share:.3g}" for l, share in result["breaking_by_degree"].items())
    costs = ", ".join(f"{name} {cost:.3g}" for name, cost in
                      recommended["cost_ms_per_step"].items() if cost is not None)
    print(f"spread over {spread['n_rotations']} orientations: energy "
          f"{spread['energy_std_mev']:.4g} meV, forces "
          f"{spread['force_std_mev_per_angstrom']:.4g} meV/Angstrom (noise floor "
          f"{result['noise_floor']['energy_std_mev']:.2g} meV)")
    print(f"share of the energy's rotational variance by degree: {shares}, above "
          f"{result['breaking_above_max_degree']:.3g}")
    print(f"recommended grid {recommended['grid']} ({recommended['evaluations']} evaluations, "
          f"tolerance {recommended['tolerance_mev']:.3g} meV, met: "
          f"{recommended['meets_tolerance']}); ms per MD step: {costs}")
    print(f"wrote {args.output / 'diagnose.json'} and {args.output / 'diagnose.png'}")


def add_diagnose_parser(commands) -> None:
    from .diagnose import (DEFAULT_MAX_DEGREE, DEFAULT_MD_STEPS, DEFAULT_RELATIVE_TOLERANCE,
                           DEFAULT_ROTATIONS, MAX_DEGREE)

    p = commands.add_parser(
        "diagnose", help="how broken a model's rotational symmetry is, and what repairing it costs",
        description="On a system's structure: the spread of the energy and of the body-frame "
                    "forces over random proper and improper orientations; the share of the "
                    "energy's rotational variance in each Wigner-D degree l (parity split); the "
                    "cheapest grid that removes the breaking to a tolerance and the cost of an "
                    "MD step with it per strategy. Writes OUTPUT/diagnose.json and "
                    "OUTPUT/diagnose.png (docs/design.md, \"Diagnosis\").")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    p.add_argument("--system", required=True,
                   help="a template of systems/ (water-monomer, liquid-64, ...) or a PDB file")
    add_replicate_argument(p)
    p.add_argument("--max-degree", type=int, default=DEFAULT_MAX_DEGREE,
                   help=f"the highest degree l reported, 1..{MAX_DEGREE} (the quadrature costs "
                        "2 (2L+3)^2 (L+2) model evaluations)")
    p.add_argument("--rotations", type=int, default=DEFAULT_ROTATIONS,
                   help="random orientations of the spread")
    p.add_argument("--tolerance", type=float, default=DEFAULT_RELATIVE_TOLERANCE,
                   help="spread the recommended grid may leave, relative to the raw spread "
                        "(or the noise floor if larger)")
    p.add_argument("--md-steps", type=int, default=DEFAULT_MD_STEPS,
                   help="timed MD steps per strategy")
    p.add_argument("--seed", type=int, default=0, help="seed of the random orientations")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite an existing diagnosis")
    p.set_defaults(run=run_diagnose)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="omm-symbreak",
        description="Unconstrained ML potentials in OpenMM with controlled rotational symmetry.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    add_export_parser(commands)
    add_symmetrize_parser(commands)
    add_simulate_parser(commands)
    add_campaign_parser(commands)
    add_demo_parser(commands)
    add_grids_parser(commands)
    add_reference_parser(commands)
    add_train_parser(commands)
    add_evaluate_parser(commands)
    add_analyze_parser(commands)
    add_diagnose_parser(commands)
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
