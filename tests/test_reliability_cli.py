"""Issue 17, item 11: the command line states its defaults and units, requires the system of
``export``, and replicates periodic templates (``--replicate``)."""

import argparse
import json
import re

import numpy as np
import openmm.app as app
import openmm.unit as unit
import pytest
import torch

from conftest import tiny_model
from omm_symbreak.cli import build_parser, main
from omm_symbreak.model import save_model
from omm_symbreak.systems import load


def _commands(parser, prefix=""):
    """(command name, parser) of every command and subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}".strip())
    if prefix:
        yield prefix, parser


def _option_help(help_text: str, option: str) -> str:
    """The help entry of ``option`` (its first option string) in a --help text, one line."""
    entries = re.split(r"\n(?=  -)", help_text)
    found = [entry for entry in entries if re.match(rf"\s+{re.escape(option)}(?=[ ,\n])", entry)]
    assert len(found) == 1, f"{option} not in help"
    return " ".join(found[0].split())


def test_every_option_has_help_and_shows_its_default():
    commands = dict(_commands(build_parser()))
    assert {"export", "simulate", "analyze", "train", "reference sample"} <= set(commands)
    for name, parser in commands.items():
        help_text = parser.format_help()
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            option = action.option_strings[0]
            entry = _option_help(help_text, option)
            assert action.help, f"{name} {option} has no help"
            default = action.default
            if default is None or default is False or default == []:
                continue
            shown = (" ".join(map(str, default)) if isinstance(default, (list, tuple))
                     else str(default))
            assert "default" in entry and shown in entry, f"{name} {option}: {entry}"


def test_simulate_help_gives_the_units_of_time():
    help_text = dict(_commands(build_parser()))["simulate"].format_help()
    assert "fs (default: 0.5)" in _option_help(help_text, "--timestep-fs")
    assert "steps of --timestep-fs (default: 1000)" in _option_help(help_text, "--steps")
    assert "ps" in _option_help(help_text, "--time-ps")


def test_export_requires_the_system(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "-o", str(tmp_path / "out.pt")])
    assert exit_info.value.code == 2
    assert "--system" in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.ckpt"
    save_model(tiny_model(dtype=torch.float32), path)
    return str(path)


def test_simulate_replicates_a_periodic_template(tmp_path, model_file):
    run_dir = tmp_path / "run"

    def simulate(steps: int, *extra: str) -> int:
        return main(["simulate", "liquid-64", "--replicate", "2", "1", "1", "--model", model_file,
                     "--steps", str(steps), "--state-interval", "2", "--trajectory-interval",
                     "2", "--diagnostics-interval", "2", "--checkpoint-interval", "2",
                     "--diagnostic-grid", "none", "--quiet", "-o", str(run_dir), *extra])

    assert simulate(2) == 0
    pdb = app.PDBFile(str(run_dir / "topology.pdb"))
    assert pdb.topology.getNumAtoms() == 384
    a_nm = np.array(load("liquid-64")[2][0].value_in_unit(unit.nanometer))
    box_nm = pdb.topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer)
    np.testing.assert_allclose(box_nm[0], 2 * a_nm, atol=1e-3)
    copies = pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer).reshape(2, 192, 3)
    np.testing.assert_allclose(copies[1] - copies[0], np.tile(a_nm, (192, 1)), atol=2e-4)
    assert json.loads((run_dir / "run.json").read_text())["settings"]["replicate"] == [2, 1, 1]
    assert simulate(4, "--resume") == 0  # run.json's list is the same setting as (2, 1, 1)
    assert json.loads((run_dir / "run.json").read_text())["settings"]["steps"] == 4


@pytest.mark.parametrize("command, message", [
    (["simulate", "water-monomer", "-o", "RUN"], "no periodic box"),
    (["export", "--system", "water-monomer", "-o", "RUN/x.pt"], "no periodic box"),
    (["export", "--system", "PDB", "-o", "RUN/x.pt"], "not to the PDB file")])
def test_replicate_is_refused_but_for_periodic_templates(tmp_path, model_file, command, message,
                                                         capsys):
    pdb = tmp_path / "liquid.pdb"
    topology, positions, _ = load("liquid-64")
    with open(pdb, "w") as handle:
        app.PDBFile.writeFile(topology, positions, handle)
    arguments = [a.replace("RUN", str(tmp_path / "run")).replace("PDB", str(pdb))
                 for a in command]
    assert main(arguments + ["--model", model_file, "--replicate", "2", "1", "1"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything is written
