"""Wrap a model for OpenMM: units, atom types of a topology, TorchScript.

The boundary between OpenMM and the model: OpenMM gives positions and box vectors in nm and
expects the energy in kJ/mol; the model works in its own units (the built-in model: Angstrom
and eV, ``units``; a metatomic model: those of its capabilities; a TorchForce module: nm and
kJ/mol already). ``model`` is an ``EnergyModel`` of any kind (``omm_symbreak.model_kinds``) or
an ``UnconstrainedPET``.

``omm_symbreak.potential`` turns the modules made here into OpenMM forces and systems.
"""

import threading
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from .devices import Device, module_device
from .grids import RotationGrid
from .kernel import DEFAULT_MEMORY_BUDGET_BYTES, copies_at_once
from .model_kinds import EnergyModel, as_energy_model
from .model_kinds.torchforce import TorchForceModel
from .structure_checks import check_no_overlaps, check_whole_water
from .symmetrize import copies_per_evaluation, strategy_energy
from .units import as_nm_array, nm_to_angstrom


class OpenMMEnergy(nn.Module):
    """TorchForce contract: forward(positions [N, 3] nm, boxvectors [3, 3] nm or None) -> kJ/mol.

    ``energy`` is one of the modules of ``omm_symbreak.symmetrize`` (model units in and out);
    ``types`` [N] (a buffer) holds the model's type of every particle of the topology (empty:
    a module for any number of atoms); positions and box are multiplied by ``length_per_nm``
    and cast to ``dtype`` (None: kept as OpenMM passes them), the energy multiplied by
    ``kj_mol_per_energy``. With box vectors the energy is periodic; a module made for a
    periodic topology (``uses_periodic_boundary_conditions``) refuses to run without them.
    """

    def __init__(self, energy: nn.Module, types: Tensor, uses_periodic_boundary_conditions: bool,
                 dtype: Optional[torch.dtype], length_per_nm: float, kj_mol_per_energy: float):
        super().__init__()
        self.energy = energy
        self.register_buffer("types", types)
        self.register_buffer("dtype_like", torch.zeros((), dtype=dtype or torch.float64))
        self.cast = dtype is not None
        self.uses_periodic_boundary_conditions = uses_periodic_boundary_conditions
        self.length_per_nm = float(length_per_nm)
        self.kj_mol_per_energy = float(kj_mol_per_energy)

    def forward(self, positions: Tensor, boxvectors: Optional[Tensor] = None) -> Tensor:
        n_atoms = self.types.shape[0]
        if positions.dim() != 2 or positions.shape[1] != 3 or (
                n_atoms > 0 and positions.shape[0] != n_atoms):
            raise ValueError("positions must have the shape [" + str(n_atoms) + ", 3] of the "
                             "topology this module was exported for, got "
                             + str(list(positions.shape)))
        # OpenMM passes float64 positions; the model sees only their differences. Shifting to
        # the centroid before rounding to the model's dtype keeps float32 rounding at the scale
        # of the system, not of its distance from the origin (a gas-phase molecule diffuses
        # nanometres away in NVT, and the rounding then breaks rotational symmetry itself).
        # The rotations of a grid turn the system about this centroid.
        positions = _requiring_gradient(positions)
        centroid = positions.detach().mean(dim=0)
        positions_model = positions - centroid
        if self.cast:
            positions_model = positions_model.to(self.dtype_like.dtype)
        positions_model = positions_model * self.length_per_nm
        cell: Optional[Tensor] = None
        if boxvectors is not None:
            cell = boxvectors
            if self.cast:
                cell = boxvectors.to(self.dtype_like.dtype)
            cell = cell * self.length_per_nm
        elif self.uses_periodic_boundary_conditions:
            raise ValueError("this module was exported for a periodic topology: "
                             "call setUsesPeriodicBoundaryConditions(True) on the TorchForce")
        return self.energy(self.types, positions_model, cell) * self.kj_mol_per_energy


def _requiring_gradient(positions: Tensor) -> Tensor:
    """``positions`` [N, 3] (nm), or, when grad mode is on and they do not require a gradient, a
    copy that does: every call in grad mode runs the graph with the requires_grad flags of a
    force evaluation.

    TorchScript's profiling executor (torch's default) specialises a graph on the flags of its
    first call and checks them later on the tensor inputs of its differentiable subgraphs, not
    on tensors inside lists (pytorch issue 55609; ``torch.cat([vectors, distances])`` in the
    model). Without the copy, an energy call in grad mode on positions that need no gradient,
    made first, left every later force evaluation without the gradient through such lists, in
    this module and in every module of its class scripted in the process (docs/design.md,
    "Runtime workarounds, and why")."""
    if torch.is_grad_enabled() and not positions.requires_grad:
        return positions.clone().requires_grad_()
    return positions


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


# TorchScript's compiler keeps one table of compiled classes per process, and two threads that
# script modules of the same classes at once fail ("Can't redefine method: forward on class
# ..."), as two runs of a campaign sharing a dask worker process did: every scripting of the
# package goes through this lock.
_SCRIPTING = threading.Lock()


def script(module: nn.Module) -> torch.jit.ScriptModule:
    """``torch.jit.script(module)``, one thread at a time (``_SCRIPTING``)."""
    with _SCRIPTING:
        return torch.jit.script(module)


def openmm_module(topology, model, strategy: str = "none",
                  grid: Optional[RotationGrid] = None, positions=None,
                  memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
                  allow_incomplete_water: bool = False, device: Device = "cpu") -> nn.Module:
    """The module (nm in, kJ/mol out) of ``strategy`` for ``topology``, on ``device`` (a torch
    device this machine has, ``devices.checked_device``): TorchScript for the built-in model
    and TorchForce modules, an eager module for a metatomic model or an ASE calculator
    (``EnergyModel.scriptable``).

    ``strategy``: ``none`` (raw model), ``full`` (average over ``grid``), ``mts`` (the
    correction E_avg - E_raw over ``grid``: the slow force; the fast force is ``none``) or
    ``random`` (a random orientation per call). The rotated copies of one evaluation go through
    the model in chunks of at most ``memory_budget_bytes`` of activations (where the kind of
    model tells its memory; ``model_kinds``).

    Raises ValueError, before any simulation, for elements the model does not know, for
    residues that are not whole water molecules with a water model (unless
    ``allow_incomplete_water``) and, when
    ``positions`` are given, for positions that do not match the topology or that put atoms on
    top of each other; with positions, the module is also evaluated once (without gradients) so
    that a structure the model cannot handle (more neighbours than its slots) fails here.
    """
    model = as_energy_model(model)
    types = model.types_of(topology_atomic_numbers(topology))
    if model.is_water_model() and not allow_incomplete_water:
        check_whole_water(topology)
    periodic = topology.getPeriodicBoxVectors() is not None
    energy = strategy_energy(model, strategy, grid, memory_budget_bytes)
    module = OpenMMEnergy(energy, types, periodic, model.dtype, model.length_per_nm,
                          model.kj_mol_per_energy)
    if model.scriptable:
        module = script(module)
    module = module.to(device)
    if positions is not None:
        _check_positions(topology, module, positions, model)
    return module


def _check_positions(topology, module, positions, model: EnergyModel) -> None:
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
    device = module_device(module)
    try:
        with torch.no_grad():
            module(torch.tensor(positions_nm, device=device),
                   None if box_nm is None else torch.tensor(box_nm, device=device))
    except (RuntimeError, ValueError, IndexError, torch.jit.Error) as error:
        explanation = model.explain_failure(error)
        if explanation is None:
            raise
        raise ValueError(explanation) from None


def activation_bytes(model, n_atoms: int, strategy: str, grid: Optional[RotationGrid],
                     memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
                     on_cpu: bool = True) -> Optional[Tuple[int, int]]:
    """(bytes, copies): an upper estimate of the activation memory one force evaluation of
    ``strategy`` holds at once for ``n_atoms`` atoms, and the rotated copies one model call
    takes (``kernel.copies_at_once``, in the model's CPU chunks where ``on_cpu``); None where the
    kind of model does not tell its memory."""
    model = as_energy_model(model)
    per_copy = model.estimated_bytes_per_copy(n_atoms)
    if per_copy is None:
        return None
    batching = model.batching
    at_once = copies_at_once(per_copy, n_atoms, copies_per_evaluation(strategy, grid),
                             memory_budget_bytes, batching.copies_per_call,
                             batching.cpu_batch_atoms if on_cpu else None)
    return at_once * per_copy, at_once


def evaluation_cost(model, n_atoms: int, strategy: str, grid: Optional[RotationGrid],
                    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
                    on_cpu: bool = True) -> str:
    """What one force evaluation of ``strategy`` costs for ``n_atoms`` atoms, in words: the
    model evaluations and, where the kind of model tells it, ``activation_bytes``."""
    model = as_energy_model(model)
    copies = copies_per_evaluation(strategy, grid)
    evaluations = (f"{copies} model evaluations per slow step (grid {grid.spec} and the raw "
                   "model) and 1 per fast step" if strategy == "mts" else
                   f"{copies} model evaluations per step" + (f" (grid {grid.spec})"
                                                             if strategy == "full" else ""))
    memory = activation_bytes(model, n_atoms, strategy, grid, memory_budget_bytes, on_cpu)
    if memory is None:
        return (f"strategy {strategy}, {n_atoms} atoms, {model.kind} model: {evaluations}; "
                f"activation memory not estimated for this kind of model")
    held, at_once = memory
    return (f"strategy {strategy}, {n_atoms} atoms: {evaluations}; at most about "
            f"{held / 2**30:.2g} GB of activations at a time ({at_once} "
            f"{'copy' if at_once == 1 else 'copies'} per model call; memory budget "
            f"{memory_budget_bytes / 2**30:.3g} GB), besides the libraries' own memory")


def check_exportable(model: EnergyModel) -> None:
    """ValueError for a kind of model that has no TorchScript file to write."""
    if not model.scriptable:
        raise ValueError(f"{model.name()}: a model of kind {model.kind} cannot be written as "
                         "a TorchForce file (openmmtorch freezes every module it loads; metatomic "
                         "models do not survive freezing, ASE calculators are Python); it runs "
                         "through openmm.PythonForce: use omm-symbreak simulate --model FILE, "
                         "omm_symbreak.potential.create_system, or MLPotential('symbreak', "
                         "model=...)")


def export(topology, model, path, strategy: str = "none",
           grid: Optional[RotationGrid] = None, positions=None,
           memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
           allow_incomplete_water: bool = False) -> Path:
    """Write the TorchScript file of ``openmm_module`` to ``path`` and return the path."""
    model = as_energy_model(model)
    check_exportable(model)
    path = Path(path)
    module = openmm_module(topology, model, strategy, grid, positions, memory_budget_bytes,
                           allow_incomplete_water)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(path))
    return path


def symmetrized_module(model: TorchForceModel, strategy: str,
                       grid: Optional[RotationGrid] = None,
                       memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES
                       ) -> torch.jit.ScriptModule:
    """A TorchForce module (``forward(positions nm, boxvectors nm or None) -> kJ/mol``, any
    number of atoms) of ``strategy`` around a user's TorchForce module: its energy averaged over
    ``grid`` (``full``), the correction E_avg - E_raw (``mts``: the slow force; the user's module
    is the fast force) or a random orientation per call (``random``). Periodic when the user's
    module is (its ``uses_periodic_boundary_conditions``, else whether it takes box vectors)."""
    if not isinstance(model, TorchForceModel):
        raise TypeError(f"symmetrized_module takes a TorchForce module (load_energy_model of a "
                        f"TorchScript file), got a {getattr(model, 'kind', type(model).__name__)}"
                        " model: the built-in model is exported for a system with export()")
    energy = strategy_energy(model, strategy, grid, memory_budget_bytes)
    return script(OpenMMEnergy(energy, torch.zeros(0, dtype=torch.long), model.periodic, None,
                               1.0, 1.0))
