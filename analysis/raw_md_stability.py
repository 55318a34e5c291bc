"""Stability of a model's raw MD: liquid-64, NVT 300 K, 20 ps, no molecule may break.

    python analysis/raw_md_stability.py [--model NAME=FILE ...] [--time-ps 20]

``--model``: models of any kind, each with the name of its results file (an empty FILE: the
shipped model; default ``raw_md_stability=``, the shipped model; a name whose results file
holds another model's result is refused). The long-range model of
analysis/train_water_model.sh and the metatrain PET of analysis/train_metatrain_pet.sh run side
by side with ``--model raw_md_stability_long_range=analysis/training/lr/model.ckpt --model
raw_md_stability_metatrain_pet=analysis/metatrain_pet/model.pt``.

Runs ``omm-symbreak simulate liquid-64`` with each raw model (strategy ``none``; Langevin
middle, friction 1/ps, dt 0.5 fs, CPU platform, seed 1) from the template, a frame every
0.1 ps: the runs are a campaign (one worker process per core) in
analysis/runs/raw-md-stability/NAME and resume from their last checkpoint (run the script again
after an interruption). Then reads each trajectory with mdtraj and measures, per frame, every
intramolecular O-H distance (minimum image) and H-O-H angle, and the shortest intermolecular
O-O distance. A molecule counts as lost when an O-H distance exceeds 1.3 Angstrom. Also the
mean potential energy of the first and of the last tenth of the run: a model that holds the
liquid keeps it level, one that falls into a hole of its own loses it while no O-H breaks.

Writes analysis/results/NAME.json per model (distances in Angstrom, angles in degrees,
temperature in K, speed in ns/day, wall time in s).
"""

import argparse
import json
import re
import sys
from pathlib import Path

import mdtraj
import numpy as np

from figures import estimated_wall_time_s, labelled, read_state, run_as_campaign
from omm_symbreak.model_kinds import load_energy_model
from omm_symbreak.rundir import read_trajectory
from omm_symbreak.settings import RunSettings

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
RUN_ROOT = ROOT / "runs" / "raw-md-stability"
BROKEN_OH_ANGSTROM = 1.3
DEFAULT_TIME_PS = 20.0


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


def run_settings(model_file, time_ps: float) -> RunSettings:
    """The raw-model NVT run of liquid-64 at 300 K."""
    return RunSettings(system="liquid-64", model=model_file, strategy="none", ensemble="nvt",
                       temperature_k=300.0, timestep_fs=0.5, steps=int(round(time_ps * 2000)),
                       seed=1, state_interval=200, trajectory_interval=200,
                       diagnostics_interval=4000, diagnostic_grid="2i", checkpoint_interval=2000)


def stability(name: str, model_file, time_ps: float, wall_s: float) -> dict:
    """What the run ``name`` (in RUN_ROOT, ``time_ps`` long) says of the model's stability."""
    directory = RUN_ROOT / name
    trajectory = read_trajectory(directory)
    geometry = water_geometry(trajectory)
    oh = geometry["oh_angstrom"]
    broken = (oh > BROKEN_OH_ANGSTROM).reshape(len(oh), -1, 2).any(axis=2)  # [F, M]
    state = read_state(directory)
    temperature, speed, simulated_ps = state["Temperature"], state["Speed"], state["Time"][-1]
    potential = state["Potential"]
    tenth = max(1, len(potential) // 10)
    return {
        "what": "raw-model NVT MD of liquid-64 at 300 K: does any molecule break?",
        "command": "python analysis/raw_md_stability.py"
                   + (f" --model {name}={model_file}" if model_file else "")
                   + (f" --time-ps {time_ps:g}" if time_ps != DEFAULT_TIME_PS else ""),
        "model": model_file or "shipped (omm_symbreak/models/water-pet.ckpt)",
        "model_fingerprint": load_energy_model(model_file).fingerprint(),
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
        # a model that holds the liquid keeps its potential energy level after the first ps
        "potential_energy_first_and_last_tenth_kj_mol": [float(potential[:tenth].mean()),
                                                         float(potential[-tenth:].mean())],
        "ns_per_day_median": float(np.median(speed[speed > 0])),  # the first row has none
        "wall_time_s_estimated_total": estimated_wall_time_s(directory),
        "wall_time_s_this_sitting": wall_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", metavar="NAME=FILE",
                        help="results file name and model (an empty FILE: the shipped model)")
    parser.add_argument("--time-ps", type=float, default=DEFAULT_TIME_PS)
    args = parser.parse_args()
    try:  # bad input fails here, before the long work
        models = {name: file or None
                  for name, file in labelled(args.model or ["raw_md_stability="],
                                             "--model").items()}
        for name, model_file in models.items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"--model {name}=...: a results file name takes letters, "
                                 "digits and _ . - only")
            fingerprint = load_energy_model(model_file).fingerprint()
            results_file = RESULTS / f"{name}.json"
            if results_file.exists() and (json.loads(results_file.read_text())
                                          .get("model_fingerprint") != fingerprint):
                raise ValueError(f"{results_file.relative_to(RESULTS.parent.parent)} holds "
                                 "another model's result: give this model another name "
                                 "(--model NAME=FILE)")
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    wall = run_as_campaign({name: run_settings(model_file, args.time_ps)
                            for name, model_file in models.items()}, RUN_ROOT)
    RESULTS.mkdir(exist_ok=True)
    for name, model_file in models.items():
        result = stability(name, model_file, args.time_ps, wall[name])
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
