"""What the figure scripts share: their command line and the writing of their results."""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures go to files
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def figure_arguments(description: str) -> argparse.Namespace:
    """``--quick`` (smoke-test lengths) and ``--checkpoint`` (default: the shipped model)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smoke-test lengths")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    return parser.parse_args()


def write_figure(name: str, args: argparse.Namespace, result: dict, numbers: dict, plot) -> None:
    """Write results/<name>[_quick].json (``result`` with the command and the checkpoint) and
    the PNG of the figure that ``plot(numbers)`` returns."""
    suffix = "_quick" if args.quick else ""
    result = {**result, "command": f"python analysis/{name}.py" + (" --quick" if args.quick else ""),
              "checkpoint": args.checkpoint or "shipped"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}{suffix}.json").write_text(json.dumps(result) + "\n")
    figure = plot(numbers)
    figure.tight_layout()
    figure.savefig(RESULTS / f"{name}{suffix}.png", dpi=110)
    plt.close(figure)
