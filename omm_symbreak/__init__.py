"""omm-symbreak: unconstrained ML potentials in OpenMM, with controlled rotational symmetry.

Modules (bottom to top): ``grids`` (rotation sets), ``model`` (the network, neighbour search,
checkpoints), ``symmetrize`` (grid / correction / random energy modules), ``export`` (the
TorchScript module OpenMM calls: nm and kJ/mol), ``potential`` (TorchForce and System builders).
"""

import torch  # first: openmm-torch's plugin needs the CUDA runtime libraries torch loads

# TorchScript's profiling executor, once it had specialised our modules on the inputs of one
# run, returned wrong forces (gradients; energies were right) for a later module of the same
# class in the same process (torch 2.9.1, CPU: tests/test_openmm.py after tests/test_demo.py).
# The legacy executor gives the right forces; it is also faster here. This is process-wide.
torch._C._jit_set_profiling_executor(False)

__version__ = "0.1.0"
