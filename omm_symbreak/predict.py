"""A model's predictions on frames, through the rotation kernel, and their errors.

Frame units: positions Angstrom, energies eV, forces eV/Angstrom; errors are reported in
meV/atom (energies) and meV/Angstrom (force components). ``rotated_predictions`` (what
``evaluate`` uses) takes a model of any kind (``omm_symbreak.model_kinds``) and converts to and
from its units; the others, used by training, the built-in model.
"""

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .data import Frame
from .model.pet import UnconstrainedPET
from .model_kinds import as_energy_model
from .units import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV, MEV_PER_EV


def frame_tensors(model: UnconstrainedPET, frame: Frame, requires_grad: bool = False):
    """(types [N], positions [N, 3], cell [3, 3] or None) of a frame, in the model's dtype and
    on its device; ``requires_grad`` makes the positions a leaf for forces."""
    like = dict(dtype=model.energy_scale.dtype, device=model.energy_scale.device)
    positions = torch.tensor(frame.positions_angstrom, **like, requires_grad=requires_grad)
    cell = None if frame.cell_angstrom is None else torch.tensor(frame.cell_angstrom, **like)
    return model.species_of(frame.atomic_numbers.tolist()), positions, cell


def energies_and_forces(model: UnconstrainedPET, frames: Sequence[Frame],
                        create_graph: bool = False) -> Tuple[Tensor, List[Tensor]]:
    """Energies [S] (eV, tensor) and forces (list of [N_s, 3] tensors, eV/Angstrom) of the raw
    model; ``create_graph`` keeps the graph of the forces (training)."""
    kernel = as_energy_model(model).rotated_copies()
    energies, positions = [], []
    for frame in frames:
        types, x, cell = frame_tensors(model, frame, requires_grad=True)
        identity = torch.eye(3, dtype=x.dtype, device=x.device)[None]
        energies.append(kernel(types, x, cell, identity)[0])
        positions.append(x)
    energies = torch.stack(energies)
    gradients = torch.autograd.grad(energies.sum(), positions, create_graph=create_graph)
    return energies, [-gradient for gradient in gradients]


def energies_no_grad(model: UnconstrainedPET, frames: Sequence[Frame]) -> np.ndarray:
    """Energies [S] (float64 numpy, eV) of the raw model, without gradients."""
    kernel = as_energy_model(model).rotated_copies()
    with torch.no_grad():
        energies = []
        for frame in frames:
            types, x, cell = frame_tensors(model, frame)
            identity = torch.eye(3, dtype=x.dtype, device=x.device)[None]
            energies.append(kernel(types, x, cell, identity)[0])
    return torch.stack(energies).double().cpu().numpy()


def predict(model: UnconstrainedPET, frames: Sequence[Frame]):
    """Energies [S] (numpy, eV) and forces (list of numpy [N_s, 3], eV/Angstrom), no graph."""
    energies, forces = [], []
    for frame in frames:
        e, (f,) = energies_and_forces(model, [frame])
        energies.append(float(e.detach()))
        forces.append(f.detach().cpu().double().numpy())
    return np.array(energies), forces


def _kernel_inputs(model, frame: Frame):
    """(kernel, types [N], positions [N, 3], cell [3, 3] or None, eV per model energy unit) of
    ``frame`` for ``model`` of any kind: positions and cell in the model's length unit and dtype,
    the positions a leaf that requires a gradient."""
    kernel = model.rotated_copies()
    types = model.types_of(frame.atomic_numbers.tolist())
    like = dict(dtype=model.dtype or torch.float64, device=types.device)
    length_per_angstrom = model.length_per_nm / ANGSTROM_PER_NM
    positions = torch.tensor(frame.positions_angstrom * length_per_angstrom, **like,
                             requires_grad=True)
    cell = (None if frame.cell_angstrom is None
            else torch.tensor(frame.cell_angstrom * length_per_angstrom, **like))
    return kernel, types, positions, cell, model.kj_mol_per_energy / KJ_PER_MOL_PER_EV


def rotated_predictions(model, frame: Frame, grid_rotations: np.ndarray,
                        grid_weights: np.ndarray, rotations: np.ndarray,
                        done: Optional[Callable[[int], None]] = None):
    """Grid-averaged energies [M] (eV) and rotated-back forces [M, N, 3] (eV/Angstrom) of
    ``frame`` rotated by each of ``rotations`` [M, 3, 3]: E_m = sum_g w_g E(R_g R_m x) and
    F_m = R_m^T F_avg(R_m x) = -dE_m/dx; ``model`` of any kind, in its own units and dtype.
    ``done(G)`` is called after each rotation's G = len(grid_rotations) model evaluations."""
    model = as_energy_model(model)
    kernel, types, x, cell, ev_per_energy = _kernel_inputs(model, frame)
    like = dict(dtype=x.dtype, device=x.device)
    length_per_angstrom = model.length_per_nm / ANGSTROM_PER_NM
    weights = torch.tensor(grid_weights, **like)
    energies, forces = [], []
    for rotation in rotations:
        combined = torch.tensor(grid_rotations @ rotation, **like)
        energy = kernel.weighted(types, x, cell, combined, weights) * ev_per_energy
        (gradient,) = torch.autograd.grad(energy, x)
        energies.append(float(energy.detach()))
        forces.append(-gradient.cpu().double().numpy() * length_per_angstrom)
        if done is not None:
            done(len(grid_rotations))
    return np.array(energies), np.stack(forces)


def rotated_energies(model, frame: Frame, rotations: np.ndarray) -> np.ndarray:
    """Energies [M] (eV, float64) of ``frame`` rotated by each of ``rotations`` [M, 3, 3]
    (proper or improper), E(R_m x), without gradients: the copies go through ``model`` (any
    kind) in the kernel's batches."""
    model = as_energy_model(model)
    kernel, types, x, cell, ev_per_energy = _kernel_inputs(model, frame)
    with torch.no_grad():
        energies = kernel(types, x.detach(), cell, torch.tensor(rotations, dtype=x.dtype,
                                                                device=x.device))
    return energies.cpu().double().numpy() * ev_per_energy


def error_metrics(frames: Sequence[Frame], energies: np.ndarray, forces: List[np.ndarray]) -> dict:
    """MAE and RMSE of energies per atom (meV/atom) and force components (meV/Angstrom)."""
    n_atoms = np.array([frame.n_atoms for frame in frames])
    energy_error = (np.asarray(energies) - [frame.energy_ev for frame in frames]) / n_atoms
    force_error = np.concatenate([(f - frame.forces_ev_per_angstrom).reshape(-1)
                                  for f, frame in zip(forces, frames)])
    return {
        "energy_mae_mev_per_atom": MEV_PER_EV * float(np.mean(np.abs(energy_error))),
        "energy_rmse_mev_per_atom": MEV_PER_EV * float(np.sqrt(np.mean(energy_error ** 2))),
        "force_mae_mev_per_angstrom": MEV_PER_EV * float(np.mean(np.abs(force_error))),
        "force_rmse_mev_per_angstrom": MEV_PER_EV * float(np.sqrt(np.mean(force_error ** 2))),
    }
