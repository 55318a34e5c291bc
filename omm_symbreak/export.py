"""Wrap a model for OpenMM: units, atom types of a topology, TorchScript.

The boundary between OpenMM and the model: OpenMM gives positions and box vectors in nm and
expects the energy in kJ/mol; the built-in model works in Angstrom and eV (``units``).

``omm_symbreak.potential`` turns the modules made here into OpenMM forces and systems.
"""

from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from torch import Tensor, nn

from .grids import RotationGrid
from .model.pet import UnconstrainedPET
from .symmetrize import strategy_energy
from .units import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV, as_nm_array


class OpenMMEnergy(nn.Module):
    """TorchForce contract: forward(positions [N, 3] nm, boxvectors [3, 3] nm or None) -> kJ/mol.

    ``energy`` is one of the modules of ``omm_symbreak.symmetrize`` (Angstrom in, eV out);
    ``types`` [N] (a buffer) holds the model's type index of every particle of the topology;
    the buffer ``kj_per_mol_per_ev`` is a scalar in the model's dtype, which the positions
    are cast to.
    """

    def __init__(self, energy: nn.Module, types: Tensor, uses_periodic_boundary_conditions: bool,
                 dtype: torch.dtype):
        super().__init__()
        self.energy = energy
        self.register_buffer("types", types)
        self.register_buffer("kj_per_mol_per_ev", torch.tensor(KJ_PER_MOL_PER_EV, dtype=dtype))
        self.uses_periodic_boundary_conditions = uses_periodic_boundary_conditions
        self.angstrom_per_nm = ANGSTROM_PER_NM

    def forward(self, positions: Tensor, boxvectors: Optional[Tensor] = None) -> Tensor:
        n_atoms = self.types.shape[0]
        if positions.dim() != 2 or positions.shape[0] != n_atoms or positions.shape[1] != 3:
            raise ValueError("positions must have the shape [" + str(n_atoms) + ", 3] of the "
                             "topology this module was exported for, got "
                             + str(list(positions.shape)))
        model_dtype = self.kj_per_mol_per_ev.dtype
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
        energy_ev = self.energy(self.types, positions_angstrom, cell_angstrom)
        return energy_ev * self.kj_per_mol_per_ev


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


def openmm_module(topology, model: UnconstrainedPET, strategy: str = "none",
                  grid: Optional[RotationGrid] = None, positions=None) -> torch.jit.ScriptModule:
    """The TorchScript module (nm in, kJ/mol out) of ``strategy`` for ``topology``.

    ``strategy``: ``none`` (raw model), ``full`` (average over ``grid``), ``mts`` (the
    correction E_avg - E_raw over ``grid``: the slow force; the fast force is ``none``) or
    ``random`` (a random orientation per call). Raises ValueError, before any simulation, for
    elements the model does not know and, when ``positions`` are given, for positions that do
    not match the topology; with positions, the module is also evaluated once so that
    problems such as too many neighbours surface here.
    """
    types = model.species_of(topology_atomic_numbers(topology))
    periodic = topology.getPeriodicBoxVectors() is not None
    energy = strategy_energy(model, strategy, grid)
    module = torch.jit.script(OpenMMEnergy(energy, types, periodic, model.energy_scale.dtype))
    if positions is not None:
        positions_nm = as_nm_array(positions)
        if positions_nm.shape != (topology.getNumAtoms(), 3):
            raise ValueError(f"{positions_nm.shape[0]} positions for a topology of "
                             f"{topology.getNumAtoms()} atoms")
        if not np.all(np.isfinite(positions_nm)):
            raise ValueError("positions contain NaN or infinite values")
        box_nm = as_nm_array(topology.getPeriodicBoxVectors()) if periodic else None
        module(torch.tensor(positions_nm), None if box_nm is None else torch.tensor(box_nm))
    return module


def export(topology, model: UnconstrainedPET, path, strategy: str = "none",
           grid: Optional[RotationGrid] = None, positions=None) -> Path:
    """Write the TorchScript file of ``openmm_module`` to ``path`` and return the path."""
    path = Path(path)
    module = openmm_module(topology, model, strategy, grid, positions)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(path))
    return path
