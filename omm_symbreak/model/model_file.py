"""Model files: a state dict plus JSON hyperparameters, safe to load.

A model file (``.ckpt``) is ``{"format": MODEL_FORMAT, "hyperparameters": "<json>",
"state_dict": {...}, "metadata": "<json>"}`` written by ``torch.save`` and read with
``torch.load(weights_only=True)``, so loading a file never executes code.
"""

import hashlib
import json
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Optional

import torch

from .pet import UnconstrainedPET

MODEL_FORMAT = "omm-symbreak-pet-1"
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "water-pet.ckpt"


def save_model(model: UnconstrainedPET, path, metadata: Optional[dict] = None) -> None:
    """Write ``model`` (its weights, buffers and hyperparameters) and JSON ``metadata`` to ``path``."""
    torch.save(
        {
            "format": MODEL_FORMAT,
            "hyperparameters": json.dumps(model.hyperparameters),
            "state_dict": {name: t.detach().cpu() for name, t in model.state_dict().items()},
            "metadata": json.dumps(metadata or {}),
        },
        path,
    )


def load_model(path=None) -> UnconstrainedPET:
    """Rebuild the model stored at ``path`` (float32, CPU, eval mode); None: the shipped model."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.is_file():
        if path == DEFAULT_MODEL:
            raise FileNotFoundError("this installation ships no trained model yet "
                                    f"({DEFAULT_MODEL}): pass --model FILE")
        raise FileNotFoundError(f"no model file at {path}")
    content = _read_safely(path)
    if not isinstance(content, dict) or content.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not an omm-symbreak model file (format {MODEL_FORMAT}): "
                         "pass a .ckpt written by omm-symbreak train or save_model")
    model = UnconstrainedPET(**json.loads(content["hyperparameters"]))
    model.load_state_dict(content["state_dict"])
    return model.eval()


def _read_safely(path: Path):
    """The content of a ``torch.save`` file, read with ``weights_only=True``; ValueError with a
    reason a user can act on for anything else (never the advice to load it unsafely)."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes): not an omm-symbreak model file (a partly "
                         "written or truncated file?)")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an omm-symbreak model file: it is not a torch.save "
                         "archive (a .ckpt written by omm-symbreak train or save_model)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{path} holds Python objects other than tensors and plain data: "
                         "omm-symbreak refuses to load it, since loading such a file could run "
                         "arbitrary code. Model files are written by omm-symbreak train or "
                         "save_model") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"{path} is not a readable omm-symbreak model file "
                         f"({type(error).__name__}: the archive is damaged or incomplete)") from None


def model_metadata(path) -> dict:
    """The JSON metadata stored with a model file (training data, metrics, ...)."""
    return json.loads(_read_safely(Path(path))["metadata"])


def model_fingerprint(model: UnconstrainedPET) -> str:
    """A short SHA-256 of the hyperparameters and every weight and buffer of ``model`` (as
    float32): the identity of a model whatever file it was saved to."""
    digest = hashlib.sha256(json.dumps(model.hyperparameters, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
