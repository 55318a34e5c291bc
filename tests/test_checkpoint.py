"""The run's checkpoint (issue 32): one file, written atomically, that holds its own step, so
that a kill at any moment leaves a state paired with its step."""

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import openmm
import pytest
import torch

from omm_symbreak.checkpoint import checkpoint_step, load_checkpoint
from omm_symbreak.model_kinds import load_energy_model
from omm_symbreak.rundir import read_trajectory
from omm_symbreak.settings import RunSettings
from omm_symbreak.simulate import _simulation, run
from omm_symbreak.systems import load_structure

SETTINGS = RunSettings(system="water-monomer", steps=80, seed=3, diagnostic_grid="none",
                       state_interval=10, trajectory_interval=10, diagnostics_interval=10,
                       checkpoint_interval=20)


class Killed(BaseException):
    """Stands for SIGKILL at one point of the program: nothing after it runs."""


def test_a_kill_between_writing_and_renaming_the_checkpoint_loses_nothing(tmp_path, monkeypatch):
    run(SETTINGS, tmp_path / "whole", progress=False)
    killed = tmp_path / "killed"
    replace = Path.replace

    def kill_before_the_step_40_checkpoint_lands(self, target):
        if self.name.startswith("checkpoint") and (killed / "checkpoint.pt").is_file() \
                and checkpoint_step(killed) == 20:
            raise Killed()
        return replace(self, target)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "replace", kill_before_the_step_40_checkpoint_lands)
        with pytest.raises(Killed):
            run(SETTINGS, killed, progress=False)
    # the new state was written (the temporary file), its rename never happened
    assert (killed / "checkpoint.pt.tmp").is_file()
    assert checkpoint_step(killed) == 20
    run(SETTINGS, killed, resume=True, progress=False)
    # bit for bit: the checkpoint's state, and every step computed as in one run (the run's
    # TorchScript executor, omm_symbreak.executor)
    np.testing.assert_array_equal(read_trajectory(killed).xyz,
                                  read_trajectory(tmp_path / "whole").xyz)
    # the process's executor is torch's default again after the runs
    assert torch._C._jit_set_profiling_executor(True) is True


def test_the_checkpoints_step_is_the_step_count_of_its_openmm_state(tmp_path):
    """OpenMM's own step count, restored from the checkpoint's bytes, equals the stored step
    (MTS: integrator steps of mts_stride steps each)."""
    for settings in (SETTINGS, dataclasses.replace(SETTINGS, strategy="mts", grid="T",
                                                   mts_stride=2)):
        directory = tmp_path / settings.strategy
        run(settings, directory, progress=False)
        topology, positions = load_structure(settings.system)
        simulation = _simulation(settings, load_energy_model(None), topology, positions,
                                 openmm.Platform.getPlatformByName("CPU"), torch.device("cpu"))
        step = load_checkpoint(simulation, directory)
        assert step == settings.steps
        assert simulation.context.getStepCount() * settings.stride == step


def test_a_run_of_a_pdb_file_resumes_where_the_same_file_lies_elsewhere(tmp_path):
    """An archive extended on another checkout: the PDB file's path has changed, its content
    (run.json's system_fingerprint) has not; a file with other content is refused."""
    template = Path(__file__).resolve().parent.parent / "systems" / "water-monomer.pdb"
    first, second = tmp_path / "checkout-a" / "mol.pdb", tmp_path / "checkout-b" / "mol.pdb"
    for path in (first, second):
        path.parent.mkdir()
        shutil.copy(template, path)
    whole = dataclasses.replace(SETTINGS, system=str(first))
    run(whole, tmp_path / "whole", progress=False)
    run(dataclasses.replace(whole, steps=40), tmp_path / "moved", progress=False)
    shutil.rmtree(first.parent)

    edited = tmp_path / "edited.pdb"
    edited.write_text("REMARK   1 EDITED\n" + template.read_text())
    with pytest.raises(ValueError,
                       match=r"settings differ: SYSTEM \S*checkout-a/mol.pdb in the run"):
        run(dataclasses.replace(whole, system=str(edited)), tmp_path / "moved", resume=True,
            progress=False)
    run(dataclasses.replace(whole, system=str(second)), tmp_path / "moved", resume=True,
        progress=False)
    np.testing.assert_array_equal(read_trajectory(tmp_path / "moved").xyz,
                                  read_trajectory(tmp_path / "whole").xyz)
