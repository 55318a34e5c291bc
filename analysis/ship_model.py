"""Ship a trained checkpoint as the package's default model, with its model card.

    python analysis/ship_model.py --model analysis/training/STAGE/model.ckpt
                                  [--grid-structures 5] [--grid-rotations 10]
                                  [--stability FILE] [--locality FILE]
    python analysis/ship_model.py --card-only [--stability FILE] [--locality FILE]

1. Copies the checkpoint to ``omm_symbreak/models/water-pet.ckpt`` (after loading it with
   ``torch.load(weights_only=True)``).
2. Runs ``omm-symbreak evaluate`` twice on the held-out test set (``analysis/data/test.extxyz``,
   50 frames of liquid-64 at 300 K), through the same function as the command line:
   - ``raw``: every test frame, the raw model, 100 random rotations: accuracy and rotational
     spread;
   - ``grids``: the first ``--grid-structures`` frames, the raw model and the ``1i``, ``2i``,
     ``3i`` averages at the first ``--grid-rotations`` of 100 random rotations (a ``3i`` average
     costs 150 raw evaluations, so all 50 x 100 would take hours on 2 cores).
   Their JSON goes to ``analysis/results/model_metrics_{raw,grids}.json``.
3. Writes the model card ``omm_symbreak/models/water-pet.card.json``: the data and how they
   were made, the model's domain (the phases, temperatures and densities of the training
   data, and the numbers measured outside it by ``analysis/model_domain.py``: the gas-phase
   monomer and the water dimer against q-TIP4P/F, from ``analysis/results/model_domain.json``
   if that was run with this model), the training stages (settings, epochs, wall time), the
   hyperparameters, the metrics with the commands that reproduce them, the targets of the
   training and long-range issues and whether each is met, and two checks run outside this
   script, each if it was run with this model (same model fingerprint; otherwise the card says
   it is still to run): the raw-MD stability check of ``--stability`` (default
   ``analysis/results/raw_md_stability.json``) and the far-field error of ``--locality``
   (default ``analysis/results/force_error_locality.json``). The card records the files used,
   and ``--card-only`` uses them again unless told otherwise.

``--card-only`` rewrites the card from the metrics JSON already written (after a new
stability check or domain measurement, say) without copying or evaluating anything; the
training stages come from the card then, so the stages' checkpoints (not all committed) need
not exist.
"""

import argparse
import functools
import json
import shutil
import time
from pathlib import Path

import numpy as np

from omm_symbreak.data import read_frames
from omm_symbreak.evaluate import evaluate_files
from omm_symbreak.grids import parse_grid
from omm_symbreak.model import model_metadata, load_model, model_fingerprint
from omm_symbreak.model.model_file import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "analysis" / "data"
RESULTS = ROOT / "analysis" / "results"
CARD = DEFAULT_MODEL.with_name("water-pet.card.json")
TEST_SET = DATA / "test.extxyz"
GRIDS = ("1i", "2i", "3i")
PHASES = {"liquid-64": "liquid", "liquid-256": "liquid", "ice-ih": "ice Ih"}
DOMAIN_COMMAND = "python analysis/model_domain.py"
# the checks run outside this script: option name -> (default result file, command)
CHECK_RESULTS = {
    "stability": (RESULTS / "raw_md_stability.json", "python analysis/raw_md_stability.py"),
    "locality": (RESULTS / "force_error_locality.json", "python analysis/force_error_locality.py"),
}


def _relative(path: Path) -> str:
    return str(Path(path).resolve().relative_to(ROOT))


def evaluation_runs(grid_structures: int, grid_rotations: int) -> dict:
    """The two evaluations of the card: name -> (evaluate_files keyword arguments, CLI line)."""
    shipped, test = _relative(DEFAULT_MODEL), _relative(TEST_SET)
    raw_output = RESULTS / "model_metrics_raw.json"
    grids_output = RESULTS / "model_metrics_grids.json"
    return {
        "raw": (dict(output=raw_output, n_rotations=100),
                f"omm-symbreak evaluate {shipped} {test} --rotations 100 "
                f"-o {_relative(raw_output)} --force"),
        "grids": (dict(output=grids_output, n_rotations=100,
                       grids=tuple(parse_grid(grid) for grid in GRIDS),
                       max_structures=grid_structures, grid_rotations=grid_rotations),
                  f"omm-symbreak evaluate {shipped} {test} --rotations 100 --grids "
                  f"{' '.join(GRIDS)} --max-structures {grid_structures} "
                  f"--grid-rotations {grid_rotations} -o {_relative(grids_output)} --force"),
    }


@functools.lru_cache(maxsize=None)
def _frames(path: Path) -> tuple:
    """The frames of an extended XYZ file, read once."""
    return tuple(read_frames(path))


def dataset_summary(path: Path) -> dict:
    """Frames, atoms and the (temperature, density) states of an extended XYZ file."""
    frames = _frames(Path(path).resolve())
    states = sorted({(f.info.get("system"), f.info.get("temperature_K"),
                      round(float(f.info.get("density_g_cm3", 0.0)), 3)) for f in frames})
    return {"file": _relative(path), "frames": len(frames),
            "atoms_per_frame": sorted({f.n_atoms for f in frames}),
            "states (system, K, g/cm3)": [list(state) for state in states]}


def shortest_oo_angstrom(frame) -> float:
    """The shortest distance between two O atoms of a periodic frame (minimum image), Angstrom."""
    oxygens = frame.positions_angstrom[frame.atomic_numbers == 8]
    fractional = (oxygens[:, None] - oxygens[None]) @ np.linalg.inv(frame.cell_angstrom)
    distances = np.linalg.norm((fractional - np.round(fractional)) @ frame.cell_angstrom, axis=-1)
    return float(distances[~np.eye(len(oxygens), dtype=bool)].min())


def training_coverage(paths: list) -> dict:
    """What the training data cover, per phase: frames (and how many distorted by
    ``reference distort``), temperatures (K) and densities (g/cm3), and the shortest O-O
    distance between molecules in the thermal and in the distorted frames (Angstrom)."""
    coverage = {}
    for frame in (frame for path in paths for frame in _frames(Path(path).resolve())):
        phase = coverage.setdefault(PHASES[frame.info["system"]], {
            "systems": set(), "frames": 0, "distorted_frames": 0, "temperatures": set(),
            "densities": set(), "oo": {"thermal": np.inf, "distorted": np.inf}})
        kind = "distorted" if "distortions" in frame.info else "thermal"
        phase["systems"].add(frame.info["system"])
        phase["frames"] += 1
        phase["distorted_frames"] += kind == "distorted"
        phase["temperatures"].add(float(frame.info["temperature_K"]))
        phase["densities"].add(round(float(frame.info["density_g_cm3"]), 3))
        phase["oo"][kind] = min(phase["oo"][kind], shortest_oo_angstrom(frame))
    return {name: {"systems": sorted(p["systems"]), "frames": p["frames"],
                   "distorted_frames": p["distorted_frames"],
                   "temperatures_k": sorted(p["temperatures"]),
                   "densities_g_cm3": sorted(p["densities"]),
                   "shortest_intermolecular_oo_angstrom": {
                       kind: round(value, 3) for kind, value in p["oo"].items()
                       if np.isfinite(value)}}
            for name, p in coverage.items()}


def result_of_this_model(path: Path, command: str, fingerprint: str):
    """The JSON at ``path`` if it exists and was made with the model of ``fingerprint``; None
    otherwise (saying which command to run when it is of another model)."""
    result = json.loads(path.read_text()) if path.exists() else None
    if result is not None and result.get("model_fingerprint") != fingerprint:
        print(f"{_relative(path)} is of another model: run {command}, then this script with "
              "--card-only")
        result = None
    return result


def out_of_domain(result: dict) -> dict:
    """The card's digest of analysis/results/model_domain.json: monomer geometry and harmonic
    wavenumbers (and the three rigid-rotation modes of the unprojected Hessian), dimer binding
    minima and the value at R_OO = 2.9 Angstrom, model vs q-TIP4P/F, with a one-line summary."""
    modes = ("bend_cm", "symmetric_stretch_cm", "antisymmetric_stretch_cm")
    monomer = {name: {"oh_angstrom": round(float(np.mean(entry["oh_angstrom"])), 4),
                      "hoh_degrees": round(entry["hoh_degrees"], 2),
                      **{mode: round(entry[mode], 1) for mode in modes},
                      "rotation_modes_cm": [round(value, 1) for value in
                                            entry["unprojected_lowest_six_cm"][3:]]}
               for name, entry in result["monomer"].items() if name != "raw"}
    raw = result["monomer"]["raw"]
    monomer["raw (range over orientations)"] = {
        key: [round(low, 4), round(high, 4)]
        for key, (low, high) in raw["range over orientations"].items()}
    monomer["raw (range over orientations)"]["orientations"] = len(raw["orientations"])
    monomer["raw_rotation_modes_cm"] = [round(value, 1) for value in
                                        raw["orientations"][0]["unprojected_lowest_six_cm"][3:]]
    at_29 = result["dimer"]["at_2.9_angstrom"]
    dimer = {"geometry": result["dimer"]["geometry"],
             "raw_orientations": result["dimer"]["raw_orientations"],
             "raw_std_over_orientations_at_2.9_angstrom_kj_mol": round(at_29["raw_std"], 2)}
    for name in ("q-TIP4P/F", "2i", "raw"):
        entry = result["dimer"][name]
        dimer[name] = {"rigid_minimum": {key: round(entry["rigid_minimum"][key], 3)
                                         for key in ("binding_kj_mol", "r_oo_angstrom")},
                       "binding_at_2.9_angstrom_kj_mol": round(at_29[name], 2)}
        if "relaxed_minimum" in entry:
            dimer[name]["relaxed_minimum"] = {key: round(entry["relaxed_minimum"][key], 3)
                                              for key in ("binding_kj_mol", "r_oo_angstrom")}
    model, reference = dimer["2i"]["relaxed_minimum"], dimer["q-TIP4P/F"]["relaxed_minimum"]
    shifts = [monomer["2i"][mode] - monomer["q-TIP4P/F"][mode] for mode in modes]
    summary = (f"dimer (2i, relaxed): {model['binding_kj_mol']:.1f} kJ/mol at R_OO "
               f"{model['r_oo_angstrom']:.2f} A against q-TIP4P/F's "
               f"{reference['binding_kj_mol']:.1f} at {reference['r_oo_angstrom']:.2f} "
               f"({model['binding_kj_mol'] / reference['binding_kj_mol']:.2f} times as deep); "
               f"monomer (2i): bend {shifts[0]:+.0f}, stretches {shifts[1]:+.0f} and "
               f"{shifts[2]:+.0f} cm^-1 from q-TIP4P/F's")
    return {"summary": summary, "command": DOMAIN_COMMAND,
            "result": _relative(RESULTS / "model_domain.json"),
            "wall_time_s": result["wall_time_s"], "units": result["units"],
            "monomer": monomer, "dimer": dimer}


def domain(train_paths: list, fingerprint: str) -> dict:
    """The card's domain entry: the training coverage and, if analysis/model_domain.py was run
    with this model, the numbers it measured outside the domain."""
    result = result_of_this_model(RESULTS / "model_domain.json", DOMAIN_COMMAND, fingerprint)
    return {
        "trained_on": "periodic bulk water only (64 and 128 molecules): the phases, "
                      "temperatures and densities below",
        "training_coverage": training_coverage(train_paths),
        "not_covered": "isolated molecules and clusters (the gas phase), surfaces and "
                       "interfaces, other temperatures, densities and phases",
        "outside_the_domain": out_of_domain(result) if result is not None else (
            f"not yet run with this model: {DOMAIN_COMMAND}, then this script with "
            "--card-only"),
    }


def training_summary(checkpoint: Path) -> list:
    """The training stages that led to ``checkpoint`` (following ``init_from``, first stage
    first): their settings and history, from the checkpoints' metadata."""
    stages, stage = [], Path(checkpoint)
    while stage is not None:
        metadata = model_metadata(stage)
        config = metadata["config"]
        # init_from is as given to the training command, which ran in analysis/training
        parent = config.get("init_from")
        stages.insert(0, {
            "checkpoint": _relative(stage),
            "epochs": metadata["epoch"],
            "wall_time_s": sum(record["seconds"] for record in metadata["history"]),
            "settings": {key: config[key] for key in (
                "lr", "batch_size", "seed", "weight_decay", "warmup_epochs", "energy_weight",
                "schedule", "refit_baseline", "init_from", "sources") if key in config},
            "last_epoch": metadata["history"][-1],
        })
        stage = None if parent is None else ROOT / "analysis" / "training" / parent
    return stages


def targets(raw: dict, stability, locality) -> dict:
    """The targets on held-out liquid frames at 300 K of the training issue (force RMSE 40) and
    of the long-range issue (force RMSE 50, the far-field error beyond the 3.5 Angstrom cutoff
    below 20, from ``locality``, analysis/force_error_locality.py's result), and whether each
    holds. A check whose result is of another model (None) is left out."""
    accuracy, spread = raw["grids"]["none"]["accuracy"], raw["grids"]["none"]["rotational"]
    force_rmse = accuracy["force_rmse_mev_per_angstrom"]
    checks = {
        "force_rmse_le_40_mev_per_angstrom (training issue)": force_rmse <= 40.0,
        "force_rmse_le_50_mev_per_angstrom (long-range issue)": force_rmse <= 50.0,
        "energy_rmse_le_1_mev_per_atom": accuracy["energy_rmse_mev_per_atom"] <= 1.0,
        "raw_rotational_force_std_le_10_percent_of_force_rmse":
            spread["force_std_mev_per_angstrom"] <= 0.1 * force_rmse,
    }
    if locality is not None:
        at_cutoff, = (entry["all"] for entry in locality["by_radius"]
                      if entry["radius_angstrom"] == locality["model_cutoff_angstrom"])
        checks["far_field_error_beyond_cutoff_lt_20_mev_per_angstrom (long-range issue)"] = (
            at_cutoff["missed_far_field_rms_mev_per_angstrom"] < 20.0)
    if stability is not None:
        checks["raw_md_liquid64_300k_20ps_no_molecule_lost"] = (
            round(stability["simulated_ps"], 6) >= 20.0 and stability["molecules_lost"] == 0)
    return checks


def far_field(locality: dict) -> dict:
    """The card's digest of analysis/force_error_locality.py's result: the rms of the force
    from beyond each radius that the model misses (meV/Angstrom, over all atoms)."""
    return {"what": "rms of the force from molecules beyond R that the model misses "
                    "(meV/Angstrom, all atoms; the model's cutoff is "
                    f"{locality['model_cutoff_angstrom']} Angstrom)",
            "model_force_error_rms_mev_per_angstrom":
                round(locality["model_force_error_rms_mev_per_angstrom"]["all"], 1),
            "by_radius_angstrom": {
                str(entry["radius_angstrom"]):
                    round(entry["all"]["missed_far_field_rms_mev_per_angstrom"], 1)
                for entry in locality["by_radius"]}}


def description(hyperparameters: dict) -> str:
    """The card's one-paragraph description of the model."""
    head = ("Unconstrained PET-style transformer of water (H, O)"
            + (" with a long-range head (a charge per atom from the network, summed to zero; "
               "their Ewald energy in a box, the direct Coulomb sum without one)"
               if hyperparameters.get("long_range") else ""))
    return (f"{head}, trained on q-TIP4P/F energies and forces of bulk liquid water (270-500 K, "
            "0.95-1.35 g/cm3) and proton-disordered ice Ih, with a fresh random rotation "
            "(improper half the time) of every structure at every epoch. No isolated molecules "
            "in the data: the gas phase is an extrapolation.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path,
                        help="the checkpoint to ship (required unless --card-only)")
    parser.add_argument("--grid-structures", type=int, default=5)
    parser.add_argument("--grid-rotations", type=int, default=10)
    parser.add_argument("--card-only", action="store_true",
                        help="rewrite the card of the shipped model from its metrics JSON "
                             "(e.g. after analysis/raw_md_stability.py), evaluating nothing")
    for name, default in CHECK_RESULTS.items():
        parser.add_argument(f"--{name}", type=Path,
                            help=f"the model's {default[1]} result (default: the card's with "
                                 f"--card-only, else {_relative(default[0])})")
    args = parser.parse_args()
    if (args.model is None) != args.card_only:
        parser.error("name the checkpoint to ship with --model, or rewrite the shipped model's "
                     "card with --card-only (not both)")

    metrics, commands, seconds = {}, {}, {}
    runs = evaluation_runs(args.grid_structures, args.grid_rotations)
    previous = json.loads(CARD.read_text()) if args.card_only else {}
    check_results = {name: getattr(args, name) or ROOT / previous.get("check_results", {}).get(
        name, _relative(default)) for name, (default, _) in CHECK_RESULTS.items()}
    if args.card_only:
        args.model = ROOT / previous["trained_from"]
        stages = previous["training"]["stages"]
        for name, (options, command) in runs.items():
            metrics[name] = json.loads(Path(options["output"]).read_text())
            commands[name] = command
            seconds[name] = previous["metrics"][name]["wall_time_s"]
    else:
        load_model(args.model)  # a safe, complete checkpoint before replacing any
        stages = training_summary(args.model)
        DEFAULT_MODEL.parent.mkdir(exist_ok=True)
        shutil.copyfile(args.model, DEFAULT_MODEL)
        for name, (options, command) in runs.items():
            started = time.perf_counter()
            metrics[name] = evaluate_files(DEFAULT_MODEL, TEST_SET, force=True,
                                           progress=True, **options)
            seconds[name] = time.perf_counter() - started
            commands[name] = command
            print(f"{name}: {seconds[name]:.0f} s", flush=True)
    model = load_model(DEFAULT_MODEL)

    fingerprint = model_fingerprint(model)
    stability, locality = (result_of_this_model(check_results[name], command, fingerprint)
                           for name, (_, command) in CHECK_RESULTS.items())
    metadata = model_metadata(DEFAULT_MODEL)
    # paths as given to the training command, which ran in analysis/training
    train_paths = [ROOT / "analysis" / "training" / path
                   for path in metadata["config"]["sources"]["train"]]
    card = {
        "name": "water-pet",
        "description": description(model.hyperparameters),
        "units": "model side Angstrom and eV; errors meV/atom (energies) and meV/Angstrom "
                 "(force components)",
        "checkpoint": _relative(DEFAULT_MODEL),
        "trained_from": _relative(args.model),
        "hyperparameters": model.hyperparameters,
        "data": {
            "reference": "q-TIP4P/F (Habershon, Markland, Manolopoulos 2009) in OpenMM, "
                         "omm_symbreak.reference; commands in analysis/data/README.md",
            "train": [dataset_summary(path) for path in train_paths],
            "valid": dataset_summary(DATA / "valid.extxyz"),
            "test (held out)": dataset_summary(TEST_SET),
        },
        "domain": domain(train_paths, fingerprint),
        "training": {
            "command": "bash analysis/train_water_model.sh "
                       + " ".join(Path(stage["checkpoint"]).parent.name for stage in stages),
            "stages": stages,
        },
        "metrics": {
            name: {"command": commands[name], "wall_time_s": seconds[name],
                   "result": metrics[name]} for name in metrics},
        "targets_met": targets(metrics["raw"], stability, locality),
        "model_fingerprint": fingerprint,
        "check_results": {name: _relative(path) for name, path in check_results.items()},
        "raw_md_stability": stability or ("not yet run with this model: "
                                          + CHECK_RESULTS["stability"][1]),
        "far_field_error": far_field(locality) if locality is not None else (
            f"not yet run with this model: {CHECK_RESULTS['locality'][1]}"),
    }
    card["training"]["wall_time_s_total"] = sum(s["wall_time_s"] for s in card["training"]["stages"])
    CARD.write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps(card["targets_met"], indent=1))
    print(f"wrote {CARD}" if args.card_only else f"wrote {DEFAULT_MODEL} and {CARD}")


if __name__ == "__main__":
    main()
