"""An exported metatomic ``AtomisticModel`` (metatrain's PET, say) as an ``EnergyModel``.

Such a model holds metatensor objects that ``torch.jit.freeze`` cannot inspect, so
``openmmtorch.TorchForce`` (which freezes every module) cannot load it: it runs eagerly, in an
``openmm.PythonForce``. The rotated copies of one evaluation go through the model as lists of
systems (on CUDA all in one call; on CPUs in calls of about 512 atoms, which are faster) that
share one neighbour search: the neighbour lists the model requests are computed once (vesin)
and their distance vectors rotated per copy, r' = R r. Units and
dtype are the model's own (its capabilities): positions are converted from nm to its length
unit, its energy output to kJ/mol.
"""

from pathlib import Path
from typing import List, NamedTuple, Optional

import numpy as np
import torch
from torch import Tensor, nn

from ..kernel import Batching
from .base import EnergyModel

INSTALL_HINT = ("metatomic models need the packages of the 'metatomic' extra: "
                "pip install 'omm-symbreak[metatomic]'")
_NEIGHBOR_SAMPLES = ["first_atom", "second_atom", "cell_shift_a", "cell_shift_b", "cell_shift_c"]


def _metatomic():
    """The metatomic.torch module; ImportError with what to install when it is missing."""
    try:
        import metatomic.torch
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return metatomic.torch


class MetatomicPrepared(NamedTuple):
    """What ``MetatomicAdapter.prepare`` computes once per call (the model's length unit):
    ``types`` [N] (atomic numbers, int32), ``positions`` [N, 3], ``box`` [3, 3] (zeros without a
    box), ``pbc`` [3] (bool) and, per requested neighbour list, its ``samples`` [P, 5] (i, j,
    cell shift) and ``vectors`` [P, 3] r_j - r_i + S b, differentiable in the positions and the
    cell."""

    types: Tensor
    positions: Tensor
    box: Tensor
    pbc: Tensor
    samples: List[Tensor]
    vectors: List[Tensor]


class MetatomicAdapter(nn.Module):
    """An ``AtomisticModel`` in the kernel's contract (eager, not TorchScript)."""

    def __init__(self, model, length_unit: str, energy_unit: str):
        super().__init__()
        mta = _metatomic()
        from metatensor.torch import Labels

        self.model = model
        self.length_unit = length_unit
        self.requests = model.requested_neighbor_lists()
        self.options = mta.ModelEvaluationOptions(
            length_unit=length_unit,
            outputs={"energy": mta.ModelOutput(unit=energy_unit, sample_kind="system")})
        self.xyz = Labels.range("xyz", 3)
        self.distance = Labels.range("distance", 1)

    def prepare(self, types: Tensor, positions: Tensor,
                cell: Optional[Tensor]) -> MetatomicPrepared:
        """The system's arrays and, per requested neighbour list, its pairs
        (``MetatomicPrepared``)."""
        from vesin import NeighborList

        periodic = cell is not None
        device = positions.device
        box = cell if cell is not None else torch.zeros(3, 3, dtype=positions.dtype,
                                                        device=device)
        pbc = torch.full((3,), periodic, dtype=torch.bool, device=device)
        samples_per_list, vectors_per_list = [], []
        points = positions.detach().cpu().numpy().astype(np.float64)
        box_values = box.detach().cpu().numpy().astype(np.float64)
        for request in self.requests:
            search = NeighborList(cutoff=request.engine_cutoff(self.length_unit),
                                  full_list=request.full_list)
            pairs, shifts = search.compute(points, box_values, periodic, "PS")
            samples = torch.from_numpy(np.hstack([pairs, shifts]).astype(np.int32)).to(device)
            first, second = samples[:, 0].long(), samples[:, 1].long()
            vectors = (positions[second] - positions[first]
                       + samples[:, 2:].to(positions.dtype) @ box)
            samples_per_list.append(samples)
            vectors_per_list.append(vectors)
        return MetatomicPrepared(types, positions, box, pbc, samples_per_list, vectors_per_list)

    def copies(self, prepared: MetatomicPrepared, rotations: Tensor) -> Tensor:
        """Energies [c] (the model's unit) of the copies rotated by ``rotations`` [c, 3, 3], in
        one call of the model."""
        mta = _metatomic()
        from metatensor.torch import Labels, TensorBlock

        types, positions, box, pbc = prepared.types, prepared.positions, prepared.box, prepared.pbc
        rotations = rotations.to(positions.dtype)
        systems = []
        for rotation in rotations:
            system = mta.System(types=types, positions=positions @ rotation.T,
                                cell=box @ rotation.T, pbc=pbc)
            for request, samples, vectors in zip(self.requests, prepared.samples,
                                                 prepared.vectors):
                block = TensorBlock((vectors @ rotation.T).reshape(-1, 3, 1),
                                    samples=Labels(_NEIGHBOR_SAMPLES, samples),
                                    components=[self.xyz.to(positions.device)],
                                    properties=self.distance.to(positions.device))
                system.add_neighbor_list(request, block)
            systems.append(system)
        outputs = self.model(systems, self.options, check_consistency=False)
        return outputs["energy"].block().values.reshape(-1)

    def bytes_per_copy(self, prepared: MetatomicPrepared) -> Optional[int]:
        """Unknown: the memory budget never splits a grid (``MetatomicModel.batching``)."""
        return None


class MetatomicModel(EnergyModel):
    """An exported metatomic ``AtomisticModel`` with an ``energy`` output, run eagerly."""

    kind = "metatomic"
    scriptable = False
    # On CPUs, copies in calls of about 512 atoms: for a 0.18 M-parameter PET on liquid-64, a
    # Ti average took 3.1 s so (2 copies per call) and 4.5-4.9 s with all 24 in one call
    # (benchmarks/README.md, "Bring your own model"); on CUDA one call takes every copy.
    batching = Batching(cpu_batch_atoms=512)

    def __init__(self, model, path: Optional[Path] = None):
        mta = _metatomic()
        where = f"{path}: " if path is not None else ""
        self.model = model
        self.path = path
        capabilities = model.capabilities()
        if "energy" not in capabilities.outputs:
            raise ValueError(f"{where}the metatomic model has no 'energy' output (it has "
                             f"{', '.join(sorted(capabilities.outputs)) or 'none'}): an ML "
                             "potential for MD needs one")
        self.length_unit = capabilities.length_unit
        self.energy_unit = capabilities.outputs["energy"].unit
        if not self.length_unit or not self.energy_unit:
            raise ValueError(f"{where}the metatomic model does not state its length unit "
                             f"({self.length_unit!r}) or energy unit ({self.energy_unit!r})")
        self.atomic_types = [int(number) for number in capabilities.atomic_types]
        self.length_per_nm = float(mta.unit_conversion_factor("nm", self.length_unit))
        self.kj_mol_per_energy = float(mta.unit_conversion_factor(self.energy_unit, "kJ/mol"))
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[capabilities.dtype]

    def adapter(self) -> MetatomicAdapter:
        return MetatomicAdapter(self.model, self.length_unit, self.energy_unit)

    def types_of(self, atomic_numbers: List[int]) -> Tensor:
        """The atomic numbers (metatomic's types), int32; ValueError for elements the model
        was not trained for."""
        missing = sorted(set(atomic_numbers) - set(self.atomic_types))
        if missing:
            from ..structure_checks import element_names

            raise ValueError(f"the metatomic model {self.path or ''} knows the elements "
                             f"{element_names(self.atomic_types)}, not "
                             f"{element_names(missing)} of this system")
        return torch.tensor(atomic_numbers, dtype=torch.int32)

    def description(self) -> dict:
        return {"kind": self.kind, "file": str(self.path), "length_unit": self.length_unit,
                "energy_unit": self.energy_unit, "atomic_types": self.atomic_types,
                "dtype": str(self.dtype).replace("torch.", "")}


def load_metatomic_model(path) -> MetatomicModel:
    """The exported metatomic model at ``path`` (CPU)."""
    path = Path(path)
    mta = _metatomic()
    return MetatomicModel(mta.load_atomistic_model(str(path)), path)
