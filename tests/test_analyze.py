"""``omm-symbreak analyze``: observables of real (short) run directories."""

import json

import numpy as np
import openmm.app as app
import openmm.unit as unit
import pytest
import torch

from conftest import tiny_model, water_positions_angstrom, water_topology
from omm_symbreak.cli import main
from omm_symbreak.model import save_model
from omm_symbreak.rundir import read_trajectory
from omm_symbreak.settings import RunSettings
from omm_symbreak.simulate import run
from omm_symbreak.units import angstrom_to_nm


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A water-molecule run and a periodic 27-molecule box run of the tiny model."""
    root = tmp_path_factory.mktemp("analyze")
    checkpoint = root / "tiny.ckpt"
    save_model(tiny_model(dtype=torch.float32), checkpoint)
    box_pdb = root / "box.pdb"
    cell = np.eye(3) * 9.3
    with open(box_pdb, "w") as handle:
        positions_nm = angstrom_to_nm(water_positions_angstrom(3, 3.1, seed=1))
        app.PDBFile.writeFile(water_topology(27, cell), positions_nm * unit.nanometer, handle)
    directories = {}
    for name, system in (("monomer", "water-monomer"), ("box", str(box_pdb))):
        settings = RunSettings(system=system, model=str(checkpoint), ensemble="nvt",
                               timestep_fs=0.25, steps=160, state_interval=10,
                               trajectory_interval=10, diagnostics_interval=10,
                               checkpoint_interval=160, diagnostic_grid="1i", seed=3)
        directories[name] = run(settings, root / name, progress=False)
    return directories


def test_trajectory_times_come_from_the_run_settings(runs):
    trajectory = read_trajectory(runs["box"])
    assert trajectory.n_frames == 17  # frame 0 and one every 10 of 160 steps
    np.testing.assert_allclose(trajectory.time, np.arange(17) * 10 * 0.25e-3)


def test_analyze_a_gas_phase_and_a_periodic_run(runs, capsys):
    assert main(["analyze", str(runs["monomer"]), "--blocks", "2"]) == 0
    monomer = json.loads((runs["monomer"] / "analysis" / "observables.json").read_text())
    assert "g_oo" not in monomer["trajectory"]  # one molecule, no box: orientation only
    assert np.isfinite(monomer["trajectory"]["orientation"]["anisotropy"])
    assert (runs["monomer"] / "analysis" / "observables.png").stat().st_size > 0

    assert main(["analyze", str(runs["box"]), "--blocks", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    box = json.loads((runs["box"] / "analysis" / "observables.json").read_text())
    assert box["simulated_ps"] == pytest.approx(160 * 0.25e-3)
    trajectory = box["trajectory"]
    for key in ("g_oo", "orientation_correlations", "msd_oxygen", "diffusion", "c_uu_order_1",
                "c_uu_order_2"):
        assert key in trajectory
    # 1 nm^2/ps = 1e-14 cm^2 / 1e-12 s = 1e-2 cm^2/s = 1000 x 1e-5 cm^2/s
    diffusion = trajectory["diffusion"]
    assert diffusion["1e-5_cm2_per_s"] == pytest.approx(1000 * diffusion["nm2_per_ps"])
    # the molecules sit on a 0.31 nm lattice (jittered): the first O-O peak is near there
    assert 0.2 < trajectory["g_oo"]["first_peak_nm"] < 0.4
    assert trajectory["c_uu_order_1"]["c"][0] == pytest.approx(1.0)  # <u(0).u(0)> = 1


def test_analyze_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 2
    assert "run.json" in capsys.readouterr().err
