"""OpenMM-ML plugin: ``MLPotential("symbreak-water", grid="Ti").createSystem(topology)`` for the
shipped model, ``MLPotential("symbreak", model=FILE, grid="Ti")`` for a model of any kind.

Registered through the entry point group ``openmmml.potentials`` (see pyproject.toml), so that
with the ``openmmml`` package installed both potentials are available by name. Arguments of
``MLPotential``: ``model`` (a model file of any kind, ``omm_symbreak.model_kinds``: an
omm-symbreak model, a TorchForce module or an exported metatomic model; or an ASE calculator
object, or an ``EnergyModel``; required by ``symbreak``, default the shipped model for
``symbreak-water``), ``strategy`` (``none``,
``full``, ``mts``, ``random``; default ``full`` when a grid other than ``none`` is given, else
``none``) and ``grid`` (notation of ``omm_symbreak.grids``, parsed here; default ``Ti`` for
``full`` and ``mts``, and a grid with ``none`` or ``random`` is a ValueError) and
``allow_incomplete_water`` (default False: a water model refuses residues that are not whole
water molecules) and ``device`` (the torch device of a model run through ``openmm.PythonForce``,
a metatomic model or an ASE calculator; default CUDA when torch has it, else the CPU, as
OpenMM-ML does; a device torch does not have is a ValueError here); any other keyword is a
TypeError. The forces are those of
``omm_symbreak.potential``; with ``mts`` the correction goes in force group ``forceGroup + 1``.

``createSystem(topology, precision=...)``: ``"single"`` or ``"double"`` runs the built-in model
in float32 or float64 (default: the model file's precision, float32; a model of another kind
runs in its own); the precision of the
OpenMM platform itself is a property of the Context (``{"Precision": "double"}`` on CUDA and
OpenCL). ``device`` belongs to ``MLPotential`` and is refused here: a TorchForce runs on the
device of the Context's platform. Any other keyword is a TypeError.

``MLPotential.createSystem`` adds an ``openmm.CMMotionRemover`` unless given
``removeCMMotion=False``. Every step it subtracts the centre-of-mass velocity from every atom:
it zeroes the total linear momentum and nothing else. The angular momentum and the net torque
about the centre of mass (the diagnostics of ``omm-symbreak simulate``) are unchanged by a
uniform velocity shift, so their drift under a non-invariant model is neither hidden nor
caused by it; ``createSystem(topology, removeCMMotion=False)`` leaves the dynamics to the
model's forces alone, as ``omm_symbreak.potential.create_system`` does.
"""

from typing import Iterable, Optional

import openmm
import torch
from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory

from .devices import Device, checked_device
from .grids import parse_grid
from .model_kinds import energy_model_of
from .potential import create_forces
from .strategies import DEFAULT_GRID, GRID_STRATEGIES, check_strategy

POTENTIAL_ARGUMENTS = ("model", "grid", "strategy", "allow_incomplete_water", "device")
PRECISIONS = {"single": torch.float32, "double": torch.float64}


def _refuse_unknown(unknown: Iterable[str], where: str, accepted: Iterable[str]) -> None:
    """TypeError naming the unknown keyword arguments of ``where`` and the accepted ones."""
    unknown = sorted(unknown)
    if unknown:
        raise TypeError(f"{where} got unknown keyword argument(s) {', '.join(unknown)}; it "
                        f"accepts {', '.join(accepted)}")


class SymbreakPotentialImplFactory(MLPotentialImplFactory):
    """Creates ``SymbreakPotentialImpl`` for the names ``symbreak-water`` (the shipped model by
    default) and ``symbreak`` (a ``model`` file of any kind, required)."""

    def createImpl(self, name: str, **args) -> MLPotentialImpl:
        _refuse_unknown(set(args) - set(POTENTIAL_ARGUMENTS), f"MLPotential({name!r})",
                        POTENTIAL_ARGUMENTS)
        if name == "symbreak" and args.get("model") is None:
            raise ValueError("MLPotential('symbreak') needs model=FILE (an omm-symbreak model, "
                             "a TorchForce module or an exported metatomic model) or "
                             "model=CALCULATOR (an ASE calculator object) "
                             "(MLPotential('symbreak-water') runs the shipped model)")
        spec, strategy = args.get("grid"), args.get("strategy")
        if strategy is None:
            strategy = "none" if spec in (None, "none") else "full"
        if spec is None:
            spec = DEFAULT_GRID if strategy in GRID_STRATEGIES else "none"
        grid = parse_grid(spec)
        check_strategy(strategy, grid)
        return SymbreakPotentialImpl(name, args.get("model"), grid, strategy,
                                     bool(args.get("allow_incomplete_water", False)),
                                     args.get("device"))


class SymbreakPotentialImpl(MLPotentialImpl):
    """Adds the force(s) of an omm-symbreak model to a System (``potential.create_forces``; a
    PythonForce's module on ``device``, None: CUDA when torch has it, else the CPU)."""

    def __init__(self, name: str, model, grid, strategy: str,
                 allow_incomplete_water: bool = False, device: Optional[Device] = None):
        self.name = name
        self.device = checked_device(device)
        self.allow_incomplete_water = allow_incomplete_water
        self.model = energy_model_of(model)
        self.grid = grid if strategy in GRID_STRATEGIES else None
        self.strategy = strategy

    def _model_in(self, precision: Optional[str]):
        """The model in ``precision`` (None: as loaded), a copy when converted."""
        if precision is None:
            return self.model
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: choose single or double")
        return self.model.in_precision(PRECISIONS[precision])

    def addForces(self, topology: openmm.app.Topology, system: openmm.System,
                  atoms: Optional[Iterable[int]], forceGroup: int, **args) -> None:
        if "device" in args:
            raise ValueError(f"{self.name} createSystem takes no device: a TorchForce runs on "
                             "the device of the OpenMM platform of the Context (choose it with "
                             "openmm.Platform.getPlatformByName and the DeviceIndex property); "
                             f"a PythonForce's is MLPotential({self.name!r}, device=...)")
        _refuse_unknown(set(args) - {"precision"}, f"{self.name} createSystem",
                        ("precision", "removeCMMotion"))
        if atoms is not None and list(atoms) != list(range(topology.getNumAtoms())):
            raise ValueError(f"{self.name} models whole systems; a subset of atoms "
                             "(mixed ML/MM systems) is not supported")
        model = self._model_in(args.get("precision"))
        for force in create_forces(topology, model, self.strategy, self.grid,
                                   allow_incomplete_water=self.allow_incomplete_water,
                                   device=self.device):
            force.setForceGroup(forceGroup + force.getForceGroup())
            system.addForce(force)
