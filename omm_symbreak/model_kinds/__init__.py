"""The three kinds of model omm-symbreak symmetrizes, behind one interface (``EnergyModel``):

- ``built-in``: a model file of the package's ``UnconstrainedPET`` (``omm-symbreak train``, the
  shipped model);
- ``torchforce``: a TorchScript file of the ``openmmtorch.TorchForce`` contract (positions nm,
  box nm -> kJ/mol);
- ``metatomic``: an exported metatomic ``AtomisticModel`` (metatrain's PET, ...), run through
  ``openmm.PythonForce``.

``load_energy_model(path)`` reads the file by its content (``detect_kind``), never by its name,
and never unpickles Python objects: model files load with ``weights_only=True``, the other two
kinds as TorchScript.
"""

import zipfile
from pathlib import Path
from typing import Union

from ..model import load_model
from ..model.model_file import DEFAULT_MODEL
from ..model.pet import UnconstrainedPET
from .base import EnergyModel
from .builtin import BuiltinModel

KINDS = ("built-in", "torchforce", "metatomic")
KINDS_IN_WORDS = ("an omm-symbreak model file (.ckpt, from omm-symbreak train), a TorchScript "
                  "module of the openmmtorch.TorchForce contract, or an exported metatomic model")


def detect_kind(path) -> str:
    """The kind (``KINDS``) of the model file at ``path``, from the archive's content;
    FileNotFoundError or ValueError (naming the three kinds) for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes): not a model (a partly written or "
                         f"truncated file?). A model is {KINDS_IN_WORDS}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a model omm-symbreak can run: it is not a torch "
                         f"archive. A model is {KINDS_IN_WORDS}")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(name.endswith("/extra/metatomic-version") for name in names):
        return "metatomic"
    if any("/code/__torch__/" in name for name in names):
        return "torchforce"
    if any(name.endswith("/data.pkl") for name in names):
        return "built-in"
    raise ValueError(f"{path} is a zip archive but not a model omm-symbreak can run. A model is "
                     f"{KINDS_IN_WORDS}")


def load_energy_model(path=None) -> EnergyModel:
    """The model at ``path`` as an ``EnergyModel`` of its kind; None: the shipped model."""
    if path is None:
        return BuiltinModel(load_model(None), DEFAULT_MODEL)
    kind = detect_kind(path)
    if kind == "built-in":
        return BuiltinModel(load_model(path), Path(path))
    if kind == "torchforce":
        from .torchforce import load_torchforce_model

        return load_torchforce_model(path)
    from .metatomic import load_metatomic_model

    return load_metatomic_model(path)


def as_energy_model(model: Union[EnergyModel, UnconstrainedPET]) -> EnergyModel:
    """``model`` as an ``EnergyModel`` (an ``UnconstrainedPET`` is wrapped)."""
    if isinstance(model, EnergyModel):
        return model
    if isinstance(model, UnconstrainedPET):
        return BuiltinModel(model)
    raise TypeError(f"expected an EnergyModel or an UnconstrainedPET, got {type(model).__name__}:"
                    " load a model file with omm_symbreak.load_energy_model")


__all__ = ["KINDS", "EnergyModel", "BuiltinModel", "detect_kind", "load_energy_model",
           "as_energy_model"]
