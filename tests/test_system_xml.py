"""Issue 34, item 12: a System with TorchForces saved as OpenMM XML is read back by
omm_symbreak.system_xml, where openmm.XmlSerializer.deserialize ends the process with a
segmentation fault (openmmtorch 1.5 with openmm 8.6). Each check runs in a subprocess, so that
a crash fails the test instead of ending pytest."""

import json
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

PACKAGE_SYSTEM = """
import json, sys
sys.path.insert(0, {tests!r})
import torch, openmm
from conftest import tiny_model, water_positions_angstrom, water_topology
from omm_symbreak.grids import parse_grid
from omm_symbreak.potential import create_system
from omm_symbreak.system_xml import copy_system, deserialize_system
from omm_symbreak.units import angstrom_to_nm

cell = [[6.2, 0, 0], [0, 6.2, 0], [0, 0, 6.2]]
topology = water_topology(8, cell)
positions = angstrom_to_nm(water_positions_angstrom(2, 3.1, seed=1))
system = create_system(topology, tiny_model(), "mts", parse_grid("1i"), positions)

def energies(system):
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    return [context.getState(energy=True, groups={{group}}).getPotentialEnergy()._value
            for group in (0, 1)]

restored = deserialize_system(openmm.XmlSerializer.serialize(system))
print(json.dumps({{"before": energies(system), "after": energies(restored),
                  "copy": energies(copy_system(system)),
                  "forces": [(restored.getForce(i).getForceGroup(),
                              restored.getForce(i).usesPeriodicBoundaryConditions())
                             for i in range(restored.getNumForces())]}}))
"""

USER_FORCE = """
import json
import torch, openmm
from omm_symbreak.potential import openmmtorch
from omm_symbreak.system_xml import load_system

class Harmonic(torch.nn.Module):
    def forward(self, positions, scale: torch.Tensor):
        return scale * torch.sum(positions ** 2)

force = openmmtorch.TorchForce(torch.jit.script(Harmonic()))
force.addGlobalParameter("scale", 2.0)
force.addEnergyParameterDerivative("scale")
force.setForceGroup(3)
system = openmm.System()
system.addParticle(1.0)
system.addForce(openmm.CMMotionRemover())
system.addForce(force)
with open("system.xml", "w") as handle:
    handle.write(openmm.XmlSerializer.serialize(system))
restored = load_system("system.xml")
context = openmm.Context(restored, openmm.VerletIntegrator(0.001),
                         openmm.Platform.getPlatformByName("Reference"))
context.setPositions([openmm.Vec3(0.1, 0.2, 0.3)])
state = context.getState(energy=True, parameterDerivatives=True, groups={3})
print(json.dumps({"energy": state.getPotentialEnergy()._value,
                  "derivative": state.getEnergyParameterDerivatives()["scale"],
                  "types": [type(restored.getForce(i)).__name__
                            for i in range(restored.getNumForces())]}))
"""


def run_script(script: str, directory) -> dict:
    """Run ``script`` (as a file: TorchScript compiles from source) in a fresh Python process
    in ``directory``; the JSON of its last line."""
    (Path(directory) / "script.py").write_text(script)
    result = subprocess.run([sys.executable, "script.py"], cwd=directory, capture_output=True,
                            text=True)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_package_system_read_back_has_the_same_energy_per_force_group(tmp_path):
    result = run_script(PACKAGE_SYSTEM.format(tests=str(TESTS)), tmp_path)
    assert result["after"] == result["before"] and result["copy"] == result["before"]
    assert result["forces"] == [[0, True], [1, True]]


def test_a_user_torchforce_keeps_its_group_parameter_and_derivative(tmp_path):
    result = run_script(USER_FORCE, tmp_path)
    # E = scale * |x|^2 with scale 2 and x = (0.1, 0.2, 0.3) nm: 2 * 0.14; dE/dscale = 0.14
    assert abs(result["energy"] - 0.28) < 1e-12
    assert abs(result["derivative"] - 0.14) < 1e-12
    assert result["types"] == ["CMMotionRemover", "Force"]
