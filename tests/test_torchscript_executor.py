"""omm-symbreak leaves TorchScript's executor as torch sets it, and its modules give the right
forces under torch's default (profiling) executor, in processes that set no flag: after an
energy call in grad mode on positions that need no gradient, and after another module of the
same class (the scenario that once gave wrong forces: docs/design.md, "Runtime workarounds").

Each scenario runs in a subprocess, so that no setting or compiled graph of this process (or of
another test) takes part. The expected forces are those of the same model evaluated without
TorchScript (the eager module, autograd)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_model, water_positions_angstrom, water_topology
from omm_symbreak.export import OpenMMEnergy, export, topology_atomic_numbers
from omm_symbreak.grids import parse_grid
from omm_symbreak.model import save_model
from omm_symbreak.model_kinds import as_energy_model
from omm_symbreak.symmetrize import strategy_energy
from omm_symbreak.units import angstrom_to_nm

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

# the settings of torch's TorchScript executor a process has, read without changing them
READ_SETTINGS = """
import json
import torch


def executor_settings():
    profiling = torch._C._jit_set_profiling_executor(True)
    torch._C._jit_set_profiling_executor(profiling)
    mode = torch._C._jit_set_profiling_mode(True)
    torch._C._jit_set_profiling_mode(mode)
    return {"profiling_executor": profiling, "profiling_mode": mode,
            "optimize": torch._C._get_graph_executor_optimize(),
            "profiled_runs": torch._C._jit_get_num_profiled_runs(),
            "texpr_fuser": torch._C._jit_texpr_fuser_enabled(),
            "fuse_on_cpu": torch._C._jit_can_fuse_on_cpu(),
            "fuse_on_gpu": torch._C._jit_can_fuse_on_gpu(),
            "inline_everything": torch._C._jit_get_inline_everything_mode(),
            "fusion_group_inlining": torch._C._debug_get_fusion_group_inlining()}
"""

# a module's forces through openmmtorch.TorchForce (Reference platform) and, as an
# openmm.PythonForce computes them, by autograd; save_forces writes both, [2, N, 3] kJ/mol/nm
FORCES = """
import numpy as np
import openmm
import openmm.unit as unit
import openmmtorch


def torchforce_forces(module, positions):
    system = openmm.System()
    for _ in positions:
        system.addParticle(1.0)
    system.addForce(openmmtorch.TorchForce(module))
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    state = context.getState(getForces=True)
    return state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)


def autograd_forces(module, positions):
    x = torch.tensor(positions, requires_grad=True)
    (gradient,) = torch.autograd.grad(module(x, None), x)
    return -gradient.numpy()


def save_forces(module, positions, path):
    np.save(path, np.stack([torchforce_forces(module, positions),
                            autograd_forces(module, positions)]))
"""

# a plain OpenMM script (no omm_symbreak, no flag): a second module of the class first, then
# the exported one, each asked for an energy in grad mode before its forces
PLAIN_SCRIPT = READ_SETTINGS + FORCES + """
import sys

other, exported, positions_file, output = sys.argv[1:]
assert executor_settings()["profiling_executor"]  # torch's default: no flag set
positions = np.load(positions_file)
torch.jit.load(other)(torch.tensor(positions[:3]), None)
module = torch.jit.load(exported)
module(torch.tensor(positions), None)
save_forces(module, positions, output)
"""

# the old scenario, in a process that imports omm_symbreak and sets no flag: a module of the
# built-in model scripted and evaluated for its energy in grad mode (as export's check of the
# positions once did), then another module of the same class scripted and run
SCRIPTED_SCRIPT = READ_SETTINGS + FORCES + """
import sys

from conftest import water_topology
from omm_symbreak.export import openmm_module
from omm_symbreak.grids import parse_grid
from omm_symbreak.model import load_model

model_file, positions_file, output = sys.argv[1:]
model = load_model(model_file)
positions = np.load(positions_file)
openmm_module(water_topology(1), model)(torch.tensor(positions[:3]), None)
module = openmm_module(water_topology(len(positions) // 3), model, "full", parse_grid("2i"))
assert executor_settings()["profiling_executor"]  # omm_symbreak set no flag
save_forces(module, positions, output)
"""


def _run(script: str, *arguments, cwd: Path) -> str:
    """Run ``script`` in a fresh Python process with the package and tests importable; its
    standard output."""
    path = os.pathsep.join([str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", script, *map(str, arguments)], cwd=cwd,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    return result.stdout


def _cluster():
    """8 water molecules: (topology, positions [24, 3] nm)."""
    return water_topology(8), angstrom_to_nm(water_positions_angstrom(2, 3.0, seed=2))


def _eager_forces(model, topology, positions_nm) -> np.ndarray:
    """Forces [N, 3] (kJ/mol/nm) of the ``full`` 2i module of ``topology`` (not periodic)
    without TorchScript."""
    energy_model = as_energy_model(model)
    module = OpenMMEnergy(strategy_energy(energy_model, "full", parse_grid("2i")),
                          energy_model.types_of(topology_atomic_numbers(topology)), False,
                          energy_model.dtype, energy_model.length_per_nm,
                          energy_model.kj_mol_per_energy)
    x = torch.tensor(positions_nm, requires_grad=True)
    (gradient,) = torch.autograd.grad(module(x, None), x)
    return -gradient.numpy()


def _assert_forces(path: Path, expected: np.ndarray) -> None:
    """The TorchForce and the autograd forces of ``path`` both equal ``expected`` to float32
    precision (the wrong forces of the old scenario were off by 0.35 % of the largest)."""
    torchforce, autograd = np.load(path)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(torchforce, expected, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(autograd, expected, rtol=0, atol=1e-5 * scale)


def test_an_exported_file_gives_the_right_forces_in_a_plain_script(tmp_path):
    topology, positions = _cluster()
    model = tiny_model(dtype=torch.float32)  # as model files hold it
    export(water_topology(1), model, tmp_path / "monomer.pt")
    export(topology, model, tmp_path / "cluster-2i.pt", "full", parse_grid("2i"))
    np.save(tmp_path / "positions.npy", positions)
    _run(PLAIN_SCRIPT, tmp_path / "monomer.pt", tmp_path / "cluster-2i.pt",
         tmp_path / "positions.npy", tmp_path / "forces.npy", cwd=tmp_path)
    _assert_forces(tmp_path / "forces.npy", _eager_forces(model, topology, positions))


def test_a_module_scripted_after_another_of_its_class_gives_the_right_forces(tmp_path):
    topology, positions = _cluster()
    model = tiny_model(dtype=torch.float32)  # as model files hold it
    save_model(model, tmp_path / "tiny.ckpt")
    np.save(tmp_path / "positions.npy", positions)
    _run(SCRIPTED_SCRIPT, tmp_path / "tiny.ckpt", tmp_path / "positions.npy",
         tmp_path / "forces.npy", cwd=tmp_path)
    _assert_forces(tmp_path / "forces.npy", _eager_forces(model, topology, positions))


@pytest.mark.parametrize("package", ["omm_symbreak", "openmmml"])
def test_import_leaves_the_executor_settings_unchanged(tmp_path, package):
    pytest.importorskip(package)
    script = READ_SETTINGS + f"""
before = executor_settings()
import {package}
print(json.dumps([before, executor_settings()]))
"""
    before, after = json.loads(_run(script, cwd=tmp_path).strip().splitlines()[-1])
    assert after == before
