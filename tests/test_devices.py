"""The torch device of the routes that run in Python (omm_symbreak.devices): the ``device``
keyword of create_system / create_forces / MLPotential('symbreak', ...), its default (CUDA when
torch has it, else the CPU), the refusal of a device torch lacks, and the Delta diagnostic of
simulate on the simulation's device. The ``meta`` device (no data, available everywhere) shows
where modules and tensors are placed without a GPU; the CUDA tests run on a GPU machine."""

import numpy as np
import openmm
import pytest
import torch
from openmm import unit
from openmmml import mlpotential

from ase_models import PolynomialCalculator
from omm_symbreak import devices, potential
from omm_symbreak.devices import checked_device, default_device, module_device
from omm_symbreak.export import openmm_module
from omm_symbreak.grids import parse_grid
from omm_symbreak.model_kinds import load_energy_model
from omm_symbreak.potential import create_forces, create_system
from omm_symbreak.simulate import _delta_kj_mol, device_of_platform
from omm_symbreak.systems import load_structure
from omm_symbreak.units import as_nm_array

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _structure(name):
    """(topology, positions [N, 3] nm, box [3, 3] nm or None) of a template."""
    topology, positions = load_structure(name)
    box = topology.getPeriodicBoxVectors()
    return topology, as_nm_array(positions), None if box is None else as_nm_array(box)


def _context_energy_and_forces(system, positions_nm):
    """Energy (kJ/mol) and forces [N, 3] (kJ/mol/nm) in a Reference-platform Context."""
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions_nm)
    state = context.getState(getEnergy=True, getForces=True)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


def _python_energy_and_forces(module, positions_nm, box_nm):
    """The module's energy (kJ/mol) and forces (kJ/mol/nm) evaluated in Python on the CPU."""
    positions = torch.tensor(positions_nm, requires_grad=True)
    energy = module(positions, None if box_nm is None else torch.tensor(box_nm))
    (gradient,) = torch.autograd.grad(energy, positions)
    return float(energy.detach()), -gradient.numpy()


def _tensors(module):
    return list(module.buffers()) + list(module.parameters())


def test_the_default_is_cuda_when_torch_has_it_else_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == "cpu"
    assert checked_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == "cuda"


def test_a_device_torch_lacks_is_refused_before_the_model_is_loaded(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    topology, _, _ = _structure("water-monomer")
    missing = tmp_path / "no-such-model.ckpt"  # loading it would raise FileNotFoundError
    with pytest.raises(ValueError, match="no CUDA"):
        create_system(topology, str(missing), device="cuda")
    with pytest.raises(ValueError, match="no CUDA"):
        create_forces(topology, str(missing), device="cuda:0")
    with pytest.raises(ValueError, match="no CUDA"):
        mlpotential.MLPotential("symbreak", model=str(missing), device="cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        create_system(topology, str(missing), device="gpu")


def test_a_cuda_index_beyond_the_devices_present_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"1 CUDA device\(s\), cuda:0 to cuda:0"):
        checked_device("cuda:3")


@pytest.mark.parametrize("strategy, spec", [("none", None), ("mts", "T")])
def test_the_python_forces_module_goes_to_the_device_asked(monkeypatch, strategy, spec):
    """Every PythonForce's module and the tensors of its callback are on the device asked
    (``meta``: nothing is computed there)."""
    made = []

    class Recorded(potential.EagerEnergy):
        def __init__(self, module, periodic):
            super().__init__(module, periodic)
            made.append(self)

    monkeypatch.setattr(potential, "EagerEnergy", Recorded)
    topology, _, _ = _structure("water-monomer")
    grid = None if spec is None else parse_grid(spec)
    forces = create_forces(topology, PolynomialCalculator(), strategy, grid, device="meta")
    assert all(isinstance(force, openmm.PythonForce) for force in forces)
    assert len(made) == len(forces)
    for energy in made:
        assert energy.device == torch.device("meta")
        assert all(tensor.device.type == "meta" for tensor in _tensors(energy.module))


def test_device_cpu_gives_the_energies_and_forces_of_the_python_evaluation():
    topology, positions, box = _structure("liquid-64")
    calculator, grid = PolynomialCalculator(), parse_grid("T")
    module = openmm_module(topology, calculator, "full", grid)
    expected_energy, expected_forces = _python_energy_and_forces(module, positions, box)
    energy, forces = _context_energy_and_forces(
        create_system(topology, calculator, "full", grid, positions, device="cpu"), positions)
    assert energy == pytest.approx(expected_energy, rel=1e-12)
    np.testing.assert_allclose(forces, expected_forces, rtol=1e-10, atol=1e-10)


def test_a_metatomic_models_module_goes_to_the_device_asked(tmp_path):
    pytest.importorskip("metatomic.torch")
    from metatomic_models import write_handwritten_model

    path = write_handwritten_model(tmp_path / "handwritten.pt")
    topology, _, _ = _structure("water-monomer")
    module = openmm_module(topology, load_energy_model(path), "full", parse_grid("T"),
                           device="meta")
    assert module_device(module) == torch.device("meta")
    assert all(tensor.device.type == "meta" for tensor in _tensors(module))


def test_the_simulations_device_follows_its_platform(monkeypatch):
    assert device_of_platform("CPU") == torch.device("cpu")
    assert device_of_platform("Reference") == torch.device("cpu")
    assert device_of_platform("OpenCL") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA"):
        device_of_platform("CUDA")


class _Diagnostic(torch.nn.Module):
    """A stand-in for the correction module: records the device of the positions it gets."""

    def __init__(self, device):
        super().__init__()
        self.register_buffer("types", torch.zeros(3, device=device))
        self.seen = []

    def forward(self, positions, box):
        self.seen.append((positions.device, None if box is None else box.device))
        return torch.tensor(1.5)


class _State:
    """The two State methods ``_delta_kj_mol`` calls."""

    def getPositions(self, asNumpy):
        return unit.Quantity(np.zeros((3, 3)), unit.nanometer)

    def getPeriodicBoxVectors(self, asNumpy):
        return unit.Quantity(np.eye(3), unit.nanometer)


def test_delta_is_computed_on_the_diagnostics_device():
    diagnostic = _Diagnostic("meta")
    assert _delta_kj_mol(diagnostic, _State(), periodic=True) == -1.5
    assert diagnostic.seen == [(torch.device("meta"), torch.device("meta"))]


@needs_cuda
@pytest.mark.parametrize("strategy, spec", [("none", None), ("full", "T"), ("mts", "T")])
def test_cuda_gives_the_cpu_energies_and_forces(strategy, spec):
    topology, positions, _ = _structure("liquid-64")
    calculator = PolynomialCalculator()
    grid = None if spec is None else parse_grid(spec)
    on = {device: _context_energy_and_forces(
        create_system(topology, calculator, strategy, grid, positions, device=device), positions)
        for device in ("cpu", "cuda")}
    assert on["cuda"][0] == pytest.approx(on["cpu"][0], rel=1e-12)
    np.testing.assert_allclose(on["cuda"][1], on["cpu"][1], rtol=1e-10, atol=1e-10)


@needs_cuda
def test_a_metatomic_model_on_cuda_gives_its_cpu_energy(tmp_path):
    pytest.importorskip("metatomic.torch")
    from metatomic_models import write_handwritten_model

    path = write_handwritten_model(tmp_path / "handwritten.pt")
    topology, positions, _ = _structure("water-monomer")
    energies = {}
    for device in ("cpu", "cuda"):
        system = create_system(topology, str(path), "full", parse_grid("T"), positions,
                               device=device)
        energies[device] = _context_energy_and_forces(system, positions)
    assert energies["cuda"][0] == pytest.approx(energies["cpu"][0], rel=1e-10)
    np.testing.assert_allclose(energies["cuda"][1], energies["cpu"][1], rtol=1e-8, atol=1e-8)


@needs_cuda
def test_the_default_device_with_cuda_is_cuda():
    assert checked_device(None) == torch.device("cuda")
    assert devices.default_device() == "cuda"
