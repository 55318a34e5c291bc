"""How broken a model's rotational symmetry is on a structure, and what repairing it costs
(``omm-symbreak diagnose``): ``diagnose`` writes ``diagnose.json`` and ``diagnose.png``.

For the structure x of a system and a model of any kind (``model_kinds.energy_model_of``):

- ``spread``: the standard deviation (ddof=1) over M random orientations S_m, uniform on O(3)
  (improper with probability 1/2), of the energy E(S_m x) and of the forces compared in the
  body frame, S_m^T F(S_m x) (root mean square over atoms and components of their standard
  deviation);
- ``noise_floor``: the standard deviation of E(x + t) over random rigid translations t (an
  exact invariance of the models here): the float noise of one evaluation;
- ``breaking_by_degree``: the share of the O(3) variance of f(S) = E(S x) in each degree l of
  its Wigner-D power spectrum (``spectrum``: inversion-even plus inversion-odd part; degree 0
  holds only the chiral part, E(-x) != E(x)), computed on an improper Legendre-Euler quadrature;
  ``breaking_above_max_degree`` what lies above the last degree reported, and
  ``breaking_by_parity`` the two parts of each degree;
- ``recommended``: the grid of the fewest rotations (``grids.grid_catalogue``) whose average
  leaves a spread within the tolerance (a relative tolerance of the raw spread, or the noise
  floor if larger): predicted from the spectrum, then measured on random orientations (within
  the statistical bound of a standard deviation from few samples); and the
  cost of an MD step (ms, OpenMM's CPU platform, Langevin) of ``none``, ``full`` and ``mts``
  (k = 4, 8) with that grid, and ``random``.

Units: energies meV (meV/atom where named), forces meV/Angstrom, shares of the variance
dimensionless, costs ms per step of 0.5 fs.
"""

import json
import time
from pathlib import Path

import numpy as np

from .data import Frame
from .grids import MAX_GRID_EVALUATIONS, NO_ROTATION, RotationGrid, grid_catalogue
from .grids import random_rotations
from .predict import rotated_energies, rotated_predictions
from .spectrum import Spectrum, quadrature, residual_variance, spectrum
from .units import ANGSTROM_PER_NM, MEV_PER_EV, as_nm_array

DEFAULT_MAX_DEGREE = 4  # quadrature 6i: 1452 model evaluations
MAX_DEGREE = 8  # quadrature 10i: 7220 model evaluations
DEFAULT_ROTATIONS = 32
DEFAULT_RELATIVE_TOLERANCE = 1e-3
DEFAULT_MD_STEPS = 16
FLOOR_TRANSLATIONS = 8
CHECK_ROTATIONS = 8  # orientations at which a recommended grid's spread is measured
MAX_CHECKED_GRIDS = 3
MTS_STRIDES = (4, 8)
WARM_UP_STEPS = 3
SHARE_SHOWN = 1e-12  # the plot's smallest share
RESOLUTION = 1e-12  # relative rounding of float64 sums over the quadrature's copies


def diagnose(model, system: str, output_dir, replicate=(1, 1, 1),
             max_degree: int = DEFAULT_MAX_DEGREE, n_rotations: int = DEFAULT_ROTATIONS,
             relative_tolerance: float = DEFAULT_RELATIVE_TOLERANCE,
             md_steps: int = DEFAULT_MD_STEPS, seed: int = 0, force: bool = False) -> dict:
    """The diagnosis (module docstring) of ``model`` (a model file, None for the shipped
    model, an ``EnergyModel`` or an ASE calculator) on ``system`` (a template of systems/ or a
    PDB file, tiled ``replicate`` times), written to ``output_dir``/diagnose.json and .png.
    Every argument is checked, and the system and model read, before any evaluation."""
    from .model_kinds import energy_model_of
    from .systems import load_structure

    output_dir = Path(output_dir)
    check_arguments(output_dir, max_degree, n_rotations, relative_tolerance, md_steps, force)
    topology, positions = load_structure(system, tuple(replicate))
    model = energy_model_of(model)
    frame = structure_frame(topology, positions)
    rng = np.random.default_rng(seed)
    result = {"model": model.description(), "system": system, "n_atoms": frame.n_atoms,
              "periodic": frame.cell_angstrom is not None, "seed": seed}
    result["spread"] = rotational_spread(model, frame, random_rotations(n_rotations, rng))
    floor_ev = noise_floor_ev(model, frame, rng)
    result["noise_floor"] = {"energy_std_mev": MEV_PER_EV * floor_ev,
                             "translations": FLOOR_TRANSLATIONS}
    spec = spectrum(rotated_energies(model, frame, quadrature(max_degree).rotations), max_degree)
    result.update(breaking_by_degree(spec))
    tolerance_ev, source = tolerance(spec, floor_ev, relative_tolerance)
    grid, recommended = recommend(model, frame, spec, tolerance_ev, rng)
    recommended.update(tolerance_mev=MEV_PER_EV * tolerance_ev, tolerance_from=source)
    recommended["cost_ms_per_step"] = md_costs(topology, positions, model, grid, md_steps)
    result["recommended"] = recommended
    write_outputs(result, output_dir)
    return result


def check_arguments(output_dir: Path, max_degree: int, n_rotations: int,
                    relative_tolerance: float, md_steps: int, force: bool) -> None:
    """ValueError for a setting out of range, FileExistsError for an existing diagnosis in
    ``output_dir`` (unless ``force``)."""
    if not 1 <= max_degree <= MAX_DEGREE:
        raise ValueError(f"--max-degree must be in 1..{MAX_DEGREE} (the quadrature of degree L "
                         f"costs 2 (2L+3)^2 (L+2) evaluations), got {max_degree}")
    if n_rotations < 2:
        raise ValueError(f"--rotations must be >= 2 for a spread, got {n_rotations}")
    if not relative_tolerance > 0:
        raise ValueError(f"--tolerance must be positive, got {relative_tolerance}")
    if md_steps < 1:
        raise ValueError(f"--md-steps must be >= 1, got {md_steps}")
    if (output_dir / "diagnose.json").exists() and not force:
        raise FileExistsError(f"{output_dir / 'diagnose.json'} exists: pass --force to "
                              "overwrite it")


def structure_frame(topology, positions) -> Frame:
    """The unlabelled ``Frame`` (Angstrom) of an OpenMM topology and its positions (nm)."""
    from .export import topology_atomic_numbers

    box = topology.getPeriodicBoxVectors()
    return Frame(topology_atomic_numbers(topology), as_nm_array(positions) * ANGSTROM_PER_NM,
                 None if box is None else as_nm_array(box) * ANGSTROM_PER_NM)


def rotational_spread(model, frame: Frame, rotations: np.ndarray) -> dict:
    """The raw model's spread over ``rotations`` [M, 3, 3] (module docstring; meV, meV/atom,
    meV/Angstrom)."""
    energies, forces = rotated_predictions(model, frame, NO_ROTATION.rotations,
                                           NO_ROTATION.weights, rotations)
    energy_std = np.std(energies, ddof=1)
    return {"n_rotations": len(rotations),
            "rotations": "uniform on O(3), improper with probability 1/2",
            "n_improper": int(np.sum(np.linalg.det(rotations) < 0)),
            "energy_std_mev": MEV_PER_EV * energy_std,
            "energy_std_mev_per_atom": MEV_PER_EV * energy_std / frame.n_atoms,
            "force_std_mev_per_angstrom": MEV_PER_EV * float(
                np.sqrt(np.mean(np.var(forces, axis=0, ddof=1))))}


def noise_floor_ev(model, frame: Frame, rng: np.random.Generator) -> float:
    """The standard deviation (eV) of E(x + t) over ``FLOOR_TRANSLATIONS`` rigid translations t
    uniform in a cube of 1 Angstrom: what float arithmetic alone makes an invariant vary by."""
    energies = [rotated_energies(model, Frame(frame.atomic_numbers,
                                              frame.positions_angstrom + shift,
                                              frame.cell_angstrom), np.eye(3)[None])[0]
                for shift in rng.uniform(0.0, 1.0, (FLOOR_TRANSLATIONS, 3))]
    return float(np.std(energies, ddof=1))


def breaking_by_degree(spec: Spectrum) -> dict:
    """The shares of the O(3) variance per degree (keys "0".."L"), above L, and per parity
    (inversion-even and -odd part), with the quadrature's raw spread (meV)."""
    total = spec.variance
    share = (lambda value: value / total) if total > 0 else (lambda value: 0.0)
    powers = {l: spec.power(l) for l in spec.even}
    return {"breaking_by_degree": {str(l): share(sum(power)) for l, power in powers.items()},
            "breaking_above_max_degree": share(spec.variance_above()),
            "breaking_by_parity": {str(l): {"even": share(even), "odd": share(odd)}
                                   for l, (even, odd) in powers.items()},
            "spectrum": {"max_degree": spec.max_degree,
                         "quadrature": quadrature(spec.max_degree).spec,
                         "evaluations": quadrature(spec.max_degree).size,
                         "energy_std_mev": MEV_PER_EV * float(np.sqrt(total)),
                         "energy_mean_ev": spec.mean}}


def tolerance(spec: Spectrum, floor_ev: float, relative: float) -> tuple[float, str]:
    """(eV, what set it): the largest of ``relative`` times the raw spread, the noise floor and
    ``RESOLUTION`` times the mean energy (the quadrature's own rounding, which an exactly
    invariant float64 model would otherwise be held to)."""
    bounds = {f"{relative:g} of the raw spread": relative * float(np.sqrt(spec.variance)),
              "noise floor": floor_ev, "float64 resolution": RESOLUTION * abs(spec.mean)}
    source = max(bounds, key=bounds.get)
    return bounds[source], source


def candidate_grids() -> list:
    """Every grid of ``grids.grid_catalogue`` up to ``MAX_GRID_EVALUATIONS`` rotations, the
    fewest first (ties: improper copies first, then the higher l_exact)."""
    return sorted(grid_catalogue(MAX_GRID_EVALUATIONS),
                  key=lambda grid: (grid.size, not grid.inversion, -grid.l_exact))


def averaged_spread_ev(model, frame: Frame, grid: RotationGrid, rotations: np.ndarray) -> float:
    """The standard deviation (eV) over ``rotations`` [M, 3, 3] of the grid-averaged energy
    sum_g w_g E(R_g S_m x)."""
    combined = np.einsum("gij,mjk->mgik", grid.rotations, rotations).reshape(-1, 3, 3)
    energies = rotated_energies(model, frame, combined).reshape(len(rotations), grid.size)
    return float(np.std(energies @ grid.weights, ddof=1))


def measured_slack(samples: int) -> float:
    """How far a standard deviation measured from ``samples`` values may exceed the one it
    estimates before it is significantly above it: the one-sided 95 % chi-square bound,
    sqrt(chi2_0.95(samples - 1) / (samples - 1)) (1.42 for 8 samples)."""
    import scipy.stats

    return float(np.sqrt(scipy.stats.chi2.ppf(0.95, samples - 1) / (samples - 1)))


def recommend(model, frame: Frame, spec: Spectrum, tolerance_ev: float,
              rng: np.random.Generator):
    """(grid, its JSON entry): the first of ``candidate_grids`` whose predicted spread (the
    spectrum up to its last degree, ``spectrum.residual_variance``) is within ``tolerance_ev``
    and whose spread measured at ``CHECK_ROTATIONS`` random orientations is not significantly
    above it (``measured_slack``); at most
    ``MAX_CHECKED_GRIDS`` are measured, the last one measured is recommended (``meets_tolerance``
    false) if none is within it."""
    rotations = random_rotations(CHECK_ROTATIONS, rng)
    limit_ev = tolerance_ev * measured_slack(CHECK_ROTATIONS)
    checked = []
    for grid in candidate_grids():
        predicted = float(np.sqrt(residual_variance(spec, grid)))
        if predicted > tolerance_ev:
            continue
        measured = averaged_spread_ev(model, frame, grid, rotations)
        checked.append({"grid": grid.spec, "predicted_spread_mev": MEV_PER_EV * predicted,
                        "measured_spread_mev": MEV_PER_EV * measured})
        if measured <= limit_ev or len(checked) == MAX_CHECKED_GRIDS:
            break
    entry = {"grid": grid.spec, "evaluations": grid.size, "l_exact": grid.l_exact,
             "inversion": grid.inversion, "meets_tolerance": measured <= limit_ev,
             "checked": checked, "check_rotations": CHECK_ROTATIONS}
    return grid, entry


def md_costs(topology, positions, model, grid: RotationGrid, steps: int) -> dict:
    """ms per MD step of 0.5 fs of each strategy, ``none``, ``full`` and ``mts`` (k in
    ``MTS_STRIDES``) over ``grid`` (None for both when the grid is ``none``), ``random``: each a
    Context on OpenMM's CPU platform (Langevin, 0.5 fs; ``_ms_per_step``)."""
    from .settings import RunSettings

    variants = {"none": RunSettings(system="", strategy="none")}
    if grid.spec != "none":
        variants["full"] = RunSettings(system="", strategy="full", grid=grid.spec)
        variants.update((f"mts k={k}", RunSettings(system="", strategy="mts", grid=grid.spec,
                                                   mts_stride=k)) for k in MTS_STRIDES)
    variants["random"] = RunSettings(system="", strategy="random")
    costs = {name: _ms_per_step(topology, positions, model, settings, steps)
             for name, settings in variants.items()}
    if grid.spec == "none":
        costs.update({"full": None, **{f"mts k={k}": None for k in MTS_STRIDES}})
    return costs


def _ms_per_step(topology, positions, model, settings, steps: int) -> float:
    """ms per step of ``settings.timestep_fs`` of a Context of ``settings``' strategy: the median
    over ``steps`` steps (at least one outer step) of each outer step's time, after
    ``WARM_UP_STEPS`` untimed outer steps (TorchScript optimises a module in its first calls);
    the median keeps the cost of this run when other work shares the CPU."""
    import openmm
    from openmm import unit

    from .potential import create_system
    from .simulate import make_integrator

    system = create_system(topology, model, settings.strategy, settings.rotation_grid
                           if settings.strategy in ("full", "mts") else None, positions,
                           device="cpu")
    integrator = make_integrator(settings)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(positions)
    context.setVelocitiesToTemperature(settings.temperature_k * unit.kelvin, 1)
    integrator.step(WARM_UP_STEPS)
    seconds = []
    for _ in range(max(1, round(steps / settings.stride))):
        start = time.perf_counter()
        integrator.step(1)
        seconds.append(time.perf_counter() - start)
    return 1000 * float(np.median(seconds)) / settings.stride


def write_outputs(result: dict, output_dir: Path) -> None:
    """``output_dir``/diagnose.json and diagnose.png."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "diagnose.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, output_dir / "diagnose.png")


def plot(result: dict, path: Path) -> None:
    """The shares of the variance per degree (inversion-even and -odd parts, and above the last
    degree; log scale from ``SHARE_SHOWN``) beside the cost of an MD step per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    parity = result["breaking_by_parity"]
    position = np.arange(len(parity) + 1)
    for offset, part in ((-0.2, "even"), (0.2, "odd")):
        left.bar(position[:-1] + offset, [max(share[part], SHARE_SHOWN) for share in
                                          parity.values()], width=0.4,
                 label=f"{part} under inversion")
    left.bar(position[-1:], [max(result["breaking_above_max_degree"], SHARE_SHOWN)],
             width=0.4, color="grey", label="above")
    left.set_xticks(position, [*parity, f">{len(parity) - 1}"])
    left.set(yscale="log", ylim=(SHARE_SHOWN, 2), xlabel="degree l",
             ylabel="share of the rotational variance of E",
             title=f"spread {result['spread']['energy_std_mev']:.3g} meV")
    left.legend()
    costs = {name: cost for name, cost in result["recommended"]["cost_ms_per_step"].items()
             if cost is not None}
    right.bar(list(costs), list(costs.values()))
    right.set(ylabel="ms per MD step (CPU)",
              title=f"grid {result['recommended']['grid']} "
                    f"({result['recommended']['evaluations']} evaluations)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
