"""Figure 1: the water molecule in the gas phase, raw model vs grid averages.

    python analysis/fig1_gas_phase.py [--quick] [--model MODEL]

The study's gas-phase set-up (docs/design.md, "The study's set-ups"), lengths scaled to 2 CPU
cores:
(a) NVE from 300 K velocities, dt 0.5 fs: total angular momentum, raw vs ``2i``;
(b) NVT (Langevin middle, 300 K, friction 1/ps) with the model averaged over each grid of
    ``none``, ``1i``, ``2``, ``2i``, ``3``, ``3i``: root-mean-square net torque, block errors
    (50 ps for ``none`` and ``2i``, 10 ps for the others; NVE runs 25 ps);
(c) power spectra of the raw potential energy and of Delta = E_raw - E_2i along the raw NVE run
    (sampled every 2 fs: Nyquist 8340 cm^-1, above the potential energy's oscillation at twice
    the O-H stretch frequency);
(d, e) orientational free energy F(cos theta, phi) of the molecular direction u in the NVT runs,
    raw vs ``2i``, with the anisotropy A (power of the l = 1..4 harmonics, from products of the
    means of ANISOTROPY_BLOCKS non-adjacent blocks, ``observables.anisotropy_between_blocks``:
    unbiased for correlated frames, as in gas_anisotropy.py, which measures it to 0.005); and the
    anisotropy that the raw model's orientation dependence alone implies for a rigid molecule:
    E_raw(R x0) of the template molecule in RIGID_ROTATIONS uniformly random rotations R,
    Boltzmann-weighted at 300 K (no dynamics, so no sampling correlation).

The runs are a campaign (one worker process per core) in analysis/runs/fig1[-quick]/NAME; they
resume where a previous sitting stopped (run the script again). Writes
analysis/results/fig1_gas_phase[_quick].json (numbers with errors, run lengths, wall times) and
.png; the plotted series (L(t), the spectra, the free-energy maps) go next to the runs, to
analysis/runs/fig1[-quick]/fig1_gas_phase.json.
"""

import json
from pathlib import Path

import numpy as np
import scipy.constants
import torch

from figures import (estimated_wall_time_s, figure_arguments, run_as_campaign, without_series,
                     write_figure, write_series)
from omm_symbreak import observables as obs
from omm_symbreak import systems
from omm_symbreak.export import topology_atomic_numbers
from omm_symbreak.grids import random_rotations
from omm_symbreak.model import load_model
from omm_symbreak.model_kinds import as_energy_model
from omm_symbreak.rundir import read_diagnostics, read_trajectory
from omm_symbreak.settings import RunSettings
from omm_symbreak.units import as_nm_array, ev_to_kj_mol, nm_to_angstrom

ROOT = Path(__file__).resolve().parent
GRIDS = ("none", "1i", "2", "2i", "3", "3i")
# NVT: "nvt" for the raw model and 2i (orientational free energy maps), "nvt_torque" for the
# other grids, whose runs only give the RMS torque (3i costs 8 times the raw model a step)
LENGTHS_PS = {"full": {"nve": 25.0, "nvt": 50.0, "nvt_torque": 10.0},
              "quick": {"nve": 0.4, "nvt": 0.4, "nvt_torque": 0.4}}
MAP_GRIDS = ("none", "2i")
RIGID_ROTATIONS = {"full": 100000, "quick": 2000}
BOLTZMANN_KJ_MOL_K = scipy.constants.R / 1000
N_BLOCKS = 4
ANISOTROPY_BLOCKS = 10  # 5 ps in the 50 ps runs, as gas_anisotropy.py's blocks
# what the figure plots but the results JSON leaves out (written next to the runs)
SERIES = {"time_ps", "L_amu_nm2_per_ps", "spectrum_potential_kj_mol", "spectrum_delta_kj_mol",
          "cos_theta", "phi_rad", "free_energy_kt"}


def run_specs(lengths: dict, model_file) -> dict:
    """name -> RunSettings of every simulation of the figure."""
    common = dict(system="water-monomer", model=model_file, temperature_k=300.0,
                  timestep_fs=0.5, seed=1, checkpoint_interval=2000, state_interval=400)
    nve_steps = int(round(lengths["nve"] * 2000))
    specs = {
        f"nve-{label}": RunSettings(strategy=strategy, grid=grid, ensemble="nve",
                                    steps=nve_steps, diagnostics_interval=interval,
                                    diagnostic_grid="2i", trajectory_interval=40, **common)
        for label, strategy, grid, interval in (("raw", "none", None, 4),
                                                ("2i", "full", "2i", 8))
    }
    for grid in GRIDS:
        specs[f"nvt-{grid}"] = RunSettings(
            strategy="none" if grid == "none" else "full", grid=grid,
            ensemble="nvt", diagnostics_interval=20, diagnostic_grid="none",
            steps=int(round(lengths["nvt" if grid in MAP_GRIDS else "nvt_torque"] * 2000)),
            trajectory_interval=20, **common)
    return specs


def figure_numbers(specs: dict, run_root: Path) -> dict:
    """Everything the figure plots, with errors."""
    numbers = {}
    for label in ("raw", "2i"):
        table = read_diagnostics(run_root / f"nve-{label}" / "diagnostics.csv")
        wander, drift = obs.angular_momentum_statistics(table)
        numbers[f"nve_{label}"] = {
            "time_ps": table["time_ps"].tolist(),
            "L_amu_nm2_per_ps": np.column_stack([table[f"L_{a}"] for a in "xyz"]).tolist(),
            "L_wander_amu_nm2_per_ps": float(wander),
            "L_drift_kj_mol": drift.tolist(),
            "delta_std_kj_mol": float(np.std(table["delta_kj_mol"])),
        }
    raw_nve = read_diagnostics(run_root / "nve-raw" / "diagnostics.csv")
    dt_ps = float(raw_nve["time_ps"][1] - raw_nve["time_ps"][0])
    for series in ("potential_kj_mol", "delta_kj_mol"):
        wavenumber, spectrum = obs.power_spectrum(raw_nve[series], dt_ps)
        numbers[f"spectrum_{series}"] = {"wavenumber_cm": wavenumber.tolist(),
                                         "spectrum": spectrum.tolist()}
    numbers["torque_rms_kj_mol"] = {}
    for grid in GRIDS:
        table = read_diagnostics(run_root / f"nvt-{grid}" / "diagnostics.csv")
        rms, error = obs.torque_statistics(table, N_BLOCKS)
        numbers["torque_rms_kj_mol"][grid] = {"value": float(rms), "error": float(error)}
    for grid in MAP_GRIDS:
        u = obs.molecular_direction(read_trajectory(run_root / f"nvt-{grid}"))
        anisotropy, error = obs.anisotropy_between_blocks(u, n_blocks=ANISOTROPY_BLOCKS)
        cos_theta, phi, density = obs.orientation_density(u)
        numbers[f"orientation_{grid}"] = {
            "anisotropy": float(anisotropy), "anisotropy_error": float(error),
            "anisotropy_blocks": ANISOTROPY_BLOCKS, "samples": int(u.shape[0]),
            "cos_theta": cos_theta.tolist(), "phi_rad": phi.tolist(),
            "free_energy_kt": obs.orientational_free_energy(density).tolist(),
        }
    return numbers


def plot(numbers: dict):
    """The figure (matplotlib) of ``numbers``."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    a, b, c, d, e, f = axes.ravel()
    for label, style in (("raw", "-"), ("2i", "--")):
        entry = numbers[f"nve_{label}"]
        momentum = np.array(entry["L_amu_nm2_per_ps"])
        for component, name in zip(momentum.T, "xyz"):
            a.plot(entry["time_ps"], component, style, lw=0.8, label=f"{label} L$_{name}$")
        a.plot(entry["time_ps"], np.linalg.norm(momentum, axis=1), style, color="k", lw=1.2,
               label=f"{label} |L|")
    a.set(xlabel="t (ps)", ylabel="L (amu nm$^2$/ps)", title="(a) NVE angular momentum")
    a.legend(fontsize=6, ncol=2)
    torque = numbers["torque_rms_kj_mol"]
    b.errorbar(range(len(torque)), [t["value"] for t in torque.values()],
               [t["error"] for t in torque.values()], fmt="o")
    b.set_xticks(range(len(torque)), list(torque))
    b.set_yscale("log")
    b.set(xlabel="grid", ylabel="rms |$\\tau$| (kJ/mol)", title="(b) NVT 300 K torque")
    for series, label in (("potential_kj_mol", "potential energy"), ("delta_kj_mol", "$\\Delta$")):
        s = numbers[f"spectrum_{series}"]
        c.semilogy(s["wavenumber_cm"], np.maximum(s["spectrum"], 1e-30), label=label)
    c.set(xlabel="wavenumber (cm$^{-1}$)", ylabel="power (kJ$^2$/mol$^2$ cm)",
          title="(c) power spectra, raw NVE")
    c.legend()
    maps = [numbers["orientation_none"], numbers["orientation_2i"]]
    # colour range: the 95th percentile of |F| over both maps (empty regions go to +inf)
    finite = np.concatenate([np.ravel(m["free_energy_kt"]) for m in maps])
    limit = max(float(np.percentile(np.abs(finite[np.isfinite(finite)]), 95)), 0.1)
    for axis, entry, label in ((d, maps[0], "(d) raw"), (e, maps[1], "(e) 2i")):
        image = axis.pcolormesh(entry["phi_rad"], entry["cos_theta"], entry["free_energy_kt"],
                                shading="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
        figure.colorbar(image, ax=axis, label="F (k$_B$T)")
        axis.set(xlabel="$\\phi$ (rad)", ylabel="cos $\\theta$",
                 title=f"{label}: anisotropy {entry['anisotropy']:.3g} $\\pm$ "
                       f"{entry['anisotropy_error']:.2g}")
    rigid = numbers["rigid_rotor_raw"]
    f.bar(["raw, NVT", "2i, NVT", "raw, rigid rotor"],
          [maps[0]["anisotropy"], maps[1]["anisotropy"], rigid["anisotropy"]],
          yerr=[maps[0]["anisotropy_error"], maps[1]["anisotropy_error"], rigid["noise_floor"]],
          color=["C3", "C0", "C1"], capsize=4)
    f.set(ylabel="anisotropy A of u", title="(f) anisotropy (its true value for 2i: 0)")
    return figure


def rigid_rotor_anisotropy(model_file, n_rotations: int, temperature_k: float = 300.0) -> dict:
    """Anisotropy of u for the rigid template molecule with Boltzmann weights of the raw model's
    energy in uniformly random proper rotations (``observables.weighted_orientation_anisotropy``),
    and the spread of that energy (kJ/mol)."""
    model = load_model(model_file)
    topology, positions, _ = systems.load("water-monomer")
    x = torch.tensor(nm_to_angstrom(as_nm_array(positions)), dtype=torch.float32)
    types = model.species_of(topology_atomic_numbers(topology))
    rotations = random_rotations(n_rotations, np.random.default_rng(0), inversion=False)
    kernel = as_energy_model(model).rotated_copies()
    with torch.no_grad():
        energy_kj_mol = ev_to_kj_mol(torch.cat([
            kernel(types, x, None, torch.tensor(rotations[i:i + 5000], dtype=x.dtype))
            for i in range(0, n_rotations, 5000)]).double().numpy())
    energy_kj_mol -= energy_kj_mol.mean()
    u0 = x[1:].mean(dim=0).numpy() - x[0].numpy()
    weights = np.exp(-energy_kj_mol / (BOLTZMANN_KJ_MOL_K * temperature_k))
    anisotropy, floor = obs.weighted_orientation_anisotropy(rotations @ u0, weights)
    return {"anisotropy": anisotropy, "noise_floor": floor, "rotations": n_rotations,
            "temperature_k": temperature_k, "energy_std_kj_mol": float(energy_kj_mol.std()),
            "energy_range_kj_mol": [float(energy_kj_mol.min()), float(energy_kj_mol.max())]}


def main() -> None:
    args = figure_arguments(__doc__.splitlines()[0])
    mode = "quick" if args.quick else "full"
    run_root = ROOT / "runs" / ("fig1-quick" if args.quick else "fig1")
    specs = run_specs(LENGTHS_PS[mode], args.model)
    wall = run_as_campaign(specs, run_root)
    numbers = figure_numbers(specs, run_root)
    numbers["rigid_rotor_raw"] = rigid_rotor_anisotropy(args.model, RIGID_ROTATIONS[mode])
    write_figure("fig1_gas_phase", args, {
        "what": "water molecule, gas phase: angular momentum (NVE), torque per grid (NVT), "
                "power spectra, orientational free energy; units in the keys",
        "simulated_ps": {name: s.steps * s.timestep_fs / 1000 for name, s in specs.items()},
        "wall_time_s_this_sitting": wall,
        "wall_time_s_estimated_total": {name: estimated_wall_time_s(run_root / name)
                                        for name in specs},
        "errors": f"standard errors over {N_BLOCKS} non-overlapping blocks; the anisotropy's from "
                  f"{ANISOTROPY_BLOCKS} blocks (anisotropy_between_blocks)",
        "plotted_series": write_series(run_root, "fig1_gas_phase", numbers),
        **without_series(numbers, SERIES),
    }, numbers, plot)
    print(json.dumps({"torque_rms_kj_mol": numbers["torque_rms_kj_mol"],
                      "anisotropy": {g: numbers[f"orientation_{g}"]["anisotropy"]
                                     for g in MAP_GRIDS},
                      "rigid_rotor_raw": numbers["rigid_rotor_raw"]}, indent=1))


if __name__ == "__main__":
    main()
