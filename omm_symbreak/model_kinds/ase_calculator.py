"""An ASE calculator (``ase.calculators.calculator.BaseCalculator``: Orb-v3, UMA, UPET, ...) as
an ``EnergyModel``.

Each rotated copy is one call of the calculator on an ``ase.Atoms`` with the rotated positions
x R^T and, for a periodic system, the rotated cell (``kernel.rotated_cell``; pbc kept on all
three axes); without a box, no cell and no pbc. The copy's energy is a torch scalar whose
gradient with respect to the rotated positions is minus the calculator's forces, so autograd
back-rotates them: the averaged forces are sum_g w_g R_g^T F(R_g x). Units are ASE's, Angstrom
and eV. The calculator runs eagerly, in an ``openmm.PythonForce``; the cell gets no gradient
(no stress is asked for).

A calculator whose forces are not the gradient of its energy (a direct-force model) is accepted
with a warning: ``ASEModel(calculator, conservative=False)``, or, by default, what the
calculator says of itself in ``parameters["non_conservative"]`` (metatomic-ase's flag, which
UPET's calculator inherits). Orb-v3's direct models say nothing: pass ``conservative=False``.
"""

import hashlib
import warnings
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..kernel import ONE_COPY_PER_CALL, rotated_cell
from ..units import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV
from .base import EnergyModel

NON_CONSERVATIVE_WARNING = (
    "the ASE calculator's forces are not the gradient of its energy (a direct-force model): "
    "the averaged forces sum_g w_g R_g^T F(R_g x) are not conservative either, so the total "
    "energy drifts in NVE and the averaged energy is not their potential")


def is_calculator(model) -> bool:
    """Whether ``model`` is an ASE calculator object."""
    from ase.calculators.calculator import BaseCalculator

    return isinstance(model, BaseCalculator)


def declares_direct_forces(calculator) -> bool:
    """Whether the calculator says its forces are not its energy's gradient (metatomic-ase's
    ``parameters["non_conservative"]``, truthy for direct forces)."""
    parameters = getattr(calculator, "parameters", None) or {}
    return bool(parameters.get("non_conservative", False))


def calculate(calculator, atoms, properties: List[str]) -> dict:
    """The calculator's results for ``atoms``, as ``get_property`` gets them (the changes since
    the atoms it last saw passed on, so that it updates rather than rebuilds its neighbour
    list; its cached results when nothing changed: the raw copy of ``mts``'s two forces, say),
    but every property of ``properties`` from one ``calculate`` call (``get_property`` asks for
    one per call, and a calculator that computes only what is asked would run twice)."""
    changes = calculator.check_state(atoms)
    if changes:
        calculator.atoms, calculator.results = None, {}
    if changes or any(name not in calculator.results for name in properties):
        calculator.calculate(atoms, properties, changes)
        calculator.atoms = atoms.copy()
    return calculator.results


class _CalculatorEnergy(torch.autograd.Function):
    """The energy of one copy (eV), a scalar whose gradient with respect to the positions is
    minus the calculator's forces (eV/Angstrom)."""

    @staticmethod
    def forward(ctx, positions: Tensor, cell: Optional[Tensor], numbers: np.ndarray,
                adapter: "ASEAdapter"):
        if ctx.needs_input_grad[1]:
            raise ValueError("an ASE calculator gives no derivative with respect to the cell "
                             "here (no stress): pass a box that needs no gradient")
        energy, forces = adapter.evaluate(numbers, positions, cell, ctx.needs_input_grad[0])
        ctx.save_for_backward(forces)
        return energy

    @staticmethod
    def backward(ctx, grad_energy: Tensor):
        (forces,) = ctx.saved_tensors
        return -grad_energy * forces, None, None, None


class AtomsFrame(NamedTuple):
    """What ``ASEAdapter.prepare`` keeps: the atomic ``numbers`` [N] (numpy), ``positions``
    [N, 3] and ``cell`` [3, 3] or None (Angstrom); nothing else is shared between copies."""

    numbers: np.ndarray
    positions: Tensor
    cell: Optional[Tensor]


class ASEAdapter(nn.Module):
    """An ASE calculator in the kernel's adapter contract (eager, not TorchScript): one
    calculator call per copy (``ASEModel.batching``)."""

    def __init__(self, calculator):
        super().__init__()
        self.calculator = calculator

    def prepare(self, types: Tensor, positions: Tensor, cell: Optional[Tensor]) -> AtomsFrame:
        """``types`` are the atomic numbers (``ASEModel.types_of``)."""
        return AtomsFrame(types.cpu().numpy(), positions, cell)

    def copies(self, prepared: AtomsFrame, rotations: Tensor) -> Tensor:
        """Energies [c] (eV) of the copies rotated by ``rotations`` [c, 3, 3]."""
        numbers, positions, cell = prepared
        rotations = rotations.to(positions.dtype)
        return torch.stack([
            _CalculatorEnergy.apply(positions @ rotation.T,
                                    None if cell is None else rotated_cell(cell, rotation),
                                    numbers, self)
            for rotation in rotations])

    def evaluate(self, numbers: np.ndarray, positions: Tensor, cell: Optional[Tensor],
                 forces: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """The calculator on atoms of atomic numbers ``numbers`` [N] at ``positions`` [N, 3]
        (Angstrom) in ``cell`` [3, 3] (Angstrom, rows) or none: the energy (eV, a scalar) and,
        when ``forces``, the forces [N, 3] (eV/Angstrom), in the positions' dtype and device."""
        import ase

        atoms = ase.Atoms(numbers=numbers, positions=positions.detach().cpu().numpy(),
                          cell=None if cell is None else cell.detach().cpu().numpy(),
                          pbc=cell is not None)
        # autograd.Function.forward runs without gradients; calculators that take their forces
        # by autograd (Orb-v3 conservative, metatomic-ase, ...) need them, asked or not
        with torch.enable_grad():
            results = calculate(self.calculator, atoms, ["energy", "forces"] if forces
                                else ["energy"])
        like = dict(dtype=positions.dtype, device=positions.device)
        energy = torch.tensor(float(results["energy"]), **like)
        if not forces:
            return energy, None
        return energy, torch.as_tensor(np.asarray(results["forces"]), **like)

    def bytes_per_copy(self, prepared: AtomsFrame) -> Optional[int]:
        """Unknown."""
        return None


class ASEModel(EnergyModel):
    """An ASE calculator (Angstrom, eV, float64), run eagerly; ``conservative``: whether its
    forces are its energy's gradient (None: ``declares_direct_forces``), False warns."""

    kind = "ase"
    scriptable = False
    length_per_nm = ANGSTROM_PER_NM
    kj_mol_per_energy = KJ_PER_MOL_PER_EV
    dtype = torch.float64
    batching = ONE_COPY_PER_CALL

    def __init__(self, calculator, conservative: Optional[bool] = None):
        if not is_calculator(calculator):
            raise TypeError(f"expected an ASE calculator (ase.calculators.calculator."
                            f"Calculator), got {type(calculator).__name__}")
        self.calculator = calculator
        self.conservative = (not declares_direct_forces(calculator) if conservative is None
                             else bool(conservative))
        if not self.conservative:
            warnings.warn(NON_CONSERVATIVE_WARNING, stacklevel=2)

    def adapter(self) -> ASEAdapter:
        return ASEAdapter(self.calculator)

    def types_of(self, atomic_numbers: List[int]) -> Tensor:
        """The atomic numbers: the calculator knows its elements itself."""
        return torch.tensor(atomic_numbers, dtype=torch.long)

    def name(self) -> str:
        return f"{type(self.calculator).__name__} calculator"

    def fingerprint(self) -> str:
        """A short SHA-256 of the calculator's class and parameters (it has no file)."""
        calculator = self.calculator
        parameters = getattr(calculator, "parameters", None) or {}
        text = (f"{type(calculator).__module__}.{type(calculator).__qualname__}:"
                f"{sorted((str(key), repr(value)) for key, value in parameters.items())}")
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def description(self) -> dict:
        calculator = type(self.calculator)
        return {"kind": self.kind, "calculator": f"{calculator.__module__}.{calculator.__name__}",
                "conservative": self.conservative}
