"""Every command and code block of the README runs as written, at shorter lengths (tiny models,
few steps), so that the README cannot drift from the package."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from conftest import tiny_model
from omm_symbreak.cli import main
from omm_symbreak.model import save_model

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

# README text -> shorter text: every command and script runs in seconds. Each must occur in the
# README (test_every_shortening_applies), so that none rots silently.
SHORTER = {
    "--time-ps 5 ": "--time-ps 0.1 --state-interval 10 --trajectory-interval 10 "
                    "--diagnostics-interval 10 ",
    "--time-ps 10 ": "--time-ps 0.008 ",
    "--frames 270": "--frames 3 --equilibration-ps 0.01 --spacing-ps 0.01",
    "--epochs 100": "--epochs 1",
    "--grids 1i Ti I": "--grids 1i Ti I --rotations 2 --max-structures 1",
    "steps=20000": "steps=16",
}
# README commands that other tests run as they are
RUN_ELSEWHERE = {"omm-symbreak demo": "tests/test_demo.py"}


def shorter(text: str) -> str:
    """``text`` with every ``SHORTER`` replacement made."""
    for long, short in SHORTER.items():
        text = text.replace(long, short)
    return text


def bash_commands(text: str) -> list:
    """The commands of the ```bash blocks of ``text``, one string each (continuation lines
    joined, comments dropped)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        joined = block.replace("\\\n", " ")
        commands += [re.sub(r"\s+", " ", line.split("#")[0]).strip()
                     for line in joined.splitlines() if line.split("#")[0].strip()]
    return commands


def section(heading: str) -> str:
    """The README's text under ``## heading``, up to the next heading of that level."""
    return re.search(rf"^## {heading}\n(.*?)(?=^## |\Z)", README, re.DOTALL | re.MULTILINE).group(1)


def commands(heading: str, *subcommands: str) -> list:
    """The commands under ``## heading`` whose subcommand is one of ``subcommands``."""
    return [command for command in bash_commands(section(heading))
            if command.split()[1] in subcommands]


def python_blocks(heading: str) -> list:
    """The ```python blocks under ``## heading``."""
    return re.findall(r"```python\n(.*?)```", section(heading), re.DOTALL)


# The commands the tests below run (heading, subcommands), and the headings of the scripts
TESTED_COMMANDS = [("Quickstart", "simulate", "analyze"), ("Command line", "simulate"),
                   ("Command line", "reference", "train", "evaluate"),
                   ("Command line", "export"),
                   ("Bring your own model", "symmetrize", "simulate")]
TESTED_SCRIPTS = {"A plain OpenMM script": 1, "Bring your own model": 1, "Python API": 1}


def run_commands(commands: list, directory: Path, monkeypatch) -> None:
    """Run the ``omm-symbreak`` commands, shortened, in ``directory`` (in this process)."""
    monkeypatch.chdir(directory)
    for command in commands:
        assert main(shorter(command).split()[1:]) == 0, command


def run_script(script: str, directory: Path) -> str:
    """Run the Python ``script``, shortened, in ``directory``; its standard output."""
    result = subprocess.run([sys.executable, "-c", shorter(script)], cwd=directory, check=True,
                            capture_output=True, text=True)
    return result.stdout


def write_tiny_model(path: Path) -> Path:
    save_model(tiny_model(dtype=torch.float32), path)
    return path


def test_every_shortening_applies():
    assert [long for long in SHORTER if long not in README] == []


def test_every_readme_command_and_script_is_run_by_a_test():
    """The commands of the README are make targets, ones run elsewhere, or ones the tests
    below run; its Python blocks are those the tests below run."""
    tested = {command for heading, *subcommands in TESTED_COMMANDS
              for command in commands(heading, *subcommands)}
    missing = [command for command in bash_commands(README)
               if command not in tested and command not in RUN_ELSEWHERE
               and not command.startswith("make ")]
    assert missing == []
    for command in RUN_ELSEWHERE.values():
        assert (ROOT / command).is_file()
    blocks = {heading: len(python_blocks(heading)) for heading in TESTED_SCRIPTS}
    assert blocks == TESTED_SCRIPTS
    assert len(re.findall(r"```python\n", README)) == sum(TESTED_SCRIPTS.values())


def test_readme_make_targets_exist():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    named = [command.split()[1] for command in bash_commands(README) if command.startswith("make")]
    assert named and [target for target in named if target not in targets] == []


def test_readme_quickstart_and_mts_commands(tmp_path, monkeypatch):
    """The quickstart on the shipped model; the mts example (defaults with --mts-stride 8) on
    a tiny model."""
    write_tiny_model(tmp_path / "model.ckpt")
    quickstart = commands("Quickstart", "simulate", "analyze")
    mts = commands("Command line", "simulate")
    assert len(quickstart) == 2 and "--strategy mts" in mts[0]
    run_commands(quickstart + mts, tmp_path, monkeypatch)
    assert (tmp_path / "runs" / "mTi" / "analysis" / "observables.png").is_file()
    assert (tmp_path / "runs" / "liquid-mts" / "diagnostics.csv").is_file()


def test_readme_data_training_and_evaluation(tmp_path, monkeypatch):
    """Sample frames, train a model on them for an epoch, evaluate it (the sampled frames
    serve as validation and test sets)."""
    sample, train, evaluate = commands("Command line", "reference", "train", "evaluate")
    run_commands([sample], tmp_path, monkeypatch)
    for name in ("valid.extxyz", "test.extxyz"):
        shutil.copy(tmp_path / "train.extxyz", tmp_path / name)
    run_commands([train, evaluate], tmp_path, monkeypatch)
    assert (tmp_path / "model.ckpt").is_file() and (tmp_path / "metrics.json").is_file()


def test_readme_export_commands_and_openmm_script(tmp_path, monkeypatch):
    model_file = write_tiny_model(tmp_path / "tiny.ckpt")
    (tmp_path / "systems").symlink_to(ROOT / "systems")
    exports = [command.replace("MODEL", str(model_file))
               for command in commands("Command line", "export")]
    assert len(exports) == 2
    run_commands(exports, tmp_path, monkeypatch)
    output = run_script(python_blocks("A plain OpenMM script")[0], tmp_path)
    lines = [line for line in output.splitlines() if line.startswith("systems/")]
    assert [line.split()[0] for line in lines] == ["systems/water-monomer.pdb",
                                                   "systems/liquid-64.pdb"]
    assert all("kJ/mol" in line and "nan" not in line.lower() for line in lines)


def test_readme_bring_your_own_model(tmp_path, monkeypatch):
    """The section's commands on a hand-written non-invariant TorchForce module of the water
    molecule, and its script on a hand-written metatomic model, as written."""
    from metatomic_models import write_handwritten_model
    from torchforce_models import write_module

    write_module(tmp_path / "my-module.pt", [8, 1, 1], anisotropy=0.1)
    byom = commands("Bring your own model", "symmetrize", "simulate")
    assert [command.split()[1] for command in byom] == ["symmetrize", "symmetrize", "simulate"]
    run_commands(byom, tmp_path, monkeypatch)
    assert (tmp_path / "my-module-Ti.pt").is_file()
    assert (tmp_path / "my-module-correction.pt").is_file()
    assert (tmp_path / "runs" / "mine" / "diagnostics.csv").is_file()
    write_handwritten_model(tmp_path / "pet.pt")
    output = run_script(python_blocks("Bring your own model")[0], tmp_path)
    assert output.strip().endswith("kJ/mol") and "nan" not in output.lower()


def test_readme_python_api(tmp_path):
    """The Python API's code, on a tiny model: a system, and a short mts run with the default
    intervals (rounded to the stride)."""
    write_tiny_model(tmp_path / "model.ckpt")
    run_script(python_blocks("Python API")[0], tmp_path)
    assert (tmp_path / "runs" / "x" / "diagnostics.csv").is_file()


def test_readme_set_up_says_how_to_reach_the_command_and_how_long_things_take():
    setup = section("Set-up")
    assert "make install" in bash_commands(setup)
    assert "source .venv/bin/activate" in setup and ".venv/bin/omm-symbreak" in setup
    prose = re.sub(r"\s+", " ", setup)
    for task in ("install", "the demo", "5 ps monomer run", "`make test`"):
        assert re.search(rf"{re.escape(task)} \d+ min", prose), task


def test_readme_stays_under_200_lines():
    assert len(README.splitlines()) < 200
