"""Is the model's force error a locality floor? The q-TIP4P/F force from beyond a radius R
against the model's force error, on held-out liquid frames.

q-TIP4P/F's intermolecular forces are pairwise between molecules (Coulomb between the sites
H, H, M and Lennard-Jones between the O atoms), so the label force on an atom splits exactly
into its own molecule's stretch and bend, the forces from the molecules whose O lies within R
of the atom (minimum image, bare pair forces), and the rest, F_far(R) = F_label - F_near(R):
what a model that sees only R could know only through its effect on the local geometry. The
pair forces come from OpenMM (a gas-phase dimer minus its two monomers), so nothing here
re-implements the reference.

Much of F_far(R) is predictable from the local geometry (the reaction field of the surrounding
dielectric follows the central molecule's dipole), so its size alone says little. Split it as
F_far = P + U, with P the part the model predicts and U the part it misses; if the rest of
its error W is uncorrelated with F_far, the error is e = F_model - F_label = -U + W and
cov(-e, F_far(R)) = var(U(R)). The estimate cannot tell a U that needs a longer cutoff from a
misfit of forces the model does see (through message passing). For each R the script reports,
per species and over all atoms, the root mean square component of F_far(R), that covariance
as a share of the model's error variance (the part of the squared error attributable to
forces from beyond R, under that assumption) and its square root (the rms of U(R),
meV/Angstrom), with standard errors from blocks of consecutive frames. Writes
analysis/results/force_error_locality.json.

    python analysis/force_error_locality.py [--model FILE] [--frames N] [--block-frames 10]
"""
import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import openmm
from openmm import app, unit

from omm_symbreak import systems
from omm_symbreak.data import read_frames
from omm_symbreak.model.model_file import load_model, model_fingerprint
from omm_symbreak.predict import predict
from omm_symbreak.reference import add_virtual_sites, create_qtip4pf_system
from omm_symbreak.units import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV

HERE = Path(__file__).resolve().parent
KJ_MOL_NM_PER_EV_ANGSTROM = KJ_PER_MOL_PER_EV * ANGSTROM_PER_NM
RADII_ANGSTROM = (3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0)


def gas_phase_context(n_molecules: int) -> openmm.Context:
    """A Reference-platform context of ``n_molecules`` q-TIP4P/F waters without a box."""
    topology, positions, _ = systems.load("water-monomer")
    modeller = app.Modeller(topology, positions)
    for _ in range(n_molecules - 1):
        modeller.add(topology, positions)
    topology, _ = add_virtual_sites(modeller.topology, modeller.positions)
    system = create_qtip4pf_system(topology)
    return openmm.Context(system, openmm.VerletIntegrator(0.001),
                          openmm.Platform.getPlatformByName("Reference"))


def forces_kj_mol_nm(context: openmm.Context, molecules_nm: np.ndarray) -> np.ndarray:
    """Forces [n, 3, 3] on O, H1, H2 of the waters ``molecules_nm`` [n, 3, 3] (nm)."""
    n = len(molecules_nm)
    with_sites = np.concatenate([molecules_nm, molecules_nm[:, :1]], axis=1).reshape(-1, 3)
    context.setPositions(with_sites * unit.nanometer)
    context.computeVirtualSites()
    forces = context.getState(getForces=True).getForces(asNumpy=True)
    return forces.value_in_unit(unit.kilojoule_per_mole / unit.nanometer).reshape(n, 4, 3)[:, :3]


def far_field_forces(molecules_angstrom: np.ndarray, cell_angstrom: np.ndarray,
                     label_forces: np.ndarray, monomer: openmm.Context, dimer: openmm.Context,
                     radii: tuple = RADII_ANGSTROM) -> np.ndarray:
    """F_far(R) [len(radii), n, 3, 3] (eV/Angstrom) of one periodic orthorhombic frame.

    molecules_angstrom: [n, 3, 3] O, H1, H2 (molecules whole); label_forces: [n, 3, 3] eV/A.
    """
    box = np.diag(cell_angstrom)
    n = len(molecules_angstrom)
    x_nm = molecules_angstrom / ANGSTROM_PER_NM
    single = np.stack([forces_kj_mol_nm(monomer, x_nm[i:i + 1])[0] for i in range(n)])
    pair = np.zeros((n, n, 3, 3))  # pair[i, j]: force on i's atoms from molecule j
    shift_angstrom = np.zeros((n, n, 3))
    for i in range(n):
        for j in range(i + 1, n):
            shift = -box * np.round((molecules_angstrom[j, 0] - molecules_angstrom[i, 0]) / box)
            shift_angstrom[i, j], shift_angstrom[j, i] = shift, -shift
            both = forces_kj_mol_nm(dimer, np.stack([x_nm[i], x_nm[j] + shift / ANGSTROM_PER_NM]))
            pair[i, j], pair[j, i] = both[0] - single[i], both[1] - single[j]
    pair /= KJ_MOL_NM_PER_EV_ANGSTROM
    single /= KJ_MOL_NM_PER_EV_ANGSTROM
    # distance from atom a of molecule i to the O of molecule j (its image nearest to i's O)
    to_oxygen = (molecules_angstrom[None, :, None, 0] + shift_angstrom[:, :, None]
                 - molecules_angstrom[:, None])
    distance = np.linalg.norm(to_oxygen, axis=-1)  # [n(i), n(j), 3(a)]
    np.einsum("iia->ia", distance)[...] = np.inf
    return np.stack([label_forces - single - np.einsum("ija,ijax->iax", distance <= r, pair)
                     for r in radii])


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model (default: the shipped one)")
    parser.add_argument("--dataset", default=str(HERE / "data" / "test.extxyz"))
    parser.add_argument("--frames", type=int, default=None, help="the first N frames (default: all)")
    parser.add_argument("--block-frames", type=int, default=10,
                        help="consecutive frames per block for the standard errors (the test set's "
                             "frames are 0.5 ps apart along one trajectory: 10 frames = 5 ps)")
    parser.add_argument("-o", "--output", default=str(HERE / "results" / "force_error_locality.json"))
    return parser.parse_args(argv)


def rms(values: np.ndarray) -> float:
    """The root mean square of all entries of ``values``."""
    return float(np.sqrt(np.mean(values ** 2)))


def by_radius(far_mev: np.ndarray, error_mev: np.ndarray, species: np.ndarray, block: int) -> list:
    """One result row per radius of ``RADII_ANGSTROM``, per species and over all atoms.

    far_mev: F_far(R) [frames, R, atoms, 3] and error_mev: F_model - F_label [frames, atoms, 3],
    both meV/Angstrom; species: atomic numbers [frames, atoms]; block: frames per block for the
    standard errors.
    """
    rows = []
    for k, radius in enumerate(RADII_ANGSTROM):
        row = {"radius_angstrom": radius}
        for name, number in (("all", None), ("O", 8), ("H", 1)):
            selected = species[0] > 0 if number is None else species[0] == number
            f, e = far_mev[:, k, selected], -error_mev[:, selected]  # [frames, atoms, 3]
            per_frame = np.mean(f * e, axis=(1, 2))  # frames of one system: equal weights
            blocks = per_frame[:len(f) // block * block].reshape(-1, block).mean(axis=1)
            covariance = float(per_frame.mean())
            standard_error = float(blocks.std(ddof=1) / math.sqrt(len(blocks)))
            error_variance = float(np.mean(e ** 2))
            row[name] = {
                "far_field_rms_mev_per_angstrom": rms(f),
                "error_variance_share_from_beyond_radius": covariance / error_variance,
                "error_variance_share_standard_error": standard_error / error_variance,
                "missed_far_field_rms_mev_per_angstrom": math.sqrt(max(covariance, 0.0)),
                "missed_far_field_rms_range_mev_per_angstrom": [
                    math.sqrt(max(covariance - standard_error, 0.0)),
                    math.sqrt(max(covariance + standard_error, 0.0))]}
        rows.append(row)
    return rows


def print_summary(result: dict):
    """The model's force error and the table of ``result["by_radius"]`` on stdout."""
    print(f"model force error rms {result['model_force_error_rms_mev_per_angstrom']}")
    print("R/A   far-field rms O, H (meV/A)   error variance share O, H (+-1 s.e.)   "
          "rms of the missed part: all (range)")
    for row in result["by_radius"]:
        o, h, every = row["O"], row["H"], row["all"]
        low, high = every["missed_far_field_rms_range_mev_per_angstrom"]
        print(f"{row['radius_angstrom']:.1f}   {o['far_field_rms_mev_per_angstrom']:6.1f} "
              f"{h['far_field_rms_mev_per_angstrom']:6.1f}   "
              f"{o['error_variance_share_from_beyond_radius']:5.2f}+-{o['error_variance_share_standard_error']:.2f} "
              f"{h['error_variance_share_from_beyond_radius']:5.2f}+-{h['error_variance_share_standard_error']:.2f}   "
              f"{every['missed_far_field_rms_mev_per_angstrom']:5.1f} ({low:.1f}-{high:.1f})")


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    frames = read_frames(args.dataset)[:args.frames]
    block = args.block_frames
    if len(frames) < 2 * block or len({frame.n_atoms for frame in frames}) > 1:
        raise ValueError(f"expected at least {2 * block} frames (two blocks of --block-frames) of one system")
    for frame in frames:
        if list(frame.atomic_numbers[:3]) != [8, 1, 1] or frame.n_atoms % 3 or frame.cell_angstrom is None:
            raise ValueError("expected periodic water frames with atoms in O, H, H order")
        if not np.allclose(frame.cell_angstrom, np.diag(np.diag(frame.cell_angstrom))):
            raise ValueError("expected orthorhombic cells")
    model = load_model(args.model)
    _, predicted = predict(model, frames)
    monomer, dimer = gas_phase_context(1), gas_phase_context(2)
    far, error, species = [], [], []
    for frame, forces in zip(frames, predicted):
        n = frame.n_atoms // 3
        far.append(far_field_forces(frame.positions_angstrom.reshape(n, 3, 3), frame.cell_angstrom,
                                    frame.forces_ev_per_angstrom.reshape(n, 3, 3), monomer, dimer
                                    ).reshape(len(RADII_ANGSTROM), -1, 3))
        error.append(forces - frame.forces_ev_per_angstrom)
        species.append(frame.atomic_numbers)
    far_mev = np.stack(far) * 1000  # [frames, R, atoms, 3]
    error_mev = np.stack(error) * 1000  # [frames, atoms, 3]
    species = np.stack(species)  # [frames, atoms]
    result = {
        "model": args.model or "shipped default", "model_fingerprint": model_fingerprint(model),
        "model_cutoff_angstrom": model.cutoff, "dataset": os.path.relpath(args.dataset, HERE.parent),
        "frames": len(frames),
        "model_force_error_rms_mev_per_angstrom": {"all": rms(error_mev),
                                                   "O": rms(error_mev[species == 8]),
                                                   "H": rms(error_mev[species == 1])},
        "uncertainty": f"standard errors of the means of blocks of {block} consecutive frames; the range"
                       " of the missed rms is sqrt(covariance -/+ one standard error)",
        "by_radius": by_radius(far_mev, error_mev, species, block),
        "wall_seconds": round(time.time() - start, 1),
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result)
    print(f"wrote {args.output} ({result['wall_seconds']} s)")


if __name__ == "__main__":
    main()
