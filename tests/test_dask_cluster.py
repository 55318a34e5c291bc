"""A campaign on a dask cluster started by hand with the command-line tools (issue 32): a
scheduler and two workers, each worker in its own directory as on separate nodes, two threads
per worker (two runs share a process); the campaign submitted from a third directory with
relative paths, one worker killed (SIGKILL) mid-run. Every run finishes once, in the place the
user named, with the frames of an uninterrupted run; its durable state too."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from distributed import Client

from omm_symbreak.campaign import load_campaign, run_campaign
from omm_symbreak.checkpoint import checkpoint_step, has_checkpoint
from omm_symbreak.rundir import lock_owner, read_trajectory

BIN = Path(sys.executable).parent
TEMPLATE = Path(__file__).resolve().parent.parent / "systems" / "water-monomer.pdb"
STEPS = 160
# the molecule of a PDB file named relative to the campaign file; the raw model and a random
# rotation per step (its rotations must not depend on what else runs in the worker)
CAMPAIGN = f"""
[settings]
system = "molecule/mol.pdb"
diagnostic_grid = "none"
trajectory_format = "xtc"
state_interval = 10
trajectory_interval = 10
diagnostics_interval = 10
checkpoint_interval = 20

[[group]]
strategy = ["none", "random"]
seed = [1, 2]
length_ps = {STEPS * 0.5 / 1000}
"""
NAMES = ["mol_none_seed1", "mol_none_seed2", "mol_random_seed1", "mol_random_seed2"]


def write_campaign(directory: Path) -> Path:
    (directory / "molecule").mkdir(parents=True)
    shutil.copy(TEMPLATE, directory / "molecule" / "mol.pdb")
    (directory / "campaign.toml").write_text(CAMPAIGN)
    return directory / "campaign.toml"


@pytest.fixture
def hand_made_cluster(tmp_path):
    """`dask scheduler` and two `dask worker` processes (nanny, 2 threads each), each in a
    directory of its own; yields the scheduler's address."""
    for name in ("scheduler", "worker1", "worker2"):
        (tmp_path / name).mkdir()
    scheduler_file = tmp_path / "scheduler" / "scheduler.json"
    environment = {**os.environ, "PYTHONWARNINGS": "ignore"}
    processes = [subprocess.Popen(
        [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", scheduler_file], cwd=tmp_path / "scheduler", env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 60
        while not scheduler_file.is_file() and time.time() < deadline:
            time.sleep(0.2)
        for name in ("worker1", "worker2"):
            processes.append(subprocess.Popen(
                [BIN / "dask", "worker", "--scheduler-file", scheduler_file, "--nthreads", "2",
                 "--no-dashboard", "--local-directory", tmp_path / name],
                cwd=tmp_path / name, env=environment, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def kill_a_worker_mid_run(output: Path, timeout_s: float = 180) -> tuple:
    """SIGKILL the worker process that runs one of the runs between its first checkpoint and
    its end (the pid in the run's lock); returns (run name, step at the kill)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for name in NAMES:
            owner = lock_owner(output / name)
            if owner is None or not has_checkpoint(output / name):
                continue
            step = checkpoint_step(output / name)
            if 0 < step < STEPS:
                os.kill(int(owner), signal.SIGKILL)
                return name, step
        time.sleep(0.02)
    raise AssertionError("no run was caught between its first checkpoint and its end")


def test_a_campaign_on_a_hand_made_cluster_survives_a_killed_worker(tmp_path,
                                                                     hand_made_cluster):
    user = tmp_path / "user"
    write_campaign(user)
    command = [BIN / "omm-symbreak", "campaign", "campaign.toml", "-o", "out", "--archive",
               "archive", "--scheduler", hand_made_cluster, "--quiet"]
    campaign = subprocess.Popen(command, cwd=user, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    killed, step = kill_a_worker_mid_run(user / "out")
    out, err = campaign.communicate(timeout=600)
    assert campaign.returncode == 0, out + err
    table = {line.split()[0]: line.split()[1] for line in out.splitlines()
             if line.startswith("mol_")}
    assert table == {name: "done" for name in NAMES}
    assert 0 < step < STEPS

    # the same runs, each alone in a plain local cluster of one single-threaded worker
    alone = tmp_path / "alone"
    write_campaign(alone)
    run_campaign(load_campaign(alone / "campaign.toml"), alone / "out", workers=1,
                 progress=False)
    steps = list(range(0, STEPS + 1, 10))
    for name in NAMES:
        expected = read_trajectory(alone / "out" / name).xyz
        for place in (user / "out" / name, user / "archive" / name):
            np.testing.assert_array_equal(read_trajectory(place).xyz, expected,
                                          err_msg=f"{place} (killed: {killed})")
            rows = [int(line.split(",")[0]) for line in (place / "state.csv").read_text()
                    .splitlines() if line[:1].isdigit()]
            assert rows == steps, place  # every row once: the killed run was resumed
    # nothing was written where the workers or the scheduler run
    for name in ("worker1", "worker2", "scheduler"):
        assert not any(path.name.startswith("mol_") for path in (tmp_path / name).rglob("*"))
    # the run environment in a `dask worker` process, started with MALLOC_TRIM_THRESHOLD_
    def run_environment() -> tuple:  # local: pickled by value for the workers
        """The malloc variable the worker started with, then torch's threads and the default
        threads of OpenMM's CPU platform after ``set_run_environment`` (what every task
        calls)."""
        import openmm
        import torch

        from omm_symbreak.campaign import set_run_environment

        set_run_environment()
        return (os.environ.get("MALLOC_TRIM_THRESHOLD_"), torch.get_num_threads(),
                openmm.Platform.getPlatformByName("CPU").getPropertyDefaultValue("Threads"))

    with Client(hand_made_cluster) as client:
        seen = client.run(run_environment)
    assert len(seen) == 2
    assert all(environment == ("65536", 1, "1") for environment in seen.values()), seen

