"""System XML with TorchForces: the XML OpenMM writes, read back without a crash.

``openmm.XmlSerializer.serialize`` writes a System holding an ``openmmtorch.TorchForce`` (its
TorchScript module hex-encoded in the XML), but ``openmm.XmlSerializer.deserialize`` of that
XML ends the process with a segmentation fault (openmm 8.6.1 and openmmtorch 1.5 from PyPI, for
any TorchForce, even ``sum(positions**2)``). Import order and plugin loading are not the cause:
the crash is the same with torch or openmm imported first, with the TorchForce plugin loaded.
It is upstream: under gdb, openmmtorch's ``TorchForceProxy::deserialize`` calls
``SerializationNode::getStringProperty("encodedFileContents")`` on a node on its own stack whose
property buffer and size are garbage (openmm 8.6 keeps a node's properties in one flat buffer;
the openmmtorch wheel was compiled against another layout of ``SerializationNode``), and
``findPropertyValue`` reads past the end of memory.

``deserialize_system`` reads the same XML: OpenMM deserializes everything but the TorchForces,
which are rebuilt here from what the XML stores (the module, force group, periodicity,
outputsForces, global parameters, energy-parameter derivatives, properties) and added after the
other forces: only their index changes. ``copy.deepcopy`` of such a System crashes the same way
(it goes through the XML); ``copy_system`` copies it.
"""

import io
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import List, Tuple

import torch  # before openmmtorch (omm_symbreak.potential imports it quietly, after torch)
import openmm

from .potential import openmmtorch

TORCH_FORCE = "TorchForce"


def load_system(path) -> openmm.System:
    """The System of an XML file written by ``openmm.XmlSerializer.serialize``, TorchForces
    included (``deserialize_system``)."""
    return deserialize_system(Path(path).read_text())


def copy_system(system: openmm.System) -> openmm.System:
    """A copy of ``system`` (``copy.deepcopy`` crashes on TorchForces), its TorchForces last."""
    return deserialize_system(openmm.XmlSerializer.serialize(system))


def deserialize_system(xml: str) -> openmm.System:
    """The System of ``xml`` (``openmm.XmlSerializer.serialize`` of a System): what
    ``openmm.XmlSerializer.deserialize`` gives, its TorchForces last, without its crash."""
    others, torch_forces = split_torch_forces(xml)
    system = openmm.XmlSerializer.deserialize(others)
    for element in torch_forces:
        system.addForce(torch_force_of(element))
    return system


def split_torch_forces(xml: str) -> Tuple[str, List[ElementTree.Element]]:
    """(the System XML without its TorchForces, their ``Force`` elements in order)."""
    root = ElementTree.fromstring(xml)
    forces = root.find("Forces")
    torch_forces = [] if forces is None else [
        element for element in forces if element.get("type") == TORCH_FORCE]
    for element in torch_forces:
        forces.remove(element)
    return ElementTree.tostring(root, encoding="unicode"), torch_forces


def torch_force_of(element: ElementTree.Element):
    """The ``openmmtorch.TorchForce`` of a serialized TorchForce element (versions 1 to 4 of
    openmmtorch's format: the module as a file name in 1, hex-encoded bytes from 2 on)."""
    version = int(element.get("version"))
    if not 1 <= version <= 4:
        raise ValueError(f"TorchForce XML version {version}: this reader knows versions 1-4")
    encoded = element.get("encodedFileContents")
    source = element.get("file") if version == 1 else io.BytesIO(bytes.fromhex(encoded))
    force = openmmtorch.TorchForce(torch.jit.load(source))
    force.setForceGroup(int(element.get("forceGroup", 0)))
    force.setUsesPeriodicBoundaryConditions(element.get("usesPeriodic", "0") == "1")
    force.setOutputsForces(element.get("outputsForces", "0") == "1")
    for parameter in element.iterfind("GlobalParameters/Parameter"):
        force.addGlobalParameter(parameter.get("name"), float(parameter.get("default")))
    for parameter in element.iterfind("ParameterDerivatives/Parameter"):
        force.addEnergyParameterDerivative(parameter.get("name"))
    for prop in element.iterfind("Properties/Property"):
        force.setProperty(prop.get("name"), prop.get("value"))
    return force
