"""The package's own model, ``UnconstrainedPET``, as an ``EnergyModel``, and its adapter."""

import copy
import re
from typing import List, NamedTuple, Optional

import torch
from torch import Tensor, nn

from ..kernel import Batching
from ..model import model_fingerprint
from ..model.electrostatics import Coulomb
from ..model.neighbors import TOO_MANY_NEIGHBORS, neighbor_list, trim_padding
from ..model.pet import UnconstrainedPET
from ..units import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV
from .base import EnergyModel


class PETPrepared(NamedTuple):
    """What ``PETAdapter.prepare`` computes once per call (Angstrom): the per-atom ``types``
    [N], the neighbour list (``index`` [N, K] of the neighbours, ``reverse`` [N, K] of the
    reverse slots, ``mask`` [N, K] of the used slots, ``vectors`` [N, K, 3] r_j - r_i,
    differentiable), and for a long-range model the ``Coulomb.setup`` of the positions
    (``coulomb``; empty otherwise)."""

    types: Tensor
    index: Tensor
    reverse: Tensor
    mask: Tensor
    vectors: Tensor
    coulomb: List[Tensor]


class PETAdapter(nn.Module):
    """The built-in ``UnconstrainedPET`` in the kernel's adapter contract (``kernel``): one
    neighbour search per call, then the displacement vectors of every copy rotated, r' = R r.
    A long-range model adds the electrostatic energy of each copy's charges at the unrotated
    positions (the Coulomb sum of given charges is exactly invariant when positions and cell
    rotate together), from one ``Coulomb.setup`` per call."""

    def __init__(self, model: UnconstrainedPET):
        super().__init__()
        self.model = model
        # the Coulomb sum of a long-range model (an unused one otherwise: TorchScript compiles
        # both branches of ``model.long_range``)
        self.coulomb = Coulomb(model.ewald_cutoff, model.ewald_tolerance).to(
            model.energy_scale.dtype)
        hyper = model.hyperparameters
        itemsize = model.energy_scale.element_size()
        # activations kept for the backward pass per (atom, slot), measured on liquid-256 with
        # the shipped sizes: about 290 MB per copy of 768 atoms with 27 used slots
        self.bytes_per_slot = itemsize * hyper["n_blocks"] * hyper["n_layers"] * (
            10 * hyper["width"] + 4 * hyper["ffn_width"])
        self.bytes_per_slot_pair = itemsize * hyper["n_blocks"] * hyper["n_layers"] * 4 * hyper[
            "n_heads"]

    def prepare(self, types: Tensor, positions: Tensor, cell: Optional[Tensor]) -> PETPrepared:
        """The neighbour list of ``positions`` [N, 3] in ``cell`` [3, 3] or none (Angstrom) and,
        for a long-range model, the ``Coulomb.setup`` of the positions."""
        neighbors = neighbor_list(positions, cell, self.model.cutoff, self.model.max_neighbors)
        # CUDA keeps the static shapes (K slots) that CUDA graphs need.
        if not positions.is_cuda:
            neighbors = trim_padding(neighbors)
        coulomb: List[Tensor] = []
        if self.model.long_range:
            coulomb = self.coulomb.setup(positions, cell)
        return PETPrepared(types, neighbors.index, neighbors.reverse, neighbors.mask,
                           neighbors.vectors, coulomb)

    def copies(self, prepared: PETPrepared, rotations: Tensor) -> Tensor:
        """Total energies [c] (eV) of the copies rotated by ``rotations`` [c, 3, 3]."""
        rotated = torch.einsum("gab,nkb->gnka", rotations, prepared.vectors)
        energies, charges = self.model.energies_and_charges(
            prepared.types, rotated, prepared.index, prepared.reverse, prepared.mask)
        total = energies.sum(dim=1)
        if self.model.long_range:
            total = total + self.coulomb.energies(prepared.coulomb, charges)
        return total

    def _bytes(self, n_atoms: int, n_slots: int) -> int:
        tokens = n_atoms * (n_slots + 1)
        return tokens * (self.bytes_per_slot + self.bytes_per_slot_pair * (n_slots + 1))

    def bytes_per_copy(self, prepared: PETPrepared) -> Optional[int]:
        """Memory of one copy's activations and graph (bytes), for the slots in use."""
        return self._bytes(prepared.index.shape[0], prepared.index.shape[1])

    @torch.jit.unused
    def estimated_bytes_per_copy(self, n_atoms: int) -> int:
        """An upper bound of ``bytes_per_copy`` before the neighbour search (all K slots)."""
        return self._bytes(n_atoms, self.model.max_neighbors)


class BuiltinModel(EnergyModel):
    """An ``UnconstrainedPET`` (Angstrom, eV; one neighbour search per evaluation, displacement
    vectors rotated per copy), its modules TorchScript for TorchForce."""

    kind = "built-in"
    scriptable = True
    length_per_nm = ANGSTROM_PER_NM
    kj_mol_per_energy = KJ_PER_MOL_PER_EV
    batching = Batching(cpu_batch_atoms=512)

    def __init__(self, network: UnconstrainedPET, path=None):
        self.network = network
        self.path = path
        self.dtype = network.energy_scale.dtype

    def adapter(self) -> PETAdapter:
        return PETAdapter(self.network)

    def types_of(self, atomic_numbers: List[int]) -> Tensor:
        return self.network.species_of(atomic_numbers)

    def is_water_model(self) -> bool:
        return sorted(self.network.atomic_numbers.tolist()) == [1, 8]

    def in_precision(self, dtype: torch.dtype) -> "BuiltinModel":
        if dtype == self.dtype:
            return self
        return BuiltinModel(copy.deepcopy(self.network).to(dtype), self.path)

    def fingerprint(self) -> str:
        return model_fingerprint(self.network)

    def description(self) -> dict:
        return {"kind": self.kind, "file": str(self.path),
                "hyperparameters": self.network.hyperparameters}

    def estimated_bytes_per_copy(self, n_atoms: int) -> Optional[int]:
        return PETAdapter(self.network).estimated_bytes_per_copy(n_atoms)

    def explain_failure(self, error: Exception) -> Optional[str]:
        crowded = re.search(r"atom (\d+) has (\d+) neighbors", str(error))
        if TOO_MANY_NEIGHBORS not in str(error) or crowded is None:
            return None
        return (f"{TOO_MANY_NEIGHBORS}: atom {crowded[1]} has {crowded[2]} neighbours within "
                f"{self.network.cutoff} Angstrom, more than the model's "
                f"{self.network.max_neighbors} slots: the structure is denser than the model's "
                "training data. Check the box and the positions (units: nm), or use a model "
                "trained for such densities")
