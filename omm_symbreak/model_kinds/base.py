"""What every kind of model gives the layers above it: ``EnergyModel``."""

import hashlib
from pathlib import Path
from typing import List, Optional

import torch
from torch import Tensor, nn

from ..kernel import DEFAULT_MEMORY_BUDGET_BYTES, Batching, RotatedCopies


class EnergyModel:
    """A model of any kind, as ``symmetrize``, ``export``, ``potential`` and ``simulate`` use it.

    Attributes:

    - ``kind``: ``"built-in"``, ``"torchforce"``, ``"metatomic"`` or ``"ase"`` (``KINDS``);
    - ``scriptable``: its modules are TorchScript that ``openmmtorch.TorchForce`` loads (else
      they run eagerly, in an ``openmm.PythonForce``);
    - ``length_per_nm``, ``kj_mol_per_energy``: the model's length unit per nm and kJ/mol per
      its energy unit (1 and 1 for a TorchForce module);
    - ``dtype``: the dtype its inputs are cast to, or None to keep the engine's (a TorchForce
      module gets what OpenMM passes);
    - ``batching``: how its adapter takes rotated copies (``kernel.Batching``: a fixed number
      per model call, or as memory allows and, on CPUs, in cache-sized calls);
    - ``path``: the file it was read from (None for a model built in memory).
    """

    kind = ""
    scriptable = True
    length_per_nm = 1.0
    kj_mol_per_energy = 1.0
    dtype: Optional[torch.dtype] = None
    batching = Batching()
    path: Optional[Path] = None

    def adapter(self) -> nn.Module:
        """The model in the adapter contract of ``kernel.RotatedCopies`` (``kernel``)."""
        raise NotImplementedError

    def rotated_copies(self, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES
                       ) -> RotatedCopies:
        """The kernel around the model's adapter, batched as the kind of model wants, within
        ``memory_budget_bytes`` of activations where the kind tells its memory."""
        return RotatedCopies(self.adapter(), memory_budget_bytes, self.batching)

    def types_of(self, atomic_numbers: List[int]) -> Tensor:
        """The per-atom type tensor [N] its adapter takes; ValueError for elements it lacks."""
        raise NotImplementedError

    def in_precision(self, dtype: torch.dtype) -> "EnergyModel":
        """The model in ``dtype`` where the kind can convert (the built-in model); a model of
        another kind runs in the precision it was written for and is returned unchanged."""
        return self

    def name(self) -> str:
        """How messages name the model: its file."""
        return str(self.path)

    def fingerprint(self) -> str:
        """A short SHA-256 that identifies the model whatever file it is in."""
        return file_fingerprint(self.path)

    def description(self) -> dict:
        """What run.json records of the model (JSON)."""
        return {"kind": self.kind, "file": str(self.path)}

    def is_water_model(self) -> bool:
        """Whether the model knows water only (the built-in model of H and O): its structures
        must then be whole water molecules (``structure_checks.check_whole_water``)."""
        return False

    def estimated_bytes_per_copy(self, n_atoms: int) -> Optional[int]:
        """An upper bound of one rotated copy's activation memory, or None when unknown."""
        return None

    def explain_failure(self, error: Exception) -> Optional[str]:
        """A message a user can act on for an error of the first evaluation, or None to let
        the error through: here the error's last line, with which model failed on what."""
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        return (f"the {self.kind} model {self.name()} failed on its first evaluation of this "
                f"system: {lines[-1] if lines else type(error).__name__}. Is it made for this "
                "system's atoms (their number and order) and, if periodic, for its box?")


def file_fingerprint(path: Path) -> str:
    """A short SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
