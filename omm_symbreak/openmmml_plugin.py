"""OpenMM-ML plugin: ``MLPotential("symbreak-water", grid="2i").createSystem(topology)``.

Registered through the entry point group ``openmmml.potentials`` (see pyproject.toml), so that
with the ``openmmml`` package installed the potential is available by name. Arguments of
``MLPotential``: ``checkpoint`` (default: the shipped model), ``strategy`` (``none``, ``full``,
``mts``, ``random``; default ``full`` when a grid other than ``none`` is given, else ``none``)
and ``grid`` (DESIGN.md notation). The forces are those of ``omm_symbreak.potential``; with
``mts`` the correction goes in force group ``forceGroup + 1``.
"""

from typing import Iterable, Optional

import openmm
from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory

from .model import load_checkpoint
from .potential import create_forces


class SymbreakPotentialImplFactory(MLPotentialImplFactory):
    """Creates ``SymbreakPotentialImpl`` for the name ``symbreak-water``."""

    def createImpl(self, name: str, checkpoint: Optional[str] = None, grid: str = "none",
                   strategy: Optional[str] = None, **args) -> MLPotentialImpl:
        if strategy is None:
            strategy = "none" if grid == "none" else "full"
        return SymbreakPotentialImpl(name, checkpoint, grid, strategy)


class SymbreakPotentialImpl(MLPotentialImpl):
    """Adds the TorchForce(s) of an omm-symbreak model to a System."""

    def __init__(self, name: str, checkpoint: Optional[str], grid: str, strategy: str):
        self.name = name
        self.model = load_checkpoint(checkpoint)
        self.grid = grid
        self.strategy = strategy

    def addForces(self, topology: openmm.app.Topology, system: openmm.System,
                  atoms: Optional[Iterable[int]], forceGroup: int, **args) -> None:
        if atoms is not None and list(atoms) != list(range(topology.getNumAtoms())):
            raise ValueError("symbreak-water models whole systems; a subset of atoms "
                             "(mixed ML/MM systems) is not supported")
        for force in create_forces(topology, self.model, self.strategy, self.grid):
            force.setForceGroup(forceGroup + force.getForceGroup())
            system.addForce(force)
