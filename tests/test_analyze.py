"""``omm-symbreak analyze``: observables of real (short) run directories."""

import json
import shutil

import numpy as np
import openmm.app as app
import openmm.unit as unit
import pytest
import torch

from conftest import tiny_model, water_positions_angstrom, water_topology
from omm_symbreak.cli import main
from omm_symbreak.model import save_model
from omm_symbreak.frames import truncate_dcd
from omm_symbreak.rundir import read_trajectory, truncate_csv
from omm_symbreak.settings import RunSettings
from omm_symbreak.simulate import run
from omm_symbreak.units import angstrom_to_nm


def gentle_model():
    """The tiny model with its network energy scaled by 0.02. It does not bind water: runs of
    it are kept short and cold so that the molecules stay within simulate's checks (O-H
    bonds, temperature)."""
    model = tiny_model(dtype=torch.float32)
    model.energy_scale.fill_(0.02)
    return model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A water-molecule run and a periodic 27-molecule box run of the tiny model, 30 K."""
    root = tmp_path_factory.mktemp("analyze")
    checkpoint = root / "tiny.ckpt"
    save_model(gentle_model(), checkpoint)
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
                               checkpoint_interval=160, diagnostic_grid="1i", seed=3,
                               temperature_k=30.0)
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
    # 0.04 ps: the MSD is still ballistic, no D
    assert trajectory["diffusion"].startswith("too short for diffusion")
    # the molecules sit on a 0.31 nm lattice (jittered): the first O-O peak is near there
    assert 0.2 < trajectory["g_oo"]["first_peak_nm"] < 0.4
    assert trajectory["c_uu_order_1"]["c"][0] == pytest.approx(1.0)  # <u(0).u(0)> = 1


def test_analyze_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 2
    assert "run.json" in capsys.readouterr().err


@pytest.fixture(scope="module")
def short_runs(runs, tmp_path_factory):
    """Water-molecule runs (NVE, 5 K) with as many diagnostics rows and frames as a 0.15 ps run
    at the README's time step and default intervals (0.5 fs, every 100 steps: 4), made of 30
    steps with an output every 10: "rows4"; "rows3", that run cut at step 20 as a kill would
    leave it; "no_grid": 40 steps with --diagnostic-grid none."""
    root = tmp_path_factory.mktemp("short")
    model = str(runs["monomer"].parent / "tiny.ckpt")
    common = dict(system="water-monomer", model=model, ensemble="nve", temperature_k=5.0,
                  state_interval=10, trajectory_interval=10, diagnostics_interval=10)
    rows4 = RunSettings(steps=30, checkpoint_interval=30, **common)
    directories = {"rows4": run(rows4, root / "rows4", progress=False)}
    directories["rows3"] = shutil.copytree(directories["rows4"], root / "rows3")
    for name in ("state.csv", "diagnostics.csv"):
        truncate_csv(directories["rows3"] / name, 20)
    truncate_dcd(directories["rows3"] / "trajectory.dcd", 3)
    no_grid = RunSettings(steps=40, checkpoint_interval=40, diagnostic_grid="none", **common)
    directories["no_grid"] = run(no_grid, root / "no_grid", progress=False)
    return directories


def test_short_runs_analyze_with_the_default_blocks(short_runs, capsys):
    assert main(["analyze", str(short_runs["rows4"])]) == 0
    out = capsys.readouterr().out
    assert "the default 4 reduced" in out  # 4 rows and 4 frames: 2 blocks of 2 frames
    result = json.loads((short_runs["rows4"] / "analysis" / "observables.json").read_text())
    assert result["n_blocks"] == 2 and result["frames"] == 4
    assert result["diagnostics"]["delta_kj_mol"]["std"] > 0  # the raw model is not invariant
    assert main(["analyze", str(short_runs["rows4"]), "--blocks", "3"]) == 2
    assert "pass --blocks 2 or fewer" in capsys.readouterr().err


def test_a_run_too_short_for_two_blocks_names_the_options(short_runs, capsys):
    assert main(["analyze", str(short_runs["rows3"])]) == 2
    err = capsys.readouterr().err
    assert "3 trajectory frames" in err and "--trajectory-interval" in err


def test_delta_without_a_diagnostic_grid_is_not_measured(short_runs, capsys):
    assert main(["analyze", str(short_runs["no_grid"])]) == 0
    assert "not measured" in capsys.readouterr().out
    result = json.loads((short_runs["no_grid"] / "analysis" / "observables.json").read_text())
    assert result["diagnostics"]["delta_kj_mol"].startswith("not measured")
    assert "power_spectrum_delta" not in result["diagnostics"]


def test_diffusion_needs_lags_past_the_caging_regime():
    """Block MSDs 6 D t + 0.01 nm^2 (D = 0.23 nm^2/ps, liquid water) with noise: D comes back
    from lags to 3 ps (fit 0.6-3 ps); lags to 1.2 ps give no number."""
    from omm_symbreak.analyze import diffusion_observables

    rng = np.random.default_rng(0)
    d_nm2_per_ps = 0.23
    for longest_ps, expected in ((3.0, d_nm2_per_ps), (1.2, None)):
        lag = np.arange(0.0, longest_ps + 1e-9, 0.02)
        block_msd = 6 * d_nm2_per_ps * lag + 0.01 + rng.normal(scale=0.002, size=(4, len(lag)))
        fit_range, diffusion = diffusion_observables(lag, block_msd, 4)
        if expected is None:
            assert fit_range is None and diffusion.startswith("too short for diffusion")
        else:
            assert fit_range == pytest.approx([0.6, 3.0])
            assert diffusion["nm2_per_ps"] == pytest.approx(expected, rel=0.01)
            assert diffusion["1e-5_cm2_per_s"] == pytest.approx(1000 * diffusion["nm2_per_ps"])


def _labelled_panels(figure):
    """The figure's panels (colour bars left out) and their y labels."""
    panels = [axis for axis in figure.axes if axis.get_label() != "<colorbar>"]
    return panels, [axis.get_ylabel() for axis in panels]


def test_the_monomer_figure_has_angular_momentum_and_torque_panels_all_labelled(runs):
    from omm_symbreak.analyze import analyze_run, observables_figure
    from omm_symbreak.rundir import read_diagnostics

    result = analyze_run(runs["monomer"], n_blocks=2)
    figure = observables_figure(result)
    panels, labels = _labelled_panels(figure)
    assert all(labels), labels
    titles = [axis.get_title() for axis in panels]
    momentum = panels[[t.startswith("angular momentum") for t in titles].index(True)]
    torque = panels[[t.startswith("net torque") for t in titles].index(True)]
    diagnostics = read_diagnostics(runs["monomer"] / "diagnostics.csv")
    for axis, name in ((momentum, "L"), (torque, "torque")):
        for line, component in zip(axis.get_lines(), "xyz"):
            np.testing.assert_allclose(line.get_ydata(), diagnostics[f"{name}_{component}"])
    assert "amu nm$^2$/ps" in momentum.get_ylabel() and "kJ/mol" in torque.get_ylabel()


def test_spectra_say_what_a_coarse_interval_misses():
    """50 fs (the default output): Nyquist 1 / (2 c dt) = 333.6 cm^-1, bend and stretch missing,
    shown from 1 / (2 c 3800 cm^-1) = 4.4 fs on; 2.5 fs misses nothing."""
    from omm_symbreak.analyze import spectra_note

    note = spectra_note(0.05)
    assert "334 cm^-1" in note and "bend" in note and "stretch" in note and "4.4 fs" in note
    assert spectra_note(0.0025) is None
    assert "stretch" in spectra_note(0.005) and "bend" not in spectra_note(0.005)


def test_the_spectra_panel_and_the_log_carry_the_note(runs, capsys, monkeypatch):
    import omm_symbreak.analyze as analyze_module
    from omm_symbreak.cli import main

    result = analyze_module.analyze_run(runs["monomer"], n_blocks=2)
    assert result["diagnostics"]["spectra_note"] is None  # 2.5 fs diagnostics: nothing missed
    result["diagnostics"]["spectra_note"] = analyze_module.spectra_note(0.05)
    panel = [axis for axis in analyze_module.observables_figure(result).axes
             if axis.get_title() == "power spectra"][0]
    assert any("334 cm^-1" in text.get_text().replace("\n", " ") for text in panel.texts)
    monkeypatch.setattr(analyze_module, "analyze_run", lambda *args: result)
    assert main(["analyze", str(runs["monomer"]), "--blocks", "2"]) == 0
    assert "note: spectra stop at 334 cm^-1" in capsys.readouterr().out


def test_the_liquid_figure_is_a_grid_with_every_y_axis_labelled(runs):
    from omm_symbreak.analyze import analyze_run, observables_figure

    figure = observables_figure(analyze_run(runs["box"], n_blocks=2))
    panels, labels = _labelled_panels(figure)
    assert len(panels) == 8 and all(labels), labels
    rows = {round(axis.get_position().y0, 2) for axis in panels}
    width, height = figure.get_size_inches()
    assert len(rows) == 3 and width / height < 1.5


def test_the_anisotropy_is_shown_with_its_isotropic_noise_baseline(runs):
    from omm_symbreak.analyze import analyze_run, observables_figure

    result = analyze_run(runs["box"], n_blocks=2)
    orientation = result["trajectory"]["orientation"]
    assert orientation["isotropic_baseline_95"] > 0
    title = observables_figure(result).axes[0].get_title()
    assert f"< {orientation['isotropic_baseline_95']:.2g} in 95%" in title
