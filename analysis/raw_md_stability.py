"""Stability of a model's raw MD: liquid-64, NVT 300 K, 20 ps, no molecule may break.

    python analysis/raw_md_stability.py [--model FILE] [--time-ps 20] [--run-dir DIR] [--name N]

``--model``: a model of any kind (default: the shipped model; the metatrain PET of
analysis/train_metatrain_pet.sh runs with ``--model analysis/metatrain_pet/model.pt --name
raw_md_stability_metatrain_pet --run-dir analysis/runs/raw-md-stability-metatrain-pet``).

Runs ``omm-symbreak simulate liquid-64`` with the raw model (strategy ``none``; Langevin
middle, friction 1/ps, dt 0.5 fs, CPU platform, seed 1) from the template, a frame every
0.1 ps, resumable (run it again after an interruption: it continues from the last checkpoint
in ``--run-dir``). Then reads the trajectory with mdtraj and measures, per frame, every
intramolecular O-H distance (minimum image) and H-O-H angle, and the shortest intermolecular
O-O distance. A molecule counts as lost when an O-H distance exceeds 1.3 Angstrom.

Writes analysis/results/NAME.json (default raw_md_stability; distances in Angstrom, angles in degrees,
temperature in K, speed in ns/day, wall time in s).
"""

import argparse
import json
import time
from pathlib import Path

import mdtraj
import numpy as np

from figures import estimated_wall_time_s, read_state
from omm_symbreak.model_kinds import load_energy_model
from omm_symbreak.rundir import read_trajectory
from omm_symbreak.settings import RunSettings
from omm_symbreak.simulate import run

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
BROKEN_OH_ANGSTROM = 1.3


def water_geometry(trajectory: mdtraj.Trajectory) -> dict:
    """O-H distances [F, 2M] (Angstrom), H-O-H angles [F, M] (degrees) and the shortest
    intermolecular O-O distance [F] (Angstrom) of a water trajectory (residues O, H1, H2)."""
    oxygens, bonds, angles = [], [], []
    for residue in trajectory.topology.residues:
        o, h1, h2 = (atom.index for atom in residue.atoms)
        oxygens.append(o)
        bonds += [(o, h1), (o, h2)]
        angles.append((h1, o, h2))
    pairs = trajectory.topology.select_pairs(np.array(oxygens), np.array(oxygens))
    return {
        "oh_angstrom": 10 * mdtraj.compute_distances(trajectory, bonds),
        "hoh_degrees": np.degrees(mdtraj.compute_angles(trajectory, angles)),
        "min_oo_angstrom": 10 * mdtraj.compute_distances(trajectory, pairs).min(axis=1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--time-ps", type=float, default=20.0)
    parser.add_argument("--run-dir", type=Path, default=ROOT.parent / "runs" / "raw-md-stability")
    parser.add_argument("--name", default="raw_md_stability", help="results file name")
    args = parser.parse_args()
    settings = RunSettings(system="liquid-64", model=args.model, strategy="none",
                           ensemble="nvt", temperature_k=300.0, timestep_fs=0.5,
                           steps=int(round(args.time_ps * 2000)), seed=1, state_interval=200,
                           trajectory_interval=200, diagnostics_interval=4000,
                           diagnostic_grid="2i", checkpoint_interval=2000)
    resume = (args.run_dir / "run.json").is_file()
    started = time.perf_counter()
    run(settings, args.run_dir, resume=resume)
    wall_s = time.perf_counter() - started

    trajectory = read_trajectory(args.run_dir)
    geometry = water_geometry(trajectory)
    oh = geometry["oh_angstrom"]
    broken = (oh > BROKEN_OH_ANGSTROM).reshape(len(oh), -1, 2).any(axis=2)  # [F, M]
    state = read_state(args.run_dir)
    temperature, speed, simulated_ps = state["Temperature"], state["Speed"], state["Time"][-1]
    result = {
        "what": "raw-model NVT MD of liquid-64 at 300 K: does any molecule break?",
        "command": "python analysis/raw_md_stability.py"
                   + (f" --model {args.model} --name {args.name}" if args.model else ""),
        "model": args.model or "shipped (omm_symbreak/models/water-pet.ckpt)",
        "model_fingerprint": load_energy_model(args.model).fingerprint(),
        "settings": {"ensemble": "NVT, Langevin middle, friction 1/ps", "timestep_fs": 0.5,
                     "temperature_k": 300.0, "platform": "CPU", "seed": 1},
        "simulated_ps": float(simulated_ps),
        "frames": trajectory.n_frames,
        "frame_interval_ps": 0.1,
        "max_oh_angstrom": float(oh.max()),
        "oh_mean_angstrom": float(oh.mean()),
        "oh_std_angstrom": float(oh.std()),
        "hoh_mean_degrees": float(geometry["hoh_degrees"].mean()),
        "hoh_range_degrees": [float(geometry["hoh_degrees"].min()),
                              float(geometry["hoh_degrees"].max())],
        "min_intermolecular_oo_angstrom": float(geometry["min_oo_angstrom"].min()),
        "broken_oh_threshold_angstrom": BROKEN_OH_ANGSTROM,
        "molecules_lost": int(broken.any(axis=0).sum()),
        "first_frame_with_a_lost_molecule": (int(np.argmax(broken.any(axis=1)))
                                             if broken.any() else None),
        "temperature_mean_k": float(temperature.mean()),
        "ns_per_day_median": float(np.median(speed)),
        "wall_time_s_estimated_total": estimated_wall_time_s(args.run_dir),
        "wall_time_s_this_sitting": wall_s,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
