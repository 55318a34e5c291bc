"""Issue 34, what a new user hit: default intervals with any mts stride, empty or incomplete
structures, a misleading hint on rerun, noise on the command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from openmm import app, unit

from conftest import tiny_model
from omm_symbreak.cli import main
from omm_symbreak.model import save_model
from omm_symbreak.settings import DEFAULT_STEP_COUNTS, RunSettings


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny test model's file (float32)."""
    path = tmp_path_factory.mktemp("model") / "tiny.ckpt"
    save_model(tiny_model(dtype=torch.float32), path)
    return str(path)


def quiet_run_args(model, output, *extra) -> list:
    """``simulate`` of the water molecule with the tiny model, no Delta, no progress bar."""
    return ["simulate", "water-monomer", "--model", model, "--diagnostic-grid", "none",
            "--quiet", "-o", str(output), *extra]


# 1. Default intervals with any mts stride

def test_default_counts_become_the_nearest_multiples_of_the_stride_with_a_note():
    settings = RunSettings(system="water-monomer", strategy="mts", mts_stride=7)
    settings.validate()
    # 98 = 14 x 7 is 2 from 100, 1001 = 143 x 7 is 1 from 1000
    assert {name: getattr(settings, name) for name in DEFAULT_STEP_COUNTS} == dict(
        steps=1001, state_interval=98, trajectory_interval=98, diagnostics_interval=98,
        checkpoint_interval=1001)
    assert len(settings.notes) == 5 and "--state-interval 98" in " ".join(settings.notes)
    plain = RunSettings(system="water-monomer")
    assert plain.notes == () and plain.state_interval == 100 and plain.steps == 1000


def test_a_count_given_that_is_not_a_multiple_is_refused_in_a_whole_sentence():
    with pytest.raises(ValueError) as error:
        RunSettings(system="water-monomer", strategy="mts", mts_stride=8,
                    state_interval=100).validate()
    assert str(error.value).startswith("--state-interval 100 is not a multiple of --mts-stride 8")
    assert str(error.value).endswith("(such as 96)")


def test_simulate_with_a_stride_and_default_intervals_runs_and_says_what_it_rounded(
        tmp_path, tiny, capsys):
    # --time-ps 0.005 at 0.5 fs is 10 steps; the nearest multiple of 3 is 9
    assert main(quiet_run_args(tiny, tmp_path / "run", "--strategy", "mts", "--grid", "1i",
                               "--mts-stride", "3", "--time-ps", "0.005")) == 0
    out = capsys.readouterr().out
    assert "--time-ps 0.005 is 10 steps, rounded to 9" in out
    assert "note: --state-interval 99: the default 100 rounded" in out
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["settings"]["steps"] == 9 and record["settings"]["state_interval"] == 99
    assert any("--state-interval 99" in note for note in record["notes"])


# 4. An empty PDB file

@pytest.mark.parametrize("content", ["", "CRYST1   20.000   20.000   20.000  90.00  90.00  90.00 "
                                         "P 1           1\nEND\n"])
@pytest.mark.parametrize("command", ["simulate", "export"])
def test_a_pdb_file_without_atoms_is_refused_in_one_line_before_any_work(
        tmp_path, capsys, command, content):
    (tmp_path / "empty.pdb").write_text(content)
    output = tmp_path / ("run" if command == "simulate" else "module.pt")
    arguments = {"simulate": [str(tmp_path / "empty.pdb"), "--steps", "4"],
                 "export": ["--system", str(tmp_path / "empty.pdb")]}[command]
    assert main([command, *arguments, "-o", str(output)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"omm-symbreak {command}: error: the PDB file {tmp_path / 'empty.pdb'} holds no atoms "
        f"(no ATOM or HETATM records)"]
    assert captured.out == "" and not output.exists()


# 3. Incomplete water molecules; elements the model does not know

def write_pdb(path, residues) -> str:
    """A PDB file of ``residues`` [(name, [(atom name, element symbol, (x, y, z) nm)])], one
    chain, no box; its path as a string."""
    topology, positions = app.Topology(), []
    chain = topology.addChain()
    for name, atoms in residues:
        residue = topology.addResidue(name, chain)
        for atom_name, symbol, xyz in atoms:
            topology.addAtom(atom_name, app.Element.getBySymbol(symbol), residue)
            positions.append(xyz)
    with open(path, "w") as handle:
        app.PDBFile.writeFile(topology, positions * unit.nanometer, handle)
    return str(path)


WATER = [("O", "O", (0.0, 0.0, 0.0)), ("H1", "H", (0.0942, 0.0, 0.0)),
         ("H2", "H", (-0.028, 0.0899, 0.0))]


def shifted(atoms, dx_nm: float) -> list:
    return [(name, symbol, (x + dx_nm, y, z)) for name, symbol, (x, y, z) in atoms]


@pytest.mark.parametrize("command", ["simulate", "export"])
def test_residues_that_are_not_whole_water_molecules_are_refused_by_name(
        tmp_path, tiny, capsys, command):
    pdb = write_pdb(tmp_path / "broken.pdb", [("HOH", WATER), ("HOH", shifted(WATER[:1], 0.5)),
                                              ("HOH", shifted(WATER[:2], 1.0))])
    output = tmp_path / ("run" if command == "simulate" else "module.pt")
    arguments = {"simulate": [pdb, "--steps", "4", "--diagnostic-grid", "none", "--quiet"],
                 "export": ["--system", pdb]}[command]
    assert main([command, *arguments, "--model", tiny, "-o", str(output)]) == 2
    error = capsys.readouterr().err
    assert "residues HOH 2 (O), HOH 3 (O H) are not" in error
    assert "--allow-incomplete-water" in error and "Traceback" not in error
    assert not output.exists()
    assert main([command, *arguments, "--model", tiny, "-o", str(output),
                 "--allow-incomplete-water"]) == 0
    assert output.exists()


def test_the_python_api_refuses_a_bare_oxygen_unless_allowed(tmp_path):
    from omm_symbreak.potential import create_system

    pdb = app.PDBFile(write_pdb(tmp_path / "oxygen.pdb", [("HOH", WATER[:1])]))
    model = tiny_model(dtype=torch.float32)
    with pytest.raises(ValueError, match=r"residue HOH 1 \(O\) is not"):
        create_system(pdb.topology, model, positions=pdb.positions)
    system = create_system(pdb.topology, model, positions=pdb.positions,
                           allow_incomplete_water=True)
    assert system.getNumParticles() == 1


def test_an_element_the_model_does_not_know_is_named_not_numbered(tmp_path, tiny, capsys):
    pdb = write_pdb(tmp_path / "methanol.pdb",
                    [("MOH", [("C", "C", (0.0, 0.0, 0.0)), ("O", "O", (0.143, 0.0, 0.0)),
                              ("H", "H", (0.18, 0.09, 0.0))])])
    assert main(["simulate", pdb, "--model", tiny, "--steps", "4", "-o",
                 str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "knows the elements H (hydrogen), O (oxygen), not C (carbon)" in error


# 5. The hint of a rerun in a finished run's directory

def test_a_rerun_with_other_steps_is_told_to_resume_and_nothing_of_grids(tmp_path, tiny, capsys):
    assert main(quiet_run_args(tiny, tmp_path / "run", "--steps", "4")) == 0
    capsys.readouterr()
    assert main(quiet_run_args(tiny, tmp_path / "run", "--steps", "8")) == 2
    error = capsys.readouterr().err
    assert "pass --resume to extend it to --steps 8" in error
    assert "grid" not in error
    assert main(quiet_run_args(tiny, tmp_path / "run", "--steps", "8", "--seed", "3")) == 2
    error = capsys.readouterr().err
    assert "--seed 0 in the run, 3 now" in error and "grid" not in error


def test_a_run_started_on_the_old_default_grid_is_told_that_the_default_changed(
        tmp_path, tiny, capsys):
    old = quiet_run_args(tiny, tmp_path / "run", "--steps", "4", "--strategy", "full")
    assert main(old + ["--grid", "2i"]) == 0
    capsys.readouterr()
    assert main(old + ["--resume"]) == 2
    error = capsys.readouterr().err
    assert "--grid 2i in the run, Ti now" in error
    assert "the default of --grid changed from 2i to Ti" in error


# 9. No noise from libraries on the command line

def test_commands_print_neither_the_simtk_warning_nor_dcdplugin_lines(tmp_path, tiny):
    """simulate, analyze and export in fresh processes (the simtk warning comes once per
    process, at openmmtorch's import; the dcdplugin lines when mdtraj reads a DCD file)."""
    commands = [quiet_run_args(tiny, tmp_path / "run", "--steps", "40", "--state-interval",
                               "10", "--trajectory-interval", "10", "--diagnostics-interval",
                               "10"),
                ["analyze", str(tmp_path / "run")],
                ["export", "--model", tiny, "--system", "water-monomer", "-o",
                 str(tmp_path / "module.pt")]]
    for command in commands:
        result = subprocess.run([sys.executable, "-m", "omm_symbreak.cli", *command],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        for line in ("simtk", "dcdplugin)"):
            assert line not in result.stdout + result.stderr, command[0]


def test_only_the_library_lines_are_dropped_not_other_warnings(capfd, caplog):
    import logging

    from omm_symbreak.quiet import SIMTK_WARNING, c_stdout_dropped, simtk_warning_dropped

    with simtk_warning_dropped():
        logging.getLogger().warning(SIMTK_WARNING + ".  Import 'openmm' instead.")
        logging.getLogger().warning("a warning of our own")
    assert [record.getMessage() for record in caplog.records] == ["a warning of our own"]
    with c_stdout_dropped():
        os.write(1, b"dcdplugin) from C\n")
        os.write(2, b"a warning on the standard error\n")
    print("after")
    captured = capfd.readouterr()
    assert captured.err == "a warning on the standard error\n" and captured.out == "after\n"


# 10. Python versions

def test_python_3_12_and_3_13_are_admitted_and_the_readme_says_what_is_tested():
    import tomllib

    from packaging.specifiers import SpecifierSet

    root = Path(__file__).resolve().parent.parent
    with open(root / "pyproject.toml", "rb") as handle:
        requires = SpecifierSet(tomllib.load(handle)["project"]["requires-python"])
    assert [version for version in ("3.10", "3.11", "3.12", "3.13") if version in requires] == [
        "3.11", "3.12", "3.13"]
    assert "Python 3.11 or later (tested on 3.11 only)" in (root / "README.md").read_text()
