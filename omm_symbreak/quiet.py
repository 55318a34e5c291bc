"""Lines that libraries print on their own, which tell a user of omm-symbreak nothing: dropped
where they arise, one by one, so that every other message (ours included) still shows.

- openmmtorch's SWIG wrapper imports ``simtk.openmm``, whose compatibility shim logs "Warning:
  importing 'simtk.openmm' is deprecated" on the root logger (``simtk_warning_dropped``);
- mdtraj's DCD reader (VMD's dcdplugin, C) prints "dcdplugin) ..." lines to the standard
  output (``c_stdout_dropped``).
"""

import contextlib
import ctypes
import logging
import os
import sys

SIMTK_WARNING = "Warning: importing 'simtk.openmm' is deprecated"


class _SimtkWarningFilter(logging.Filter):
    """Drops the record of ``SIMTK_WARNING``, passes every other."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(SIMTK_WARNING)


@contextlib.contextmanager
def simtk_warning_dropped():
    """Within: the root logger drops the record of ``SIMTK_WARNING`` and no other."""
    root, dropper = logging.getLogger(), _SimtkWarningFilter()
    root.addFilter(dropper)
    try:
        yield
    finally:
        root.removeFilter(dropper)


def _flush_c_stdio() -> None:
    """Flush the C library's buffered output streams (where the C library can be reached)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, TypeError, AttributeError):
        pass


@contextlib.contextmanager
def c_stdout_dropped():
    """Within: what is written to file descriptor 1 (the standard output of C code) is
    dropped. Python's standard output is flushed before; print nothing to it within. The
    standard error, where warnings go, is untouched."""
    sys.stdout.flush()
    _flush_c_stdio()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)
