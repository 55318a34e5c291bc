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

Implementation: one neighbour search per structure; the displacement vectors v are rotated
by R_g R_m for all (g, m) pairs, in batches of at most ``max_copies`` copies through the
network; forces come from the gradient with respect to v of the unrotated structure, which
is already R_m^T F(R_m x).
"""

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .data import Frame, read_frames
from .grids import parse_grid, random_rotations
from .model.checkpoint import load_checkpoint
from .model.neighbors import neighbor_list, trim_padding
from .model.pet import UnconstrainedPET
from .train import error_metrics

DEFAULT_ROTATIONS = 100
MAX_ATOMS_PER_CALL = 512


def rotated_predictions(model: UnconstrainedPET, frame: Frame, grid_rotations: np.ndarray,
                        grid_weights: np.ndarray, rotations: np.ndarray,
                        max_copies: Optional[int] = None):
    """Grid-averaged energies [M] (eV) and rotated-back forces [M, N, 3] (eV/Angstrom) of
    ``frame`` rotated by each of ``rotations`` [M, 3, 3]; ``max_copies`` rotated copies per
    network call (default: about 512 atoms' worth, fastest on CPU)."""
    if max_copies is None:
        max_copies = max(1, MAX_ATOMS_PER_CALL // frame.n_atoms)
    dtype = model.energy_scale.dtype
    positions = torch.tensor(frame.positions_angstrom, dtype=dtype)
    cell = None if frame.cell_angstrom is None else torch.tensor(frame.cell_angstrom, dtype=dtype)
    neighbors = trim_padding(neighbor_list(positions, cell, model.cutoff, model.max_neighbors))
    species = model.species_of(frame.atomic_numbers.tolist())
    n_rotations, n_grid = len(rotations), len(grid_weights)
    combined = np.einsum("gab,mbc->mgac", grid_rotations, rotations).reshape(-1, 3, 3)
    combined = torch.tensor(combined, dtype=dtype)
    weights = torch.tensor(np.tile(grid_weights, n_rotations), dtype=dtype)
    owner = torch.arange(n_rotations).repeat_interleave(n_grid)
    vectors = neighbors.vectors.detach().expand(n_rotations, -1, -1, -1).clone().requires_grad_()
    energies = torch.zeros(n_rotations, dtype=dtype)
    for start in range(0, len(combined), max_copies):
        part = slice(start, start + max_copies)
        rotated = torch.einsum("cab,cnkb->cnka", combined[part], vectors[owner[part]])
        atomic = model(species, rotated, neighbors.index, neighbors.reverse, neighbors.mask)
        copies = atomic.sum(dim=1) * weights[part]
        energies.index_add_(0, owner[part], copies.detach())
        copies.sum().backward()
    gradient = vectors.grad * neighbors.mask[None, :, :, None]  # dE/dv, v_ik = r_j + s - r_i
    n_atoms = frame.n_atoms
    # dE/dr_i = -sum_k dE/dv_ik + sum_{(a, k): index[a, k] = i} dE/dv_ak
    into = torch.zeros(n_rotations, n_atoms, 3, dtype=dtype).index_add(
        1, neighbors.index.reshape(-1), gradient.reshape(n_rotations, -1, 3))
    forces = gradient.sum(dim=2) - into
    return energies.double().numpy(), forces.detach().double().numpy()


def evaluate(model: UnconstrainedPET, frames: Sequence[Frame], grids: Sequence[str] = (),
             n_rotations: int = DEFAULT_ROTATIONS, seed: int = 0,
             grid_rotations: Optional[int] = None, max_copies: Optional[int] = None,
             progress: bool = False) -> dict:
    """Metrics (see the module docstring) of ``model`` on labelled ``frames``.

    ``grids``: grid specs besides ``none`` (always evaluated first); ``random`` is refused.
    ``grid_rotations``: how many of the ``n_rotations`` random rotations (the first ones) the
    grids are evaluated at (default all; a grid of G rotations costs G times the raw model).
    """
    from tqdm import tqdm

    specs: List[str] = ["none"]
    for spec in grids:
        grid = parse_grid(spec)
        if grid.is_random:
            raise ValueError("the 'random' grid has no fixed average to evaluate; use N, Ni or "
                             "lebedev:L[i]")
        if grid.spec not in specs:
            specs.append(grid.spec)
    grid_rotations = n_rotations if grid_rotations is None else grid_rotations
    if not 2 <= grid_rotations <= n_rotations:
        raise ValueError(f"need 2 <= grid rotations <= rotations for a spread, got "
                         f"{grid_rotations} and {n_rotations}")
    for number, frame in enumerate(frames):
        if not frame.has_labels:
            raise ValueError(f"frame {number} has no energy or no forces")
    model = model.eval().requires_grad_(False)
    rng = np.random.default_rng(seed)
    results: Dict[str, dict] = {spec: {"energies": [], "forces": []} for spec in specs}
    for frame in tqdm(frames, desc="structures", disable=not progress):
        # identity first: the orientation of the file, for the accuracy
        rotations = np.concatenate([np.eye(3)[None], random_rotations(n_rotations, rng)])
        for spec in specs:
            grid = parse_grid(spec)
            used = rotations if spec == "none" else rotations[:grid_rotations + 1]
            energies, forces = rotated_predictions(model, frame, grid.rotations, grid.weights,
                                                   used, max_copies)
            results[spec]["energies"].append(energies)
            results[spec]["forces"].append(forces)

    n_atoms = np.array([frame.n_atoms for frame in frames], dtype=float)
    metrics = {}
    raw = results["none"]
    for spec in specs:
        energies, forces = results[spec]["energies"], results[spec]["forces"]
        entry = {"accuracy": error_metrics(frames, np.array([e[0] for e in energies]),
                                           [f[0] for f in forces])}
        energy_std = np.array([np.std(e[1:], ddof=1) for e in energies])
        force_variance = np.concatenate([np.var(f[1:], axis=0, ddof=1).reshape(-1) for f in forces])
        entry["rotational"] = {
            "energy_std_mev_per_atom": 1000 * float(np.sqrt(np.mean((energy_std / n_atoms) ** 2))),
            "energy_std_mev_per_structure": 1000 * float(np.sqrt(np.mean(energy_std ** 2))),
            "force_std_mev_per_angstrom": 1000 * float(np.sqrt(np.mean(force_variance))),
        }
        if spec != "none":
            energy_difference = [(e[1:] - r[1:len(e)]) for e, r in zip(energies, raw["energies"])]
            force_difference = np.concatenate([(f[1:] - r[1:len(f)]).reshape(-1)
                                               for f, r in zip(forces, raw["forces"])])
            entry["difference_from_raw"] = {
                "energy_rms_mev_per_atom": 1000 * float(np.sqrt(np.mean(np.concatenate(
                    [(d / n) ** 2 for d, n in zip(energy_difference, n_atoms)])))),
                "energy_rms_mev_per_structure": 1000 * float(np.sqrt(np.mean(np.concatenate(
                    [d ** 2 for d in energy_difference])))),
                "force_rms_mev_per_angstrom": 1000 * float(np.sqrt(np.mean(force_difference ** 2))),
            }
        entry["evaluations_per_structure"] = int(len(parse_grid(spec).weights))
        entry["n_rotations"] = len(energies[0]) - 1
        metrics[spec] = entry
    return {
        "n_structures": len(frames),
        "n_atoms_mean": float(np.mean(n_atoms)),
        "n_rotations": n_rotations,
        "rotations": "uniform on O(3) (improper with probability 1/2)",
        "seed": seed,
        "dtype": str(model.energy_scale.dtype).replace("torch.", ""),
        "units": "energies meV/atom or meV/structure, force components meV/Angstrom",
        "grids": metrics,
    }


def evaluate_files(checkpoint, dataset, output=None, grids: Sequence[str] = (),
                   n_rotations: int = DEFAULT_ROTATIONS, max_structures: Optional[int] = None,
                   seed: int = 0, float64: bool = False, force: bool = False,
                   progress: bool = False, grid_rotations: Optional[int] = None) -> dict:
    """``evaluate`` a checkpoint on an extended XYZ file; writes JSON to ``output`` if given."""
    if output is not None and Path(output).exists() and not force:
        raise FileExistsError(f"{output} exists: pass --force to overwrite it")
    for spec in grids:
        parse_grid(spec)  # fail on a bad grid before loading anything
    model = load_checkpoint(checkpoint)
    if float64:
        model = model.double()
    frames = read_frames(dataset)
    if max_structures is not None:
        if max_structures < 1:
            raise ValueError(f"--max-structures must be >= 1, got {max_structures}")
        frames = frames[:max_structures]
    result = evaluate(model, frames, grids, n_rotations, seed, grid_rotations, progress=progress)
    result = {"checkpoint": str(checkpoint), "dataset": str(dataset), **result}
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(result, indent=1) + "\n")
    return result
