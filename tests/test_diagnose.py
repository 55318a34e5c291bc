"""Tests of ``omm-symbreak diagnose``: the share of the rotational variance per degree against
the analytic answer of a model broken in degrees 1 and 2 only, the grid it recommends, the
spectrum's building blocks, and the command line's files and refusals."""

import json

import numpy as np
import pytest
import torch
from ase.calculators.calculator import Calculator, all_changes

from omm_symbreak import systems
from omm_symbreak.cli import main
from omm_symbreak.diagnose import diagnose, structure_frame
from omm_symbreak.grids import parse_grid, random_rotations
from omm_symbreak.spectrum import quadrature, residual_variance, spectrum, wigner_d
from omm_symbreak.units import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV

A1 = np.array([0.3, -0.2, 0.5])  # eV/Angstrom
A2 = np.array([[0.2, 0.1, -0.05], [0.1, -0.3, 0.15], [-0.05, 0.15, 0.1]])  # eV/Angstrom^2
BOND_EV = 2.0  # eV/Angstrom^2, the invariant part


class DipoleCalculator(Calculator):
    """E = BOND_EV sum_H |r_OH|^2 + A1 . d + d^T A2 d (eV), d = (r_H1 + r_H2) / 2 - r_O of one
    water molecule (O, H, H; Angstrom): A1 . d is of degree 1 in the orientation and odd under
    inversion, d^T A2 d (A2 symmetric and traceless: no degree-0 part) of degree 2 and even.
    Over uniform orientations their variances are |A1|^2 |d|^2 / 3 and
    2 tr(A2^2) |d|^4 / 15, and they do not correlate."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        x = self.atoms.positions
        bonds = x[1:] - x[0]
        d = bonds.mean(axis=0)
        gradient_d = A1 + 2 * A2 @ d
        forces = -2 * BOND_EV * np.concatenate([-bonds.sum(axis=0)[None], bonds])
        forces += np.stack([gradient_d, -gradient_d / 2, -gradient_d / 2])
        self.results = {"energy": float(BOND_EV * np.sum(bonds ** 2) + A1 @ d + d @ A2 @ d),
                        "forces": forces}


class DipoleModule(torch.nn.Module):
    """``DipoleCalculator``'s energy in the TorchForce contract (positions nm -> kJ/mol)."""

    def __init__(self):
        super().__init__()
        scale = KJ_PER_MOL_PER_EV
        self.bond = BOND_EV * scale * ANGSTROM_PER_NM ** 2
        self.register_buffer("a1", torch.tensor(A1 * scale * ANGSTROM_PER_NM))
        self.register_buffer("a2", torch.tensor(A2 * scale * ANGSTROM_PER_NM ** 2))

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        positions = positions.to(torch.float64)
        bonds = positions[1:] - positions[0]
        d = bonds.mean(dim=0)
        return self.bond * (bonds ** 2).sum() + self.a1 @ d + d @ (self.a2 @ d)


def analytic_shares(positions_angstrom: np.ndarray) -> tuple[float, float]:
    """The shares of degrees 1 and 2 in the rotational variance of ``DipoleCalculator``."""
    d = (positions_angstrom[1] + positions_angstrom[2]) / 2 - positions_angstrom[0]
    first = A1 @ A1 * (d @ d) / 3
    second = 2 * np.trace(A2 @ A2) * (d @ d) ** 2 / 15
    return first / (first + second), second / (first + second)


def monomer_positions() -> np.ndarray:
    topology, positions, _ = systems.load("water-monomer")
    return structure_frame(topology, positions).positions_angstrom


def test_calculator_forces_are_its_gradient():
    from ase import Atoms

    positions = monomer_positions() + np.random.default_rng(0).normal(0, 0.05, (3, 3))
    atoms = Atoms("OH2", positions=positions, calculator=DipoleCalculator())
    forces = atoms.get_forces()
    step = 1e-6
    for atom, axis in [(0, 0), (1, 2), (2, 1)]:
        shifted = [positions.copy(), positions.copy()]
        shifted[0][atom, axis] += step
        shifted[1][atom, axis] -= step
        energies = [Atoms("OH2", positions=p, calculator=DipoleCalculator()).get_potential_energy()
                    for p in shifted]
        assert forces[atom, axis] == pytest.approx(-(energies[0] - energies[1]) / (2 * step),
                                                   abs=1e-8)


@pytest.fixture(scope="module")
def diagnosis(tmp_path_factory):
    output = tmp_path_factory.mktemp("diagnose")
    return diagnose(DipoleCalculator(), "water-monomer", output, md_steps=8), output


def test_breaking_lies_in_degrees_one_and_two(diagnosis):
    result, _ = diagnosis
    first, second = analytic_shares(monomer_positions())
    shares = result["breaking_by_degree"]
    assert list(shares) == ["0", "1", "2", "3", "4"]
    assert shares["1"] == pytest.approx(first, rel=1e-9)
    assert shares["2"] == pytest.approx(second, rel=1e-9)
    assert max(shares["0"], shares["3"], shares["4"]) < 1e-12
    assert result["breaking_above_max_degree"] < 1e-12
    parity = result["breaking_by_parity"]
    assert parity["1"]["odd"] == pytest.approx(first, rel=1e-9) and parity["1"]["even"] < 1e-12
    assert parity["2"]["even"] == pytest.approx(second, rel=1e-9) and parity["2"]["odd"] < 1e-12


def test_spread_matches_the_analytic_variance(diagnosis):
    result, _ = diagnosis
    d = monomer_positions()[1:].mean(axis=0) - monomer_positions()[0]
    variance = A1 @ A1 * (d @ d) / 3 + 2 * np.trace(A2 @ A2) * (d @ d) ** 2 / 15
    assert result["spectrum"]["energy_std_mev"] == pytest.approx(1000 * np.sqrt(variance),
                                                                 rel=1e-9)
    # 32 random orientations: the sample standard deviation within 40 % of the exact one
    assert result["spread"]["energy_std_mev"] == pytest.approx(1000 * np.sqrt(variance),
                                                               rel=0.4)
    assert result["spread"]["force_std_mev_per_angstrom"] > 0
    assert result["noise_floor"]["energy_std_mev"] < 1e-9


def test_recommends_the_twelve_rotations_exact_to_degree_two(diagnosis):
    result, _ = diagnosis
    recommended = result["recommended"]
    assert (recommended["grid"], recommended["evaluations"]) == ("T", 12)
    assert recommended["l_exact"] == 2 and recommended["meets_tolerance"]
    assert recommended["checked"][0]["measured_spread_mev"] < recommended["tolerance_mev"]
    costs = recommended["cost_ms_per_step"]
    assert set(costs) == {"none", "full", "mts k=4", "mts k=8", "random"}
    assert all(cost > 0 for cost in costs.values())


def test_wigner_d_is_a_unitary_representation():
    rotations = random_rotations(2, np.random.default_rng(3), inversion=False)
    for l in range(4):
        d = wigner_d(l, np.concatenate([rotations, rotations[:1] @ rotations[1:]]))
        np.testing.assert_allclose(d[0] @ d[0].conj().T, np.eye(2 * l + 1), atol=1e-12)
        np.testing.assert_allclose(d[2], d[0] @ d[1], atol=1e-12)


def test_spectrum_of_a_degree_three_harmonic_and_what_grids_leave_of_it():
    # f(S) = p(S u), p = xyz, |u| = 1: a harmonic of degree 3, odd under inversion, of O(3)
    # variance <x^2 y^2 z^2> = 1/105 on the sphere. p is invariant under T, so T leaves f
    # whole; O (a 4-fold rotation flips its sign) and inversion remove it.
    u = np.array([0.6, -0.48, 0.64])
    rotated = np.einsum("qij,j->qi", quadrature(3).rotations, u)
    result = spectrum(np.prod(rotated, axis=1), 3)
    assert result.variance == pytest.approx(1 / 105, rel=1e-12)
    assert result.power(3)[1] == pytest.approx(1 / 105, rel=1e-12)
    assert result.power(3)[0] + sum(sum(result.power(l)) for l in range(3)) < 1e-16
    assert residual_variance(result, parse_grid("T")) == pytest.approx(1 / 105, rel=1e-9)
    for spec in ("O", "Ti", "1i"):
        assert residual_variance(result, parse_grid(spec)) < 1e-16, spec


def test_cli_writes_both_files(tmp_path, capsys):
    module = tmp_path / "dipole.pt"
    torch.jit.script(DipoleModule()).save(str(module))
    output = tmp_path / "out"
    arguments = ["diagnose", "--model", str(module), "--system", "water-monomer",
                 "--max-degree", "2", "--md-steps", "4", "-o", str(output)]
    assert main(arguments) == 0
    assert f"wrote {output / 'diagnose.json'}" in capsys.readouterr().out
    written = json.loads((output / "diagnose.json").read_text())
    assert written["model"]["kind"] == "torchforce"
    first, second = analytic_shares(monomer_positions())
    assert written["breaking_by_degree"]["1"] == pytest.approx(first, rel=1e-9)
    assert written["breaking_by_degree"]["2"] == pytest.approx(second, rel=1e-9)
    assert written["recommended"]["grid"] == "T"
    assert (output / "diagnose.png").read_bytes()[:4] == b"\x89PNG"
    assert main(arguments) == 2
    assert "exists: pass --force" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--system", "liquid-9"], "unknown system 'liquid-9'"),
    (["--system", "water-monomer", "--model", "missing.pt"], "no model file at missing.pt"),
    (["--system", "water-monomer", "--max-degree", "0"], "--max-degree must be in"),
])
def test_cli_refuses_bad_input_before_any_work(arguments, message, tmp_path, capsys):
    output = tmp_path / "out"
    assert main(["diagnose", *arguments, "-o", str(output)]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not output.exists()
