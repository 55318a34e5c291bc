"""Build OpenMM forces and systems around the exported modules of ``omm_symbreak.export``.

A strategy (``omm_symbreak.strategies``: none, full, mts, random) becomes the forces its table
row names, each in its force group (``mts``: the raw model in ``FAST_GROUP``, the correction
E_avg - E_raw in ``SLOW_GROUP``, for ``openmm.MTSLangevinIntegrator`` / ``openmm.MTSIntegrator``).

A module in TorchScript (the built-in model, a TorchForce module) becomes an
``openmmtorch.TorchForce``, which runs on the device of the Context's platform; an eager one (a
metatomic model, an ASE calculator) an ``openmm.PythonForce`` (``python_force``), which calls
Python at every evaluation, on the torch device chosen by ``device`` (default: CUDA when torch
has it, else the CPU; ``devices``).
"""

from typing import List, Optional, Union

import numpy as np
import torch  # must be imported before openmmtorch: it loads the CUDA runtime
import openmm
from openmm import unit
from torch import nn

from .devices import Device, checked_device, module_device
from .export import openmm_module
from .grids import RotationGrid
from .kernel import DEFAULT_MEMORY_BUDGET_BYTES
from .quiet import simtk_warning_dropped
from .model_kinds import energy_model_of
from .strategies import FAST_GROUP, check_strategy, grid_of_force, strategy_of

with simtk_warning_dropped():
    import openmmtorch


def _load_torch_plugin_if_it_failed() -> None:
    """OpenMM loads its plugins when ``openmm`` is first imported. If that happened before
    ``torch`` was imported, the openmm-torch kernels failed to load (``libnvrtc.so.12`` missing,
    as torch had not loaded the CUDA runtime yet); load them again now that torch is loaded."""
    prefix = "Error loading library "
    for failure in openmm.Platform.getPluginLoadFailures():
        library = failure[len(prefix):].split(":")[0] if failure.startswith(prefix) else ""
        if "OpenMMTorch" in library and "OpenCL" not in library:
            openmm.Platform.loadPluginLibrary(library)


_load_torch_plugin_if_it_failed()

def torch_force(module: Union[torch.jit.ScriptModule, str], force_group: int = FAST_GROUP):
    """An ``openmmtorch.TorchForce`` around an exported module or a TorchScript file of one,
    its periodic flag taken from the module."""
    if not isinstance(module, torch.jit.ScriptModule):
        module = torch.jit.load(str(module))
    force = openmmtorch.TorchForce(module)
    force.setUsesPeriodicBoundaryConditions(bool(module.uses_periodic_boundary_conditions))
    force.setForceGroup(force_group)
    return force


class EagerEnergy:
    """The computation of an ``openmm.PythonForce``: an energy module (nm, kJ/mol; TorchScript or
    eager) evaluated on a State's positions [N, 3] (and box [3, 3]), nm, float64, forces by
    autograd, on the module's device (``devices.module_device``); only the energy (kJ/mol) and
    the forces [N, 3] (kJ/mol/nm, numpy) come back to the CPU."""

    def __init__(self, module: nn.Module, periodic: bool):
        self.module = module
        self.periodic = periodic
        self.device = module_device(module)

    def __call__(self, state):
        on_device = dict(dtype=torch.float64, device=self.device)
        positions = torch.tensor(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer),
                                 requires_grad=True, **on_device)
        box = None
        if self.periodic:
            box = torch.tensor(np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(
                unit.nanometer)), **on_device)
        energy = self.module(positions, box)
        (gradient,) = torch.autograd.grad(energy, positions)
        return float(energy.detach()), -gradient.cpu().numpy()


def python_force(module: nn.Module, force_group: int = FAST_GROUP) -> openmm.PythonForce:
    """An ``openmm.PythonForce`` around an energy module of ``omm_symbreak.export`` (eager or
    TorchScript), run on the module's device, its periodic flag taken from the module."""
    periodic = bool(module.uses_periodic_boundary_conditions)
    force = openmm.PythonForce(EagerEnergy(module, periodic))
    force.setUsesPeriodicBoundaryConditions(periodic)
    force.setForceGroup(force_group)
    return force


def force_of(module: nn.Module, force_group: int = FAST_GROUP):
    """A TorchForce for a TorchScript module, a PythonForce for an eager one."""
    if isinstance(module, torch.jit.ScriptModule):
        return torch_force(module, force_group)
    return python_force(module, force_group)


def create_forces(topology, model, strategy: str = "none",
                  grid: Optional[RotationGrid] = None, positions=None,
                  memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
                  allow_incomplete_water: bool = False, device: Optional[Device] = None) -> List:
    """The forces of a strategy (``strategies.Strategy.forces``) for a model of any kind
    (``force_of``; two for ``mts``: the raw model in ``FAST_GROUP``, the correction over
    ``grid`` in ``SLOW_GROUP``); the rotated copies of an evaluation go through the model within
    ``memory_budget_bytes``; a water model refuses residues that are not whole water
    molecules unless ``allow_incomplete_water`` (``export.openmm_module``). ``model``: a model
    file, an ``EnergyModel``, an ``UnconstrainedPET`` or an ASE calculator
    (``model_kinds.energy_model_of``). ``device``: where a PythonForce's module runs (None:
    CUDA when torch has it, else the CPU), checked before the model is loaded
    (``devices.checked_device``); a TorchForce runs on the device of the Context's platform."""
    device = checked_device(device)
    check_strategy(strategy, grid)
    model = energy_model_of(model)
    # openmm-torch moves a TorchForce's module to the Context's device itself
    checks = dict(positions=positions, memory_budget_bytes=memory_budget_bytes,
                  allow_incomplete_water=allow_incomplete_water,
                  device="cpu" if model.scriptable else device)
    return [force_of(openmm_module(topology, model, force.module, grid_of_force(force, grid),
                                   **checks), force.force_group)
            for force in strategy_of(strategy).forces]


def create_system(topology, model, strategy: str = "none",
                  grid: Optional[RotationGrid] = None, positions=None,
                  memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
                  allow_incomplete_water: bool = False,
                  device: Optional[Device] = None) -> openmm.System:
    """An ``openmm.System`` with the topology's masses and box and the model's force(s)
    (``create_forces``; ``device``: where a PythonForce's module runs, None: CUDA when torch has
    it, else the CPU).

    No centre-of-mass motion remover is added: total momentum and angular momentum are
    observables here. ``positions`` (optional) are checked against the topology, and the
    model is evaluated once on them, so that bad input fails now rather than during MD; a
    water model refuses residues that are not whole water molecules unless
    ``allow_incomplete_water``.
    """
    system = openmm.System()
    for atom in topology.atoms():
        if atom.element is None:
            raise ValueError(f"atom {atom.index} ({atom.name}) has no element")
        system.addParticle(atom.element.mass)
    box = topology.getPeriodicBoxVectors()
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*box)
    for force in create_forces(topology, model, strategy, grid, positions, memory_budget_bytes,
                               allow_incomplete_water, device):
        system.addForce(force)
    return system
