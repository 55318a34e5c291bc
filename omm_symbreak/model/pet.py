"""An unconstrained, PET-style transformer for atomistic energies (docs/design.md, "The model").

Nothing in this network is built to be rotationally invariant: edge tokens embed the raw
Cartesian displacement vectors. Rotational symmetry is only learned from rotated training data,
and is restored on demand by the modules of ``omm_symbreak.symmetrize``.

Units on the model side: Angstrom and eV. Shapes use ``B`` for the batch of rotated copies of
one structure, ``N`` atoms and ``K`` neighbour slots (see ``omm_symbreak.model.neighbors``).
"""

import math
from typing import List, Tuple

import torch
from torch import Tensor, nn


def smooth_cutoff(distances: Tensor, cutoff: float, width: float) -> Tensor:
    """Cosine switch: 1 below ``cutoff - width``, 0 beyond ``cutoff``, C1-continuous between.

    distances: any shape (Angstrom). Returns the same shape, dtype and device.
    """
    onset = cutoff - width
    scaled = ((distances - onset) / width).clamp(0.0, 1.0)
    return 0.5 * (1.0 + torch.cos(math.pi * scaled))


class CutoffAttentionLayer(nn.Module):
    """One pre-norm transformer layer whose attention toward each key is scaled by a weight.

    After the softmax, the weight toward key s is multiplied by ``key_weights[s]`` (1 for the
    central token, f_c(r) for an edge, 0 for padding) and every row is renormalised, so that a
    neighbour crossing the cutoff enters and leaves the sequence continuously.
    """

    def __init__(self, width: int, n_heads: int, ffn_width: int):
        super().__init__()
        if width % n_heads != 0:
            raise ValueError(f"width {width} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.head_width = width // n_heads
        self.attention_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.attention_out = nn.Linear(width, width)
        self.ffn_norm = nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Linear(width, ffn_width), nn.SiLU(), nn.Linear(ffn_width, width))

    def forward(self, tokens: Tensor, key_weights: Tensor) -> Tensor:
        """tokens [M, S, width], key_weights [M, S] in [0, 1] -> tokens [M, S, width]."""
        m, s, width = tokens.shape
        qkv = self.qkv(self.attention_norm(tokens)).view(m, s, 3, self.n_heads, self.head_width)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [M, H, S, hw]
        scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(self.head_width)
        # softmax(s + log w) = w e^s / sum(w e^s): the weighted, renormalised attention in one
        # fused softmax; absent keys (w = 0) get -inf, hence exactly zero weight
        log_weights = torch.where(key_weights > 0, torch.log(key_weights.clamp_min(1e-30)),
                                  torch.full_like(key_weights, -math.inf))
        attention = torch.softmax(scores + log_weights[:, None, None, :], dim=-1)
        mixed = torch.matmul(attention, value).transpose(1, 2).reshape(m, s, width)
        tokens = tokens + self.attention_out(mixed)
        return tokens + self.ffn(self.ffn_norm(tokens))


def _mlp(width: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, n_out))


class MessagePassingBlock(nn.Module):
    """Builds every atom's token sequence (central token + K edge tokens) and runs transformer
    layers over it. Returns the updated central and edge tokens and this block's atomic energy."""

    def __init__(self, width: int, n_layers: int, n_heads: int, ffn_width: int,
                 n_geometry: int = 4):
        super().__init__()
        self.width = width
        self.edge_geometry = nn.Linear(n_geometry, width)
        self.edge_token = _mlp(2 * width, width)
        self.layers = nn.ModuleList(
            [CutoffAttentionLayer(width, n_heads, ffn_width) for _ in range(n_layers)]
        )
        self.central_head = _mlp(width, 1)
        self.edge_head = _mlp(width, 1)

    def forward(self, central: Tensor, messages: Tensor, geometry: Tensor, edge_weights: Tensor):
        """central [M, w], messages [M, K, w], geometry [M, K, 4], edge_weights [M, K].

        Returns (central [M, w], edges [M, K, w], atomic_energy [M]).
        """
        # edge_token[0] acts on cat(edge_geometry(geometry), messages): applied as one map of
        # the geometry (the two linear maps multiplied out) plus one of the messages, which
        # skips a [M, K, width] matmul and the concatenation
        first = self.edge_token[0]
        on_geometry, on_messages = first.weight.split(self.width, dim=1)
        hidden = torch.nn.functional.linear(
            geometry, torch.mm(on_geometry, self.edge_geometry.weight),
            torch.mv(on_geometry, self.edge_geometry.bias) + first.bias)
        hidden = hidden + torch.matmul(messages, on_messages.t())
        edges = self.edge_token[2](self.edge_token[1](hidden))
        tokens = torch.cat([central.unsqueeze(1), edges], dim=1)
        key_weights = torch.cat([torch.ones_like(edge_weights[:, :1]), edge_weights], dim=1)
        for layer in self.layers:
            tokens = layer(tokens, key_weights)
        central, edges = tokens[:, 0], tokens[:, 1:]
        energy = self.central_head(central).squeeze(-1)
        energy = energy + (self.edge_head(edges).squeeze(-1) * edge_weights).sum(dim=1)
        return central, edges, energy


class UnconstrainedPET(nn.Module):
    """Point-Edge-Transformer-style energy model on raw Cartesian displacements.

    Hyperparameters (all stored in ``self.hyperparameters`` for checkpoints):
      atomic_numbers: elements the model knows, e.g. [1, 8]
      cutoff, cutoff_width: radial cutoff and width of its smooth switch (Angstrom)
      max_neighbors: K, the padded neighbour slots per atom
      width, n_blocks, n_layers, n_heads, ffn_width: network sizes
      n_radial: Gaussians of |r| (centres from 0.5 Angstrom to the cutoff) appended to the
        (x, y, z, |r|) edge input. They describe the length only, so the model stays
        unconstrained; without them the stiff O-H stretch (curvature ~50 eV/A^2) must come
        from a linear map of |r| / r_cut and training stalls at zero forces (measured: force
        loss flat at 1.0 for 60 steps; with 16 Gaussians it falls from the start).
      long_range: also predict a charge per atom (e, from its last central token, shifted so
        that every structure is neutral), whose electrostatic energy (``electrostatics``: the
        Ewald sum with real-space cutoff ``ewald_cutoff`` Angstrom and relative tolerance
        ``ewald_tolerance``, or the direct sum without a cell) the adapter adds to the
        short-range energy (``kernel.PETAdapter``).

    The per-species energy baseline (eV) and the energy scale (eV) are buffers set by training.
    """

    __jit_ignored_attributes__ = ["hyperparameters"]

    def __init__(
        self,
        atomic_numbers: List[int],
        cutoff: float = 3.5,
        cutoff_width: float = 0.5,
        max_neighbors: int = 40,
        width: int = 64,
        n_blocks: int = 2,
        n_layers: int = 1,
        n_heads: int = 4,
        ffn_width: int = 128,
        n_radial: int = 16,
        long_range: bool = False,
        ewald_cutoff: float = 8.0,
        ewald_tolerance: float = 1e-6,
    ):
        super().__init__()
        if n_blocks < 2:
            raise ValueError("n_blocks must be at least 2 (receptive field of two cutoffs)")
        if not 0.0 < cutoff_width < cutoff:
            raise ValueError(f"need 0 < cutoff_width < cutoff, got {cutoff_width}, {cutoff}")
        self.hyperparameters = dict(
            atomic_numbers=[int(z) for z in atomic_numbers], cutoff=float(cutoff),
            cutoff_width=float(cutoff_width), max_neighbors=int(max_neighbors), width=width,
            n_blocks=n_blocks, n_layers=n_layers, n_heads=n_heads, ffn_width=ffn_width,
            n_radial=n_radial,
        )
        if long_range:  # recorded only when used: older model files stay as they were
            self.hyperparameters.update(long_range=True, ewald_cutoff=float(ewald_cutoff),
                                        ewald_tolerance=float(ewald_tolerance))
        self.long_range = bool(long_range)
        self.ewald_cutoff = float(ewald_cutoff)
        self.ewald_tolerance = float(ewald_tolerance)
        self.cutoff = float(cutoff)
        self.cutoff_width = float(cutoff_width)
        self.max_neighbors = int(max_neighbors)
        self.register_buffer("atomic_numbers", torch.tensor(atomic_numbers, dtype=torch.long))
        self.register_buffer("energy_baseline", torch.zeros(len(atomic_numbers)))
        self.register_buffer("energy_scale", torch.ones(()))
        self.species_embedding = nn.Embedding(len(atomic_numbers), width)
        self.n_radial = n_radial
        self.cpu_chunk_sequences = 256  # a cost setting (see forward), not a hyperparameter
        self.register_buffer("radial_centers", torch.linspace(0.5, cutoff, max(n_radial, 1)))
        self.blocks = nn.ModuleList(
            [MessagePassingBlock(width, n_layers, n_heads, ffn_width, 4 + n_radial)
             for _ in range(n_blocks)]
        )
        self.charge_head = _mlp(width, 1) if long_range else nn.Identity()

    def with_long_range(self, ewald_cutoff: float = 8.0,
                        ewald_tolerance: float = 1e-6) -> "UnconstrainedPET":
        """A long-range copy of this short-range model: every weight and buffer copied (the
        short-range energies stay the same), plus a new charge head in its initial state
        (torch's default initialisation: charges of a few hundredths of e, not zero, since
        the Coulomb energy is quadratic in the charges and has no gradient at zero charges).
        ValueError if the model is long-range already."""
        if self.long_range:
            raise ValueError("the model has a long-range head already")
        extended = UnconstrainedPET(**self.hyperparameters, long_range=True,
                                    ewald_cutoff=ewald_cutoff, ewald_tolerance=ewald_tolerance)
        extended.to(dtype=self.energy_scale.dtype, device=self.energy_scale.device)
        missing, unexpected = extended.load_state_dict(self.state_dict(), strict=False)
        if unexpected or any(not name.startswith("charge_head.") for name in missing):
            raise RuntimeError(f"weights that do not fit: missing {missing}, extra {unexpected}")
        return extended.train(self.training)

    def species_of(self, atomic_numbers: List[int]) -> Tensor:
        """Map atomic numbers to the model's species indices [N]; ValueError for unknown ones."""
        known = self.atomic_numbers.tolist()
        unknown = sorted(set(atomic_numbers) - set(known))
        if unknown:
            from ..structure_checks import element_names

            raise ValueError(f"the model knows the elements {element_names(known)}, not "
                             f"{element_names(unknown)}")
        return torch.tensor([known.index(z) for z in atomic_numbers], dtype=torch.long,
                            device=self.atomic_numbers.device)

    def forward(self, species: Tensor, vectors: Tensor, index: Tensor, reverse: Tensor,
                mask: Tensor) -> Tensor:
        """Atomic energies (eV) of a batch of rotated copies of one structure, short-range part.

        species [N] species indices; vectors [B, N, K, 3] displacements (Angstrom), padded slots
        zero; index, reverse [N, K] neighbour atom and reverse-edge slot; mask [N, K] bool.
        Returns [B, N].
        """
        return self.energies_and_charges(species, vectors, index, reverse, mask)[0]

    def energies_and_charges(self, species: Tensor, vectors: Tensor, index: Tensor,
                             reverse: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """(atomic energies [B, N] eV, charges [B, N] e) of a batch of rotated copies (inputs
        as ``forward``); the charges sum to zero per copy, and are zero without
        ``long_range``."""
        b, n, k, _ = vectors.shape
        width = self.species_embedding.embedding_dim
        distances = torch.sqrt((vectors * vectors).sum(-1) + 1e-12)
        edge_weights = smooth_cutoff(distances, self.cutoff, self.cutoff_width) * mask
        geometry = torch.cat([vectors, distances.unsqueeze(-1)], dim=-1) / self.cutoff
        if self.n_radial > 0:
            spacing = (self.cutoff - 0.5) / max(self.n_radial - 1, 1)
            radial = torch.exp(-((distances.unsqueeze(-1) - self.radial_centers) / spacing) ** 2)
            geometry = torch.cat([geometry, radial], dim=-1)
        geometry = geometry.reshape(b * n, k, geometry.shape[-1])
        edge_weights = edge_weights.reshape(b * n, k)

        embedded = self.species_embedding(species)
        central = embedded.expand(b, n, width).reshape(b * n, width)
        messages = embedded[index].expand(b, n, k, width).reshape(b * n, k, width)
        reverse_slot = (index * k + reverse).reshape(-1)
        energy = torch.zeros(b * n, dtype=vectors.dtype, device=vectors.device)
        # On CPUs the atoms' sequences go through each block in chunks of about
        # cpu_chunk_sequences: every sequence is independent inside a block, and chunks keep
        # the activations in cache (the whole batch at once made 1536 atoms cost 12 times 192)
        chunk = b * n if vectors.is_cuda else self.cpu_chunk_sequences
        for block in self.blocks:
            parts = [block(central[start:start + chunk], messages[start:start + chunk],
                           geometry[start:start + chunk], edge_weights[start:start + chunk])
                     for start in range(0, b * n, chunk)]
            central = torch.cat([part[0] for part in parts])
            edges = torch.cat([part[1] for part in parts])
            energy = energy + torch.cat([part[2] for part in parts])
            from_reverse = edges.reshape(b, n * k, width)[:, reverse_slot]
            messages = 0.5 * (messages + from_reverse.reshape(b * n, k, width))
        energy = energy.reshape(b, n) * self.energy_scale
        charges = torch.zeros_like(energy)
        if self.long_range:
            charges = self.charge_head(central).reshape(b, n)
            # twice: in float32 the first pass leaves N x eps x |mean of the raw outputs|, which
            # a raw offset of a few e makes 1e-5 e on 192 atoms; the second leaves N x eps x |q|
            charges = charges - charges.mean(dim=1, keepdim=True)
            charges = charges - charges.mean(dim=1, keepdim=True)
        return energy + self.energy_baseline[species], charges
