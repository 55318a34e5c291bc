"""Shared pieces of the ``omm-symbreak`` command line: the help formatter, the parser class and
the argument types used by several commands."""

import argparse

from .grids import parse_grid


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to the help of every option whose default is not None or False,
    unless its help already states a default."""

    def _get_help_string(self, action) -> str:
        text, default = action.help or "", action.default
        if (not action.option_strings or default is None or default is False
                or default == argparse.SUPPRESS or "default" in text):
            return text
        if isinstance(default, (list, tuple)):
            return f"{text} (default: {' '.join(map(str, default))})"
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` with ``DefaultsHelpFormatter``, for every (sub)command."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def add_replicate_argument(parser) -> None:
    """``--replicate A B C``: copies of a periodic template along its box vectors."""
    parser.add_argument("--replicate", type=int, nargs=3, default=(1, 1, 1),
                        metavar=("A", "B", "C"),
                        help="copies of a periodic template of systems/ along its box vectors "
                             "a, b, c (liquid-64 with 2 1 1: 128 molecules)")


def grid_argument(spec: str):
    """argparse type of a grid option: the parsed ``RotationGrid``, or the parser's message."""
    try:
        return parse_grid(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
