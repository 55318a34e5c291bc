"""TorchScript's legacy executor for the duration of a run, so that a resumed run repeats the
uninterrupted one bit for bit.

torch's default (profiling) executor runs a module's first call through a profiling graph,
whose gradients autograd takes, and later calls through an optimized graph with
differentiable subgraphs, whose gradients come from symbolic formulas; it profiles again when
shapes change (a neighbour count, say). The float32 forces of a step then depend on how many
calls the module has seen: a run resumed in a new process, or in a new Context, left the
frames of the uninterrupted run at the last bits (measured: 3e-8 nm after 10 steps of the
water molecule). The legacy executor optimizes once per input signature, so every call gives
the same numbers from the first on, as resume needs.

torch has no per-module switch: ``legacy_executor()`` sets the process's executor mode while
any run of the process holds it and restores the one before when the last one ends (a
module's executor is fixed at its first call). Importing the package changes nothing.
"""

import contextlib
import threading

import torch

_LOCK = threading.Lock()
_holders = 0
_mode_before = True


@contextlib.contextmanager
def legacy_executor():
    """The legacy TorchScript executor inside the ``with`` block, reentrant and thread-safe
    (a count of holders); the mode before is restored when the last holder leaves."""
    global _holders, _mode_before
    with _LOCK:
        if _holders == 0:
            _mode_before = torch._C._jit_set_profiling_executor(False)
        _holders += 1
    try:
        yield
    finally:
        with _LOCK:
            _holders -= 1
            if _holders == 0:
                torch._C._jit_set_profiling_executor(_mode_before)
