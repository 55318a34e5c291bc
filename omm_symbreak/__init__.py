"""omm-symbreak: unconstrained ML potentials in OpenMM, with controlled rotational symmetry.

Modules (bottom to top): ``grids`` (rotation sets), ``model`` (the network, neighbour search,
checkpoints), ``symmetrize`` (grid / correction / random energy modules), ``export`` (the
TorchScript module OpenMM calls: nm and kJ/mol), ``potential`` (TorchForce and System builders).
"""

# first: openmm-torch's plugin needs the CUDA runtime libraries that torch loads
import torch  # noqa: F401

__version__ = "0.1.0"
