"""Campaigns (issues 21 and 32): independent runs from a TOML file through dask.distributed; a
worker killed mid-run, failed runs, skipped runs, checks before anything runs, --dry-run; the
q-TIP4P/F reference run resumed; durable state carried to a fresh directory; the checkpoint
written atomically; a cluster started with the dask command-line tools."""

import dataclasses
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import openmm
import pytest
import torch

from omm_symbreak import simulate
from omm_symbreak.campaign import (CampaignError, PlannedRun, _mark_output_directory,
                                   check_shared_filesystem, execute, load_campaign, local_cluster,
                                   plan_states, run_campaign)
from omm_symbreak.model import DEFAULT_MODEL
from omm_symbreak.cli import main
from omm_symbreak.reference.run import ReferenceSettings, run_reference
from omm_symbreak.checkpoint import checkpoint_step, has_checkpoint
from omm_symbreak.rundir import lock_owner, read_diagnostics, read_trajectory

# Four short runs of the water molecule with the shipped model (120 steps of 0.5 fs, a
# checkpoint every 20 steps): the raw model and a random rotation per step, two seeds each.
CAMPAIGN = """
[settings]
diagnostic_grid = "none"
trajectory_format = "xtc"
state_interval = 10
trajectory_interval = 10
diagnostics_interval = 10
checkpoint_interval = 20

[[group]]
system = "water-monomer"
strategy = ["none", "random"]
seed = [1, 2]
length_ps = {length_ps}
"""
STEPS = 120
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "systems"
NAMES = ["water-monomer_none_seed1", "water-monomer_none_seed2",
         "water-monomer_random_seed1", "water-monomer_random_seed2"]
# A run that fails at once (SimulationError): at a 50 fs time step the state check finds
# thousands of K at step 0 already (OpenMM reports a leapfrog integrator's kinetic energy half a
# step on, pushed by the forces).
FAILING = """
[[group]]
label = "hot"
system = "water-monomer"
strategy = "none"
timestep_fs = 50.0
length_ps = 5.0
"""


def campaign_file(directory, length_ps=0.06, extra=""):
    path = directory / "campaign.toml"
    path.write_text(CAMPAIGN.format(length_ps=length_ps) + extra)
    return path


@pytest.fixture(scope="module")
def cluster():
    """One local dask cluster of 2 single-threaded worker processes for the module."""
    with local_cluster(2) as local:
        yield local


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory, cluster):
    """The campaign run without disturbance: (campaign file, output directory, results)."""
    directory = tmp_path_factory.mktemp("undisturbed")
    path = campaign_file(directory)
    output = directory / "out"
    results = run_campaign(load_campaign(path), output, scheduler=cluster.scheduler_address,
                           progress=False)
    return path, output, results


def kill_a_worker_mid_run(output, names, timeout_s=120):
    """SIGKILL the worker process running one of ``names`` between its first checkpoint and its
    end (the pid in the run's lock); returns (run name, checkpoint step, topology.pdb's inode)
    at the kill."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for name in names:
            directory = output / name
            owner = lock_owner(directory)
            if owner is None or not has_checkpoint(directory):
                continue
            step = checkpoint_step(directory)
            if 0 < step < STEPS:
                inode = (directory / "topology.pdb").stat().st_ino
                os.kill(int(owner), signal.SIGKILL)
                return name, step, inode
        time.sleep(0.02)
    raise AssertionError("no run was caught between its first checkpoint and its end")


def trajectory(directory):
    return read_trajectory(directory)


def csv_steps(path):
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()
            if line[:1].isdigit()]


def plan_table(printed):
    """--dry-run's table as {run: (state, "checkpointed/asked steps")}."""
    rows = [line.split() for line in printed.splitlines()[1:] if line.startswith("water")]
    return {row[0]: (row[1], row[2]) for row in rows}


def test_the_undisturbed_campaign_runs_every_run_to_its_end(undisturbed):
    _, output, results = undisturbed
    assert [(r.name, r.status, r.error) for r in results] == [(n, "done", None) for n in NAMES]
    for name in NAMES:
        assert trajectory(output / name).n_frames == STEPS // 10 + 1
        assert checkpoint_step(output / name) == STEPS
    assert not list(output.glob("campaign-*.json"))  # the client took its marker file away


def test_a_second_campaign_on_the_output_directory_leaves_the_first_ones_tasks_running(
        tmp_path):
    """Each campaign marks the output directory with its own token (two campaign files may
    share an output directory): a task of the first still finds its marker."""
    output = tmp_path / "out"
    first = _mark_output_directory(output, None)
    _mark_output_directory(output, None)
    run = load_campaign(campaign_file(tmp_path))[0]
    execute(run, output / run.name, token=first)
    assert checkpoint_step(output / run.name) == STEPS


def test_a_run_computes_on_the_campaigns_threads_per_run(tmp_path, monkeypatch, capsys):
    """The OpenMM Context of a run, and torch while it runs, use the threads asked for; a
    count below 1 is refused before anything runs."""
    contexts = []

    def recorded(*args, **kwargs):
        simulation = original(*args, **kwargs)
        contexts.append((simulation.context, torch.get_num_threads()))
        return simulation

    original = simulate._simulation
    monkeypatch.setattr(simulate, "_simulation", recorded)
    cpu = openmm.Platform.getPlatformByName("CPU")
    before = (torch.get_num_threads(), cpu.getPropertyDefaultValue("Threads"))
    # the run sets it: monkeypatch restores (or removes) it after the test
    monkeypatch.setenv("OPENMM_CPU_THREADS", os.environ.get("OPENMM_CPU_THREADS", "1"))
    run = load_campaign(campaign_file(tmp_path))[0]
    try:
        execute(run, tmp_path / "out" / run.name, threads=2)
    finally:
        torch.set_num_threads(before[0])
        cpu.setPropertyDefaultValue("Threads", before[1])
    ((context, torch_threads),) = contexts
    assert context.getPlatform().getPropertyValue(context, "Threads") == "2"
    assert torch_threads == 2
    assert main(["campaign", str(campaign_file(tmp_path)), "--threads-per-run", "0"]) == 2
    assert "--threads-per-run must be a positive number" in capsys.readouterr().err


def test_a_worker_killed_mid_run_changes_nothing_and_a_failed_run_stops_no_other(
        tmp_path, cluster, undisturbed):
    runs = load_campaign(campaign_file(tmp_path, extra=FAILING))
    output, outcome = tmp_path / "out", {}
    campaign = threading.Thread(target=lambda: outcome.update(results=run_campaign(
        runs, output, scheduler=cluster.scheduler_address, progress=False)))
    campaign.start()
    killed, step_at_kill, inode = kill_a_worker_mid_run(output, NAMES)
    campaign.join(timeout=300)
    assert not campaign.is_alive()

    status = {r.name: (r.status, r.error) for r in outcome["results"]}
    assert status.pop("hot_water-monomer_none_seed0")[0] == "failed"
    assert status == {name: ("done", None) for name in NAMES}
    failed = next(r for r in outcome["results"] if r.status == "failed")
    assert failed.error.startswith("SimulationError")
    # the killed run was resumed, not started again: a new start recreates topology.pdb
    assert (output / killed / "topology.pdb").stat().st_ino == inode
    assert 0 < step_at_kill < STEPS
    _, reference, _ = undisturbed
    for name in NAMES:
        a, b = trajectory(reference / name), trajectory(output / name)
        assert b.n_frames == a.n_frames == STEPS // 10 + 1
        # the OpenMM checkpoint holds the Langevin random state and checkpoint.pt torch's: the
        # resumed run is the undisturbed one, bit for bit
        np.testing.assert_array_equal(b.xyz, a.xyz, err_msg=name)
        steps = list(range(0, STEPS + 1, 10))
        assert csv_steps(output / name / "state.csv") == steps
        assert read_diagnostics(output / name / "diagnostics.csv")["step"].tolist() == steps


def test_a_finished_campaign_run_again_skips_every_run(undisturbed):
    path, output, _ = undisturbed
    before = {name: (output / name / "trajectory.xtc").stat().st_mtime_ns for name in NAMES}
    results = run_campaign(load_campaign(path), output, progress=False)
    assert [(r.name, r.status) for r in results] == [(name, "skipped") for name in NAMES]
    assert before == {name: (output / name / "trajectory.xtc").stat().st_mtime_ns
                      for name in NAMES}


def test_dry_run_tells_new_done_and_resume_and_refuses_a_changed_run(
        tmp_path, undisturbed, capsys):
    path, output, _ = undisturbed
    assert main(["campaign", str(path), "-o", str(output), "--dry-run"]) == 0
    assert plan_table(capsys.readouterr().out) == {name: ("done", f"{STEPS}/{STEPS}")
                                                   for name in NAMES}
    longer = campaign_file(tmp_path, length_ps=0.1)  # 200 steps: extends the finished runs
    assert main(["campaign", str(longer), "-o", str(output), "--dry-run"]) == 0
    assert plan_table(capsys.readouterr().out) == {name: ("resume", f"{STEPS}/200")
                                                   for name in NAMES}
    assert main(["campaign", str(longer), "-o", str(tmp_path / "new"), "--dry-run"]) == 0
    assert plan_table(capsys.readouterr().out) == {name: ("new", "0/200") for name in NAMES}
    assert not (tmp_path / "new").exists()
    hotter = tmp_path / "hotter.toml"
    hotter.write_text(path.read_text().replace("[settings]", "[settings]\ntemperature_k = 350.0"))
    with pytest.raises(CampaignError) as error:
        plan_states(load_campaign(hotter), output)
    assert len(error.value.problems) == 4
    assert "settings differ: --temperature 300.0 in the run, 350.0 now" in str(error.value)
    # a finished campaign with a new checkpoint interval is still finished
    denser = tmp_path / "denser.toml"
    denser.write_text(path.read_text().replace("checkpoint_interval = 20",
                                               "checkpoint_interval = 40"))
    assert plan_states(load_campaign(denser), output) == {name: "done" for name in NAMES}


def test_every_problem_of_a_campaign_file_is_reported_before_anything_runs(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("""
colour = "red"
[settings]
tempreature_k = 300.0
[[group]]
system = ["water-monomer", "nowhere"]
strategy = ["none", "fancy"]
length_ps = 0.1
[[group]]
system = "water-monomer"
strategy = "mts"
grid = "bogus"
length_ps = 0.1
[[group]]
system = "liquid-64"
strategy = ["none", "reference"]
ensemble = "nve"
length_ps = 0.1
[[group]]
system = "water-monomer"
strategy = "none"
length_ps = [0.1]
""")
    with pytest.raises(CampaignError) as error:
        load_campaign(path)
    problems = "\n".join(error.value.problems)
    for expected in ("unknown key 'colour'", "[settings]: unknown key 'tempreature_k'",
                     "unknown system 'nowhere'", "unknown --strategy 'fancy'",
                     "invalid rotation grid 'bogus'", "reference runs NVT",
                     "run name water-monomer_none_seed0 is declared 2 times"):
        assert expected in problems
    assert main(["campaign", str(path), "--workers", "1"]) == 2
    assert "nothing was run" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_a_reference_run_extended_from_its_checkpoint_matches_an_uninterrupted_one(tmp_path):
    settings = ReferenceSettings(steps=160, trajectory_interval=20, state_interval=20,
                                 checkpoint_interval=40)
    run_reference(settings, tmp_path / "whole")
    run_reference(dataclasses.replace(settings, steps=80), tmp_path / "part")
    run = PlannedRun("part", settings)
    assert plan_states([run], tmp_path) == {"part": "resume"}
    with pytest.raises(ValueError, match="temperature_k 300.0 in the run, 350.0 now"):
        run_reference(dataclasses.replace(settings, temperature_k=350.0), tmp_path / "part")
    # the checkpoint interval may change on resume: it changes no frame
    run_reference(dataclasses.replace(settings, checkpoint_interval=60), tmp_path / "part")
    assert plan_states([run], tmp_path) == {"part": "done"}

    a, b = trajectory(tmp_path / "whole"), trajectory(tmp_path / "part")
    assert a.n_frames == b.n_frames == 9
    # not bit for bit: OpenMM's CPU platform sums PME forces over threads in no fixed order
    np.testing.assert_allclose(b.xyz, a.xyz, atol=1e-5)
    assert csv_steps(tmp_path / "part" / "state.csv") == list(range(20, 161, 20))


def test_the_command_on_a_running_scheduler_prints_the_table_and_exits_2_on_a_failure(
        tmp_path, cluster, capsys):
    path = tmp_path / "hot.toml"
    path.write_text(FAILING)
    assert main(["campaign", str(path), "--scheduler", cluster.scheduler_address,
                 "--quiet"]) == 2
    printed = capsys.readouterr()
    row = next(line for line in printed.out.splitlines() if line.startswith("hot_"))
    assert row.split()[:3] == ["hot_water-monomer_none_seed0", "failed", "-"]
    assert "SimulationError" in row
    assert "1 of 1 runs failed (hot_water-monomer_none_seed0)" in printed.err


def test_a_run_extended_on_a_fresh_machine_from_its_durable_state_is_one_continuous_run(
        tmp_path, cluster, undisturbed):
    _, continuous, _ = undisturbed
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    half = run_campaign(load_campaign(campaign_file(first, length_ps=0.03)), first / "out",
                        scheduler=cluster.scheduler_address, progress=False,
                        archive=first / "archive")
    assert [r.status for r in half] == ["done"] * len(NAMES)
    # only the durable state moves (in git, say): the run directories stay behind and go
    shutil.copytree(first / "archive", second / "archive")
    shutil.rmtree(first)
    runs = load_campaign(campaign_file(second))
    assert plan_states(runs, second / "out", second / "archive") == {n: "resume" for n in NAMES}
    results = run_campaign(runs, second / "out", scheduler=cluster.scheduler_address,
                           progress=False, archive=second / "archive")
    assert [r.status for r in results] == ["done"] * len(NAMES)
    steps = list(range(0, STEPS + 1, 10))
    for name in NAMES:
        durable = second / "archive" / name
        assert sorted(p.name for p in durable.iterdir()) == [
            "checkpoint.pt", "diagnostics.csv", "run.json", "state.csv", "topology.pdb",
            "trajectory.xtc"]
        assert checkpoint_step(durable) == STEPS
        np.testing.assert_array_equal(trajectory(durable).xyz, trajectory(continuous / name).xyz,
                                      err_msg=name)
        assert csv_steps(durable / "state.csv") == steps
        assert read_diagnostics(durable / "diagnostics.csv")["step"].tolist() == steps


def test_a_campaign_file_read_from_elsewhere_names_every_path_absolutely(tmp_path, monkeypatch):
    (tmp_path / "c").mkdir()
    shutil.copy(TEMPLATE_DIR / "water-monomer.pdb", tmp_path / "c" / "mol.pdb")
    shutil.copy(DEFAULT_MODEL, tmp_path / "c" / "model.ckpt")
    (tmp_path / "c" / "campaign.toml").write_text(
        '[[group]]\nsystem = "mol.pdb"\nmodel = "model.ckpt"\nstrategy = "none"\n'
        'length_ps = 0.01\n')
    monkeypatch.chdir(tmp_path)
    (run,) = load_campaign(Path("c") / "campaign.toml")
    assert run.settings.system == str(tmp_path / "c" / "mol.pdb")
    assert run.settings.model == str(tmp_path / "c" / "model.ckpt")


def test_a_worker_that_does_not_share_the_output_directory_is_refused(tmp_path):
    class Elsewhere:  # a client whose second worker has its own disk: it sees none of ours
        def run(self, function, *args):
            return {"tcp://here:1": function(*args), "tcp://elsewhere:2": list(args[0])}

    output = tmp_path / "out"
    output.mkdir()
    check_shared_filesystem(SeesAll(), [str(output)])
    with pytest.raises(CampaignError, match="worker tcp://elsewhere:2 does not see"):
        check_shared_filesystem(Elsewhere(), [str(output)])
    assert list(output.iterdir()) == []  # the token files are gone
    run = load_campaign(campaign_file(tmp_path))[0]
    with pytest.raises(RuntimeError, match="does not see the campaign's output directory"):
        execute(run, output / run.name, token="0123")
    assert not (output / run.name).exists()


class SeesAll:
    """A client with one worker on the client's own disk."""

    def run(self, function, *args):
        return {"tcp://here:1": function(*args)}


def test_git_keeps_every_durable_file_of_the_example_campaigns_archives():
    """The archives under analysis/campaigns/archive/ are the durable state later sittings
    extend from a fresh clone: git must not ignore any of their files (a ``*.pt`` rule once
    dropped every checkpoint, and with it every resume)."""
    import subprocess

    from omm_symbreak.archive import DURABLE_FILES
    from omm_symbreak.checkpoint import CHECKPOINT_FILE

    repository = Path(__file__).resolve().parents[1]
    if not (repository / ".git").exists():
        pytest.skip("not a git checkout")
    for name in (*DURABLE_FILES, CHECKPOINT_FILE):
        path = f"analysis/campaigns/archive/liquid/liquid-64_none_seed1/{name}"
        ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q", path],
                                 cwd=repository).returncode == 0
        assert not ignored, f"git ignores {path}"
