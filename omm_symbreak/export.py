"""Wrap a model for OpenMM: units, species of a topology, TorchScript, TorchForce.

The only place where units are converted: OpenMM gives positions and box vectors in nm and
expects the energy in kJ/mol; the model works in Angstrom and eV.

``omm_symbreak.potential`` turns the modules made here into OpenMM forces and systems.
"""

from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from .grids import RotationGrid
from .model.pet import UnconstrainedPET
from .symmetrize import averaged, correction, randomly_rotated

ANGSTROM_PER_NM = 10.0
KJ_PER_MOL_PER_EV = 96.48533212331  # e * N_A / 1000 (CODATA 2018, exact)
MODES = ("full", "correction", "random")


class OpenMMEnergy(nn.Module):
    """TorchForce contract: forward(positions [N, 3] nm, boxvectors [3, 3] nm or None) -> kJ/mol.

    ``energy`` is one of the modules of ``omm_symbreak.symmetrize``; ``species`` [N] (a buffer)
    holds the model's species index of every particle of the topology.
    """

    def __init__(self, energy: nn.Module, species: Tensor, uses_periodic_boundary_conditions: bool):
        super().__init__()
        self.energy = energy
        self.register_buffer("species", species)
        self.uses_periodic_boundary_conditions = uses_periodic_boundary_conditions
        self.angstrom_per_nm = ANGSTROM_PER_NM
        self.kj_per_mol_per_ev = KJ_PER_MOL_PER_EV

    def forward(self, positions: Tensor, boxvectors: Optional[Tensor] = None) -> Tensor:
        n_atoms = self.species.shape[0]
        if positions.dim() != 2 or positions.shape[0] != n_atoms or positions.shape[1] != 3:
            raise ValueError("positions must have the shape [" + str(n_atoms) + ", 3] of the "
                             "topology this module was exported for, got "
                             + str(list(positions.shape)))
        model_dtype = self.energy.model.energy_scale.dtype
        # OpenMM passes float64 positions; the model sees only their differences. Shifting to
        # the centroid before rounding to the model's dtype keeps float32 rounding at the scale
        # of the system, not of its distance from the origin (a gas-phase molecule diffuses
        # nanometres away in NVT, and the rounding then breaks rotational symmetry itself).
        centroid = positions.detach().mean(dim=0)
        positions_angstrom = (positions - centroid).to(model_dtype) * self.angstrom_per_nm
        cell_angstrom: Optional[Tensor] = None
        if self.uses_periodic_boundary_conditions:
            if boxvectors is None:
                raise ValueError("this module was exported for a periodic topology: "
                                 "call setUsesPeriodicBoundaryConditions(True) on the TorchForce")
            cell_angstrom = boxvectors.to(model_dtype) * self.angstrom_per_nm
        energy_ev = self.energy(self.species, positions_angstrom, cell_angstrom)
        return energy_ev * self.kj_per_mol_per_ev


def energy_module(model: UnconstrainedPET, grid: Union[str, RotationGrid] = "none",
                  mode: str = "full") -> nn.Module:
    """The model-side energy module (Angstrom, eV) for a grid and a mode of ``MODES``."""
    if mode == "full":
        return averaged(model, grid)
    if mode == "correction":
        return correction(model, grid)
    if mode == "random":
        return randomly_rotated(model)
    raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")


def topology_atomic_numbers(topology) -> List[int]:
    """Atomic numbers of every atom of an ``openmm.app.Topology``; ValueError for atoms without
    an element (virtual sites such as the M site of TIP4P models)."""
    numbers = []
    for atom in topology.atoms():
        if atom.element is None:
            raise ValueError(f"atom {atom.index} ({atom.name} of residue {atom.residue.name}) has "
                             "no element: the ML potential needs real atoms only")
        numbers.append(atom.element.atomic_number)
    return numbers


def _positions_angstrom(positions) -> np.ndarray:
    """OpenMM positions (Quantity or array in nm) -> numpy [N, 3] Angstrom."""
    if hasattr(positions, "value_in_unit"):
        import openmm.unit as unit

        positions = positions.value_in_unit(unit.nanometer)
    return np.asarray(positions, dtype=float).reshape(-1, 3) * ANGSTROM_PER_NM


def openmm_module(topology, model: UnconstrainedPET, grid: Union[str, RotationGrid] = "none",
                  mode: str = "full", positions=None) -> torch.jit.ScriptModule:
    """The TorchScript module (nm in, kJ/mol out) for ``topology``.

    Raises ValueError, before any simulation, for elements the model does not know and, when
    ``positions`` are given, for positions that do not match the topology; with positions, the
    module is also evaluated once so that problems such as too many neighbours surface here.
    """
    species = model.species_of(topology_atomic_numbers(topology))
    periodic = topology.getPeriodicBoxVectors() is not None
    module = torch.jit.script(OpenMMEnergy(energy_module(model, grid, mode), species, periodic))
    if positions is not None:
        positions_angstrom = _positions_angstrom(positions)
        if positions_angstrom.shape != (topology.getNumAtoms(), 3):
            raise ValueError(f"{positions_angstrom.shape[0]} positions for a topology of "
                             f"{topology.getNumAtoms()} atoms")
        if not np.all(np.isfinite(positions_angstrom)):
            raise ValueError("positions contain NaN or infinite values")
        box = _positions_angstrom(topology.getPeriodicBoxVectors()) if periodic else None
        positions_nm = torch.tensor(positions_angstrom / ANGSTROM_PER_NM)
        box_nm = None if box is None else torch.tensor(box / ANGSTROM_PER_NM)
        module(positions_nm, box_nm)
    return module


def export(topology, model: UnconstrainedPET, path, grid: Union[str, RotationGrid] = "none",
           mode: str = "full", positions=None) -> Path:
    """Write the TorchScript file of ``openmm_module`` to ``path`` and return the path."""
    path = Path(path)
    module = openmm_module(topology, model, grid, mode, positions)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(path))
    return path
