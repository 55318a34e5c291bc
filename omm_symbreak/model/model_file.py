"""Model files: a state dict plus JSON hyperparameters, safe to load.

A model file (``.ckpt``) is ``{"format": MODEL_FORMAT, "hyperparameters": "<json>",
"state_dict": {...}, "metadata": "<json>"}`` written by ``torch.save`` and read with
``torch.load(weights_only=True)``, so loading a file never executes code.
"""

import hashlib
import json
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
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not an omm-symbreak model file: {error}") from error
    if not isinstance(content, dict) or content.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not an omm-symbreak model file (format {MODEL_FORMAT})")
    model = UnconstrainedPET(**json.loads(content["hyperparameters"]))
    model.load_state_dict(content["state_dict"])
    return model.eval()


def model_metadata(path) -> dict:
    """The JSON metadata stored with a model file (training data, metrics, ...)."""
    content = torch.load(Path(path), map_location="cpu", weights_only=True)
    return json.loads(content["metadata"])


def model_fingerprint(model: UnconstrainedPET) -> str:
    """A short SHA-256 of the hyperparameters and every weight and buffer of ``model`` (as
    float32): the identity of a model whatever file it was saved to."""
    digest = hashlib.sha256(json.dumps(model.hyperparameters, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
