"""Training data from the reference: q-TIP4P/F molecular dynamics frames of bulk water.

For every thermodynamic state (temperature x density) the template is rescaled to the density,
its energy minimised, equilibrated with Langevin dynamics (``openmm.LangevinMiddleIntegrator``,
dt 0.5 fs, friction 1/ps by default) for ``equilibration_ps``, and then a frame is taken every
``spacing_ps`` (default 0.5 ps, long enough that the potential energy of successive frames is
largely decorrelated; velocities are not stored). Every frame records its spacing, state and
time in ``Frame.info`` (written to the extended XYZ comment line).

Densities: the box and the centres of mass of the molecules are scaled by
``(rho_template / rho) ** (1/3)``; molecules keep their internal geometry.

Labels in model units: the total potential energy in eV and the forces in eV/Angstrom of the
three real atoms O, H1, H2 of every molecule. The System has a massless M site per molecule
(``create_qtip4pf_system``); OpenMM passes the force on M on to O, H1 and H2, so the rows of
the real atoms are complete and the M rows (which still hold the force on M before it was
passed on) are dropped.
"""

from typing import List, Optional, Sequence

import numpy as np
import openmm
from openmm import app, unit

from ..data import Frame
from ..units import kj_mol_nm_to_ev_angstrom, kj_mol_to_ev, nm_to_angstrom
from .qtip4pf import add_virtual_sites, create_qtip4pf_system

DEFAULT_SPACING_PS = 0.5
DEFAULT_EQUILIBRATION_PS = 2.0
TIMESTEP_PS = 0.0005
GRAMS_PER_DALTON = 1.66053906660e-24
CM3_PER_NM3 = 1e-21


def _box_nm(box_vectors) -> np.ndarray:
    return np.array([[v.x, v.y, v.z] for v in box_vectors.value_in_unit(unit.nanometer)]
                    if unit.is_quantity(box_vectors) else box_vectors, dtype=float).reshape(3, 3)


def density_g_cm3(topology: app.Topology, box_nm: np.ndarray) -> float:
    """Mass density (g/cm^3) of the atoms of ``topology`` in the box [3, 3] (nm)."""
    mass = sum(atom.element.mass.value_in_unit(unit.dalton) for atom in topology.atoms())
    return mass * GRAMS_PER_DALTON / (abs(np.linalg.det(box_nm)) * CM3_PER_NM3)


def scale_to_density(topology: app.Topology, positions_nm: np.ndarray, box_nm: np.ndarray,
                     density: float):
    """(positions_nm, box_nm) with the box and the molecules' centres of mass scaled so that the
    density becomes ``density`` (g/cm^3); molecules (residues) keep their shape."""
    if not density > 0:
        raise ValueError(f"densities must be positive (g/cm^3), got {density}")
    factor = (density_g_cm3(topology, box_nm) / density) ** (1.0 / 3.0)
    positions_nm = np.array(positions_nm, dtype=float)
    for residue in topology.residues():
        atoms = [atom.index for atom in residue.atoms()]
        masses = np.array([topology_atom.element.mass.value_in_unit(unit.dalton)
                           for topology_atom in residue.atoms()])
        centre = masses @ positions_nm[atoms] / masses.sum()
        positions_nm[atoms] += (factor - 1.0) * centre
    return positions_nm, box_nm * factor


def frames_per_state(n_frames: int, n_states: int) -> List[int]:
    """``n_frames`` split as evenly as possible over the states, the first ones taking one more."""
    return [n_frames // n_states + (state < n_frames % n_states) for state in range(n_states)]


def sample_states(topology: app.Topology, positions, box_vectors, temperatures: Sequence[float],
                  densities: Optional[Sequence[float]] = None, n_frames: int = 10,
                  spacing_ps: float = DEFAULT_SPACING_PS,
                  equilibration_ps: float = DEFAULT_EQUILIBRATION_PS, seed: int = 0,
                  friction_per_ps: float = 1.0, platform: str = "CPU",
                  threads: Optional[int] = None, system_name: str = "", progress=None
                  ) -> List[Frame]:
    """q-TIP4P/F frames of a periodic water box at every (temperature, density) pair.

    Args:
        topology, positions, box_vectors: a periodic water system (HOH residues O, H1, H2;
            positions in nm or a Quantity; box vectors as ``Topology.getPeriodicBoxVectors``
            or a [3, 3] array in nm).
        temperatures: K. densities: g/cm^3 (None: the template's own density).
        n_frames: frames in total, split over the states by ``frames_per_state`` (states in the
            order temperature-major: (T0, rho0), (T0, rho1), ...).
        spacing_ps, equilibration_ps: time between frames and before the first frame of a state.
        seed: seeds the initial velocities and the Langevin noise of each state.
        platform, threads: OpenMM platform name and (CPU platform) thread count.
        progress: optional callable(n_done, n_total) called after every frame.

    Returns:
        Frames with energy (eV), forces (eV/Angstrom) and info keys system, reference,
        temperature_K, density_g_cm3, state, time_ps, spacing_ps, equilibration_ps, seed.
    """
    if box_vectors is None:
        raise ValueError("reference sampling is for bulk (periodic) systems only; this system "
                         "has no periodic box")
    temperatures = [float(t) for t in temperatures]
    if not temperatures or min(temperatures) <= 0:
        raise ValueError(f"need at least one positive temperature (K), got {temperatures}")
    if n_frames < 1:
        raise ValueError(f"need at least one frame, got {n_frames}")
    if not spacing_ps > 0 or equilibration_ps < 0:
        raise ValueError(f"need spacing_ps > 0 and equilibration_ps >= 0, "
                         f"got {spacing_ps}, {equilibration_ps}")
    positions_nm = (positions.value_in_unit(unit.nanometer) if unit.is_quantity(positions)
                    else positions)
    positions_nm = np.asarray(positions_nm, dtype=float).reshape(-1, 3)
    box_nm = _box_nm(box_vectors)
    template_density = density_g_cm3(topology, box_nm)
    densities = [template_density] if densities is None else [float(d) for d in densities]
    states = [(t, d) for t in temperatures for d in densities]
    counts = frames_per_state(n_frames, len(states))
    atomic_numbers = np.array([atom.element.atomic_number for atom in topology.atoms()])
    spacing_steps = max(1, int(round(spacing_ps / TIMESTEP_PS)))
    equilibration_steps = int(round(equilibration_ps / TIMESTEP_PS))
    properties = {"Threads": str(threads)} if threads and platform == "CPU" else {}

    frames: List[Frame] = []
    for state, ((temperature, density), count) in enumerate(zip(states, counts)):
        if count == 0:
            continue
        state_positions, state_box = scale_to_density(topology, positions_nm, box_nm, density)
        site_topology, site_positions = add_virtual_sites(topology, state_positions)
        system = create_qtip4pf_system(site_topology, state_box)
        integrator = openmm.LangevinMiddleIntegrator(
            temperature * unit.kelvin, friction_per_ps / unit.picosecond,
            TIMESTEP_PS * unit.picoseconds)
        integrator.setRandomNumberSeed(1 + seed * 1000 + state)
        context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform),
                                 properties)
        context.setPeriodicBoxVectors(*(openmm.Vec3(*v) for v in state_box))
        context.setPositions(site_positions)
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 500)
        context.setVelocitiesToTemperature(temperature * unit.kelvin, 1 + seed * 1000 + state)
        integrator.step(equilibration_steps)
        for number in range(count):
            integrator.step(spacing_steps)
            frames.append(_frame(context, atomic_numbers, dict(
                system=system_name, reference="q-TIP4P/F", temperature_K=temperature,
                density_g_cm3=round(density, 6), state=state,
                time_ps=round((number + 1) * spacing_steps * TIMESTEP_PS, 6),
                spacing_ps=spacing_steps * TIMESTEP_PS, equilibration_ps=equilibration_ps,
                seed=seed)))
            if progress is not None:
                progress(len(frames), n_frames)
        del context, integrator
    return frames


def _frame(context: openmm.Context, atomic_numbers: np.ndarray, info: dict) -> Frame:
    """The current state as a Frame (real atoms only, eV and eV/Angstrom)."""
    state = context.getState(getPositions=True, getEnergy=True, getForces=True,
                             enforcePeriodicBox=True)
    positions_nm = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    box_nm = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
    real = lambda rows: np.asarray(rows).reshape(-1, 4, 3)[:, :3].reshape(-1, 3)  # noqa: E731
    return Frame(
        atomic_numbers=atomic_numbers,
        positions_angstrom=nm_to_angstrom(real(positions_nm)),
        cell_angstrom=nm_to_angstrom(np.asarray(box_nm)),
        energy_ev=kj_mol_to_ev(energy),
        forces_ev_per_angstrom=kj_mol_nm_to_ev_angstrom(real(forces)),
        info=info,
    )


def sample_system(name: str, temperatures: Sequence[float],
                  densities: Optional[Sequence[float]] = None, **options) -> List[Frame]:
    """``sample_states`` for a template of ``systems/`` (e.g. ``liquid-64``, ``ice-ih``)."""
    from .. import systems

    topology, positions, box_vectors = systems.load(name)
    if box_vectors is None:
        raise ValueError(f"reference sampling is for bulk systems only; {name!r} is not periodic")
    return sample_states(topology, positions, box_vectors, temperatures, densities,
                         system_name=name, **options)
