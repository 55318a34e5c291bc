"""Simulations: settings, strategies, outputs, resume after kill -9, explosions, bad input."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mdtraj
import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest
import torch

from conftest import WATER_ANGSTROM, tiny_model
from omm_symbreak.model import save_model
from omm_symbreak.potential import create_system
from omm_symbreak.rundir import read_diagnostics
from omm_symbreak.settings import RunSettings
from omm_symbreak.simulate import SimulationError, make_integrator, run
from omm_symbreak.units import angstrom_to_nm


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "tiny.ckpt"
    save_model(tiny_model(dtype=torch.float32), path)
    return str(path)


def unbound_molecule_pdb(path: Path) -> str:
    """Write the water molecule as residue MOL to the PDB file ``path``; returns the path. The
    tiny random model does not bind water, and the O-H bond checks of a run apply to residues
    HOH only: runs of thousands of steps with the tiny model use this molecule."""
    topology = app.Topology()
    residue = topology.addResidue("MOL", topology.addChain())
    for name, element in (("O", app.element.oxygen), ("H1", app.element.hydrogen),
                          ("H2", app.element.hydrogen)):
        topology.addAtom(name, element, residue)
    with open(path, "w") as handle:
        app.PDBFile.writeFile(topology, angstrom_to_nm(WATER_ANGSTROM) * unit.nanometer, handle)
    return str(path)


@pytest.fixture
def molecule(tmp_path):
    return unbound_molecule_pdb(tmp_path / "molecule.pdb")


def diagnostics_of(directory):
    return read_diagnostics(directory / "diagnostics.csv")


def quick(checkpoint, **changes):
    """Short water-molecule settings; ``changes`` replace any of them (the grid of the changed
    strategy resolves from its default)."""
    base = dict(system="water-monomer", model=checkpoint, steps=40, state_interval=10,
                trajectory_interval=10, diagnostics_interval=10, checkpoint_interval=20)
    return RunSettings(**{**base, **changes})


def grid_of(strategy: str, spec: str):
    """``spec`` for the strategies with a grid (full, mts), the default (none) for the others."""
    return spec if strategy in ("full", "mts") else None


def test_grids_resolve_to_canonical_notation_and_are_parsed_once():
    full, raw = RunSettings("water-monomer", strategy="full"), RunSettings("water-monomer")
    # the default: the cheapest grid exact to l = 3 with every odd l, as the study's 2i is
    assert (full.grid, raw.grid) == ("Ti", "none") and full.diagnostic_grid == "Ti"
    assert full.rotation_grid.spec == "Ti" and raw.rotation_grid.spec == "none"
    assert RunSettings("water-monomer", strategy="mts", grid="exact:3i").grid == "Ti"
    odd = RunSettings("water-monomer", strategy="mts", grid=" Lebedev:3I ", diagnostic_grid="1I")
    assert (odd.grid, odd.diagnostic_grid) == ("lebedev:3i", "1i")
    assert odd.diagnostic_rotation_grid.spec == "1i"
    assert json.loads(json.dumps(dataclasses.asdict(odd)))["grid"] == "lebedev:3i"
    for strategy in ("none", "random"):
        with pytest.raises(ValueError, match="--grid applies to strategies full and mts"):
            RunSettings("water-monomer", strategy=strategy, grid="2i")
        assert RunSettings("water-monomer", strategy=strategy, grid="none").grid == "none"


def test_importing_the_md_driver_does_not_import_mdtraj():
    subprocess.run([sys.executable, "-c", "import omm_symbreak.simulate, sys; "
                    "assert 'mdtraj' not in sys.modules"], check=True)


def test_mts_with_stride_1_coincides_with_full_averaging(water_box):
    """Reference platform, float64 model: the MTS splitting (raw fast + correction slow) with
    k = 1 integrates the same forces as the grid-averaged model."""
    topology, positions_angstrom, _ = water_box
    positions, box = angstrom_to_nm(positions_angstrom), topology.getPeriodicBoxVectors()
    model = tiny_model(dtype=torch.float64)
    trajectories = {}
    for strategy in ("full", "mts"):
        settings = RunSettings(system="water-box", strategy=strategy, grid="1i", mts_stride=1,
                               ensemble="nve", timestep_fs=0.5)
        system = create_system(topology, model, strategy, settings.rotation_grid)
        context = openmm.Context(system, make_integrator(settings),
                                 openmm.Platform.getPlatformByName("Reference"))
        context.setPeriodicBoxVectors(*box)
        context.setPositions(positions)
        context.setVelocitiesToTemperature(300, 1)
        context.getIntegrator().step(3)
        trajectories[strategy] = context.getState(positions=True).getPositions(asNumpy=True)._value
    np.testing.assert_allclose(trajectories["mts"], trajectories["full"], rtol=0, atol=1e-12)


def test_every_strategy_runs_and_writes_documented_outputs(tmp_path, checkpoint):
    for strategy, ensemble in [("none", "nve"), ("full", "nvt"), ("mts", "nve"), ("random", "nvt")]:
        directory = tmp_path / strategy
        settings = quick(checkpoint, strategy=strategy, ensemble=ensemble,
                         grid=grid_of(strategy, "1i"), diagnostic_grid="1i", velocities=True,
                         mts_stride=2 if strategy == "mts" else 4)
        run(settings, directory, progress=False)
        trajectory = mdtraj.load(str(directory / "trajectory.dcd"), top=str(directory / "topology.pdb"))
        assert trajectory.n_frames == 5
        diagnostics = diagnostics_of(directory)
        assert list(diagnostics["step"]) == [0, 10, 20, 30, 40]
        np.testing.assert_allclose(diagnostics["time_ps"], [0, 0.005, 0.01, 0.015, 0.02])
        assert np.all(np.isfinite(diagnostics["delta_kj_mol"]))
        velocities = mdtraj.load(str(directory / "velocities.dcd"), top=str(directory / "topology.pdb"))
        assert velocities.n_frames == 5
    header = (tmp_path / "none" / "diagnostics.csv").read_text()
    assert "kJ/mol" in header and "amu nm^2/ps" in header


@pytest.mark.parametrize("system", ["liquid-64", "liquid-256", "ice-ih"])
def test_every_strategy_runs_on_every_periodic_template(tmp_path, checkpoint, system):
    """Four steps of each strategy; the water molecule is covered by the test above."""
    for strategy, ensemble in [("none", "nve"), ("full", "nvt"), ("mts", "nve"), ("random", "nvt")]:
        settings = quick(checkpoint, system=system, strategy=strategy, ensemble=ensemble,
                         grid=grid_of(strategy, "1i"), diagnostic_grid="1i", steps=4,
                         state_interval=2, trajectory_interval=2, diagnostics_interval=2,
                         checkpoint_interval=4, mts_stride=2)
        directory = run(settings, tmp_path / f"{system}-{strategy}", progress=False)
        diagnostics = diagnostics_of(directory)
        assert list(diagnostics["step"]) == [0, 2, 4]
        assert np.all(np.isfinite(diagnostics["potential_kj_mol"]))


@pytest.mark.parametrize("changes", [dict(strategy="random"),
                                     dict(strategy="mts", grid="T+random", mts_stride=2)])
def test_random_strategy_and_turned_grids_are_reproducible_for_a_seed(tmp_path, checkpoint,
                                                                       changes):
    first = run(quick(checkpoint, **changes), tmp_path / "a", progress=False)
    second = run(quick(checkpoint, **changes), tmp_path / "b", progress=False)
    third = run(quick(checkpoint, seed=1, **changes), tmp_path / "c", progress=False)
    a, b, c = (diagnostics_of(d) for d in (first, second, third))
    np.testing.assert_array_equal(a["potential_kj_mol"], b["potential_kj_mol"])
    assert not np.array_equal(a["potential_kj_mol"], c["potential_kj_mol"])


def test_nve_conserves_angular_momentum_of_the_averaged_model_better_than_raw(
        tmp_path, checkpoint, molecule):
    wander = {}
    for strategy in ("none", "full"):
        directory = run(quick(checkpoint, system=molecule, strategy=strategy,
                              grid=grid_of(strategy, "2i"),
                              ensemble="nve", steps=200, diagnostics_interval=20,
                              precision="double", platform="Reference"),
                        tmp_path / strategy, progress=False)
        diagnostics = diagnostics_of(directory)
        wander[strategy] = np.abs(np.diff(np.stack([diagnostics[f"L_{a}"] for a in "xyz"]))).max()
    assert wander["full"] < wander["none"] / 10


def test_bad_inputs_fail_before_any_simulation(tmp_path, checkpoint):
    cases = {
        "unknown system": (dict(system="lava"), "available"),
        "unknown strategy": (dict(strategy="sometimes"), "unknown --strategy"),
        "unknown grid": (dict(strategy="full", grid="7x"), "lebedev:L"),
        "grid without use": (dict(strategy="none", grid="1i"), "--grid applies"),
        "random with NVE": (dict(strategy="random", ensemble="nve"), "thermostat"),
        "turned grid with NVE": (dict(strategy="mts", grid="T+random", ensemble="nve",
                                      mts_stride=2), "thermostat"),
        "turned diagnostic grid": (dict(diagnostic_grid="Ti+random"), "fixed grid"),
        "mts stride": (dict(strategy="mts", mts_stride=3), "multiple"),
    }
    for name, (changes, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            run(quick(checkpoint, **changes), tmp_path / name.replace(" ", "-"), progress=False)
        assert not (tmp_path / name.replace(" ", "-")).exists(), name
    run(quick(checkpoint), tmp_path / "done", progress=False)
    with pytest.raises(ValueError, match="different run"):
        run(quick(checkpoint, seed=5), tmp_path / "done", progress=False)
    with pytest.raises(ValueError, match="--resume"):
        run(quick(checkpoint), tmp_path / "done", progress=False)

    sodium = app.Topology()
    residue = sodium.addResidue("NA", sodium.addChain())
    sodium.addAtom("NA", app.element.sodium, residue)
    with open(tmp_path / "sodium.pdb", "w") as handle:
        app.PDBFile.writeFile(sodium, [[0.0, 0.0, 0.0]] * unit.nanometer, handle)
    with pytest.raises(ValueError, match=r"not Na \(sodium\)"):
        run(quick(checkpoint, system=str(tmp_path / "sodium.pdb")), tmp_path / "na", progress=False)


def test_explosion_stops_with_a_clear_message_and_keeps_good_frames(tmp_path, checkpoint):
    """The tiny random model does not bind water: within tens of steps of liquid-64 some
    molecules dissociate or collapse, which stops the run."""
    settings = quick(checkpoint, system="liquid-64", steps=400, diagnostic_grid="none",
                     checkpoint_interval=200)
    with pytest.raises(SimulationError, match=r"last good frame, step (\d+)") as error:
        run(settings, tmp_path / "boom", progress=False)
    last_good = int(error.value.args[0].split("last good frame, step ")[1].split()[0])
    diagnostics = diagnostics_of(tmp_path / "boom")
    assert diagnostics["step"][-1] == last_good
    assert np.all(np.isfinite(diagnostics["potential_kj_mol"]))
    trajectory = mdtraj.load(str(tmp_path / "boom" / "trajectory.dcd"),
                             top=str(tmp_path / "boom" / "topology.pdb"))
    assert trajectory.n_frames == last_good // 10 + 1
    assert np.all(np.isfinite(trajectory.xyz))


@pytest.mark.parametrize("strategy, ensemble", [("none", "nvt"), ("mts", "nve")])
def test_energies_fetched_only_for_rows_leave_the_dynamics_unchanged(tmp_path, checkpoint,
                                                                      strategy, ensemble):
    """A state is fetched with energies only where a state or diagnostics row needs them (with
    MTS a fetch costs the whole grid). The frames do not depend on it: a run with rows every
    frame and one with rows every 10th frame write the same trajectory, bit for bit, and the
    same rows where both have one. (Not MTS with Langevin: there a fetch of the energies moves
    OpenMM's random-number stream, the module docstring of ``simulate`` says.)"""
    base = quick(checkpoint, strategy=strategy, grid=grid_of(strategy, "1i"), mts_stride=2,
                 ensemble=ensemble, steps=40, trajectory_interval=2, checkpoint_interval=40)
    every = run(dataclasses.replace(base, state_interval=2, diagnostics_interval=2),
                tmp_path / "every", progress=False)
    sparse = run(dataclasses.replace(base, state_interval=20, diagnostics_interval=20),
                 tmp_path / "sparse", progress=False)

    def frames(directory):
        return mdtraj.load(str(directory / "trajectory.dcd"),
                           top=str(directory / "topology.pdb")).xyz

    assert frames(every).shape == (21, 3, 3)
    np.testing.assert_array_equal(frames(every), frames(sparse))
    every_rows, sparse_rows = diagnostics_of(every), diagnostics_of(sparse)
    assert list(sparse_rows["step"]) == [0, 20, 40]
    for column in ("potential_kj_mol", "kinetic_kj_mol", "delta_kj_mol"):
        np.testing.assert_array_equal(every_rows[column][::10], sparse_rows[column])


def test_the_check_without_energies_takes_openmms_temperature_from_the_velocities():
    """On a system without forces OpenMM's kinetic energy is sum m v^2 / 2 whatever the
    integrator: the check's temperature of a state without energies must equal OpenMM's."""
    from omm_symbreak.simulate import StateCheck
    from omm_symbreak.systems import load_structure

    topology, positions = load_structure("water-monomer")
    system = openmm.System()
    masses = np.array([1.0, 16.0, 2.5])
    for mass in masses:
        system.addParticle(mass)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    context.setVelocitiesToTemperature(300.0, 7)
    with_energy = context.getState(getVelocities=True, getPositions=True, getEnergy=True)
    check = StateCheck(RunSettings("water-monomer"), topology, 0.0, masses)
    velocities = with_energy.getVelocities(asNumpy=True).value_in_unit(
        unit.nanometer / unit.picosecond)
    assert check.temperature_from_velocities_k(velocities) == pytest.approx(
        check.temperature_k(with_energy), rel=1e-12)
    # ten times hotter than the 2000 K floor: caught without the energies too
    context.setVelocities(with_energy.getVelocities() * 10.0)
    hot = context.getState(getVelocities=True, getPositions=True)
    assert "above the limit 2000 K" in check.problem(hot, with_energy=False)


def simulate_command(checkpoint, system, output, *extra):
    return [sys.executable, "-m", "omm_symbreak.cli", "simulate", system, "--model",
            checkpoint, "--steps", "1500", "--state-interval", "10", "--trajectory-interval",
            "10", "--diagnostics-interval", "10", "--checkpoint-interval", "200",
            "--diagnostic-grid", "none", "--seed", "3", "--quiet", "-o", str(output), *extra]


def test_resume_after_kill_minus_9_loses_and_duplicates_nothing(tmp_path, checkpoint, molecule):
    subprocess.run(simulate_command(checkpoint, molecule, tmp_path / "whole"), check=True)
    process = subprocess.Popen(simulate_command(checkpoint, molecule, tmp_path / "killed"))
    diagnostics = tmp_path / "killed" / "diagnostics.csv"
    deadline = time.time() + 300
    while time.time() < deadline:
        if diagnostics.exists() and diagnostics.read_text().count("\n") > 6 + 60:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    rows_at_kill = diagnostics.read_text().count("\n") - 6
    assert 0 < rows_at_kill < 151, "the kill must land mid-run"
    subprocess.run(simulate_command(checkpoint, molecule, tmp_path / "killed", "--resume"),
                   check=True)

    whole, resumed = diagnostics_of(tmp_path / "whole"), diagnostics_of(tmp_path / "killed")
    np.testing.assert_array_equal(resumed["step"], whole["step"])
    np.testing.assert_array_equal(resumed["time_ps"], whole["time_ps"])
    top = str(tmp_path / "whole" / "topology.pdb")
    a = mdtraj.load(str(tmp_path / "whole" / "trajectory.dcd"), top=top)
    b = mdtraj.load(str(tmp_path / "killed" / "trajectory.dcd"), top=top)
    assert a.n_frames == b.n_frames == 151
    # The same trajectory continued (the checkpoint restores the thermostat's random state):
    # identical up to the checkpoint, then close for a while (float32 forces on the CPU
    # platform are not bitwise reproducible, and MD is chaotic).
    checkpoint_frame = (rows_at_kill - 1) * 10 // 200 * 200 // 10
    np.testing.assert_array_equal(b.xyz[:checkpoint_frame + 1], a.xyz[:checkpoint_frame + 1])
    np.testing.assert_allclose(b.xyz[:checkpoint_frame + 10], a.xyz[:checkpoint_frame + 10],
                               atol=1e-4)
    state_steps = [line.split(",")[0] for line in
                   (tmp_path / "killed" / "state.csv").read_text().splitlines()[1:]]
    assert state_steps == [str(10 * i) for i in range(151)]


def test_a_resumed_run_can_be_extended_but_not_changed_or_cut_before_its_checkpoint(
        tmp_path, checkpoint, molecule):
    """400 steps, then resumed to 800: the same run as 800 steps at once, and run.json says 800."""
    subprocess.run(simulate_command(checkpoint, molecule, tmp_path / "whole", "--steps", "800"),
                   check=True)
    subprocess.run(simulate_command(checkpoint, molecule, tmp_path / "part", "--steps", "400"),
                   check=True)
    with pytest.raises(ValueError, match="checkpointed at step 400"):
        run(dataclasses.replace(_stored_settings(tmp_path / "part"), steps=200),
            tmp_path / "part", resume=True, progress=False)
    with pytest.raises(ValueError, match="settings differ: --seed"):
        run(dataclasses.replace(_stored_settings(tmp_path / "part"), steps=800, seed=4),
            tmp_path / "part", resume=True, progress=False)
    # a changed default reads as a changed setting: the message names both values
    with pytest.raises(ValueError, match="--diagnostic-grid none in the run, Ti now"):
        run(dataclasses.replace(_stored_settings(tmp_path / "part"), steps=800,
                                diagnostic_grid="Ti"), tmp_path / "part", resume=True,
            progress=False)
    original = Path(checkpoint).read_bytes()  # the same path, another model: refused
    save_model(tiny_model(seed=1, dtype=torch.float32), checkpoint)
    with pytest.raises(ValueError, match="run with another model"):
        run(dataclasses.replace(_stored_settings(tmp_path / "part"), steps=800),
            tmp_path / "part", resume=True, progress=False)
    Path(checkpoint).write_bytes(original)
    copy = tmp_path / "copy.ckpt"  # another path, the same model: accepted
    copy.write_bytes(original)
    run(dataclasses.replace(_stored_settings(tmp_path / "part"), steps=400, model=str(copy)),
        tmp_path / "part", resume=True, progress=False)
    # the checkpoint interval may change on resume (it changes what an interruption loses,
    # not the trajectory)
    subprocess.run(simulate_command(checkpoint, molecule, tmp_path / "part", "--steps", "800",
                                    "--resume", "--checkpoint-interval", "300"), check=True)

    assert _stored_settings(tmp_path / "part").steps == 800
    whole, extended = diagnostics_of(tmp_path / "whole"), diagnostics_of(tmp_path / "part")
    np.testing.assert_array_equal(extended["step"], whole["step"])
    top = str(tmp_path / "whole" / "topology.pdb")
    a = mdtraj.load(str(tmp_path / "whole" / "trajectory.dcd"), top=top)
    b = mdtraj.load(str(tmp_path / "part" / "trajectory.dcd"), top=top)
    assert a.n_frames == b.n_frames == 81
    np.testing.assert_array_equal(b.xyz[:41], a.xyz[:41])
    np.testing.assert_allclose(b.xyz[:50], a.xyz[:50], atol=1e-4)


def _stored_settings(directory):
    return RunSettings(**json.loads((directory / "run.json").read_text())["settings"])
