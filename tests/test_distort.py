"""Distorted reference frames: the geometry asked for, the rest untouched, q-TIP4P/F labels."""

import numpy as np
import openmm
import pytest
from openmm import unit

from conftest import water_positions_angstrom, water_topology
from omm_symbreak.cli import main
from omm_symbreak.data import Frame, read_frames, write_frames
from omm_symbreak.reference import add_virtual_sites, create_qtip4pf_system
from omm_symbreak.reference.distort import (BEND_DEGREES, PAIR_ANGSTROM, STRETCH_ANGSTROM,
                                            distorted_frames)
from omm_symbreak.reference.sample import sample_states
from omm_symbreak.units import angstrom_to_nm, kj_mol_nm_to_ev_angstrom, kj_mol_to_ev

CELL = np.eye(3) * 9.3


@pytest.fixture(scope="module")
def thermal_frames():
    """27 q-TIP4P/F molecules in a 9.3 Angstrom box, 3 frames."""
    topology = water_topology(27, CELL)
    return sample_states(topology, angstrom_to_nm(water_positions_angstrom(3, 3.1, seed=1)), angstrom_to_nm(CELL),
                         [300.0], n_frames=3, spacing_ps=0.01, equilibration_ps=0.02, seed=2,
                         threads=1)


def _minimum_image(vectors):
    return vectors - np.round(vectors / 9.3) * 9.3


def _qtip4pf(frame: Frame):
    topology = water_topology(27, CELL)
    site_topology, sites = add_virtual_sites(topology, angstrom_to_nm(frame.positions_angstrom))
    context = openmm.Context(create_qtip4pf_system(site_topology), openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(sites)
    context.computeVirtualSites()
    state = context.getState(getEnergy=True, getForces=True)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    forces = kj_mol_nm_to_ev_angstrom(np.asarray(forces).reshape(-1, 4, 3)[:, :3].reshape(-1, 3))
    return kj_mol_to_ev(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)), forces


def test_distortions_have_the_requested_geometry_and_reference_labels(thermal_frames):
    frames = distorted_frames(thermal_frames, 4, n_stretch=2, n_bend=2, n_pairs=2, seed=5,
                              threads=1)
    assert len(frames) == 4
    for frame in frames:
        source = thermal_frames[frame.info["source_frame"]]
        x = frame.positions_angstrom.reshape(-1, 3, 3)
        x0 = source.positions_angstrom.reshape(-1, 3, 3)
        bonds = np.linalg.norm(_minimum_image(x[:, 1:] - x[:, :1]), axis=2)  # [M, 2]
        touched = set()
        for entry in frame.info["distortions"].split(";"):
            kind, molecule, value = entry.split(":")
            molecule, value = int(molecule), float(value)
            touched.add(molecule)
            if kind == "stretch":
                assert STRETCH_ANGSTROM[0] <= value <= STRETCH_ANGSTROM[1]
                assert np.any(np.isclose(bonds[molecule], value, atol=6e-4))  # info: 3 decimals
            elif kind == "bend":
                v1, v2 = _minimum_image(x[molecule, 1:] - x[molecule, 0])
                angle = np.degrees(np.arccos(v1 @ v2 / np.linalg.norm(v1) / np.linalg.norm(v2)))
                assert angle == pytest.approx(value, abs=6e-4)
                assert any(low <= value <= high for low, high in BEND_DEGREES)
            else:
                oo = np.linalg.norm(_minimum_image(x[:, 0] - x[molecule, 0]), axis=1)
                oo[molecule] = np.inf
                assert oo.min() == pytest.approx(value, abs=6e-4)
                assert PAIR_ANGSTROM[0] <= value <= PAIR_ANGSTROM[1]
                partner = int(np.argmin(oo))
                touched.add(partner)
                # a rigid move: the molecule keeps its shape
                np.testing.assert_allclose(x[molecule] - x[molecule, 0], x0[molecule] - x0[molecule, 0],
                                           atol=1e-5)
        untouched = sorted(set(range(27)) - touched)
        np.testing.assert_allclose(_minimum_image(x[untouched] - x0[untouched]), 0, atol=1e-5)
        energy, forces = _qtip4pf(frame)
        # labels come from the CPU platform (single-precision PME), the check from Reference
        assert frame.energy_ev == pytest.approx(energy, abs=1e-4)
        np.testing.assert_allclose(frame.forces_ev_per_angstrom, forces, rtol=1e-4, atol=1e-3)
        assert frame.energy_ev > source.energy_ev  # pushed uphill


def test_cli_distort(thermal_frames, tmp_path, capsys):
    write_frames(tmp_path / "thermal.extxyz", thermal_frames)
    command = ["reference", "distort", str(tmp_path / "thermal.extxyz"), "--frames", "5",
               "--stretch", "1", "--bend", "1", "--pairs", "1", "--threads", "1",
               "-o", str(tmp_path / "d.extxyz")]
    assert main(command) == 0
    assert len(read_frames(tmp_path / "d.extxyz")) == 5
    assert main(command) == 2 and "--force" in capsys.readouterr().err
    too_many = command[:3] + ["--frames", "1", "--pairs", "20", "-o", str(tmp_path / "e.extxyz")]
    assert main(too_many) == 2 and "molecules" in capsys.readouterr().err
    assert not (tmp_path / "e.extxyz").exists()
