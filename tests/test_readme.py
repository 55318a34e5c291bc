"""The README's export commands and plain OpenMM script run as written (tiny model)."""

import re
import subprocess
import sys
from pathlib import Path

import torch

from conftest import tiny_model
from omm_symbreak.model import save_model

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_export_commands_and_openmm_script(tmp_path):
    model_file = tmp_path / "tiny.ckpt"
    save_model(tiny_model(dtype=torch.float32), model_file)
    (tmp_path / "systems").symlink_to(ROOT / "systems")
    commands = re.findall(r"^omm-symbreak export --model MODEL .*$", README, flags=re.MULTILINE)
    assert len(commands) == 2
    cli = Path(sys.executable).parent / "omm-symbreak"
    for command in commands:
        arguments = command.replace("MODEL", str(model_file)).split()[1:]
        subprocess.run([str(cli), *arguments], cwd=tmp_path, check=True)
    script = re.search(r"<!-- readme-script:start -->\n```python\n(.*?)```", README, re.DOTALL)
    result = subprocess.run([sys.executable, "-c", script.group(1)], cwd=tmp_path, check=True,
                            capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("systems/")]
    assert [line.split()[0] for line in lines] == ["systems/water-monomer.pdb",
                                                   "systems/liquid-64.pdb"]
    assert all("kJ/mol" in line and "nan" not in line.lower() for line in lines)


def test_readme_bring_your_own_model(tmp_path):
    """The section's commands on a hand-written non-invariant TorchForce module of the water
    molecule, and its script on a hand-written metatomic model, as written."""
    from metatomic_models import write_handwritten_model
    from torchforce_models import write_module

    section = re.search(r"<!-- readme-byom:start -->\n(.*?)<!-- readme-byom:end -->", README,
                        re.DOTALL).group(1)
    write_module(tmp_path / "my-module.pt", [8, 1, 1], anisotropy=0.1)
    commands = re.findall(r"^omm-symbreak .*$", section, flags=re.MULTILINE)
    assert [command.split()[1] for command in commands] == ["symmetrize", "symmetrize",
                                                            "simulate"]
    cli = Path(sys.executable).parent / "omm-symbreak"
    for command in commands:
        subprocess.run([str(cli), *command.split()[1:]], cwd=tmp_path, check=True)
    assert (tmp_path / "my-module-Ti.pt").is_file()
    assert (tmp_path / "my-module-correction.pt").is_file()
    assert (tmp_path / "runs" / "mine" / "diagnostics.csv").is_file()
    write_handwritten_model(tmp_path / "pet.pt")
    script = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True,
                            capture_output=True, text=True)
    assert result.stdout.strip().endswith("kJ/mol") and "nan" not in result.stdout.lower()
