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
