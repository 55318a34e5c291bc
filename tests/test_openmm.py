"""The exported module through openmmtorch.TorchForce, the export command and its errors."""

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import pytest
import torch

from conftest import tiny_model, water_topology
from omm_symbreak.cli import main
from omm_symbreak.export import openmm_module
from omm_symbreak.grids import parse_grid
from omm_symbreak.model import save_model
from omm_symbreak.potential import create_system, torch_force
from omm_symbreak.units import KJ_PER_MOL_PER_EV, angstrom_to_nm


def direct(module, positions_angstrom, cell_angstrom):
    """Energy (kJ/mol) and forces (kJ/mol/nm) of the TorchScript module called directly."""
    x = torch.tensor(angstrom_to_nm(positions_angstrom), requires_grad=True)
    box = None if cell_angstrom is None else torch.tensor(angstrom_to_nm(cell_angstrom))
    e = module(x, box)
    (gradient,) = torch.autograd.grad(e, x)
    return e.item(), -gradient.numpy()


def through_openmm(system, positions_angstrom, cell_angstrom, platform, groups=-1):
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3),
                             openmm.Platform.getPlatformByName(platform))
    if cell_angstrom is not None:
        context.setPeriodicBoxVectors(*(angstrom_to_nm(cell_angstrom)))
    context.setPositions(angstrom_to_nm(positions_angstrom))
    state = context.getState(energy=True, forces=True, groups=groups)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
@pytest.mark.parametrize("periodic", [False, True])
def test_torchforce_matches_direct_evaluation(platform, periodic, water_box, water_cluster):
    model = tiny_model(dtype=torch.float32)
    if periodic:
        topology, positions, cell = water_box
    else:
        (topology, positions), cell = water_cluster, None
    module = openmm_module(topology, model, "full", parse_grid("2i"))
    e_direct, f_direct = direct(module, positions, cell)
    system = create_system(topology, model, strategy="full", grid=parse_grid("2i"))
    e_openmm, f_openmm = through_openmm(system, positions, cell, platform)
    assert e_openmm == pytest.approx(e_direct, rel=1e-5)
    np.testing.assert_allclose(f_openmm, f_direct, rtol=1e-5, atol=1e-5 * np.abs(f_direct).max())


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_a_float32_model_far_from_the_origin_sees_the_same_molecule(platform, water_cluster):
    """Translation is exact for the model (it sees differences only): a cluster moved 200 nm
    away (where a gas-phase molecule diffuses in long NVT runs) gets the energy and forces it
    has at the origin, to float32 precision, through OpenMM, which passes float64 positions."""
    topology, positions = water_cluster
    system = create_system(topology, tiny_model(dtype=torch.float32), strategy="full", grid=parse_grid("2i"))
    e_near, f_near = through_openmm(system, positions, None, platform)
    e_far, f_far = through_openmm(system, positions + 2000.0, None, platform)
    assert e_far == pytest.approx(e_near, rel=1e-6)
    np.testing.assert_allclose(f_far, f_near, atol=1e-5 * np.abs(f_near).max())


def test_mts_groups_sum_to_the_full_average(water_box):
    """Raw (fast group) + correction (slow group) = grid average, through OpenMM."""
    topology, positions, cell = water_box
    model = tiny_model(dtype=torch.float64)
    full, _ = through_openmm(create_system(topology, model, "full", parse_grid("2i")), positions, cell,
                             "Reference")
    mts = create_system(topology, model, "mts", parse_grid("2i"))
    fast, _ = through_openmm(mts, positions, cell, "Reference", groups={0})
    slow, _ = through_openmm(mts, positions, cell, "Reference", groups={1})
    raw, _ = through_openmm(create_system(topology, model, "none"), positions, cell, "Reference")
    assert fast == pytest.approx(raw, rel=1e-12)
    assert fast + slow == pytest.approx(full, rel=1e-10)


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_turned_grid_draws_a_new_rotation_for_every_configuration_through_torchforce(
        platform, water_cluster):
    """OpenMM freezes the module it loads: the random turn must survive that. Configurations
    one atom 1e-6 nm apart give correction energies that differ for T+random (by the part of
    degree 3 and above, which T does not average) by far more than for the fixed T; the same
    configuration gives the same energy again, in a second context too."""
    topology, positions = water_cluster
    model = tiny_model(dtype=torch.float64)
    changes = {}
    for spec in ("T+random", "T"):
        system = create_system(topology, model, "mts", parse_grid(spec))
        energies = []
        for nudge_nm in (0.0, 1e-6, 0.0):
            context = openmm.Context(system, openmm.VerletIntegrator(1e-3),
                                     openmm.Platform.getPlatformByName(platform))
            nudged = angstrom_to_nm(positions).copy()
            nudged[0, 0] += nudge_nm
            context.setPositions(nudged)
            energies.append(context.getState(energy=True, groups={1}).getPotentialEnergy()
                            .value_in_unit(unit.kilojoule_per_mole))
        assert np.all(np.isfinite(energies))
        assert energies[2] == energies[0], spec
        changes[spec] = abs(energies[1] - energies[0])
    assert changes["T+random"] > 100 * changes["T"]


def test_energy_units_are_kj_per_mol(water_cluster):
    topology, positions = water_cluster
    model = tiny_model()
    module = openmm_module(topology, model)
    types = model.species_of([a.element.atomic_number for a in topology.atoms()])
    e_ev = module.energy(types, torch.tensor(positions), None).item()
    assert direct(module, positions, None)[0] == pytest.approx(e_ev * 96.485332, rel=1e-8)
    assert KJ_PER_MOL_PER_EV == pytest.approx(1.602176634e-19 * 6.02214076e23 / 1000, rel=1e-12)


def write_pdb(path, topology, positions_angstrom):
    with open(path, "w") as handle:
        app.PDBFile.writeFile(topology, angstrom_to_nm(positions_angstrom) * unit.nanometer, handle)


def test_export_command_round_trip_and_100_steps_of_md(tmp_path, water_box, water_cluster):
    model_file = tmp_path / "tiny.ckpt"
    save_model(tiny_model(dtype=torch.float32), model_file)
    for name, (topology, positions, cell) in {
        "cluster": (*water_cluster, None), "box": water_box
    }.items():
        pdb, exported = tmp_path / f"{name}.pdb", tmp_path / f"{name}.pt"
        write_pdb(pdb, topology, positions)
        assert main(["export", "--model", str(model_file), "--system", str(pdb),
                     "--strategy", "full", "--grid", "1i", "-o", str(exported)]) == 0
        loaded = torch.jit.load(str(exported))
        in_memory = openmm_module(topology, tiny_model(dtype=torch.float32), "full",
                                  parse_grid("1i"))
        assert direct(loaded, positions, cell)[0] == pytest.approx(
            direct(in_memory, positions, cell)[0], rel=1e-6)
        assert bool(loaded.uses_periodic_boundary_conditions) == (cell is not None)

        system = openmm.System()
        for atom in topology.atoms():
            system.addParticle(atom.element.mass)
        system.addForce(torch_force(str(exported)))
        integrator = openmm.LangevinMiddleIntegrator(300, 1, 0.0005)
        simulation = app.Simulation(topology, system, integrator,
                                    openmm.Platform.getPlatformByName("CPU"))
        simulation.context.setPositions(angstrom_to_nm(positions))
        simulation.step(100)
        final = simulation.context.getState(positions=True).getPositions(asNumpy=True)
        assert np.all(np.isfinite(final.value_in_unit(unit.nanometer)))
    assert main(["export", "--model", str(model_file), "--system", str(pdb),
                 "-o", str(exported)]) == 2


def test_bad_inputs_fail_when_the_system_is_built(tmp_path, water_cluster, capsys):
    topology, positions = water_cluster
    model = tiny_model()
    sodium = water_topology(1)
    sodium.addAtom("NA", app.element.sodium, sodium.addResidue("NA", next(sodium.chains())))
    with pytest.raises(ValueError, match=r"not Na \(sodium\)"):
        create_system(sodium, model)
    with pytest.raises(ValueError, match="positions for a topology of 24 atoms"):
        create_system(topology, model, positions=angstrom_to_nm(positions[:-3]))
    with pytest.raises(ValueError, match="NaN"):
        create_system(topology, model, positions=np.full_like(positions, np.nan))
    with pytest.raises(ValueError, match="unknown strategy"):
        create_system(topology, model, strategy="sometimes")
    with pytest.raises(ValueError, match="lebedev:L"):
        parse_grid("2j")
    with pytest.raises(TypeError, match="parse_grid"):
        create_system(topology, model, strategy="full", grid="2i")
    with pytest.raises(ValueError, match="applies to strategies full and mts"):
        create_system(topology, model, strategy="none", grid=parse_grid("2i"))
    module = openmm_module(topology, model)
    with pytest.raises(Exception, match=r"shape \[24, 3\]"):
        module(torch.zeros(21, 3, dtype=torch.float64), None)
    assert main(["export", "--model", str(tmp_path / "none.ckpt"), "--system", "water-monomer",
                 "-o", str(tmp_path / "x.pt")]) == 2
    assert "no model file" in capsys.readouterr().err
