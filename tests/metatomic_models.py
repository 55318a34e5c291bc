"""Small metatomic models for the tests, built without network access.

Not a test file: tests import it as ``from metatomic_models import ...`` (tests/ is on
sys.path). Every writer saves an exported ``metatomic.torch.AtomisticModel`` to ``path``
and returns it as a ``pathlib.Path``:

- :func:`write_handwritten_model`: a smooth pair potential for H and O plus a term
  proportional to ``anisotropy`` that breaks rotations and inversion on purpose; the
  plain numpy :func:`handwritten_energy_ev` computes the same energy independently;
- :func:`write_tiny_pet`: metatrain's PET trained for two epochs on a few liquid frames;
- :func:`write_model_without_energy`, :func:`write_model_without_hydrogen`: bad inputs.

Units: lengths in Angstrom, energies in eV, for the functions and the exported models.
"""

import itertools
import json
import math
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

import numpy as np
import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)

LIQUID_FRAMES = (pathlib.Path(__file__).resolve().parents[1]
                 / "analysis" / "data" / "train-liquid.extxyz")

# The hand-written energy, a sum over pairs i < j (all periodic images) at distance r:
#   fc(r) [D (e^{-2a(r-r0)} - 2 e^{-a(r-r0)}) + anisotropy ((d_z/r)^2 - 1/3 + s d_x d_y d_z/r^3)]
# with fc(r) = (1 + cos(pi r / CUTOFF)) / 2 below CUTOFF and 0 beyond, d = r_j - r_i and
# s = sign(Z_j - Z_i): the odd term always sees the vector from H to O (0 for H-H, O-O),
# so it does not depend on the order of a pair but changes sign under inversion. Both
# anisotropic terms average to zero over orientations (l = 2 and l = 3 harmonics).
CUTOFF = 3.0  # Angstrom
MORSE_A = 2.0  # 1/Angstrom
MORSE_D = {(1, 1): 0.02, (1, 8): 0.3, (8, 8): 0.05}  # eV, well depth per (Z_i, Z_j)
MORSE_R0 = {(1, 1): 1.6, (1, 8): 1.0, (8, 8): 2.8}  # Angstrom, minimum per (Z_i, Z_j)


def _pair_table(table: Dict) -> torch.Tensor:
    """A [9, 9] float64 lookup, indexed by the atomic numbers of a pair (H 1, O 8)."""
    values = torch.zeros(9, 9, dtype=torch.float64)
    for (z_i, z_j), value in table.items():
        values[z_i, z_j] = values[z_j, z_i] = value
    return values


def _range_labels(name: str, count: int, device: torch.device) -> Labels:
    """``Labels.range(name, count)`` on ``device``; the static constructors of Labels
    (range, single) script but then fail to save (torch 2.9, metatensor-torch 0.10)."""
    values = torch.arange(count, dtype=torch.int32, device=device).reshape(-1, 1)
    return Labels([name], values)


class HandwrittenPairModel(torch.nn.Module):
    """The hand-written energy as a metatomic ``ModelInterface`` module.

    Reads positions only through the half neighbour list it requests, so forces and
    stress come from the engine's gradients with respect to the pair vectors.
    """

    def __init__(self, anisotropy: float):
        super().__init__()
        self.anisotropy = float(anisotropy)
        self.cutoff = CUTOFF
        self.morse_a = MORSE_A
        self.neighbors = NeighborListOptions(cutoff=CUTOFF, full_list=False, strict=True)
        self.register_buffer("depth", _pair_table(MORSE_D))
        self.register_buffer("r0", _pair_table(MORSE_R0))

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.neighbors]

    def atom_energies(self, system: System) -> torch.Tensor:
        """Energy of each atom (half of each of its pairs), shape [n_atoms], eV."""
        pairs = system.get_neighbor_list(self.neighbors)
        first = pairs.samples.column("first_atom").to(torch.long)
        second = pairs.samples.column("second_atom").to(torch.long)
        vectors = pairs.values.reshape(-1, 3)  # [P, 3] Angstrom, from first to second
        z_i = system.types[first].to(torch.long)
        z_j = system.types[second].to(torch.long)
        depth = self.depth.to(vectors.dtype)[z_i, z_j]
        r0 = self.r0.to(vectors.dtype)[z_i, z_j]
        sign = torch.sign(z_j - z_i).to(vectors.dtype)

        r = torch.linalg.vector_norm(vectors, dim=1)
        decay = torch.exp(-self.morse_a * (r - r0))
        morse = depth * (decay * decay - 2.0 * decay)
        x, y, z = vectors[:, 0], vectors[:, 1], vectors[:, 2]
        anisotropic = self.anisotropy * ((z / r) ** 2 - 1.0 / 3.0 + sign * x * y * z / r**3)
        cutoff = 0.5 * (1.0 + torch.cos(math.pi * r / self.cutoff)) * (r < self.cutoff).to(r.dtype)
        pair_energy = cutoff * (morse + anisotropic)

        energies = torch.zeros(len(system), dtype=vectors.dtype, device=vectors.device)
        energies = energies.index_add(0, first, pair_energy, alpha=0.5)
        return energies.index_add(0, second, pair_energy, alpha=0.5)

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        if "energy" not in outputs:
            return {}
        device = systems[0].positions.device
        per_atom = outputs["energy"].sample_kind == "atom"
        values: List[torch.Tensor] = []
        samples: List[torch.Tensor] = []
        for index, system in enumerate(systems):
            energies = self.atom_energies(system)
            atoms = torch.arange(len(system), device=device)
            if selected_atoms is not None:
                mine = selected_atoms.column("system") == index
                atoms = selected_atoms.column("atom")[mine].to(torch.long)
                energies = energies[atoms]
            if per_atom:
                values.append(energies)
                samples.append(torch.stack([torch.full_like(atoms, index), atoms], dim=1))
            else:
                values.append(energies.sum().reshape(1))
        if per_atom:
            sample_labels = Labels(["system", "atom"], torch.cat(samples).to(torch.int32))
        else:
            sample_labels = _range_labels("system", len(systems), device)
        block = TensorBlock(
            values=torch.cat(values).reshape(-1, 1),
            samples=sample_labels,
            components=[],
            properties=_range_labels("energy", 1, device),
        )
        return {"energy": TensorMap(_range_labels("_", 1, device), [block])}


class _FeaturesModel(torch.nn.Module):
    """A model with a single per-system output "feature" (the atom count), no energy."""

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels],
    ) -> Dict[str, TensorMap]:
        if "feature" not in outputs:
            return {}
        device = systems[0].positions.device
        counts = [float(len(system)) for system in systems]
        block = TensorBlock(
            values=torch.tensor(counts, dtype=systems[0].positions.dtype,
                                device=device).reshape(-1, 1),
            samples=_range_labels("system", len(systems), device),
            components=[],
            properties=_range_labels("feature", 1, device),
        )
        return {"feature": TensorMap(_range_labels("_", 1, device), [block])}


def _save(module: torch.nn.Module, path, outputs: Dict[str, ModelOutput],
          atomic_types: List[int], name: str) -> pathlib.Path:
    """Exports ``module`` (float64, Angstrom, interaction range CUTOFF) to ``path``."""
    capabilities = ModelCapabilities(
        outputs=outputs,
        atomic_types=atomic_types,
        interaction_range=CUTOFF,
        length_unit="angstrom",
        supported_devices=["cpu", "cuda"],
        dtype="float64",
    )
    metadata = ModelMetadata(name=name, description="test model of omm_symbreak")
    path = pathlib.Path(path)
    AtomisticModel(module.eval(), metadata, capabilities).save(str(path))
    return path


def _energy_output() -> Dict[str, ModelOutput]:
    """The "energy" output in eV; declared per atom, so per-system requests work too."""
    return {"energy": ModelOutput(unit="eV", sample_kind="atom")}


def write_handwritten_model(path, anisotropy: float = 0.05) -> pathlib.Path:
    """Saves the hand-written pair potential for H and O (see :func:`handwritten_energy_ev`).

    ``anisotropy`` (eV) scales the symmetry-breaking term; 0 makes the model invariant
    under rotations and inversion. It requests one half, strict neighbour list of cutoff
    3.0 Angstrom, computes in float64 and handles batches and ``selected_atoms``.
    """
    return _save(HandwrittenPairModel(anisotropy), path, _energy_output(), [1, 8],
                 "hand-written anisotropic pair potential")


def write_model_without_hydrogen(path, anisotropy: float = 0.05) -> pathlib.Path:
    """Saves the hand-written model, declared for O (8) only: it refuses systems with H."""
    return _save(HandwrittenPairModel(anisotropy), path, _energy_output(), [8],
                 "hand-written pair potential without hydrogen")


def write_model_without_energy(path) -> pathlib.Path:
    """Saves a model for H and O whose only output is "feature" (no "energy")."""
    outputs = {"feature": ModelOutput(sample_kind="system")}
    return _save(_FeaturesModel(), path, outputs, [1, 8], "model without energy")


def handwritten_energy_ev(positions_angstrom, cell_angstrom_or_None, types,
                          anisotropy: float = 0.05) -> float:
    """The hand-written model's energy (eV), in plain numpy, from its own pair search.

    ``positions_angstrom``: [n, 3]; ``cell_angstrom_or_None``: [3, 3] with the cell
    vectors as rows (periodic along all three, any shape) or None (no periodicity);
    ``types``: [n] atomic numbers (1 or 8). Sums over every ordered pair (i, j, image)
    with 0 < r < CUTOFF and halves the total, so no pair convention is involved.
    """
    positions = np.asarray(positions_angstrom, dtype=np.float64)
    types = np.asarray(types, dtype=int)
    if cell_angstrom_or_None is None:
        cell = np.zeros((3, 3))
        shifts = [(0, 0, 0)]
    else:
        cell = np.asarray(cell_angstrom_or_None, dtype=np.float64)
        fractional = positions @ np.linalg.inv(cell)
        positions = (fractional - np.floor(fractional)) @ cell  # wrapped into the cell
        # images needed per cell vector: cutoff over the spacing of its lattice planes
        spacing = abs(np.linalg.det(cell)) / np.linalg.norm(
            np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
        reach = [range(-n, n + 1) for n in np.ceil(CUTOFF / spacing).astype(int) + 1]
        shifts = list(itertools.product(*reach))

    depth = np.vectorize(lambda a, b: MORSE_D[min(a, b), max(a, b)])(types[:, None], types)
    r0 = np.vectorize(lambda a, b: MORSE_R0[min(a, b), max(a, b)])(types[:, None], types)
    sign = np.sign(types[None, :] - types[:, None])
    total = 0.0
    for shift in shifts:
        d = positions[None, :, :] - positions[:, None, :] + np.asarray(shift) @ cell  # [n, n, 3]
        r = np.linalg.norm(d, axis=2)
        keep = (r > 0) & (r < CUTOFF)
        d, r = d[keep], r[keep]
        morse = depth[keep] * (np.exp(-2 * MORSE_A * (r - r0[keep]))
                               - 2 * np.exp(-MORSE_A * (r - r0[keep])))
        odd = sign[keep] * d[:, 0] * d[:, 1] * d[:, 2] / r**3
        anisotropic = anisotropy * ((d[:, 2] / r) ** 2 - 1 / 3 + odd)
        total += np.sum(0.5 * (1 + np.cos(np.pi * r / CUTOFF)) * (morse + anisotropic))
    return 0.5 * float(total)


def _extxyz_frames(path: pathlib.Path, start: int, stop: int) -> str:
    """The text of frames ``start`` to ``stop - 1`` of the extended XYZ file ``path``."""
    lines = path.read_text().splitlines(keepends=True)
    frames, line = [], 0
    while line < len(lines) and len(frames) < stop:
        end = line + int(lines[line]) + 2
        frames.append("".join(lines[line:end]))
        line = end
    return "".join(frames[start:stop])


def write_tiny_pet(path, frames: int = 12, seed: int = 0) -> pathlib.Path:
    """Trains metatrain's PET briefly and saves the exported model (float64) to ``path``.

    Runs ``python -m metatrain train`` (the ``mtt train`` command) in a temporary
    directory on the first ``frames`` frames of analysis/data/train-liquid.extxyz (liquid
    water, 192 atoms, periodic), energies only, validated on the next two frames: cutoff
    3.5 Angstrom, widths of 8 to 16, one attention and one message-passing layer, two
    epochs, no final evaluation. Takes 20-24 s of wall time on a loaded core, about half
    of it importing metatrain. PET is not rotationally invariant: for the first liquid
    frame (E about -32 eV) ten random rotations spread the energy by 3e-4 eV (standard
    deviation; 8e-4 eV at most), an inversion changes it by 2e-4 eV; for one molecule
    by 1e-5 eV. Forces and stress come from autograd; the model declares per-atom
    "energy" and a full, non-strict neighbour list of 3.5 Angstrom.
    """
    hypers = {"cutoff": 3.5, "cutoff_width": 0.5, "d_pet": 8, "d_head": 8, "d_node": 8,
              "d_feedforward": 16, "num_heads": 2, "num_attention_layers": 1,
              "num_gnn_layers": 1}
    training = {"batch_size": 4, "num_epochs": 2, "num_workers": 0,
                "checkpoint_interval": 100, "log_interval": 1}

    def dataset(file: str) -> Dict:
        return {"systems": {"read_from": file, "length_unit": "angstrom"},
                "targets": {"energy": {"key": "energy", "unit": "eV", "forces": False}}}

    options = {"seed": seed, "base_precision": 64,
               "architecture": {"name": "pet", "model": hypers, "training": training},
               "training_set": dataset("train.extxyz"),
               "validation_set": dataset("valid.extxyz"),
               "test_set": 0.0, "final_eval": False}
    with tempfile.TemporaryDirectory() as directory:
        work = pathlib.Path(directory)
        (work / "train.extxyz").write_text(_extxyz_frames(LIQUID_FRAMES, 0, frames))
        (work / "valid.extxyz").write_text(_extxyz_frames(LIQUID_FRAMES, frames, frames + 2))
        (work / "options.yaml").write_text(json.dumps(options))  # JSON is valid YAML
        run = subprocess.run(
            [sys.executable, "-m", "metatrain", "train", "options.yaml", "-o", "model.pt"],
            cwd=work, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"mtt train failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
        path = pathlib.Path(path)
        shutil.copyfile(work / "model.pt", path)
    return path
