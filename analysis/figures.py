"""What the figure scripts share: their command line and the writing of their results."""

import argparse
import json
from pathlib import Path
from typing import Dict, Optional

import matplotlib
import numpy as np

matplotlib.use("Agg")  # figures go to files
import matplotlib.pyplot as plt  # noqa: E402

from omm_symbreak.campaign import PlannedRun, format_summary, run_campaign  # noqa: E402
from omm_symbreak.model import load_model, model_fingerprint  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
RESULTS = REPOSITORY / "analysis" / "results"


def repository_path(path) -> str:
    """``path`` relative to the repository where it lies inside it, else absolute: a results
    JSON then reads the same on every checkout."""
    path = Path(path).resolve()
    return str(path.relative_to(REPOSITORY) if path.is_relative_to(REPOSITORY) else path)


def figure_arguments(description: str, archive: Optional[Path] = None) -> argparse.Namespace:
    """``--quick`` (smoke-test lengths), ``--model`` (default: the shipped model) and, for the
    figures of a campaign with durable state in ``archive``, ``--analyse-only`` and
    ``--archive`` (default ``archive``: another copy of the durable state, read-only with
    ``--analyse-only``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smoke-test lengths")
    parser.add_argument("--model", default=None, help="default: the shipped model")
    if archive is not None:
        parser.add_argument("--analyse-only", action="store_true",
                            help="analyse the runs' durable state as it is; run nothing")
        parser.add_argument("--archive", type=Path, default=archive,
                            help="the campaign's durable state (default: %(default)s)")
    return parser.parse_args()


def labelled(pairs, what: str) -> dict:
    """{LABEL: VALUE} of ``LABEL=VALUE`` arguments; ValueError naming a malformed one."""
    result = {}
    for pair in pairs:
        label, equals, value = pair.partition("=")
        if not equals or not label:
            raise ValueError(f"{what} {pair!r}: expected LABEL=VALUE")
        if label in result:
            raise ValueError(f"{what}: label {label!r} given twice")
        result[label] = value
    return result


def run_as_campaign(runs: dict, run_root: Path, archive: Optional[Path] = None
                    ) -> Dict[str, float]:
    """Run the runs of a figure, ``runs`` ({directory name: ``RunSettings``, or
    ``ReferenceSettings`` for q-TIP4P/F}), in ``run_root/<name>`` as a campaign
    (``omm_symbreak.campaign.run_campaign``: one single-threaded worker process per core,
    finished runs skipped, interrupted ones resumed from their checkpoints, a longer run extended;
    with ``archive``, the durable state kept there and runs restored from it).
    Prints the campaign's summary table; returns the wall time (s) of this sitting by name, 0
    for a run finished before. RuntimeError naming the runs that failed, after the others ran."""
    results = run_campaign([PlannedRun(name, settings) for name, settings in runs.items()],
                           run_root, archive=archive)
    print(format_summary(results), flush=True)
    failed = [result.name for result in results if result.status == "failed"]
    if failed:
        raise RuntimeError(f"runs failed: {', '.join(failed)} (the table above)")
    return {result.name: result.wall_s or 0.0 for result in results}


def read_state(run_directory: Path) -> Dict[str, np.ndarray]:
    """A run's state.csv (OpenMM's StateDataReporter) as columns [rows], keyed by the first word
    of each header: "Step", "Time" (ps), "Potential", "Kinetic", "Total" (kJ/mol),
    "Temperature" (K), "Speed" (ns/day)."""
    state = np.genfromtxt(Path(run_directory) / "state.csv", delimiter=",", names=True)
    return {name.split("_")[0]: np.atleast_1d(state[name]) for name in state.dtype.names}


def estimated_wall_time_s(run_directory: Path) -> Optional[float]:
    """A run's whole wall time (s), over all its sittings: its simulated time over the median
    speed of its state.csv (time in ps, speed in ns/day); None when no row has a speed yet (a
    row at the start of a sitting reports 0)."""
    state = read_state(run_directory)
    speeds_ns_per_day = state["Speed"][state["Speed"] > 0]
    if len(speeds_ns_per_day) == 0:
        return None
    return float(state["Time"][-1] * 1e-3 / np.median(speeds_ns_per_day) * 86400)


def without_series(numbers: dict, series: set) -> dict:
    """``numbers`` without the entries whose key is in ``series``, at any depth: what a figure's
    results JSON keeps of the numbers it plots."""
    return {key: without_series(value, series) if isinstance(value, dict) else value
            for key, value in numbers.items() if key not in series}


def write_series(run_root: Path, name: str, numbers: dict) -> str:
    """Write all the numbers a figure plots, series included, to ``<run_root>/<name>.json``
    next to its runs (analysis/runs/ is not committed); returns that path relative to the
    repository, for the results JSON to name."""
    Path(run_root).mkdir(parents=True, exist_ok=True)  # not there yet with --analyse-only
    path = Path(run_root) / f"{name}.json"
    path.write_text(json.dumps(numbers) + "\n")
    return repository_path(path)


def write_figure(name: str, args: argparse.Namespace, result: dict, numbers: dict, plot) -> None:
    """Write results/<name>[_quick].json (``result`` with the command, the model file and its
    model fingerprint) and
    the PNG of the figure that ``plot(numbers)`` returns."""
    suffix = "_quick" if args.quick else ""
    result = {**result, "command": f"python analysis/{name}.py" + (" --quick" if args.quick else ""),
              "model": args.model or "shipped",
              "model_fingerprint": model_fingerprint(load_model(args.model))}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}{suffix}.json").write_text(json.dumps(result) + "\n")
    figure = plot(numbers)
    figure.tight_layout()
    figure.savefig(RESULTS / f"{name}{suffix}.png", dpi=110)
    plt.close(figure)
