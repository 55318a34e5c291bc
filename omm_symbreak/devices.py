"""The torch device of the modules that run in Python (``openmm.PythonForce``, the Delta
diagnostic of ``simulate``).

A TorchForce module is not placed here: openmm-torch runs it on the device of the Context's
platform. ``checked_device`` refuses a device torch does not have before any model is loaded.
"""

import itertools
from typing import Optional, Union

import torch
from torch import nn

Device = Union[str, torch.device]


def default_device() -> str:
    """``"cuda"`` when torch has CUDA, else ``"cpu"`` (OpenMM-ML's rule)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def checked_device(device: Optional[Device] = None) -> torch.device:
    """``device`` (None: ``default_device``) as a ``torch.device``; ValueError for a name torch
    does not know or a device this machine's torch cannot use (``"cuda"`` without CUDA, a CUDA
    index beyond the devices present)."""
    name = default_device() if device is None else device
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device {name!r} is not a torch device ({error}): choose cpu or "
                         "cuda") from None
    if device.type == "cuda":
        _check_cuda(device)
    elif device.type != "cpu":
        _check_by_allocating(device)
    return device


def _check_cuda(device: torch.device) -> None:
    """ValueError when torch here has no CUDA device ``device`` (checked without starting CUDA
    work)."""
    if not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r}: torch here has no CUDA (no GPU, no driver, "
                         "or a CPU-only torch build): choose device='cpu'")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ValueError(f"device {str(device)!r}: torch here sees {count} CUDA device(s), "
                         f"cuda:0 to cuda:{count - 1}")


def _check_by_allocating(device: torch.device) -> None:
    """ValueError when torch cannot make an empty tensor on ``device`` (mps, xpu, ...)."""
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        raise ValueError(f"device {str(device)!r} is not usable by torch here ({error}): "
                         "choose device='cpu'") from None


def module_device(module: nn.Module) -> torch.device:
    """The device of the first buffer or parameter of ``module`` (the CPU when it has none):
    where the tensors it is called with must be."""
    for tensor in itertools.chain(module.buffers(), module.parameters()):
        return tensor.device
    return torch.device("cpu")
