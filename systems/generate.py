"""Regenerate the water templates of this folder (fixed seeds; about 2-3 minutes on 2 CPU cores).

    python systems/generate.py [name ...]        (default: every template)

- water-monomer: the q-TIP4P/F minimum, O at the origin, H in the xz plane, bisector along +z.
- liquid-64, liquid-256: molecules on the sites of a simple cubic grid (a random subset when the
  count is not a cube) with random orientations, in the cubic box of density 0.997 g/cm^3;
  q-TIP4P/F energy minimisation, then Langevin dynamics at 300 K (dt 0.5 fs, friction 5/ps,
  EQUILIBRATION_PS) on the CPU platform with one thread and DeterministicForces (bitwise
  reproducible on one machine and OpenMM build).
- ice-ih: GenIce2 (`genice2 1h --rep 2 2 2 --seed ICE_SEED --format gromacs`, strict
  depolarisation: ice rules, zero net polarisation of the hydrogen-bond network), 128 molecules
  in an orthorhombic cell; q-TIP4P/F energy minimisation at fixed cell.

Written PDB files: HOH residues with atoms O, H1, H2, each molecule whole with its oxygen inside
the cell, CRYST1 for periodic boxes, and a REMARK naming this script instead of a date.
"""
import io
import sys
from pathlib import Path

import numpy as np
import openmm
from openmm import app, unit
from scipy.spatial.transform import Rotation

from omm_symbreak.reference import add_virtual_sites, create_qtip4pf_system, qtip4pf_forcefield_parameters
from omm_symbreak.systems import proton_disordered_ice_ih, water_topology

DENSITY_G_CM3 = 0.997
TEMPERATURE_K = 300.0
TIMESTEP_PS = 0.0005
FRICTION_PER_PS = 5.0
EQUILIBRATION_PS = {64: 10.0, 256: 5.0}
LIQUID_SEEDS = {64: 64, 256: 256}
ICE_SEED = 7
AVOGADRO_PER_MOL = 6.02214076e23
NM3_PER_CM3 = 1e21
TEMPLATES_DIR = Path(__file__).resolve().parent


def monomer_positions_nm() -> np.ndarray:
    """[3, 3] positions (O, H1, H2) in nm of the q-TIP4P/F minimum, O at the origin."""
    parameters = qtip4pf_forcefield_parameters
    half_angle_rad = parameters.hoh_eq_rad / 2.0
    sin_nm = parameters.oh_eq_nm * np.sin(half_angle_rad)
    cos_nm = parameters.oh_eq_nm * np.cos(half_angle_rad)
    return np.array([[0.0, 0.0, 0.0], [sin_nm, 0.0, cos_nm], [-sin_nm, 0.0, cos_nm]])


def liquid_box_length_nm(n_molecules: int) -> float:
    """Edge in nm of the cubic box holding ``n_molecules`` waters at DENSITY_G_CM3."""
    molecule_mass_g = (app.element.oxygen.mass + 2 * app.element.hydrogen.mass).value_in_unit(unit.dalton) / AVOGADRO_PER_MOL
    return float((n_molecules * molecule_mass_g / DENSITY_G_CM3 * NM3_PER_CM3) ** (1.0 / 3.0))


def cpu_context(system: openmm.System, integrator: openmm.Integrator) -> openmm.Context:
    """A Context on the CPU platform, one thread and deterministic forces, so that runs repeat bit for bit."""
    return openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": "1", "DeterministicForces": "true"})


def relax(topology: app.Topology, positions_nm: np.ndarray, tolerance_kj_mol_nm: float) -> tuple[openmm.Context, openmm.System]:
    """q-TIP4P/F energy minimisation; returns the context (4 particles per molecule) and its system."""
    topology_with_sites, positions_with_sites = add_virtual_sites(topology, positions_nm)
    system = create_qtip4pf_system(topology_with_sites)
    context = cpu_context(system, openmm.VerletIntegrator(TIMESTEP_PS))
    context.setPositions(positions_with_sites)
    openmm.LocalEnergyMinimizer.minimize(context, tolerance_kj_mol_nm, 0)
    return context, system


def water_positions_nm(context: openmm.Context) -> np.ndarray:
    """[3 * n_molecules, 3] positions in nm of O, H1, H2 (the M sites dropped) of a q-TIP4P/F context."""
    positions_nm = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return positions_nm.reshape(-1, 4, 3)[:, :3].reshape(-1, 3)


def liquid(n_molecules: int) -> tuple[app.Topology, np.ndarray]:
    """Topology and equilibrated positions in nm of ``n_molecules`` waters at 300 K."""
    rng = np.random.default_rng(LIQUID_SEEDS[n_molecules])
    box_nm = liquid_box_length_nm(n_molecules)
    sites_per_edge = int(np.ceil(n_molecules ** (1.0 / 3.0) - 1e-9))
    grid = np.stack(np.meshgrid(*[np.arange(sites_per_edge)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    sites_nm = (grid[rng.choice(len(grid), n_molecules, replace=False)] + 0.5) * box_nm / sites_per_edge
    rotations = Rotation.random(n_molecules, rng=rng)
    molecules_nm = sites_nm[:, None, :] + np.stack([rotation.apply(monomer_positions_nm()) for rotation in rotations])
    topology = water_topology(n_molecules, np.eye(3) * box_nm)
    context, system = relax(topology, molecules_nm.reshape(-1, 3), tolerance_kj_mol_nm=10.0)
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE_K, FRICTION_PER_PS, TIMESTEP_PS)
    integrator.setRandomNumberSeed(LIQUID_SEEDS[n_molecules])
    dynamics = cpu_context(system, integrator)
    dynamics.setState(context.getState(getPositions=True))
    dynamics.setVelocitiesToTemperature(TEMPERATURE_K, LIQUID_SEEDS[n_molecules])
    integrator.step(round(EQUILIBRATION_PS[n_molecules] / TIMESTEP_PS))
    return topology, water_positions_nm(dynamics)


def ice_ih() -> tuple[app.Topology, np.ndarray]:
    """Topology and q-TIP4P/F-relaxed positions in nm of 128-molecule proton-disordered ice Ih."""
    topology, positions_nm = proton_disordered_ice_ih(ICE_SEED)
    context, _ = relax(topology, positions_nm, tolerance_kj_mol_nm=0.1)
    return topology, water_positions_nm(context)


def wrap_molecules_nm(positions_nm: np.ndarray, box_nm: np.ndarray) -> np.ndarray:
    """Shift whole molecules (O, H1, H2) by lattice vectors so that every oxygen lies in the cell."""
    molecules_nm = positions_nm.reshape(-1, 3, 3)
    cell_shift = np.floor(molecules_nm[:, 0] @ np.linalg.inv(box_nm))
    return (molecules_nm - (cell_shift @ box_nm)[:, None, :]).reshape(-1, 3)


def write_template(name: str, topology: app.Topology, positions_nm: np.ndarray) -> Path:
    """Write systems/<name>.pdb (molecules wrapped into the cell when periodic); returns its path."""
    box = topology.getPeriodicBoxVectors()
    if box is not None:
        positions_nm = wrap_molecules_nm(positions_nm, np.array(box.value_in_unit(unit.nanometer)))
    text = io.StringIO()
    app.PDBFile.writeFile(topology, unit.Quantity(positions_nm, unit.nanometer), text)
    lines = text.getvalue().splitlines(keepends=True)
    remark = f"REMARK   1 omm-symbreak water template {name}, written by systems/generate.py\n"
    path = TEMPLATES_DIR / f"{name}.pdb"
    path.write_text(remark + "".join(line for line in lines if not line.startswith("REMARK")))
    return path


TEMPLATES = {
    "water-monomer": lambda: (water_topology(1), monomer_positions_nm()),
    "liquid-64": lambda: liquid(64),
    "liquid-256": lambda: liquid(256),
    "ice-ih": ice_ih,
}


def main(names: list[str]) -> None:
    unknown = sorted(set(names) - set(TEMPLATES))
    if unknown:
        raise SystemExit(f"unknown templates {unknown}; known: {', '.join(TEMPLATES)}")
    for name in names or list(TEMPLATES):
        print(f"wrote {write_template(name, *TEMPLATES[name]())}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
