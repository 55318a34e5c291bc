"""Wrap a model for OpenMM: units, atom types of a topology, TorchScript.

The boundary between OpenMM and the model: OpenMM gives positions and box vectors in nm and
expects the energy in kJ/mol; the built-in model works in Angstrom and eV (``units``).

``omm_symbreak.potential`` turns the modules made here into OpenMM forces and systems.
"""

import re
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from torch import Tensor, nn

from .grids import RotationGrid
from .kernel import DEFAULT_MEMORY_BUDGET_BYTES, PETAdapter
from .model.neighbors import TOO_MANY_NEIGHBORS
from .model.pet import UnconstrainedPET
from .structure_checks import check_no_overlaps
from .symmetrize import copies_per_evaluation, strategy_energy
from .units import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV, as_nm_array, nm_to_angstrom


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
                  grid: Optional[RotationGrid] = None, positions=None,
                  memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES
                  ) -> torch.jit.ScriptModule:
    """The TorchScript module (nm in, kJ/mol out) of ``strategy`` for ``topology``.

    ``strategy``: ``none`` (raw model), ``full`` (average over ``grid``), ``mts`` (the
    correction E_avg - E_raw over ``grid``: the slow force; the fast force is ``none``) or
    ``random`` (a random orientation per call). The rotated copies of one evaluation go through
    the model in chunks of at most ``memory_budget_bytes`` of activations.

    Raises ValueError, before any simulation, for elements the model does not know and, when
    ``positions`` are given, for positions that do not match the topology or that put atoms on
    top of each other; with positions, the module is also evaluated once (without gradients) so
    that a structure the model cannot handle (more neighbours than its slots) fails here.
    """
    types = model.species_of(topology_atomic_numbers(topology))
    periodic = topology.getPeriodicBoxVectors() is not None
    energy = strategy_energy(model, strategy, grid, memory_budget_bytes)
    module = torch.jit.script(OpenMMEnergy(energy, types, periodic, model.energy_scale.dtype))
    if positions is not None:
        _check_positions(topology, module, positions, model)
    return module


def _check_positions(topology, module, positions, model: UnconstrainedPET) -> None:
    """ValueError for positions that do not fit ``topology`` or that ``module`` cannot evaluate."""
    positions_nm = as_nm_array(positions)
    if positions_nm.shape != (topology.getNumAtoms(), 3):
        raise ValueError(f"{positions_nm.shape[0]} positions for a topology of "
                         f"{topology.getNumAtoms()} atoms")
    if not np.all(np.isfinite(positions_nm)):
        raise ValueError("positions contain NaN or infinite values")
    box = topology.getPeriodicBoxVectors()
    box_nm = None if box is None else as_nm_array(box)
    check_no_overlaps(topology, nm_to_angstrom(positions_nm),
                      None if box_nm is None else nm_to_angstrom(box_nm))
    try:
        with torch.no_grad():
            module(torch.tensor(positions_nm), None if box_nm is None else torch.tensor(box_nm))
    except (RuntimeError, torch.jit.Error) as error:
        crowded = re.search(r"atom (\d+) has (\d+) neighbors", str(error))
        if TOO_MANY_NEIGHBORS not in str(error) or crowded is None:
            raise
        raise ValueError(
            f"{TOO_MANY_NEIGHBORS}: atom {crowded[1]} has {crowded[2]} neighbours within "
            f"{model.cutoff} Angstrom, more than the model's {model.max_neighbors} slots: the "
            "structure is denser than the model's training data. Check the box and the "
            "positions (units: nm), or use a model trained for such densities") from None


def evaluation_cost(model: UnconstrainedPET, n_atoms: int, strategy: str,
                    grid: Optional[RotationGrid],
                    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES) -> str:
    """What one force evaluation of ``strategy`` costs for ``n_atoms`` atoms: the model
    evaluations and an upper estimate of the activation memory held at once, in words."""
    copies = copies_per_evaluation(strategy, grid)
    per_copy = PETAdapter(model).estimated_bytes_per_copy(n_atoms)
    held = min(copies, max(1, memory_budget_bytes // per_copy)) * per_copy
    evaluations = (f"{copies} model evaluations per slow step (grid {grid.spec} and the raw "
                   "model) and 1 per fast step" if strategy == "mts" else
                   f"{copies} model evaluations per step" + (f" (grid {grid.spec})"
                                                             if strategy == "full" else ""))
    return (f"strategy {strategy}, {n_atoms} atoms: {evaluations}; at most about "
            f"{held / 2**30:.2g} GB of activations at a time (memory budget "
            f"{memory_budget_bytes / 2**30:.3g} GB)")


def export(topology, model: UnconstrainedPET, path, strategy: str = "none",
           grid: Optional[RotationGrid] = None, positions=None,
           memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES) -> Path:
    """Write the TorchScript file of ``openmm_module`` to ``path`` and return the path."""
    path = Path(path)
    module = openmm_module(topology, model, strategy, grid, positions, memory_budget_bytes)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(path))
    return path
