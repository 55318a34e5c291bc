"""Extended XYZ datasets: round trips against ASE itself, both label conventions, errors."""

import ase.io
import numpy as np
import pytest
from ase import Atoms

from omm_symbreak.data import Frame, read_datasets, read_frames, write_frames


def _frames(rng):
    periodic = Frame(atomic_numbers=[8, 1, 1, 8, 1, 1], positions_angstrom=rng.normal(size=(6, 3)),
                     cell_angstrom=[[6.0, 0, 0], [0.5, 6.5, 0], [0.2, 0.3, 7.0]],
                     energy_ev=-12.345678, forces_ev_per_angstrom=rng.normal(size=(6, 3)),
                     info={"temperature_K": 300.0, "system": "box", "state": 2})
    cluster = Frame(atomic_numbers=[8, 1, 1], positions_angstrom=rng.normal(size=(3, 3)),
                    energy_ev=0.5, forces_ev_per_angstrom=rng.normal(size=(3, 3)))
    return [periodic, cluster]


def test_round_trip_against_ase(tmp_path):
    frames = _frames(np.random.default_rng(0))
    path = write_frames(tmp_path / "set.extxyz", frames)
    images = ase.io.read(path, index=":")
    assert len(images) == 2
    first, second = images
    assert first.pbc.all() and not second.pbc.any()
    assert np.allclose(first.cell[:], frames[0].cell_angstrom)
    assert first.get_potential_energy() == pytest.approx(-12.345678)
    assert np.allclose(first.get_forces(), frames[0].forces_ev_per_angstrom, atol=1e-7)
    assert np.allclose(first.positions, frames[0].positions_angstrom, atol=1e-7)
    assert first.info["temperature_K"] == 300.0 and first.info["system"] == "box"
    assert "Lattice=" in path.read_text().splitlines()[1]

    back = read_frames(path)
    assert back[1].cell_angstrom is None
    for original, copy in zip(frames, back):
        assert np.array_equal(copy.atomic_numbers, original.atomic_numbers)
        assert copy.energy_ev == pytest.approx(original.energy_ev)
        assert np.allclose(copy.forces_ev_per_angstrom, original.forces_ev_per_angstrom, atol=1e-7)
    assert back[0].info == {"temperature_K": 300.0, "system": "box", "state": 2}


def test_reads_files_written_by_ase_without_our_writer(tmp_path):
    rng = np.random.default_rng(1)
    atoms = Atoms("OH2", positions=rng.normal(size=(3, 3)), cell=np.eye(3) * 5, pbc=True)
    atoms.info["energy"] = -3.0
    atoms.arrays["forces"] = rng.normal(size=(3, 3))
    other = atoms.copy()
    other.info["REF_energy"] = 1.25
    other.arrays["REF_forces"] = np.ones((3, 3))
    ase.io.write(tmp_path / "a.extxyz", atoms)
    ase.io.write(tmp_path / "b.extxyz", other)
    frame, = read_frames(tmp_path / "a.extxyz")
    assert frame.energy_ev == -3.0 and np.allclose(frame.forces_ev_per_angstrom, atoms.arrays["forces"])
    assert np.allclose(frame.cell_angstrom, np.eye(3) * 5)
    custom, = read_frames(tmp_path / "b.extxyz", energy_key="REF_energy", forces_key="REF_forces")
    assert custom.energy_ev == 1.25 and np.all(custom.forces_ev_per_angstrom == 1.0)
    assert len(read_datasets([tmp_path / "a.extxyz", tmp_path / "a.extxyz"])) == 2


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset file"):
        read_frames(tmp_path / "missing.extxyz")
    ase.io.write(tmp_path / "bare.extxyz", Atoms("OH2", positions=np.eye(3)))
    with pytest.raises(ValueError, match=r"frame 0: no energy and no forces"):
        read_frames(tmp_path / "bare.extxyz")
    assert read_frames(tmp_path / "bare.extxyz", require_labels=False)[0].energy_ev is None
    only_energy = Atoms("OH2", positions=np.eye(3))
    only_energy.info["energy"] = 1.0
    ase.io.write(tmp_path / "energy.extxyz", only_energy)
    with pytest.raises(ValueError, match="no forces"):
        read_frames(tmp_path / "energy.extxyz")
    (tmp_path / "empty.extxyz").write_text("")
    with pytest.raises(ValueError):
        read_frames(tmp_path / "empty.extxyz")
    frames = _frames(np.random.default_rng(2))
    write_frames(tmp_path / "set.extxyz", frames)
    with pytest.raises(FileExistsError, match="--force"):
        write_frames(tmp_path / "set.extxyz", frames)
    write_frames(tmp_path / "set.extxyz", frames[:1], force=True)
    assert len(read_frames(tmp_path / "set.extxyz")) == 1
    with pytest.raises(ValueError, match="shape"):
        Frame([8, 1], np.zeros((3, 3)))
