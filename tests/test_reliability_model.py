"""Bad structures, absurd grids, unbounded memory and unreadable model files (issue 17, items 3,
5, 6 and 7): refused before any work with a message a user can act on, or kept bounded."""

import pickle

import numpy as np
import pytest
import torch

from conftest import tiny_model, water_topology
from omm_symbreak.cli import main
from omm_symbreak.grids import check_grid_size, parse_grid
from omm_symbreak.kernel import Batching, RotatedCopies
from omm_symbreak.model_kinds.builtin import PETAdapter
from omm_symbreak.model import load_model, save_model
from omm_symbreak.potential import create_system
from omm_symbreak.structure_checks import close_pairs
from omm_symbreak.units import angstrom_to_nm


def test_overlapping_atoms_are_refused_naming_them(water_box, water_cluster):
    topology, positions, cell = water_box
    stacked = positions.copy()
    stacked[3] = stacked[0]  # the O of molecule 1 on the O of molecule 0
    with pytest.raises(ValueError, match=r"atoms 0 \(O of HOH 0\) and 3 \(O of HOH 1\) are 0.000"):
        create_system(topology, tiny_model(), positions=angstrom_to_nm(stacked))
    imaged = positions.copy()
    imaged[6] = imaged[0] + cell[1] + [0.1, 0, 0]  # 0.1 Angstrom from a periodic image of 0
    with pytest.raises(ValueError, match=r"atoms 0 .* and 6 .* are 0.100 Angstrom apart"):
        create_system(topology, tiny_model(), positions=angstrom_to_nm(imaged))
    cluster_topology, cluster = water_cluster
    create_system(cluster_topology, tiny_model(), positions=angstrom_to_nm(cluster))


def test_close_pairs_agree_with_a_brute_force_minimum_image():
    rng = np.random.default_rng(4)
    cell = np.array([[5.0, 0, 0], [0.8, 4.6, 0], [0.3, -0.5, 5.2]])
    positions = rng.uniform(0, 5, size=(60, 3))
    found = {(i, j): d for i, j, d in close_pairs(positions, cell, 0.9)}
    shifts = np.array([[a, b, c] for a in (-2, -1, 0, 1, 2) for b in (-2, -1, 0, 1, 2)
                       for c in (-2, -1, 0, 1, 2)]) @ cell
    expected = {}
    for i in range(60):
        for j in range(i + 1, 60):
            d = np.linalg.norm(positions[j] + shifts - positions[i], axis=1).min()
            if d < 0.9:
                expected[(i, j)] = d
    assert found.keys() == expected.keys() and len(found) > 0
    np.testing.assert_allclose([found[k] for k in expected], list(expected.values()), rtol=1e-12)


class RecordingAdapter(PETAdapter):
    """The built-in adapter, recording how many copies each model call gets."""

    def __init__(self, model):
        super().__init__(model)
        self.calls = []

    def copies(self, prepared, rotations):
        self.calls.append(len(rotations))
        return super().copies(prepared, rotations)


def test_rotated_copies_go_through_in_chunks_within_the_memory_budget(water_box):
    """The weighted energy and its forces from chunks of the budget's size equal those of one
    evaluation per rotated structure (the raw model on R x, cell rotated too)."""
    _, positions, cell = water_box
    model, grid = tiny_model(), parse_grid("2i")
    types = torch.tensor([1, 0, 0] * 8)
    adapter = RecordingAdapter(model)
    x = torch.tensor(positions, requires_grad=True)
    per_copy = adapter.bytes_per_copy(adapter.prepare(types, x.detach(), torch.tensor(cell)))
    kernel = RotatedCopies(adapter, memory_budget_bytes=5 * per_copy,
                           batching=Batching(cpu_batch_atoms=10**6))
    energy = kernel.weighted(types, x, torch.tensor(cell), torch.tensor(grid.rotations),
                             torch.tensor(grid.weights))
    (forces,) = torch.autograd.grad(-energy, x)
    assert adapter.calls == [5] * 7 + [1]  # 36 copies, 5 at a time
    raw = RotatedCopies(PETAdapter(model))
    expected_energy, expected_forces = 0.0, np.zeros_like(positions)
    for rotation, weight in zip(grid.rotations, grid.weights):
        rotated = torch.tensor(positions @ rotation.T, requires_grad=True)
        rotated_cell = torch.tensor(np.linalg.det(rotation) * cell @ rotation.T)
        e = raw(types, rotated, rotated_cell, torch.eye(3, dtype=torch.float64)[None])[0]
        (gradient,) = torch.autograd.grad(e, rotated)
        expected_energy += weight * e.item()
        expected_forces += weight * (-gradient.numpy() @ rotation)
    assert energy.item() == pytest.approx(expected_energy, rel=1e-12)
    np.testing.assert_allclose(forces.numpy(), expected_forces, atol=1e-10)


@pytest.mark.parametrize("batching, calls", [
    (Batching(copies_per_call=1), [1] * 36),  # a model evaluated copy by copy
    (Batching(copies_per_call=8), [8] * 4 + [4]),
    (Batching(), [36]),  # memory unknown, no CPU chunks: one call
    (Batching(cpu_batch_atoms=24 * 10), [10] * 3 + [6]),  # 24 atoms a copy
])
def test_the_models_batching_sets_the_copies_per_call_whatever_the_budget(water_box, batching,
                                                                          calls):
    """A kind's Batching decides the chunks of a kernel whose adapter does not know its memory;
    the weighted energy and forces do not depend on them."""

    class UnknownMemory(RecordingAdapter):
        def bytes_per_copy(self, prepared):
            return None

    _, positions, cell = water_box
    model, grid = tiny_model(), parse_grid("2i")
    types = torch.tensor([1, 0, 0] * 8)
    results = []
    for chosen in (batching, Batching(copies_per_call=36)):
        adapter = UnknownMemory(model)
        kernel = RotatedCopies(adapter, memory_budget_bytes=1, batching=chosen)
        x = torch.tensor(positions, requires_grad=True)
        energy = kernel.weighted(types, x, torch.tensor(cell), torch.tensor(grid.rotations),
                                 torch.tensor(grid.weights))
        results.append((energy.item(), torch.autograd.grad(energy, x)[0].numpy(),
                        adapter.calls))
    (energy, forces, used), (single_energy, single_forces, single) = results
    assert used == calls and single == [36]
    assert energy == pytest.approx(single_energy, rel=1e-12)
    np.testing.assert_allclose(forces, single_forces, atol=1e-10)


def test_frozen_modules_keep_exact_forces(water_box):
    """openmm-torch freezes the modules it loads, and freezing drops ``detach``: the bounded
    chunks must give the same forces frozen as not."""
    from omm_symbreak.export import openmm_module

    topology, positions, cell = water_box
    module = openmm_module(topology, tiny_model(), "full", parse_grid("1i"),
                           memory_budget_bytes=1)
    results = []
    for candidate in (module, torch.jit.freeze(module.eval())):
        x = torch.tensor(angstrom_to_nm(positions), requires_grad=True)
        energy = candidate(x, torch.tensor(angstrom_to_nm(cell)))
        energy.backward()
        results.append((energy.item(), x.grad.numpy()))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-9)


def test_absurd_grids_are_refused_unless_asked_for(tmp_path, capsys):
    with pytest.raises(ValueError, match="30420 rotations.*--allow-large-grid"):
        check_grid_size(parse_grid("20"))
    check_grid_size(parse_grid("20"), allow_large=True)
    check_grid_size(parse_grid("3i"))
    assert main(["export", "--system", "water-monomer", "--strategy", "full", "--grid", "20",
                 "-o", str(tmp_path / "x.pt")]) == 2
    assert "--allow-large-grid" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_export_states_evaluations_and_memory_before_it_starts(tmp_path, capsys):
    model_file = tmp_path / "tiny.ckpt"
    save_model(tiny_model(dtype=torch.float32), model_file)
    assert main(["export", "--model", str(model_file), "--system", "liquid-64", "--strategy",
                 "mts", "--grid", "2i", "--memory-gb", "0.5", "-o", str(tmp_path / "m.pt")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "37 model evaluations per slow step" in first and "memory budget 0.5 GB" in first
    assert main(["export", "--system", "water-monomer", "--memory-gb", "0",
                 "-o", str(tmp_path / "n.pt")]) == 2
    assert "--memory-gb must be positive" in capsys.readouterr().err


def test_too_many_neighbours_says_what_it_means(water_box):
    topology, positions, cell = water_box
    model = tiny_model()
    model.max_neighbors = 6
    squeezed = water_topology(8, cell * 0.7)
    with pytest.raises(ValueError, match="denser than the model's training data") as error:
        create_system(squeezed, model, positions=angstrom_to_nm(positions * 0.7))
    assert "increase max_neighbors" not in str(error.value)


class Payload:
    """A Python object in a file: what ``weights_only`` loading refuses."""


def test_unreadable_model_files_give_a_reason_and_never_advise_unsafe_loading(tmp_path):
    files = {"empty.ckpt": b"", "text.ckpt": b"hello\n",
             "pickle.ckpt": pickle.dumps({"format": "omm-symbreak-pet-1"})}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"format": "omm-symbreak-pet-1", "payload": Payload()}, tmp_path / "object.ckpt")
    save_model(tiny_model(), tmp_path / "good.ckpt")
    whole = (tmp_path / "good.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(whole[:len(whole) // 2])
    reasons = {"empty.ckpt": "is empty", "text.ckpt": "not a torch.save archive",
               "pickle.ckpt": "not a torch.save archive",
               "object.ckpt": "could run arbitrary code", "cut.ckpt": "not a torch.save archive"}
    for name, reason in reasons.items():
        with pytest.raises(ValueError, match=reason) as error:
            load_model(tmp_path / name)
        message = str(error.value) + str(error.value.__cause__ or "")
        assert "weights_only" not in message, name
    load_model(tmp_path / "good.ckpt")
