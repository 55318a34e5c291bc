"""Outside the model's domain: the water monomer and dimer, the model against q-TIP4P/F.

    python analysis/model_domain.py [--quick] [--model FILE]

The model was trained on bulk liquid water and ice Ih only (analysis/data/README.md); the gas
phase is an extrapolation. This script measures how far it goes wrong there, against the
q-TIP4P/F reference it was trained on (``omm_symbreak.reference``, OpenMM's Reference
platform, double precision). The model is evaluated through ``omm_symbreak.symmetrize`` and
``omm_symbreak.kernel`` in float64 (so that finite differences are clean; the shipped float32
model differs by rounding), as the raw model and as its ``2i`` grid average.

Monomer. The isolated molecule is minimised (scipy L-BFGS-B on the energy and its forces,
from the ``water-monomer`` template) with q-TIP4P/F, the ``2i`` average (which for one molecule
removes the orientation dependence) and the raw model (from 8 random orientations of the
template, 2 with ``--quick``: the raw minimum, and its frequencies, depend on the
orientation). At each minimum: the O-H lengths, the H-O-H angle, and the harmonic wavenumbers
(cm^-1) from the mass-weighted Hessian, built by central differences of the forces (step
``HESSIAN_STEP_NM``) and symmetrised. The internal modes (bend, symmetric and antisymmetric
stretch, named from their eigenvectors) come from the Hessian with translations and rigid
rotations projected out; the six lowest wavenumbers of the unprojected Hessian are reported
too (negative: imaginary): for a rotation-invariant potential zero up to the differences'
truncation error (a few cm^-1), for the raw model its orientational stiffness.

Dimer. The rigid, linear, hydrogen-bonded dimer (Cs symmetry, mirror plane z = 0): both
molecules at their monomer minimum geometry (mean O-H length r, angle theta) of the potential
in question (for the model: of the ``2i`` average). Donor O at the origin, its bonded H at
(r, 0, 0), pointing at the acceptor O at (R_OO, 0, 0) (a linear O-H...O bond); the donor's free
H in the mirror plane at r (cos theta, sin theta, 0). The acceptor's bisector b (from its O to
the midpoint of its H atoms) lies in the mirror plane at ``ACCEPTOR_TILT_DEG`` (57 deg, the
experimental value of Odutola and Dyke, J. Chem. Phys. 72, 5062 (1980)) to the O-O axis,
b = (cos 57, -sin 57, 0): the acceptor's H atoms, at O_a + r (cos(theta/2) b +- sin(theta/2) z),
lie on the side of the O-O axis opposite the donor's free H (trans). The binding energy is
E(dimer) - E(donor alone) - E(acceptor alone), each molecule alone in its place in the dimer
(kJ/mol), for R_OO from 2.4 to 6 Angstrom: q-TIP4P/F; the ``2i`` average; the raw model
averaged over 100 random orientations (8 with ``--quick``; proper and improper) of the dimer,
the same orientations for the dimer and its molecules, with the standard deviation over them.
The minimum of each curve is refined by a parabola through the lowest grid point and its
neighbours. The relaxed dimer: the dimer minimised from the rigid curve's minimum (q-TIP4P/F
and ``2i``), binding against twice the monomer minimum energy.

Writes analysis/results/model_domain[_quick].json (numbers, curves, wall time, model
fingerprint) and .png; ``analysis/ship_model.py`` copies the numbers into the model card.
"""

import time

import numpy as np
import openmm
import torch
from openmm import app, unit
from scipy.optimize import minimize

from figures import figure_arguments, write_figure
from omm_symbreak import systems
from omm_symbreak.grids import parse_grid, random_rotations
from omm_symbreak.model import load_model
from omm_symbreak.model_kinds import as_energy_model
from omm_symbreak.reference import add_virtual_sites, create_qtip4pf_system
from omm_symbreak.symmetrize import strategy_energy
from omm_symbreak.units import (angstrom_to_nm, as_nm_array, ev_angstrom_to_kj_mol_nm,
                                ev_to_kj_mol, nm_to_angstrom, per_ps_to_wavenumber)

HESSIAN_STEP_NM = 1e-4
ACCEPTOR_TILT_DEG = 57.0
SETTINGS = {"full": dict(distances_angstrom=np.linspace(2.4, 6.0, 181), raw_rotations=100,
                         raw_orientations=8),
            "quick": dict(distances_angstrom=np.linspace(2.4, 6.0, 19), raw_rotations=8,
                          raw_orientations=2)}
WATER = (8, 1, 1)
MASSES_AMU = np.array([app.element.Element.getByAtomicNumber(z).mass.value_in_unit(unit.dalton)
                       for z in WATER])


# Energy functions: positions [N, 3] nm -> (energy kJ/mol, forces [N, 3] kJ/mol/nm)

def qtip4pf_energy(n_molecules: int):
    """q-TIP4P/F for ``n_molecules`` waters (atoms O, H1, H2 each) without a box, on OpenMM's
    Reference platform; the M sites are placed by OpenMM and left out of the forces."""
    topology, _ = add_virtual_sites(systems.water_topology(n_molecules),
                                    np.zeros((3 * n_molecules, 3)))
    context = openmm.Context(create_qtip4pf_system(topology), openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))

    def evaluate(positions_nm: np.ndarray):
        molecules = np.asarray(positions_nm, dtype=float).reshape(n_molecules, 3, 3)
        with_sites = np.concatenate([molecules, molecules[:, :1]], axis=1).reshape(-1, 3)
        context.setPositions(with_sites * unit.nanometer)
        context.computeVirtualSites()
        state = context.getState(getEnergy=True, getForces=True)
        forces = state.getForces(asNumpy=True).value_in_unit(
            unit.kilojoule_per_mole / unit.nanometer)
        return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
                forces.reshape(n_molecules, 4, 3)[:, :3].reshape(-1, 3))
    return evaluate


def model_energy(module: torch.nn.Module, types: torch.Tensor):
    """An energy module of ``omm_symbreak.symmetrize`` (Angstrom, eV, float64) for atoms of
    model types ``types`` [N], without a cell, in OpenMM units."""
    def evaluate(positions_nm: np.ndarray):
        x = torch.tensor(nm_to_angstrom(np.asarray(positions_nm, dtype=float)),
                         dtype=torch.float64, requires_grad=True)
        energy_ev = module(types, x, None)
        (gradient,) = torch.autograd.grad(energy_ev, x)
        return (float(ev_to_kj_mol(energy_ev.item())),
                -ev_angstrom_to_kj_mol_nm(gradient.numpy()).reshape(-1, 3))
    return evaluate


def minimise(energy, positions_nm: np.ndarray, gtol: float = 1e-4):
    """Local minimum (L-BFGS-B until no force component exceeds ``gtol`` kJ/mol/nm, or the line
    search runs out of precision) from ``positions_nm`` [N, 3]: (positions nm, energy kJ/mol,
    largest force component left, kJ/mol/nm). A force of 1e-4 kJ/mol/nm leaves the stiff
    internal coordinates within 1e-8 nm of the minimum."""
    def objective(flat):
        value, forces = energy(flat.reshape(-1, 3))
        return value, -forces.ravel()
    result = minimize(objective, np.asarray(positions_nm, dtype=float).ravel(), jac=True,
                      method="L-BFGS-B", options=dict(gtol=gtol, ftol=1e-15, maxiter=3000))
    value, forces = energy(result.x.reshape(-1, 3))
    return result.x.reshape(-1, 3), value, float(np.abs(forces).max())


def hessian(energy, positions_nm: np.ndarray, step_nm: float = HESSIAN_STEP_NM) -> np.ndarray:
    """Cartesian Hessian [3N, 3N] (kJ/mol/nm^2) by central differences of the forces,
    symmetrised."""
    x0 = np.asarray(positions_nm, dtype=float).ravel()
    columns = []
    for k in range(len(x0)):
        shifted = [x0.copy(), x0.copy()]
        shifted[0][k] += step_nm
        shifted[1][k] -= step_nm
        plus, minus = (energy(x.reshape(-1, 3))[1].ravel() for x in shifted)
        columns.append(-(plus - minus) / (2 * step_nm))
    matrix = np.array(columns)
    return 0.5 * (matrix + matrix.T)


def signed_wavenumbers(eigenvalues_per_ps2: np.ndarray) -> np.ndarray:
    """Eigenvalues of a mass-weighted Hessian (kJ/mol/nm^2/amu = 1/ps^2) -> wavenumbers cm^-1,
    negative for negative eigenvalues (imaginary frequencies)."""
    omega = np.sqrt(np.abs(eigenvalues_per_ps2))  # rad/ps
    return np.sign(eigenvalues_per_ps2) * per_ps_to_wavenumber(omega / (2 * np.pi))


def rigid_body_projector(positions_nm: np.ndarray, masses_amu: np.ndarray) -> np.ndarray:
    """Projector [3N, 3N] onto the mass-weighted coordinates orthogonal to the three
    translations and three rotations about the centre of mass."""
    root_mass = np.repeat(np.sqrt(masses_amu), 3)
    centred = positions_nm - masses_amu @ positions_nm / masses_amu.sum()
    vectors = [np.tile(axis, len(masses_amu)) * root_mass for axis in np.eye(3)]
    vectors += [np.cross(axis, centred).ravel() * root_mass for axis in np.eye(3)]
    basis, _ = np.linalg.qr(np.array(vectors).T)
    return np.eye(len(root_mass)) - basis @ basis.T


def water_geometry(molecule_nm: np.ndarray) -> dict:
    """O-H lengths (Angstrom) and H-O-H angle (degrees) of one water, atoms O, H1, H2 [3, 3]."""
    bonds = molecule_nm[1:] - molecule_nm[0]
    lengths = np.linalg.norm(bonds, axis=1)
    angle = np.degrees(np.arccos(bonds[0] @ bonds[1] / (lengths[0] * lengths[1])))
    return {"oh_angstrom": nm_to_angstrom(lengths).tolist(), "hoh_degrees": float(angle)}


def internal_modes(hessian_nm: np.ndarray, molecule_nm: np.ndarray) -> dict:
    """The three internal wavenumbers (cm^-1) of one water from its Cartesian Hessian [9, 9]:
    bend (lowest), then the stretches, named symmetric or antisymmetric by whether the two O-H
    lengths change in phase; plus the six lowest wavenumbers of the unprojected Hessian."""
    root_mass = np.repeat(np.sqrt(MASSES_AMU), 3)
    weighted = hessian_nm / np.outer(root_mass, root_mass)
    projector = rigid_body_projector(molecule_nm, MASSES_AMU)
    values, vectors = np.linalg.eigh(projector @ weighted @ projector)
    internal = np.argsort(values)[-3:]
    bonds = molecule_nm[1:] - molecule_nm[0]
    units_oh = bonds / np.linalg.norm(bonds, axis=1, keepdims=True)
    stretch_phase = []
    for k in internal[1:]:
        displacement = (vectors[:, k] / root_mass).reshape(3, 3)
        changes = np.einsum("hx,hx->h", units_oh, displacement[1:] - displacement[0])
        stretch_phase.append(changes[0] * changes[1] / np.sum(changes ** 2))
    symmetric, antisymmetric = internal[1:][np.argsort(stretch_phase)[::-1]]
    wavenumbers = signed_wavenumbers(values)
    return {"bend_cm": float(wavenumbers[internal[0]]),
            "symmetric_stretch_cm": float(wavenumbers[symmetric]),
            "antisymmetric_stretch_cm": float(wavenumbers[antisymmetric]),
            "unprojected_lowest_six_cm": signed_wavenumbers(
                np.linalg.eigvalsh(weighted)[:6]).tolist()}


def monomer(energy, start_nm: np.ndarray) -> dict:
    """Minimum, geometry and harmonic wavenumbers of one water from ``start_nm`` [3, 3]."""
    positions, value, residual = minimise(energy, start_nm)
    return {**water_geometry(positions), **internal_modes(hessian(energy, positions), positions),
            "energy_kj_mol": value, "max_force_left_kj_mol_nm": residual,
            "positions_nm": positions.tolist()}


def dimer_positions_nm(r_oh_nm: float, hoh_degrees: float, r_oo_nm: float,
                       tilt_degrees: float = ACCEPTOR_TILT_DEG) -> np.ndarray:
    """The rigid linear dimer of the module docstring: [6, 3] nm, donor O, H1, H2 (H1 bonded to
    the acceptor), then acceptor O, H1, H2."""
    theta, tilt = np.radians(hoh_degrees), np.radians(tilt_degrees)
    donor = r_oh_nm * np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0],
                                [np.cos(theta), np.sin(theta), 0.0]])
    bisector = np.array([np.cos(tilt), -np.sin(tilt), 0.0])
    normal = np.array([0.0, 0.0, 1.0])
    acceptor = np.array([[0.0, 0.0, 0.0],
                         r_oh_nm * (np.cos(theta / 2) * bisector + np.sin(theta / 2) * normal),
                         r_oh_nm * (np.cos(theta / 2) * bisector - np.sin(theta / 2) * normal)])
    return np.concatenate([donor, acceptor + [r_oo_nm, 0.0, 0.0]])


def mean_geometry(result: dict) -> tuple:
    """(mean O-H length in nm, H-O-H angle in degrees) of a ``monomer`` result."""
    return angstrom_to_nm(float(np.mean(result["oh_angstrom"]))), result["hoh_degrees"]


def binding_curve(dimer_energy, molecule_energy, geometry: tuple,
                  distances_angstrom: np.ndarray) -> np.ndarray:
    """E(dimer) - E(donor) - E(acceptor) [D] (kJ/mol) of the rigid dimer at each R_OO, for energy
    functions of two molecules and of one; ``geometry``: (O-H nm, H-O-H degrees)."""
    values = []
    for distance in distances_angstrom:
        x = dimer_positions_nm(*geometry, angstrom_to_nm(distance))
        values.append(dimer_energy(x)[0] - molecule_energy(x[:3])[0] - molecule_energy(x[3:])[0])
    return np.array(values)


def rotated_binding(model, geometry: tuple, distances_angstrom: np.ndarray,
                    rotations: np.ndarray) -> np.ndarray:
    """The model's binding energy [D, C] (kJ/mol) of the rigid dimer rotated as a whole by each
    of ``rotations`` [C, 3, 3] (dimer and molecules alike), through the rotation kernel."""
    kernel = as_energy_model(model).rotated_copies()
    types = model.species_of(list(WATER) * 2)
    rotations = torch.as_tensor(rotations, dtype=torch.float64)
    rows = []
    with torch.no_grad():
        for distance in distances_angstrom:
            x_nm = dimer_positions_nm(*geometry, angstrom_to_nm(distance))
            x = torch.tensor(nm_to_angstrom(x_nm))
            binding_ev = (kernel(types, x, None, rotations)
                          - kernel(types[:3], x[:3], None, rotations)
                          - kernel(types[3:], x[3:], None, rotations))
            rows.append(ev_to_kj_mol(binding_ev.numpy()))
    return np.array(rows)


def curve_minimum(distances_angstrom: np.ndarray, energies: np.ndarray) -> dict:
    """The minimum of a sampled curve, refined by the parabola through the lowest sample and its
    neighbours (the lowest sample itself when it lies at an end)."""
    k = int(np.argmin(energies))
    if k in (0, len(energies) - 1):
        return {"r_oo_angstrom": float(distances_angstrom[k]), "binding_kj_mol": float(energies[k]),
                "at_end_of_range": True}
    (r0, r1, r2), (e0, e1, e2) = distances_angstrom[k - 1:k + 2], energies[k - 1:k + 2]
    curvature = (e0 - 2 * e1 + e2) / (r1 - r0) ** 2
    slope = (e2 - e0) / (r2 - r0)
    return {"r_oo_angstrom": float(r1 - slope / curvature),
            "binding_kj_mol": float(e1 - slope ** 2 / (2 * curvature)), "at_end_of_range": False}


def hydrogen_bond(positions_nm: np.ndarray) -> dict:
    """R_OO, and the O-H...O angle and O-H length of the H (of either molecule) nearest to the
    other molecule's O, of a dimer [6, 3] nm."""
    molecules = positions_nm.reshape(2, 3, 3)
    pairs = [(d, h) for d in (0, 1) for h in (1, 2)]
    d, h = min(pairs, key=lambda p: np.linalg.norm(molecules[p[0], p[1]] - molecules[1 - p[0], 0]))
    to_h = molecules[d, h] - molecules[d, 0]
    h_to_acceptor = molecules[1 - d, 0] - molecules[d, h]
    angle = np.degrees(np.arccos(-to_h @ h_to_acceptor
                                 / (np.linalg.norm(to_h) * np.linalg.norm(h_to_acceptor))))
    r_oo_nm = np.linalg.norm(molecules[1, 0] - molecules[0, 0])
    return {"r_oo_angstrom": float(nm_to_angstrom(r_oo_nm)),
            "o_h_o_degrees": float(angle),
            "bonded_oh_angstrom": float(nm_to_angstrom(np.linalg.norm(to_h)))}


def relaxed_dimer(dimer_energy, start_nm: np.ndarray, monomer_energy_kj_mol: float) -> dict:
    """The dimer minimised from ``start_nm`` [6, 3]: binding against twice the monomer minimum
    energy (kJ/mol) and its hydrogen bond."""
    positions, value, residual = minimise(dimer_energy, start_nm)
    return {"binding_kj_mol": value - 2 * monomer_energy_kj_mol, **hydrogen_bond(positions),
            "max_force_left_kj_mol_nm": residual, "positions_nm": positions.tolist()}


def monomers(model, n_orientations: int) -> dict:
    """The ``monomer`` results of q-TIP4P/F, the model's ``2i`` average and the raw model from
    ``n_orientations`` random orientations of the template (with their range)."""
    _, positions, _ = systems.load("water-monomer")
    template = as_nm_array(positions)
    types = model.species_of(list(WATER))
    raw = model_energy(strategy_energy(model, "none"), types)
    starts = template @ random_rotations(n_orientations, np.random.default_rng(0), inversion=False)
    orientations = [monomer(raw, start) for start in starts]
    keys = ("bend_cm", "symmetric_stretch_cm", "antisymmetric_stretch_cm", "hoh_degrees")
    spread = {key: [min(o[key] for o in orientations), max(o[key] for o in orientations)]
              for key in keys}
    spread["oh_angstrom"] = [min(min(o["oh_angstrom"]) for o in orientations),
                             max(max(o["oh_angstrom"]) for o in orientations)]
    return {"q-TIP4P/F": monomer(qtip4pf_energy(1), template),
            "2i": monomer(model_energy(strategy_energy(model, "full", parse_grid("2i")), types),
                          template),
            "raw": {"range over orientations": spread, "orientations": orientations}}


def dimers(model, monomer_results: dict, settings: dict) -> dict:
    """Binding curves, their minima, the values at R_OO = 2.9 Angstrom and the relaxed dimers."""
    distances = settings["distances_angstrom"]
    at_29 = np.array([2.9])
    reference_geometry = mean_geometry(monomer_results["q-TIP4P/F"])
    model_geometry = mean_geometry(monomer_results["2i"])
    grid = parse_grid("2i")
    rotations = random_rotations(settings["raw_rotations"], np.random.default_rng(1))
    pair, single = qtip4pf_energy(2), qtip4pf_energy(1)
    curves = {"q-TIP4P/F": binding_curve(pair, single, reference_geometry, distances),
              "2i": (rotated_binding(model, model_geometry, distances, grid.rotations)
                     @ grid.weights)}
    raw = rotated_binding(model, model_geometry, distances, rotations)
    curves["raw"] = raw.mean(axis=1)
    raw_29 = rotated_binding(model, model_geometry, at_29, rotations)[0]
    result = {"r_oo_angstrom": distances.tolist(),
              "raw_orientations": len(rotations),
              "raw_std_over_orientations_kj_mol": raw.std(axis=1).tolist(),
              "at_2.9_angstrom": {
                  "q-TIP4P/F": float(binding_curve(pair, single, reference_geometry, at_29)[0]),
                  "2i": float(rotated_binding(model, model_geometry, at_29, grid.rotations)[0]
                              @ grid.weights),
                  "raw": float(raw_29.mean()), "raw_std": float(raw_29.std())}}
    for name, curve in curves.items():
        result[name] = {"binding_kj_mol": curve.tolist(),
                        "rigid_minimum": curve_minimum(distances, curve)}
    model_pair = model_energy(strategy_energy(model, "full", grid),
                              model.species_of(list(WATER) * 2))
    for name, energy, geometry in (("q-TIP4P/F", pair, reference_geometry),
                                   ("2i", model_pair, model_geometry)):
        start = dimer_positions_nm(*geometry, angstrom_to_nm(
            result[name]["rigid_minimum"]["r_oo_angstrom"]))
        result[name]["relaxed_minimum"] = relaxed_dimer(
            energy, start, monomer_results[name]["energy_kj_mol"])
    return result


def plot(numbers: dict):
    """(a) the binding curves, (b) the monomer's internal wavenumbers."""
    import matplotlib.pyplot as plt

    figure, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    dimer = numbers["dimer"]
    distances = np.array(dimer["r_oo_angstrom"])
    raw = np.array(dimer["raw"]["binding_kj_mol"])
    spread = np.array(dimer["raw_std_over_orientations_kj_mol"])
    for name, style in (("q-TIP4P/F", "k-"), ("raw", "C3-"), ("2i", "C0--")):
        label = (f"raw, mean of {dimer['raw_orientations']} orientations" if name == "raw"
                 else name)
        a.plot(distances, dimer[name]["binding_kj_mol"], style, label=label)
        if "relaxed_minimum" in dimer[name]:
            relaxed = dimer[name]["relaxed_minimum"]
            a.plot(relaxed["r_oo_angstrom"], relaxed["binding_kj_mol"], style[:-1] + "o",
                   mfc="none", label=f"{name}, relaxed")
    a.fill_between(distances, raw - spread, raw + spread, color="C3", alpha=0.25, lw=0)
    a.axhline(0.0, color="grey", lw=0.5)
    a.set(xlabel="R$_{OO}$ ($\\AA$)", ylabel="binding energy (kJ/mol)",
          title="(a) rigid linear water dimer", ylim=(min(-60.0, 1.1 * raw.min()), 30.0))
    a.legend(fontsize=8)
    monomer = numbers["monomer"]
    modes = ("bend_cm", "symmetric_stretch_cm", "antisymmetric_stretch_cm")
    raw_modes = monomer["raw"]["orientations"]
    for offset, name in ((-0.25, "q-TIP4P/F"), (0.0, "2i"), (0.25, "raw")):
        if name == "raw":
            values = [np.mean([o[mode] for o in raw_modes]) for mode in modes]
            ranges = np.array([monomer["raw"]["range over orientations"][mode] for mode in modes])
            errors = np.abs(ranges.T - values)
        else:
            values, errors = [monomer[name][mode] for mode in modes], None
        bars = b.bar(np.arange(3) + offset, values, 0.25, yerr=errors, capsize=3, label=name)
        b.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
    b.set_xticks(range(3), ["bend", "sym. stretch", "antisym. stretch"])
    b.set(ylabel="harmonic wavenumber (cm$^{-1}$)", title="(b) monomer at its minimum")
    b.legend(fontsize=8)
    return figure


def summary(numbers: dict) -> str:
    """The measured numbers, one line each."""
    lines = []
    for name in ("q-TIP4P/F", "2i"):
        m = numbers["monomer"][name]
        lines.append(f"monomer {name}: O-H {np.mean(m['oh_angstrom']):.4f} A, H-O-H "
                     f"{m['hoh_degrees']:.2f} deg, bend {m['bend_cm']:.0f}, stretches "
                     f"{m['symmetric_stretch_cm']:.0f} / {m['antisymmetric_stretch_cm']:.0f} cm^-1")
    spread = numbers["monomer"]["raw"]["range over orientations"]
    lines.append("monomer raw (range over orientations): " + ", ".join(
        f"{key} {low:.4g}-{high:.4g}" for key, (low, high) in spread.items()))
    dimer = numbers["dimer"]
    for name in ("q-TIP4P/F", "2i", "raw"):
        rigid = dimer[name]["rigid_minimum"]
        line = (f"dimer {name}: rigid minimum {rigid['binding_kj_mol']:.2f} kJ/mol at "
                f"{rigid['r_oo_angstrom']:.3f} A; at 2.9 A {dimer['at_2.9_angstrom'][name]:.2f}")
        if "relaxed_minimum" in dimer[name]:
            relaxed = dimer[name]["relaxed_minimum"]
            line += (f"; relaxed {relaxed['binding_kj_mol']:.2f} kJ/mol at "
                     f"{relaxed['r_oo_angstrom']:.3f} A")
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    args = figure_arguments(__doc__.splitlines()[0])
    torch.set_num_threads(1)
    started = time.perf_counter()
    settings = SETTINGS["quick" if args.quick else "full"]
    model = load_model(args.model).double()
    numbers = {"monomer": monomers(model, settings["raw_orientations"])}
    numbers["dimer"] = dimers(model, numbers["monomer"], settings)
    numbers["dimer"]["geometry"] = (
        "rigid linear dimer, Cs: donor O-H on the O-O axis pointing at the acceptor O, donor's "
        f"free H in the mirror plane, acceptor bisector at {ACCEPTOR_TILT_DEG} deg to the O-O "
        "axis in the mirror plane, acceptor H atoms trans to the donor's free H; both molecules "
        "at the monomer minimum geometry of the potential (model: of its 2i average); binding "
        "E(dimer) - E(donor) - E(acceptor); raw: mean over random orientations of the dimer "
        "(docstring of analysis/model_domain.py)")
    result = {
        "what": "the model outside its training domain (bulk liquid and ice): monomer minimum "
                "and harmonic wavenumbers, water dimer binding curve, against q-TIP4P/F",
        "units": "lengths Angstrom (positions nm), angles degrees, energies kJ/mol, "
                 "wavenumbers cm^-1 (negative: imaginary)",
        "settings": {"dtype": "float64", "hessian_step_nm": HESSIAN_STEP_NM,
                     "raw_monomer_orientations": settings["raw_orientations"],
                     "raw_dimer_rotations": settings["raw_rotations"], "grid": "2i",
                     "threads": 1},
        **numbers,
        "wall_time_s": time.perf_counter() - started,
    }
    write_figure("model_domain", args, result, numbers, plot)
    print(summary(numbers))
    print(f"wall time {result['wall_time_s']:.0f} s")


if __name__ == "__main__":
    main()
