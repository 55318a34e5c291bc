"""The orientational anisotropy of one water molecule in the gas phase, raw model against its
``Ti`` average (issue 35, item 3).

    python analysis/gas_anisotropy.py [--archive DIR]

Reads the runs of the campaign analysis/campaigns/gas.toml (one molecule in NVT at 300 K,
Langevin 1/ps, a frame every 100 fs; the raw model, strategy ``none``, and its ``Ti`` average,
strategy ``full``; 6 seeds of 100 ps each) from its durable state (default ARCHIVE; it runs
nothing: ``omm-symbreak campaign analysis/campaigns/gas.toml --archive ...`` does) and gives,
for every complete seed, the anisotropy A of the distribution of the molecular direction u
(fig1's quantity, A = 4 pi sum_{l=1..4} sum_m <Y_lm(u)>^2, 0 for a molecule without orientational
preference) from products of non-adjacent blocks' means (``observables.anisotropy_between_blocks``,
unbiased for correlated frames) in blocks of BLOCK_PS, with its error, the error's convergence
with the block length and u's correlation time (``verdicts.measurement``). The seeds of a
model are independent runs: their mean has an error from their spread and one from their block
errors (``verdicts.independent_runs``), the larger counting; raw against ``Ti`` gets the verdict
at 2 sigma with its detection limit (``verdicts.compare``), so does each model against A = 0
(the exact value of a model without orientational preference), and each model's error is set
against TARGET_ERROR (with the seeds of 100 ps it would take). Seeds not complete are listed with
the length they reached and left out. Writes analysis/results/gas_anisotropy.json and .png.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np

import verdicts
from figures import repository_path, write_figure
from omm_symbreak import observables as obs
from omm_symbreak.campaign import load_campaign
from omm_symbreak.checkpoint import checkpoint_step, has_checkpoint
from omm_symbreak.rundir import read_settings, read_trajectory
from omm_symbreak.units import FS_PER_PS

ROOT = Path(__file__).resolve().parent
CAMPAIGN = ROOT / "campaigns" / "gas.toml"
ARCHIVE = ROOT / "campaigns" / "archive" / "gas"
MODELS = {"raw": "none", "Ti": "full"}  # label: the campaign's strategy
BLOCK_PS = 5.0
BLOCK_COUNTS = (3, 4, 5, 10, 20, 50, 100, 200)
TARGET_ERROR = 0.005


def seeds_by_model(archive: Path) -> dict:
    """The campaign's runs, {model label: {seed: (archive directory, planned length in ps)}}."""
    runs = {label: {} for label in MODELS}
    for run in load_campaign(CAMPAIGN):
        for label, strategy in MODELS.items():
            if run.settings.strategy == strategy:
                runs[label][run.settings.seed] = (
                    archive / run.name, run.settings.steps * run.settings.timestep_fs / FS_PER_PS)
    return runs


def reached_ps(directory: Path) -> float:
    """The length (ps) of a run's checkpoint, 0 without one."""
    if not has_checkpoint(directory):
        return 0.0
    return checkpoint_step(directory) * read_settings(directory)["timestep_fs"] / FS_PER_PS


def seed_measurement(directory: Path) -> dict:
    """A complete seed's anisotropy (``verdicts.measurement``, blocks of BLOCK_PS) and the
    fingerprint of the model it ran."""
    trajectory = read_trajectory(directory)
    u = obs.molecular_direction(trajectory)
    frame_ps = float(trajectory.time[1] - trajectory.time[0])
    blocks = int(round((trajectory.n_frames - 1) * frame_ps / BLOCK_PS))
    measured = verdicts.measurement(
        lambda n_blocks: obs.anisotropy_between_blocks(u, n_blocks=n_blocks),
        lambda: obs.orientation_correlation_time(u, frame_ps), trajectory.n_frames, frame_ps,
        chosen_blocks=blocks, block_counts=BLOCK_COUNTS, longer_blocks=())
    fingerprint = json.loads((directory / "run.json").read_text()).get("model_fingerprint")
    return {**measured, "model_fingerprint": fingerprint}


def model_record(seeds: dict) -> dict:
    """Every seed's state and, for the complete ones, its measurement; their combination
    (``verdicts.independent_runs``) as a measurement that ``verdicts.compare`` takes (the
    combined error as its verdict error, the longest correlation time and shortest block of its
    seeds), or None without a complete seed; and the seeds of 100 ps that TARGET_ERROR takes."""
    record = {"seeds": {}}
    for seed, (directory, planned_ps) in sorted(seeds.items()):
        length = reached_ps(directory)
        record["seeds"][seed] = {"run": directory.name, "planned_ps": planned_ps,
                                 "reached_ps": length, "complete": length >= planned_ps}
        if length >= planned_ps:
            record["seeds"][seed].update(seed_measurement(directory))
    complete = [entry for entry in record["seeds"].values() if entry["complete"]]
    record["missing_seeds"] = [seed for seed, entry in record["seeds"].items()
                               if not entry["complete"]]
    if not complete:
        record["combined"] = None
        return record
    combined = verdicts.independent_runs([entry["value"] for entry in complete],
                                         [entry["error"] for entry in complete])
    record["combined"] = {
        **combined, "verdict_error": combined["error"],
        "correlation_time_ps": max(entry["correlation_time_ps"] for entry in complete),
        "block_ps": min(entry["block_ps"] for entry in complete),
        "target_error": TARGET_ERROR, "target_reached": combined["error"] <= TARGET_ERROR,
        "seeds_for_target": math.ceil(len(complete) * (combined["error"] / TARGET_ERROR) ** 2)}
    return record


def raw_against_ti(models: dict) -> dict:
    """The verdict of raw against Ti (``verdicts.compare``), or why there is none."""
    missing = [label for label, record in models.items() if record["combined"] is None]
    if missing:
        return {"verdict": "not measured", "why": f"no complete seed of {', '.join(missing)}"}
    return verdicts.compare(models["raw"]["combined"], models["Ti"]["combined"])


def against_isotropy(models: dict) -> dict:
    """Each model's verdict against A = 0, the exact value of a model without orientational
    preference (``verdicts.verdict`` with no error on the 0), or why there is none."""
    return {label: verdicts.verdict(record["combined"]["value"], record["combined"]["error"],
                                    0.0, 0.0)
            if record["combined"] is not None else {"verdict": "not measured",
                                                    "why": "no complete seed"}
            for label, record in models.items()}


def plot(numbers: dict):
    """The figure (matplotlib) of ``numbers``: A per seed and combined; the block error of each
    seed against the block length."""
    import matplotlib.pyplot as plt

    figure, (seed_axis, block_axis) = plt.subplots(1, 2, figsize=(11, 4.5))
    for position, (label, record) in enumerate(numbers["models"].items()):
        complete = {seed: entry for seed, entry in record["seeds"].items() if entry["complete"]}
        x = position + 0.1 * np.arange(len(complete))
        seed_axis.errorbar(x, [e["value"] for e in complete.values()],
                           [e["error"] for e in complete.values()], fmt="o", capsize=3,
                           label=f"{label}: seeds {', '.join(map(str, complete)) or 'none'}")
        if record["combined"] is not None:
            value, error = record["combined"]["value"], record["combined"]["error"]
            seed_axis.axhspan(value - error, value + error, alpha=0.2,
                              color=f"C{position}")
        for seed, entry in complete.items():
            block_axis.semilogx(entry["convergence"]["block_ps"], entry["convergence"]["error"],
                                "o-", color=f"C{position}", label=f"{label} seed {seed}")
    seed_axis.axhline(0, color="k", lw=0.8)
    seed_axis.set_xticks(range(len(numbers["models"])), list(numbers["models"]))
    seed_axis.set(ylabel="anisotropy A of u", title="gas phase, NVT 300 K (band: seeds combined)")
    seed_axis.legend(fontsize=8)
    block_axis.set(xlabel="block length (ps)", ylabel="block error of A",
                   title="the error's convergence with the block length")
    block_axis.legend(fontsize=7)
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE,
                        help="the campaign's durable state (default: %(default)s)")
    # the JSON carries the shipped model's fingerprint (write_figure), beside each run's own
    parser.set_defaults(quick=False, model=None)
    args = parser.parse_args()
    models = {label: model_record(seeds) for label, seeds in seeds_by_model(args.archive).items()}
    numbers = {"archive": repository_path(args.archive), "models": models,
               "raw_vs_Ti": raw_against_ti(models), "against_isotropy": against_isotropy(models)}
    write_figure("gas_anisotropy", args, {
        "what": "water molecule in the gas phase, NVT 300 K: anisotropy A of the distribution of "
                "its direction u (dimensionless; 0 without orientational preference), raw model "
                "against its Ti average, per seed and seeds combined; times in ps",
        "block_ps": BLOCK_PS, **numbers}, numbers, plot)
    print(json.dumps({label: {"combined": record["combined"] and {
        key: record["combined"][key] for key in ("value", "error", "error_from_spread",
                                                 "error_from_blocks", "runs", "seeds_for_target")},
        "seeds": {seed: [entry.get("value"), entry.get("error"), entry["reached_ps"]]
                  for seed, entry in record["seeds"].items()},
        "missing_seeds": record["missing_seeds"]} for label, record in models.items()}
        | {key: numbers[key] for key in ("raw_vs_Ti", "against_isotropy")}, indent=1))


if __name__ == "__main__":
    main()
