"""OpenMM-ML plugin: ``MLPotential("symbreak-water", grid="2i").createSystem(topology)``.

Registered through the entry point group ``openmmml.potentials`` (see pyproject.toml), so that
with the ``openmmml`` package installed the potential is available by name. Arguments of
``MLPotential``: ``model`` (a model file; default: the shipped model), ``strategy`` (``none``,
``full``, ``mts``, ``random``; default ``full`` when a grid other than ``none`` is given, else
``none``) and ``grid`` (notation of ``omm_symbreak.grids``, parsed here). The forces are those
of ``omm_symbreak.potential``; with ``mts`` the correction goes in force group
``forceGroup + 1``.
"""

from typing import Iterable, Optional

import openmm
from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory

from .grids import RotationGrid, parse_grid
from .model import load_model
from .potential import create_forces


class SymbreakPotentialImplFactory(MLPotentialImplFactory):
    """Creates ``SymbreakPotentialImpl`` for the name ``symbreak-water``."""

    def createImpl(self, name: str, model: Optional[str] = None, grid: str = "none",
                   strategy: Optional[str] = None, **args) -> MLPotentialImpl:
        rotation_grid = parse_grid(grid)
        if strategy is None:
            strategy = "none" if rotation_grid.spec == "none" else "full"
        return SymbreakPotentialImpl(name, model, rotation_grid, strategy)


class SymbreakPotentialImpl(MLPotentialImpl):
    """Adds the TorchForce(s) of an omm-symbreak model to a System."""

    def __init__(self, name: str, model_file: Optional[str], grid: RotationGrid, strategy: str):
        self.name = name
        self.model = load_model(model_file)
        self.grid = grid
        self.strategy = strategy

    def addForces(self, topology: openmm.app.Topology, system: openmm.System,
                  atoms: Optional[Iterable[int]], forceGroup: int, **args) -> None:
        if atoms is not None and list(atoms) != list(range(topology.getNumAtoms())):
            raise ValueError("symbreak-water models whole systems; a subset of atoms "
                             "(mixed ML/MM systems) is not supported")
        grid = self.grid if self.strategy in ("full", "mts") else None
        for force in create_forces(topology, self.model, self.strategy, grid):
            force.setForceGroup(forceGroup + force.getForceGroup())
            system.addForce(force)
