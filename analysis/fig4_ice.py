"""Ice Ih: proton-arrangement energies (raw model vs Ti vs q-TIP4P/F) and a 250 K run of the crystal.

    python analysis/fig4_ice.py [--quick] [--model FILE]

Needs genice2 (``pip install -e '.[analysis]'``).

(a) Relaxed energies. Proton-disordered ice Ih cells of 128 molecules (GenIce2 seeds 1, 2, ...:
    the same lattice sites, different hydrogen-bond networks, every one obeying the ice rules),
    relaxed at fixed cell with OpenMM's L-BFGS minimiser to an RMS force of TOLERANCE_KJ_MOL_NM:
    q-TIP4P/F from the GenIce geometry (then further in double precision on the Reference
    platform; the change is the reference energies' error bar); the raw model from the
    q-TIP4P/F minimum in several orientations of the crystal (the identity and random O(3)
    elements; the model evaluated on R x is the one-rotation grid {R}); the average over
    AVERAGE_GRID (the default grid ``Ti``: exact to l = 3 with inversion like the study's ``2i``,
    at 24 rotations instead of 36) from the raw model's minimum in the identity orientation. The
    symmetry error of the relaxed energies (their spread over orientations, and raw - average)
    is set against the spread of the energies between proton arrangements, and the ordering of
    the arrangements is compared (Kendall's tau). The raw model's energies at the average's
    minimum in each orientation (single points) give the symmetry error at one structure,
    without the spread of where each relaxation stopped.
(b) Stability. NVT (Langevin middle, friction 1/ps, dt 0.5 fs) of the ``ice-ih`` template at
    250 K with the raw model and with q-TIP4P/F: g_OO(r) and the oxygen MSD (a plateau when the
    crystal holds).

Relaxations are stored one by one in relaxations.json and the NVT runs are a campaign (one worker
process per core); both resume: run the script again after an interruption, in this sitting or a
later one. In the full mode their durable state is in git, in ARCHIVE (analysis/campaigns/archive/
ice/: the relaxations, and per run its XTC frames, rows and checkpoint), and the runs' analysis
reads it; the quick mode keeps everything in analysis/runs/fig4-quick/.
Writes analysis/results/fig4_ice[_quick].json (energies in meV per molecule, lengths in nm,
times in ps and s) and .png.
"""

import json
import time
from pathlib import Path

import numpy as np
import openmm
from openmm import unit
from scipy.stats import kendalltau

from figures import estimated_wall_time_s, figure_arguments, run_as_campaign, write_figure
from omm_symbreak import observables as obs
from omm_symbreak import systems
from omm_symbreak.grids import RotationGrid, parse_grid, random_rotations
from omm_symbreak.model import load_model
from omm_symbreak.potential import create_system
from omm_symbreak.reference import add_virtual_sites, create_qtip4pf_system
from omm_symbreak.reference.run import ReferenceSettings
from omm_symbreak.rundir import read_trajectory
from omm_symbreak.settings import RunSettings
from omm_symbreak.strategies import DEFAULT_GRID
from omm_symbreak.units import KJ_PER_MOL_PER_EV, nm_to_angstrom

ROOT = Path(__file__).resolve().parent
ARCHIVE = ROOT / "campaigns" / "archive" / "ice"
SETTINGS = {
    "full": dict(seeds=(1, 2, 3, 4, 5), orientations=4, max_iterations=500, nvt_ps=4.0),
    "quick": dict(seeds=(1, 2), orientations=2, max_iterations=2, nvt_ps=0.2),
}
TOLERANCE_KJ_MOL_NM = 1.0  # RMS force at which a relaxation stops (about 1 meV/Angstrom)
ORIENTATION_SEED = 2024
TEMPERATURE_K = 250.0
FRAME_STEPS = 40  # 20 fs
N_BLOCKS = 4
AVERAGE_GRID = DEFAULT_GRID  # the symmetrized model the raw one is set against
MEV_PER_KJ_MOL = 1000.0 / KJ_PER_MOL_PER_EV


def orientations(n: int) -> np.ndarray:
    """[n, 3, 3]: the identity, then n - 1 random O(3) elements (fixed seed)."""
    rng = np.random.default_rng(ORIENTATION_SEED)
    return np.concatenate([np.eye(3)[None], random_rotations(n - 1, rng, inversion=True)])


def one_rotation(rotation: np.ndarray, index: int) -> RotationGrid:
    """The 'grid' {R}: the model evaluated on the rotated crystal, R x (cell rotated too)."""
    return RotationGrid(spec=f"orientation {index}", rotations=rotation[None], weights=np.ones(1),
                        l_exact=0, inversion=False)


def context_at(system: openmm.System, positions_nm: np.ndarray,
               platform: str = "CPU") -> openmm.Context:
    """A context of ``system`` on ``platform`` at ``positions_nm`` [N, 3] (for energies and
    minimisation: its integrator never steps)."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions_nm)
    return context


def minimise(system: openmm.System, positions_nm: np.ndarray, max_iterations: int,
             real_atoms: np.ndarray, platform: str = "CPU") -> dict:
    """Relax at fixed cell (OpenMM L-BFGS). Returns the energy (kJ/mol), the RMS force over
    ``real_atoms`` (kJ/mol/nm), their positions (nm, a JSON-ready [n][3] list) and the wall
    time (s)."""
    context = context_at(system, positions_nm, platform)
    started = time.perf_counter()
    openmm.LocalEnergyMinimizer.minimize(context, TOLERANCE_KJ_MOL_NM, max_iterations)
    state = context.getState(getEnergy=True, getPositions=True, getForces=True)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return {"energy_kj_mol": state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            "rms_force_kj_mol_nm": float(np.sqrt(np.mean(forces[real_atoms] ** 2))),
            "positions_nm": positions[real_atoms].tolist(),
            "wall_s": time.perf_counter() - started}


def reference_minimum(topology, positions_nm, max_iterations: int, platform: str) -> dict:
    """``minimise`` with q-TIP4P/F (M sites added, and left out of the result)."""
    site_topology, site_positions = add_virtual_sites(topology, np.asarray(positions_nm))
    real = np.array([atom.index for atom in site_topology.atoms() if atom.element is not None])
    return minimise(create_qtip4pf_system(site_topology), site_positions, max_iterations, real,
                    platform)


def relax_arrangement(seed: int, model, settings: dict, store: dict, save) -> None:
    """The relaxations of one proton arrangement into ``store[str(seed)]`` (skipping those
    already there), calling ``save()`` after each."""
    topology, positions_nm = systems.proton_disordered_ice_ih(seed)
    done = store.setdefault(str(seed), {})
    all_atoms = np.arange(topology.getNumAtoms())
    iterations = settings["max_iterations"]

    def relax(key, relaxation):
        if key not in done:
            done[key] = relaxation()
            save()

    relax("reference", lambda: reference_minimum(topology, positions_nm, 10 * iterations, "CPU"))
    # how far from converged the single-precision minimum is: it continues in double
    relax("reference, double precision", lambda: reference_minimum(
        topology, done["reference"]["positions_nm"], 10 * iterations, "Reference"))
    for index, rotation in enumerate(orientations(settings["orientations"])):
        relax(f"raw {index}", lambda: minimise(
            create_system(topology, model, "full", one_rotation(rotation, index)),
            np.array(done["reference"]["positions_nm"]), iterations, all_atoms))
    relax(AVERAGE_GRID, lambda: minimise(
        create_system(topology, model, "full", parse_grid(AVERAGE_GRID)),
        np.array(done["raw 0"]["positions_nm"]), iterations, all_atoms))


def raw_at_average_minima(store: dict, model, settings: dict) -> np.ndarray:
    """[A, O]: the raw model's energy (kJ/mol) at the averaged model's minimum of each proton
    arrangement, in each orientation of the crystal. Single points: the symmetry error of the
    energy at one structure, free of where the minimiser stopped."""
    energies = np.empty((len(settings["seeds"]), settings["orientations"]))
    for a, seed in enumerate(settings["seeds"]):
        topology, _ = systems.proton_disordered_ice_ih(seed)
        positions_nm = np.array(store[str(seed)][AVERAGE_GRID]["positions_nm"])
        for index, rotation in enumerate(orientations(settings["orientations"])):
            system = create_system(topology, model, "full", one_rotation(rotation, index))
            energies[a, index] = context_at(system, positions_nm).getState(
                getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    return energies


def energy_numbers(store: dict, settings: dict, n_molecules: int,
                   raw_single_points_kj_mol: np.ndarray) -> dict:
    """Relaxed energies per molecule and what they say about symmetry breaking and ordering;
    ``raw_single_points_kj_mol`` [A, O] from ``raw_at_average_minima``."""
    seeds = [str(seed) for seed in settings["seeds"]]

    def energies(key):
        return np.array([store[seed][key]["energy_kj_mol"] for seed in seeds]) * MEV_PER_KJ_MOL / n_molecules

    reference, averaged = energies("reference, double precision"), energies(AVERAGE_GRID)
    reference_change = reference - energies("reference")
    raw = np.stack([energies(f"raw {k}") for k in range(settings["orientations"])], axis=1)
    orientation_std = raw.std(axis=1, ddof=1)  # [A]
    raw_minus_average = raw - averaged[:, None]  # [A, O]
    single_points = raw_single_points_kj_mol * MEV_PER_KJ_MOL / n_molecules  # [A, O]
    single_point_std = single_points.std(axis=1, ddof=1)  # [A]
    single_point_minus_average = single_points - averaged[:, None]  # [A, O]
    return {
        "average_grid": AVERAGE_GRID,
        "arrangements": [int(seed) for seed in seeds],
        "orientations": settings["orientations"],
        "energy_mev_per_molecule": {  # each relative to its own mean over the arrangements
            "reference": (reference - reference.mean()).tolist(),
            AVERAGE_GRID: (averaged - averaged.mean()).tolist(),
            "raw": (raw - raw[:, 0].mean()).tolist()},
        "spread_between_arrangements_mev_per_molecule": {
            name: {"std": float(values.std(ddof=1)), "range": float(np.ptp(values))}
            for name, values in (("reference", reference), (AVERAGE_GRID, averaged),
                                 ("raw", raw[:, 0]))},
        "reference_change_in_double_precision_mev_per_molecule": {
            "max_abs": float(np.abs(reference_change).max()),
            "note": "the q-TIP4P/F minima relaxed further on the Reference platform (double "
                    "precision): an error bar of the reference energies"},
        "raw_orientation_std_mev_per_molecule": [float(orientation_std.mean()),
                                                 float(orientation_std.std(ddof=1) / np.sqrt(len(seeds)))],
        "raw_minus_average_mev_per_molecule": {"mean": float(raw_minus_average.mean()),
                                               "std": float(raw_minus_average.std(ddof=1)),
                                               "max_abs": float(np.abs(raw_minus_average).max())},
        "raw_at_average_minimum_mev_per_molecule": {
            "orientation_std": [float(single_point_std.mean()),
                                float(single_point_std.std(ddof=1) / np.sqrt(len(seeds)))],
            "minus_average": {"mean": float(single_point_minus_average.mean()),
                              "std": float(single_point_minus_average.std(ddof=1)),
                              "max_abs": float(np.abs(single_point_minus_average).max())},
            "note": "single points of the raw model at the average's relaxed structure, in each "
                    "orientation: the symmetry error at one structure, without the spread of "
                    "where each relaxation stopped (max_rms_force_after_relaxation)"},
        "kendall_tau": {
            f"{AVERAGE_GRID} vs reference": float(kendalltau(averaged, reference).statistic),
            "raw vs reference, per orientation": [float(kendalltau(raw[:, k], reference).statistic)
                                                  for k in range(raw.shape[1])],
            f"raw vs {AVERAGE_GRID}, per orientation": [
                float(kendalltau(raw[:, k], averaged).statistic) for k in range(raw.shape[1])]},
        "max_rms_force_after_relaxation_kj_mol_nm": {
            key: float(max(store[seed][key]["rms_force_kj_mol_nm"] for seed in seeds))
            for key in store[seeds[0]]},
        "relaxation_wall_s": float(sum(store[seed][key]["wall_s"] for seed in seeds
                                       for key in store[seed])),
    }


def stability_runs(mode: str, settings: dict, model_file) -> tuple:
    """Run (or resume) the 250 K NVT runs as a campaign (in the full mode with its durable state
    in ARCHIVE); returns (the directories to analyse, wall times of this sitting)."""
    steps = int(round(settings["nvt_ps"] * 2000))
    root = run_root(mode)
    archive = ARCHIVE if mode == "full" else None
    intervals = dict(seed=1, trajectory_interval=FRAME_STEPS, state_interval=FRAME_STEPS * 10,
                     checkpoint_interval=2000, trajectory_format="xtc")
    runs = {"nvt-reference": ReferenceSettings(system="ice-ih", steps=steps,
                                               temperature_k=TEMPERATURE_K, **intervals),
            "nvt-raw": RunSettings(system="ice-ih", model=model_file, strategy="none",
                                   ensemble="nvt", temperature_k=TEMPERATURE_K,
                                   friction_per_ps=1.0, timestep_fs=0.5, steps=steps,
                                   diagnostics_interval=2000, diagnostic_grid=AVERAGE_GRID,
                                   **intervals)}
    wall = run_as_campaign(runs, root, archive)
    analysed = archive or root
    return ({"raw": analysed / "nvt-raw", "reference": analysed / "nvt-reference"},
            {"raw": wall["nvt-raw"], "reference": wall["nvt-reference"]})


def run_root(mode: str) -> Path:
    """Where the runs of ``mode`` run (not kept in git)."""
    return ROOT / "runs" / ("fig4" if mode == "full" else "fig4-quick")


def stability_numbers(directory: Path) -> dict:
    """g_OO(r), its first peak, and the oxygen MSD (the second half of the run as lag range)."""
    trajectory = read_trajectory(directory)
    r, g, g_error = obs.radial_distribution_oo(trajectory, n_blocks=N_BLOCKS)
    peak_position, peak_height = obs.first_peak_oo(trajectory, N_BLOCKS)
    max_lag_ps = 0.5 * trajectory.time[-1] / N_BLOCKS
    lag, msd, msd_error, _ = obs.mean_square_displacement(trajectory, max_lag_ps, n_blocks=N_BLOCKS)
    return {"frames": trajectory.n_frames, "simulated_ps": float(trajectory.time[-1]),
            "r_nm": r.tolist(), "g_oo": g.tolist(), "g_oo_error": g_error.tolist(),
            "g_oo_first_peak_nm": [float(v) for v in peak_position],
            "g_oo_first_peak_height": [float(v) for v in peak_height],
            "lag_ps": lag.tolist(), "msd_nm2": msd.tolist(), "msd_error_nm2": msd_error.tolist()}


def plot(numbers: dict):
    """The figure (matplotlib) of ``numbers``."""
    import matplotlib.pyplot as plt

    figure, (e_axis, g_axis, m_axis) = plt.subplots(1, 3, figsize=(15, 4.5))
    energies = numbers["energies"]["energy_mev_per_molecule"]
    x = np.arange(len(energies["reference"]))
    e_axis.plot(x, energies["reference"], "ks-", label="q-TIP4P/F")
    e_axis.plot(x, energies[AVERAGE_GRID], "o-", color="C0", label=AVERAGE_GRID)
    raw = np.array(energies["raw"])
    for k in range(raw.shape[1]):
        e_axis.plot(x + 0.08 * (k - raw.shape[1] / 2), raw[:, k], "x", color="C3",
                    label="raw, each orientation" if k == 0 else None)
    e_axis.set(xticks=x, xticklabels=numbers["energies"]["arrangements"],
               xlabel="proton arrangement (GenIce2 seed)",
               ylabel="relaxed energy - mean (meV/molecule)", title="ice Ih, fixed cell")
    e_axis.legend(fontsize=8)
    for name, label in (("raw", "raw"), ("reference", "q-TIP4P/F")):
        entry = numbers["stability"][name]
        r = nm_to_angstrom(np.array(entry["r_nm"]))
        g, error = np.array(entry["g_oo"]), np.array(entry["g_oo_error"])
        line, = g_axis.plot(r, g, label=label)
        g_axis.fill_between(r, g - error, g + error, color=line.get_color(), alpha=0.3)
        lag = np.array(entry["lag_ps"])
        msd, error = 100 * np.array(entry["msd_nm2"]), 100 * np.array(entry["msd_error_nm2"])
        m_axis.plot(lag, msd, color=line.get_color(), label=label)
        m_axis.fill_between(lag, msd - error, msd + error, color=line.get_color(), alpha=0.3)
    g_axis.set(xlabel="r ($\\AA$)", ylabel="g$_{OO}$(r)", title=f"{TEMPERATURE_K:.0f} K NVT")
    m_axis.set(xlabel="lag (ps)", ylabel="oxygen MSD ($\\AA^2$)", title=f"{TEMPERATURE_K:.0f} K NVT")
    for axis in (g_axis, m_axis):
        axis.legend(fontsize=8)
    return figure


def main() -> None:
    args = figure_arguments(__doc__.splitlines()[0])
    mode = "quick" if args.quick else "full"
    settings = SETTINGS[mode]
    model = load_model(args.model)
    store_path = (ARCHIVE if mode == "full" else run_root(mode)) / "relaxations.json"
    store_path.parent.mkdir(parents=True, exist_ok=True)
    store = json.loads(store_path.read_text()) if store_path.is_file() else {}

    def save():
        temporary = store_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(store))
        temporary.replace(store_path)

    for seed in settings["seeds"]:
        relax_arrangement(seed, model, settings, store, save)
        print(f"arrangement {seed} relaxed", flush=True)
    n_molecules = systems.load("ice-ih")[0].getNumResidues()
    directories, wall = stability_runs(mode, settings, args.model)
    numbers = {"energies": energy_numbers(store, settings, n_molecules,
                                          raw_at_average_minima(store, model, settings)),
               "stability": {name: stability_numbers(directory)
                             for name, directory in directories.items()}}
    result = {
        "what": "ice Ih: symmetry error of relaxed energies vs the spread between proton "
                "arrangements; 250 K NVT stability (raw model vs q-TIP4P/F)",
        "mode": mode, "settings": {**settings, "molecules": n_molecules,
                                   "tolerance_rms_force_kj_mol_nm": TOLERANCE_KJ_MOL_NM,
                                   "temperature_k": TEMPERATURE_K, "timestep_fs": 0.5,
                                   "friction_per_ps": 1.0},
        "units": "energies meV/molecule, r nm, MSD nm^2, time ps, wall time s",
        "errors": f"standard errors over {N_BLOCKS} non-overlapping blocks (g_OO, MSD); over "
                  "arrangements (orientation spread)",
        "wall_time_s_this_sitting": wall,
        "wall_time_s_estimated_total": {
            "relaxations": numbers["energies"]["relaxation_wall_s"],
            **{name: estimated_wall_time_s(directory) for name, directory in directories.items()}},
        **numbers}
    write_figure("fig4_ice", args, result, numbers, plot)
    print(json.dumps({key: value for key, value in numbers["energies"].items()
                      if key != "energy_mev_per_molecule"}, indent=2))


if __name__ == "__main__":
    main()
