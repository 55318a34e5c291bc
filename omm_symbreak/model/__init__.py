"""The unconstrained PET-style network, its neighbour search and its model files."""

from .model_file import DEFAULT_MODEL, load_model, model_fingerprint, model_metadata, save_model
from .neighbors import NeighborList, neighbor_list, trim_padding
from .pet import UnconstrainedPET

__all__ = [
    "DEFAULT_MODEL", "NeighborList", "UnconstrainedPET", "load_model", "model_fingerprint",
    "model_metadata", "neighbor_list", "save_model", "trim_padding",
]
