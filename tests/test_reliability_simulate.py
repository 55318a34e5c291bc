"""Issue 17, simulate: Nose-Hoover, explosions from step 0, locked run directories, one step
convention with MTS, and bad options refused before any work."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import mdtraj
import numpy as np
import openmm
import pytest
import torch

from conftest import tiny_model
from test_simulate import unbound_molecule_pdb
from omm_symbreak import simulate
from omm_symbreak.cli import main
from omm_symbreak.model import save_model
from omm_symbreak.checkpoint import checkpoint_step
from omm_symbreak.rundir import read_diagnostics
from omm_symbreak.settings import PLATFORMS, RunSettings
from omm_symbreak.simulate import SimulationError, run

# What no good state of water at 300 K comes near: any O-H bond outside 0.5-2 Angstrom (a
# dissociated or collapsed molecule), a temperature of 2000 K.
OH_BOND_ANGSTROM = (0.5, 2.0)
HOT_K = 2000.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny test model's file (float32)."""
    path = tmp_path_factory.mktemp("model") / "tiny.ckpt"
    save_model(tiny_model(dtype=torch.float32), path)
    return str(path)


def settings_of(model, **changes) -> RunSettings:
    """A few steps of the water molecule, a report every 2 steps."""
    base = dict(system="water-monomer", model=model, steps=8, state_interval=2,
                trajectory_interval=2, diagnostics_interval=2, checkpoint_interval=4,
                diagnostic_grid="none")
    return RunSettings(**{**base, **changes})


def simulate_args(model, output, *extra) -> list:
    return ["simulate", "water-monomer", "--model", model, "--diagnostic-grid", "none",
            "--quiet", "-o", str(output), *extra]


def state_table(directory) -> dict:
    """state.csv as {first word of the header: column}."""
    table = np.genfromtxt(directory / "state.csv", delimiter=",", names=True)
    return {name.split("_")[0]: np.atleast_1d(table[name]) for name in table.dtype.names}


def oh_lengths_angstrom(directory) -> np.ndarray:
    """Every O-H bond length of every frame of a run's trajectory [frames, 2 M], Angstrom."""
    trajectory = mdtraj.load(str(directory / "trajectory.dcd"), top=str(directory / "topology.pdb"))
    pairs = [(residue.atom(0).index, residue.atom(h).index)
             for residue in trajectory.topology.residues for h in (1, 2)]
    return 10 * mdtraj.compute_distances(trajectory, pairs, periodic=False)


def assert_only_good_frames_kept(directory, message: str, timestep_fs: float) -> None:
    """The message names the last good step and time; every output ends there, and every row
    and frame kept passes the checks (temperature, O-H bonds)."""
    last_good = int(message.split("last good frame, step ")[1].split()[0])
    assert f"t = {last_good * timestep_fs / 1000:g} ps" in message
    diagnostics = read_diagnostics(directory / "diagnostics.csv")
    state = state_table(directory)
    assert diagnostics["step"][-1] == state["Step"][-1] == last_good
    assert state["Temperature"].max() < HOT_K
    lengths = oh_lengths_angstrom(directory)
    assert len(lengths) == len(diagnostics["step"])
    assert OH_BOND_ANGSTROM[0] < lengths.min() and lengths.max() < OH_BOND_ANGSTROM[1]


# 1. Nose-Hoover, and a start that dies before its first checkpoint

def test_a_nose_hoover_run_finishes_and_its_heat_bath_starts_at_zero(tmp_path, tiny):
    """In a subprocess, so that a segmentation fault fails the test instead of pytest. Strong
    coupling (50/ps) moves energy in and out of the heat bath; the conserved energy (which
    counts the bath as 0 at step 0) stays far closer to its start than kinetic + potential."""
    command = [sys.executable, "-m", "omm_symbreak.cli",
               *simulate_args(tiny, tmp_path / "nh", "--thermostat", "nose-hoover", "--friction",
                              "50", "--steps", "40", "--state-interval", "4",
                              "--trajectory-interval", "4", "--diagnostics-interval", "4")]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    table = read_diagnostics(tmp_path / "nh" / "diagnostics.csv")
    assert list(table["step"]) == list(range(0, 41, 4))
    mechanical = table["potential_kj_mol"] + table["kinetic_kj_mol"]
    assert table["conserved_kj_mol"][0] == pytest.approx(mechanical[0], rel=1e-9)
    bath = table["conserved_kj_mol"] - mechanical
    conserved_change = np.abs(table["conserved_kj_mol"] - table["conserved_kj_mol"][0]).max()
    assert conserved_change < np.abs(bath).max() / 5


def test_a_start_that_dies_before_its_first_checkpoint_can_be_started_again(
        tmp_path, tiny, monkeypatch):
    def die(*args):
        raise RuntimeError("killed before the first checkpoint")

    directory = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(simulate, "save_checkpoint", die)
        with pytest.raises(RuntimeError, match="killed"):
            run(settings_of(tiny), directory, progress=False)
    assert (directory / "run.json").exists() and not (directory / "checkpoint.pt").exists()
    with pytest.raises(ValueError, match="never reached its first checkpoint"):
        run(settings_of(tiny), directory, resume=True, progress=False)
    run(settings_of(tiny), directory, progress=False)
    assert list(read_diagnostics(directory / "diagnostics.csv")["step"]) == [0, 2, 4, 6, 8]
    assert list(state_table(directory)["Step"]) == [0, 2, 4, 6, 8]
    assert len(oh_lengths_angstrom(directory)) == 5


# 2. Explosions are caught from step 0, and only good frames are kept

def test_a_water_molecule_at_50_fs_is_stopped_keeping_only_good_frames(tmp_path, tiny, capsys):
    directory = tmp_path / "hot"
    code = main(simulate_args(tiny, directory, "--timestep-fs", "50", "--steps", "40",
                              "--state-interval", "1", "--trajectory-interval", "1",
                              "--diagnostics-interval", "1", "--checkpoint-interval", "10"))
    message = capsys.readouterr().err
    assert code == 2 and "blew up" in message and "Traceback" not in message
    assert_only_good_frames_kept(directory, message, 50.0)


def test_liquid_at_a_huge_time_step_is_stopped_before_any_hot_frame(tmp_path, tiny):
    settings = settings_of(tiny, system="liquid-64", timestep_fs=5.0, steps=60,
                           checkpoint_interval=20)
    with pytest.raises(SimulationError, match="blew up") as error:
        run(settings, tmp_path / "boom", progress=False)
    assert_only_good_frames_kept(tmp_path / "boom", str(error.value), 5.0)


# 4. A run directory is locked while a process runs in it

def test_a_second_process_is_refused_while_the_first_runs_and_resume_works_after_kill_9(
        tmp_path, tiny):
    directory, molecule = tmp_path / "run", unbound_molecule_pdb(tmp_path / "molecule.pdb")
    settings = settings_of(tiny, system=molecule, steps=100000, checkpoint_interval=4)
    command = simulate_args(tiny, directory, "--steps", "100000", "--checkpoint-interval", "4",
                            "--state-interval", "2", "--trajectory-interval", "2",
                            "--diagnostics-interval", "2")
    command[1] = molecule
    first = subprocess.Popen([sys.executable, "-m", "omm_symbreak.cli", *command])
    try:
        deadline = time.time() + 300
        while not (directory / "checkpoint.pt").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first process must still be running"
        with pytest.raises(ValueError, match=rf"in use by another omm-symbreak process "
                                             rf"\(pid {first.pid}\)"):
            run(settings, directory, resume=True, progress=False)
        assert first.poll() is None, "the first process must have held the lock throughout"
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    done = checkpoint_step(directory)
    run(dataclasses.replace(settings, steps=done + 8), directory, resume=True, progress=False)
    steps = read_diagnostics(directory / "diagnostics.csv")["step"]
    np.testing.assert_array_equal(steps, np.arange(0, done + 9, 2))


# 10. Every step column counts steps of --timestep-fs, with MTS too

def test_mts_step_columns_of_state_and_diagnostics_agree_also_after_resume(tmp_path, tiny):
    settings = settings_of(tiny, strategy="mts", grid="1i", mts_stride=2, ensemble="nve")
    directory = run(settings, tmp_path / "mts", progress=False)
    run(dataclasses.replace(settings, steps=12), directory, resume=True, progress=False)
    diagnostics = read_diagnostics(directory / "diagnostics.csv")
    state = state_table(directory)
    np.testing.assert_array_equal(state["Step"], diagnostics["step"])
    np.testing.assert_array_equal(diagnostics["step"], np.arange(0, 13, 2))
    np.testing.assert_allclose(state["Time"], diagnostics["time_ps"], rtol=1e-9)
    np.testing.assert_allclose(state["Potential"], diagnostics["potential_kj_mol"], rtol=1e-8)
    header = (directory / "state.csv").read_text().splitlines()[0]
    assert "Step (of --timestep-fs 0.5 fs)" in header
    assert "steps of --timestep-fs 0.5 fs" in (directory / "diagnostics.csv").read_text()


# 6, 7. Bad options: a clear error naming the flag before any work, no traceback

MISSING_PLATFORMS = [name for name in PLATFORMS
                     if name not in {openmm.Platform.getPlatform(i).getName()
                                     for i in range(openmm.Platform.getNumPlatforms())}]


@pytest.mark.parametrize("options, message", [
    (["--friction", "-1"], "--friction must be positive"),
    (["--strategy", "mts", "--mts-stride", "0"], "--mts-stride must be a positive"),
    (["--timestep-fs", "0"], "--timestep-fs must be positive"),
    (["--steps", "10", "--state-interval", "0"], "--state-interval must be a positive"),
    (["--strategy", "mts", "--mts-stride", "4", "--steps", "10"],
     "--steps 10 is not a multiple of --mts-stride 4"),
    (["--time-ps", "0.0001"], "--time-ps 0.0001 is shorter than one step of --timestep-fs 0.5"),
    (["--platform", MISSING_PLATFORMS[0] if MISSING_PLATFORMS else "CPU"], "is not available"),
])
def test_bad_options_are_refused_before_any_work_naming_the_flag(
        tmp_path, tiny, capsys, options, message):
    if "--platform" in options and not MISSING_PLATFORMS:
        pytest.skip("every platform is available here")
    assert main(simulate_args(tiny, tmp_path / "run", *options)) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()


def test_output_naming_a_file_is_refused(tmp_path, tiny, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    assert main(simulate_args(tiny, tmp_path / "notes.txt", "--steps", "4")) == 2
    assert "is a file" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
