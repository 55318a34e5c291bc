"""The four kinds of model omm-symbreak symmetrizes, behind one interface (``EnergyModel``):

- ``built-in``: a model file of the package's ``UnconstrainedPET`` (``omm-symbreak train``, the
  shipped model);
- ``torchforce``: a TorchScript file of the ``openmmtorch.TorchForce`` contract (positions nm,
  box nm -> kJ/mol);
- ``metatomic``: an exported metatomic ``AtomisticModel`` (metatrain's PET, ...), run through
  ``openmm.PythonForce``;
- ``ase``: an ASE calculator object (Orb-v3, UMA, UPET, ...; ``ase_calculator``), run through
  ``openmm.PythonForce``: it has no file, so it is passed as an object (``energy_model_of``).

``load_energy_model(path)`` reads the file by its content (``detect_kind``), never by its name,
and never unpickles Python objects: torch's archive reader tells a TorchScript archive (what
``torch.jit.save`` writes: scripted, traced or frozen, its class defined in any module,
``__main__`` included, its top folder named anything) from a ``torch.save`` one, as
``torch.load`` does; TorchScript files load with ``torch.jit.load``, model files with
``weights_only=True``.
"""

import zipfile
from pathlib import Path
from os import PathLike
from typing import Optional, Tuple, Union

import torch
from torch.serialization import _is_torchscript_zip

from ..model import load_model
from ..model.model_file import DEFAULT_MODEL
from ..model.pet import UnconstrainedPET
from .ase_calculator import ASEModel, is_calculator
from .base import EnergyModel
from .builtin import BuiltinModel

KINDS = ("built-in", "torchforce", "metatomic", "ase")
KINDS_IN_WORDS = ("an omm-symbreak model file (.ckpt, from omm-symbreak train), a TorchScript "
                  "module of the openmmtorch.TorchForce contract, or an exported metatomic model")
# the record metatomic's export adds to a TorchScript archive (an extra file)
METATOMIC_RECORD = "extra/metatomic-version"


def detect_kind(path) -> str:
    """The kind (``KINDS``) of the model file at ``path``, from the archive's content;
    FileNotFoundError or ValueError (naming the three kinds) for anything else."""
    return _identify(Path(path))[0]


def load_energy_model(path=None) -> EnergyModel:
    """The model at ``path`` as an ``EnergyModel`` of its kind; None: the shipped model."""
    if path is None:
        return BuiltinModel(load_model(None), DEFAULT_MODEL)
    path = Path(path)
    kind, module = _identify(path)
    if kind == "built-in":
        return BuiltinModel(load_model(path), path)
    if kind == "torchforce":
        from .torchforce import TorchForceModel

        return TorchForceModel(module, path)
    from .metatomic import load_metatomic_model

    return load_metatomic_model(path)


def _identify(path: Path) -> Tuple[str, Optional[torch.jit.ScriptModule]]:
    """The kind of the model file at ``path`` and, for a TorchScript module, the module (CPU)."""
    reader = _archive_reader(path)
    if reader.has_record(METATOMIC_RECORD):
        return "metatomic", None
    if _is_torchscript_zip(reader):  # torch.load's own test: the archive holds constants.pkl
        return "torchforce", _load_torchscript(path)
    if reader.has_record("data.pkl"):
        return "built-in", None
    raise ValueError(f"{path} is a torch archive but not a model omm-symbreak can run. A model "
                     f"is {KINDS_IN_WORDS}")


def _archive_reader(path: Path) -> torch._C.PyTorchFileReader:
    """torch's reader of the archive at ``path`` (``torch.save`` or ``torch.jit.save``; its
    records named relative to the top folder); FileNotFoundError or ValueError for a file that
    is no such archive."""
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes): not a model (a partly written or "
                         f"truncated file?). A model is {KINDS_IN_WORDS}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a model omm-symbreak can run: it is not a torch "
                         f"archive. A model is {KINDS_IN_WORDS}")
    try:
        return torch._C.PyTorchFileReader(str(path))
    except RuntimeError:
        raise ValueError(f"{path} is a zip archive but not a torch archive, so not a model "
                         f"omm-symbreak can run. A model is {KINDS_IN_WORDS}") from None


def _load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """The TorchScript module at ``path`` on the CPU; ValueError with torch's reason when torch
    cannot load it."""
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise ValueError(f"{path} is a TorchScript archive that torch.jit.load cannot load "
                         f"({lines[0] if lines else type(error).__name__}): a module that uses "
                         "custom operators or classes needs their package imported first; "
                         "otherwise the file is damaged") from None


def as_energy_model(model) -> EnergyModel:
    """``model`` (an ``EnergyModel``, an ``UnconstrainedPET`` or an ASE calculator) as an
    ``EnergyModel``; TypeError for anything else."""
    if isinstance(model, EnergyModel):
        return model
    if isinstance(model, UnconstrainedPET):
        return BuiltinModel(model)
    if is_calculator(model):
        return ASEModel(model)
    raise TypeError(f"expected an EnergyModel, an UnconstrainedPET or an ASE calculator "
                    f"(ase.calculators.calculator.Calculator), got {type(model).__name__}: "
                    "load a model file with omm_symbreak.load_energy_model")


def energy_model_of(model: Union[None, str, PathLike, EnergyModel, UnconstrainedPET]
                    ) -> EnergyModel:
    """The ``EnergyModel`` of what a user passes as a model: a file of any kind (a path),
    None (the shipped model), or an object (``as_energy_model``: an ASE calculator, say)."""
    if model is None or isinstance(model, (str, PathLike)):
        return load_energy_model(model)
    return as_energy_model(model)


__all__ = ["KINDS", "EnergyModel", "BuiltinModel", "ASEModel", "detect_kind",
           "load_energy_model", "as_energy_model", "energy_model_of"]
