"""The OpenMM-ML entry point builds the same system as omm_symbreak.potential."""

import numpy as np
import openmm
import pytest
import torch

from conftest import tiny_model
from omm_symbreak.grids import parse_grid
from omm_symbreak.model import save_model
from omm_symbreak.potential import create_system
from test_openmm import through_openmm

mlpotential = pytest.importorskip("openmmml.mlpotential")


@pytest.mark.parametrize("strategy", ["full", "mts"])
def test_mlpotential_by_name_matches_create_system(tmp_path, water_box, strategy):
    topology, positions, cell = water_box
    model = tiny_model(dtype=torch.float32)
    model_file = tmp_path / "tiny.ckpt"
    save_model(model, model_file)
    potential = mlpotential.MLPotential("symbreak-water", model=str(model_file), grid="1i",
                                        strategy=strategy)
    from_plugin = potential.createSystem(topology)
    direct = create_system(topology, model, strategy, parse_grid("1i"))
    e_plugin, f_plugin = through_openmm(from_plugin, positions, cell, "Reference")
    e_direct, f_direct = through_openmm(direct, positions, cell, "Reference")
    assert e_plugin == pytest.approx(e_direct, rel=1e-7)
    np.testing.assert_allclose(f_plugin, f_direct, rtol=1e-6, atol=1e-4)
    groups = sorted(f.getForceGroup() for f in from_plugin.getForces()
                    if not isinstance(f, openmm.CMMotionRemover))
    assert groups == ([0, 1] if strategy == "mts" else [0])
