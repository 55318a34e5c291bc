"""Test-set accuracy and rotational symmetry breaking of a model, raw and grid-averaged.

For every structure x of the test set (up to ``max_structures``), every grid (``none`` is the
raw model) and M random rotations R_m (uniform on O(3): proper or improper with probability
1/2, ``grids.random_rotations``, seeded), the grid-averaged energy E(R_m x) and the forces of
the rotated structure rotated back, R_m^T F(R_m x), are evaluated. For an exactly invariant
(and hence equivariant) model these do not depend on m.

Reported per grid (units: meV/atom for energies per atom, meV for energies per structure,
meV/Angstrom for force components):

- ``accuracy``: MAE and RMSE against the reference energies and forces, in the orientation of
  the file.
- ``rotational``: the spread over the M rotations, ``energy_std_*``: root mean square over
  structures of the standard deviation (ddof=1) of E(R_m x) (per atom and per structure);
  ``force_std_mev_per_angstrom``: square root of the mean over structures, atoms and
  components of the variance of R_m^T F(R_m x).
- ``difference_from_raw`` (grids other than ``none``): root mean square over structures and
  rotations of E_grid - E_raw and of the force difference: how far the raw model is from the
  average (the study's "rotational error against a 3i average").

Implementation: ``predict.rotated_predictions``: for every m, the kernel evaluates the G copies
R_g R_m x (one neighbour search); the forces are the gradient with respect to the unrotated
positions, which is already R_m^T F(R_m x).
"""

import json
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch

from .data import Frame, read_frames
from .grids import NO_ROTATION, RotationGrid, random_rotations
from .model.model_file import DEFAULT_MODEL
from .model_kinds import BuiltinModel, EnergyModel, as_energy_model, load_energy_model
from .predict import error_metrics, rotated_predictions
from .units import MEV_PER_EV

# Random rotations per structure, and how many of them the grids are evaluated at (a grid
# rotation costs G raw evaluations): the README's `evaluate test.extxyz --grids 1i Ti I` of 2
# frames of liquid-64 with the shipped model, 790 model evaluations, took 64-76 s on one thread
# of a busy 2-core CPU (raw model alone: about 14 s); 100 rotations at every grid took 7 min
DEFAULT_ROTATIONS = 50
DEFAULT_GRID_ROTATIONS = 3


def evaluate(model: EnergyModel, frames: Sequence[Frame], grids: Sequence[RotationGrid] = (),
             n_rotations: int = DEFAULT_ROTATIONS, seed: int = 0,
             grid_rotations: Optional[int] = None, progress: bool = False,
             report: Optional[Callable[[str], None]] = None) -> dict:
    """Metrics (see the module docstring) of ``model`` (any kind, ``model_kinds``, or an
    ``UnconstrainedPET``) on labelled ``frames``.

    ``grids``: grids besides ``none`` (always evaluated first). ``grid_rotations``: how many of
    the ``n_rotations`` random rotations (the first ones) the grids are evaluated at (default
    ``DEFAULT_GRID_ROTATIONS``, at most ``n_rotations``; a grid of G rotations costs G times the
    raw model). ``report(text)`` gets the cost estimate (``cost_estimate``) before the work;
    ``progress``: a progress bar counting model evaluations.
    """
    for grid in grids:
        if grid.randomized:
            raise ValueError(f"grid {grid.spec}: the structures are already evaluated in random "
                             "orientations, so a randomized grid measures the same as the fixed "
                             f"one; use {grid.spec.removesuffix('+random')}")
    grids_by_spec: Dict[str, RotationGrid] = {"none": NO_ROTATION}
    grids_by_spec.update((grid.spec, grid) for grid in grids)
    if grid_rotations is None:
        grid_rotations = min(DEFAULT_GRID_ROTATIONS, n_rotations)
    if not 2 <= grid_rotations <= n_rotations:
        raise ValueError(f"need 2 <= grid rotations <= rotations for a spread, got "
                         f"{grid_rotations} and {n_rotations}")
    for number, frame in enumerate(frames):
        if not frame.has_labels:
            raise ValueError(f"frame {number} has no energy or no forces")
    model = as_energy_model(model)
    if isinstance(model, BuiltinModel):
        model.network.eval().requires_grad_(False)
    if report is not None:
        report(cost_estimate(model, frames, grids_by_spec, n_rotations, grid_rotations))
    results = _predictions(model, frames, grids_by_spec, n_rotations, grid_rotations, seed,
                           progress)
    n_atoms = np.array([frame.n_atoms for frame in frames], dtype=float)
    metrics = {spec: _grid_metrics(frames, n_atoms, results[spec], results["none"],
                                   grids_by_spec[spec]) for spec in grids_by_spec}
    return {
        "n_structures": len(frames),
        "n_atoms_mean": float(np.mean(n_atoms)),
        "n_rotations": n_rotations,
        "rotations": "uniform on O(3) (improper with probability 1/2)",
        "seed": seed,
        "dtype": str(model.dtype or "the module's own").replace("torch.", ""),
        "units": "energies meV/atom or meV/structure, force components meV/Angstrom",
        "grids": metrics,
    }


def evaluations_per_structure(grids_by_spec: Dict[str, RotationGrid], n_rotations: int,
                              grid_rotations: int) -> int:
    """The model evaluations (with forces) of one structure: 1 + n_rotations of the raw model,
    (1 + grid_rotations) x G for each other grid of G rotations."""
    return sum((1 + (n_rotations if spec == "none" else grid_rotations)) * grid.size
               for spec, grid in grids_by_spec.items())


def cost_estimate(model, frames, grids_by_spec: Dict[str, RotationGrid], n_rotations: int,
                  grid_rotations: int) -> str:
    """The model evaluations of ``evaluate`` and its time, extrapolated from one timed raw
    evaluation of the first structure (in proportion to the atoms; the copies of a grid go
    through the model together and cost less each, so the time is an upper estimate)."""
    per_structure = evaluations_per_structure(grids_by_spec, n_rotations, grid_rotations)
    start = time.perf_counter()
    rotated_predictions(model, frames[0], NO_ROTATION.rotations, NO_ROTATION.weights,
                        np.eye(3)[None])
    seconds_per_atom = (time.perf_counter() - start) / frames[0].n_atoms
    seconds = seconds_per_atom * per_structure * sum(frame.n_atoms for frame in frames)
    grids = [spec for spec in grids_by_spec if spec != "none"]
    return (f"{len(frames)} structures x {per_structure} model evaluations (the raw model at "
            f"1 + {n_rotations} rotations" + (f", grids {' '.join(grids)} at 1 + "
                                                f"{grid_rotations}" if grids else "")
            + f"): at most about {_duration(seconds)} here, from one timed evaluation")


def _duration(seconds: float) -> str:
    """``seconds`` in words: "40 s", "12 min", "3.5 h"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _predictions(model, frames, grids_by_spec: Dict[str, RotationGrid], n_rotations: int,
                 grid_rotations: int, seed: int, progress: bool) -> Dict[str, dict]:
    """{spec: {"energies": [per frame [1 + M]], "forces": [per frame [1 + M, N, 3]]}}, the
    first rotation of every frame the identity (the orientation of the file); ``progress``: a
    bar counting the model evaluations."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    results: Dict[str, dict] = {spec: {"energies": [], "forces": []} for spec in grids_by_spec}
    total = len(frames) * evaluations_per_structure(grids_by_spec, n_rotations, grid_rotations)
    with tqdm(total=total, desc="model evaluations", unit="eval", disable=not progress) as bar:
        for frame in frames:
            rotations = np.concatenate([np.eye(3)[None], random_rotations(n_rotations, rng)])
            for spec, grid in grids_by_spec.items():
                used = rotations if spec == "none" else rotations[:grid_rotations + 1]
                energies, forces = rotated_predictions(model, frame, grid.rotations,
                                                       grid.weights, used, bar.update)
                results[spec]["energies"].append(energies)
                results[spec]["forces"].append(forces)
    return results


def _rms(values) -> float:
    return MEV_PER_EV * float(np.sqrt(np.mean(values)))


def _grid_metrics(frames, n_atoms: np.ndarray, result: dict, raw: dict,
                  grid: RotationGrid) -> dict:
    """accuracy, rotational spread and (grids other than none) difference from the raw model."""
    energies, forces = result["energies"], result["forces"]
    entry = {"accuracy": error_metrics(frames, np.array([e[0] for e in energies]),
                                       [f[0] for f in forces])}
    energy_std = np.array([np.std(e[1:], ddof=1) for e in energies])
    force_variance = np.concatenate([np.var(f[1:], axis=0, ddof=1).reshape(-1) for f in forces])
    entry["rotational"] = {
        "energy_std_mev_per_atom": _rms((energy_std / n_atoms) ** 2),
        "energy_std_mev_per_structure": _rms(energy_std ** 2),
        "force_std_mev_per_angstrom": _rms(force_variance),
    }
    if grid.spec != "none":
        energy_difference = [(e[1:] - r[1:len(e)]) for e, r in zip(energies, raw["energies"])]
        force_difference = np.concatenate([(f[1:] - r[1:len(f)]).reshape(-1)
                                           for f, r in zip(forces, raw["forces"])])
        entry["difference_from_raw"] = {
            "energy_rms_mev_per_atom": _rms(np.concatenate(
                [(d / n) ** 2 for d, n in zip(energy_difference, n_atoms)])),
            "energy_rms_mev_per_structure": _rms(np.concatenate(
                [d ** 2 for d in energy_difference])),
            "force_rms_mev_per_angstrom": _rms(force_difference ** 2),
        }
    entry["evaluations_per_structure"] = grid.size
    entry["n_rotations"] = len(energies[0]) - 1
    return entry


def evaluate_files(model_file, dataset, output=None, grids: Sequence[RotationGrid] = (),
                   n_rotations: int = DEFAULT_ROTATIONS, max_structures: Optional[int] = None,
                   seed: int = 0, float64: bool = False, force: bool = False,
                   progress: bool = False, grid_rotations: Optional[int] = None,
                   report: Optional[Callable[[str], None]] = None) -> dict:
    """``evaluate`` a model file of any kind (None: the shipped model) on an extended XYZ file;
    writes JSON to ``output`` if given."""
    if output is not None and Path(output).exists() and not force:
        raise FileExistsError(f"{output} exists: pass --force to overwrite it")
    model = load_energy_model(model_file)
    fingerprint = model.fingerprint()
    if float64:
        model = model.in_precision(torch.float64)
    frames = read_frames(dataset)
    if max_structures is not None:
        if max_structures < 1:
            raise ValueError(f"--max-structures must be >= 1, got {max_structures}")
        frames = frames[:max_structures]
    result = evaluate(model, frames, grids, n_rotations, seed, grid_rotations, progress=progress,
                      report=report)
    result = {"model": str(model_file or DEFAULT_MODEL), "model_fingerprint": fingerprint,
              "dataset": str(dataset), **result}
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(result, indent=1) + "\n")
    return result
