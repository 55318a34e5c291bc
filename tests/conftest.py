"""Shared fixtures: a tiny deterministic model and small water structures built from scratch."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest
import torch

import omm_symbreak
from omm_symbreak.grids import random_rotations
from omm_symbreak.model import UnconstrainedPET
from omm_symbreak.units import angstrom_to_nm

TINY_MODEL = dict(atomic_numbers=[1, 8], cutoff=3.0, cutoff_width=0.5, max_neighbors=48,
                  width=16, n_blocks=2, n_layers=1, n_heads=2, ffn_width=32)
WATER_ANGSTROM = np.array([[0.0, 0.0, 0.0], [0.9419, 0.0, 0.0],
                           [0.9419 * np.cos(np.radians(107.4)), 0.9419 * np.sin(np.radians(107.4)), 0.0]])


def tiny_model(seed: int = 0, dtype=torch.float64) -> UnconstrainedPET:
    """A small randomly initialised model; its energies get a realistic spread (eV)."""
    torch.manual_seed(seed)
    model = UnconstrainedPET(**TINY_MODEL).to(dtype)
    model.energy_baseline.copy_(torch.tensor([-13.6, -430.0], dtype=dtype))
    return model.eval()


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """One Haar-random proper rotation [3, 3]."""
    return random_rotations(1, rng, inversion=False)[0]


def water_positions_angstrom(n_per_side: int, spacing: float, seed: int) -> np.ndarray:
    """Randomly oriented water molecules on a cubic lattice, jittered: [3 n^3, 3] Angstrom."""
    rng = np.random.default_rng(seed)
    molecules = []
    for cell in np.ndindex(n_per_side, n_per_side, n_per_side):
        centre = (np.array(cell) + 0.5) * spacing + rng.normal(scale=0.2, size=3)
        molecules.append(WATER_ANGSTROM @ random_rotation(rng).T + centre)
    return np.concatenate(molecules)


def water_topology(n_molecules: int, box_angstrom=None) -> app.Topology:
    """Topology of HOH residues (O, H1, H2, bonded); periodic when ``box_angstrom`` [3,3] given."""
    topology = app.Topology()
    chain = topology.addChain()
    for _ in range(n_molecules):
        residue = topology.addResidue("HOH", chain)
        oxygen = topology.addAtom("O", app.element.oxygen, residue)
        for name in ("H1", "H2"):
            topology.addBond(oxygen, topology.addAtom(name, app.element.hydrogen, residue))
    if box_angstrom is not None:
        vectors = [openmm.Vec3(*map(float, v)) for v in angstrom_to_nm(np.asarray(box_angstrom))]
        topology.setPeriodicBoxVectors(vectors * unit.nanometer)
    return topology


@pytest.fixture
def model():
    return tiny_model()


@pytest.fixture
def water_box():
    """8 water molecules in a periodic 6.2 Angstrom cubic box: (topology, positions Angstrom, cell Angstrom)."""
    cell = np.eye(3) * 6.2
    positions = water_positions_angstrom(2, 3.1, seed=1)
    return water_topology(8, cell), positions, cell


@pytest.fixture
def water_cluster():
    """A non-periodic cluster of 8 water molecules: (topology, positions Angstrom)."""
    return water_topology(8), water_positions_angstrom(2, 3.0, seed=2)


def peak_cpu_bytes(function) -> int:
    """The peak of the bytes torch allocates on the CPU while ``function()`` runs, from the
    profiler's allocation and release events in time order (memory held before the call does
    not count)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as recorded:
        function()
    events = sorted(recorded.events(), key=lambda event: event.time_range.start)
    held = peak = 0
    for event in events:
        held += event.self_cpu_memory_usage
        peak = max(peak, held)
    return peak


def reference_state(system, positions_nm, groups=-1):
    """Energy (kJ/mol) and forces (kJ/mol/nm) of ``groups`` in a Reference-platform Context."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions_nm)
    state = context.getState(getEnergy=True, getForces=True, groups=groups)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


# the analysis scripts of the repository under test (a checkout: analysis/ is not installed)
ANALYSIS = Path(omm_symbreak.__file__).resolve().parent.parent / "analysis"


def analysis_script(name: str):
    """analysis/NAME.py as a module (it may import its neighbours, analysis/figures.py, ...)."""
    sys.path.insert(0, str(ANALYSIS))
    try:
        spec = importlib.util.spec_from_file_location(name, ANALYSIS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ANALYSIS))
    return module
