"""A user's TorchScript module in the ``openmmtorch.TorchForce`` contract, as an ``EnergyModel``.

The contract: ``forward(positions [N, 3] nm)`` or ``forward(positions, boxvectors [3, 3] nm)``
(the box optional or not) returning the energy in kJ/mol, a scalar tensor (or one element).
Modules with global parameters or that return forces (``setOutputsForces``) are refused.

A rotated copy of a periodic structure has its box vectors rotated too: b' = det(R) b R^T (rows
b, an improper R negated, which spans the same lattice with a right-handed basis). Such a box is
not in OpenMM's reduced form (a along x, b in the xy plane), so the module must handle general
triclinic boxes (with fractional coordinates, say); a module that assumes a reduced or
rectangular box gives wrong energies for rotated copies.
"""

from pathlib import Path
from typing import List, NamedTuple, Optional

import torch
from torch import Tensor, nn

from ..kernel import ONE_COPY_PER_CALL, rotated_cell
from .base import EnergyModel

CONTRACT = ("forward(positions [N, 3] nm) or forward(positions [N, 3] nm, boxvectors [3, 3] nm) "
            "returning the energy in kJ/mol")


class _WithoutBox(nn.Module):
    """Calls a module whose forward takes the positions only."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, positions: Tensor, box: Optional[Tensor]) -> Tensor:
        return self.module(positions)


class _WithBox(nn.Module):
    """Calls a module whose forward needs the box vectors."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, positions: Tensor, box: Optional[Tensor]) -> Tensor:
        if box is None:
            raise ValueError("this module needs box vectors: make the TorchForce periodic "
                             "(setUsesPeriodicBoundaryConditions(True)) and the system periodic")
        return self.module(positions, box)


class _WithOptionalBox(nn.Module):
    """Calls a module whose forward takes optional box vectors."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, positions: Tensor, box: Optional[Tensor]) -> Tensor:
        return self.module(positions, box)


class Frame(NamedTuple):
    """What ``TorchForceAdapter.prepare`` keeps: the ``positions`` [N, 3] and ``cell`` [3, 3]
    or None (nm); nothing else is shared between copies."""

    positions: Tensor
    cell: Optional[Tensor]


class TorchForceAdapter(nn.Module):
    """A TorchForce module in the kernel's adapter contract: each copy is the module evaluated
    on the rotated positions x R^T and box det(R) b R^T, copy by copy (its memory is unknown:
    ``TorchForceModel.batching`` passes one copy per call). Rotations are cast to the positions'
    dtype, which the module gets as OpenMM passes it."""

    def __init__(self, call: nn.Module):
        super().__init__()
        self.call = call

    def prepare(self, types: Tensor, positions: Tensor, cell: Optional[Tensor]) -> Frame:
        return Frame(positions, cell)

    def copies(self, prepared: Frame, rotations: Tensor) -> Tensor:
        """Energies [c] (kJ/mol) of the copies rotated by ``rotations`` [c, 3, 3]."""
        positions = prepared.positions
        rotations = rotations.to(positions.dtype)
        cell = prepared.cell
        energies: List[Tensor] = []
        for number in range(rotations.shape[0]):
            rotation = rotations[number]
            box: Optional[Tensor] = None
            if cell is not None:
                box = rotated_cell(cell, rotation)
            energies.append(self.call(positions @ rotation.T, box).reshape(()))
        return torch.stack(energies)

    def bytes_per_copy(self, prepared: Frame) -> Optional[int]:
        """Unknown."""
        return None


class TorchForceModel(EnergyModel):
    """A TorchScript module of the TorchForce contract (``CONTRACT``), in nm and kJ/mol."""

    kind = "torchforce"
    scriptable = True
    batching = ONE_COPY_PER_CALL

    def __init__(self, module: torch.jit.ScriptModule, path: Optional[Path] = None):
        self.module = module
        self.path = path
        self.call = _call_of(module, path)
        periodic = getattr(module, "uses_periodic_boundary_conditions", None)
        # without the attribute: periodic when the box is required; a module with an optional
        # box runs either way (TorchForce passes the box when the force is made periodic)
        self.periodic = isinstance(self.call, _WithBox) if periodic is None else bool(periodic)

    def adapter(self) -> TorchForceAdapter:
        return TorchForceAdapter(self.call)

    def types_of(self, atomic_numbers: List[int]) -> Tensor:
        """The atomic numbers: the module knows its atoms itself."""
        return torch.tensor(atomic_numbers, dtype=torch.long)


def _call_of(module: torch.jit.ScriptModule, path: Optional[Path]) -> nn.Module:
    """The call wrapper of ``module``'s forward; ValueError for a signature outside the TorchForce
    contract this package symmetrizes."""
    where = f"{path}: " if path is not None else ""
    schema = module.forward.schema
    arguments = [(argument.name, str(argument.type)) for argument in schema.arguments[1:]]
    returns = [str(value.type) for value in schema.returns]
    signature = f"forward({', '.join(f'{name}: {kind}' for name, kind in arguments)}) -> " + (
        ", ".join(returns))
    if returns != ["Tensor"]:
        raise ValueError(f"{where}the module's {signature} does not return one energy tensor: "
                         f"symmetrize takes modules with {CONTRACT} (not forces, not tuples)")
    kinds = [kind for _, kind in arguments]
    if kinds == ["Tensor"]:
        return _WithoutBox(module)
    if kinds == ["Tensor", "Tensor"]:
        return _WithBox(module)
    if kinds == ["Tensor", "Optional[Tensor]"]:
        return _WithOptionalBox(module)
    raise ValueError(f"{where}the module's {signature} is not in the TorchForce contract "
                     f"symmetrize takes: {CONTRACT}; global parameters are not supported")

