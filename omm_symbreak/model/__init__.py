"""The unconstrained PET-style network, its neighbour search and its checkpoints."""

from .checkpoint import checkpoint_metadata, load_checkpoint, model_fingerprint, save_checkpoint
from .neighbors import NeighborList, neighbor_list, trim_padding
from .pet import UnconstrainedPET

__all__ = [
    "NeighborList", "UnconstrainedPET", "checkpoint_metadata", "load_checkpoint",
    "model_fingerprint", "neighbor_list", "save_checkpoint", "trim_padding",
]
