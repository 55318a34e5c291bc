"""Evaluation: accuracy and rotational error of raw and grid-averaged models."""

import json

import numpy as np
import pytest
import torch

from conftest import tiny_model
from omm_symbreak.cli import main
from omm_symbreak.data import Frame, rotate_frame, write_frames
from omm_symbreak.evaluate import evaluate
from omm_symbreak.grids import parse_grid, random_rotations
from omm_symbreak.model import save_model
from omm_symbreak.predict import energies_and_forces, predict, rotated_predictions


def _self_labelled(model, water_box, water_cluster):
    """A periodic box and a cluster labelled with the model's own energies and forces."""
    _, box_positions, cell = water_box
    _, cluster = water_cluster
    frames = [Frame(np.tile([8, 1, 1], 8), box_positions, cell),
              Frame(np.tile([8, 1, 1], 8), cluster)]
    energies, forces = predict(model, frames)
    for frame, energy, force in zip(frames, energies, forces):
        frame.energy_ev, frame.forces_ev_per_angstrom = float(energy), force
    return frames


def _invariant(model):
    """Zero the x, y, z columns of every block's edge embedding: only distances remain."""
    with torch.no_grad():
        for block in model.blocks:
            block.edge_geometry.weight[:, :3] = 0.0
    return model


def test_rotated_predictions_are_forces_of_the_rotated_structure(water_box):
    model = tiny_model()
    _, positions, cell = water_box
    frame = Frame(np.tile([8, 1, 1], 8), positions, cell)
    rotations = random_rotations(4, np.random.default_rng(0))
    grid = parse_grid("1i")
    energies, forces = rotated_predictions(model, frame, grid.rotations, grid.weights, rotations)
    for rotation, energy, force in zip(rotations, energies, forces):
        copies = [rotate_frame(frame, improper @ rotation) for improper in grid.rotations]
        e, f = energies_and_forces(model, copies)
        assert energy == pytest.approx(float(e.detach().mean()), abs=1e-10)
        expected = np.mean([fi.detach().numpy() @ (g @ rotation) for fi, g in zip(f, grid.rotations)], axis=0)
        assert np.allclose(force, expected, atol=1e-10)  # R^T F(R x), averaged over the grid


def test_self_labelled_and_invariant_model(water_box, water_cluster):
    model = _invariant(tiny_model())
    frames = _self_labelled(model, water_box, water_cluster)
    result = evaluate(model, frames, [parse_grid("1i")], n_rotations=5, seed=1)
    assert set(result["grids"]) == {"none", "1i"}
    for spec, entry in result["grids"].items():
        assert all(value < 1e-6 for value in entry["accuracy"].values()), spec
        assert all(value < 1e-6 for value in entry["rotational"].values()), spec
    assert all(value < 1e-6 for value in result["grids"]["1i"]["difference_from_raw"].values())
    assert result["grids"]["1i"]["evaluations_per_structure"] == 2


def test_symmetry_breaking_model_and_its_averages(water_box, water_cluster):
    model = tiny_model()
    frames = _self_labelled(model, water_box, water_cluster)[:1]
    result = evaluate(model, frames, [parse_grid("2i")], n_rotations=3, seed=2)
    raw, averaged = result["grids"]["none"], result["grids"]["2i"]
    assert all(value < 1e-6 for value in raw["accuracy"].values())
    assert raw["rotational"]["energy_std_mev_per_atom"] > 1e-3
    assert raw["rotational"]["force_std_mev_per_angstrom"] > 1e-2
    for key, value in raw["rotational"].items():
        assert averaged["rotational"][key] < value, key
    assert averaged["difference_from_raw"]["force_rms_mev_per_angstrom"] > 0
    assert averaged["accuracy"]["energy_mae_mev_per_atom"] > 0


def test_cli(water_box, water_cluster, tmp_path, capsys):
    model = tiny_model(dtype=torch.float32)
    frames = _self_labelled(model, water_box, water_cluster)
    write_frames(tmp_path / "test.extxyz", frames)
    save_model(model, tmp_path / "m.ckpt")
    output = tmp_path / "metrics.json"
    command = ["evaluate", "--model", str(tmp_path / "m.ckpt"), str(tmp_path / "test.extxyz"),
               "--rotations", "3", "--grids", "1", "1i", "--grid-rotations", "2", "--max-structures", "1", "--quiet",
               "--float64", "-o", str(output)]
    assert main(command) == 0
    metrics = json.loads(output.read_text())
    assert metrics["n_structures"] == 1 and metrics["dtype"] == "float64"
    assert list(metrics["grids"]) == ["none", "1", "1i"]
    assert metrics["grids"]["none"]["n_rotations"] == 3 and metrics["grids"]["1i"]["n_rotations"] == 2
    # labels were written in float32 and with 8 decimals: small but not zero
    assert metrics["grids"]["none"]["accuracy"]["force_rmse_mev_per_angstrom"] < 1e-2
    assert main(command) == 2
    assert "--force" in capsys.readouterr().err
    bad = ["evaluate", "--model", str(tmp_path / "m.ckpt"), str(tmp_path / "test.extxyz"),
           "--grids", "7x"]
    with pytest.raises(SystemExit, match="2"):
        main(bad)
    assert "invalid rotation grid" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):
        main(bad[:4] + ["--grids", "random"])
    assert "strategy random" in capsys.readouterr().err
    assert main(bad[:4] + ["--grids", "Ti+random", "-o", str(tmp_path / "turned.json")]) == 2
    assert "use Ti" in capsys.readouterr().err and not (tmp_path / "turned.json").exists()
    assert main(["evaluate", "--model", str(tmp_path / "none.ckpt"),
                 str(tmp_path / "test.extxyz")]) == 2


def test_cli_prints_the_cost_first_and_counts_model_evaluations(water_box, water_cluster,
                                                                 tmp_path, capsys):
    model = tiny_model(dtype=torch.float32)
    write_frames(tmp_path / "test.extxyz", _self_labelled(model, water_box, water_cluster))
    save_model(model, tmp_path / "m.ckpt")
    assert main(["evaluate", "--model", str(tmp_path / "m.ckpt"), str(tmp_path / "test.extxyz"),
                 "--rotations", "4", "--grids", "1i", "--grid-rotations", "2"]) == 0
    captured = capsys.readouterr()
    # per structure: the raw model at the file's orientation and 4 rotations, 5 evaluations;
    # grid 1i (2 copies) at the file's orientation and 2 rotations, 6
    assert captured.out.startswith("2 structures x 11 model evaluations")
    assert "model evaluations: 100%" in captured.err and "22/22" in captured.err


def test_the_grids_default_to_a_few_rotations_and_never_more_than_given(water_box,
                                                                          water_cluster):
    model = tiny_model()
    frames = _self_labelled(model, water_box, water_cluster)[:1]
    for n_rotations, expected in ((5, 3), (2, 2)):
        result = evaluate(model, frames, [parse_grid("1")], n_rotations=n_rotations)
        assert result["grids"]["none"]["n_rotations"] == n_rotations
        assert result["grids"]["1"]["n_rotations"] == expected
