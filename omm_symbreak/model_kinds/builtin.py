"""The package's own model, ``UnconstrainedPET``, as an ``EnergyModel``."""

import copy
import re
from typing import List, Optional

import torch
from torch import Tensor

from ..kernel import PETAdapter
from ..model import model_fingerprint
from ..model.neighbors import TOO_MANY_NEIGHBORS
from ..model.pet import UnconstrainedPET
from ..units import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV
from .base import EnergyModel


class BuiltinModel(EnergyModel):
    """An ``UnconstrainedPET`` (Angstrom, eV; one neighbour search per evaluation, displacement
    vectors rotated per copy), its modules TorchScript for TorchForce."""

    kind = "built-in"
    scriptable = True
    length_per_nm = ANGSTROM_PER_NM
    kj_mol_per_energy = KJ_PER_MOL_PER_EV
    cpu_batch_atoms = 512

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
