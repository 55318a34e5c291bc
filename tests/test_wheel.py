"""The built wheel, installed apart from the repository, runs with its own templates and model."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_INPUTS = ("pyproject.toml", "README.md", "omm_symbreak", "systems")
PROBE = """
import json
import omm_symbreak, omm_symbreak.model, omm_symbreak.systems as systems
print(json.dumps({"package": omm_symbreak.__file__, "templates": str(systems.TEMPLATES),
                  "model": str(omm_symbreak.model.DEFAULT_MODEL), "available": systems.available()}))
"""


def run(command: list[str], **options) -> str:
    """Run a command; its stdout, or a failure showing its stderr."""
    result = subprocess.run(command, capture_output=True, text=True, **options)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
    return result.stdout


def test_installed_wheel_simulates_with_shipped_templates_and_model(tmp_path):
    # built from a copy of its inputs, so that no stale build/ of the checkout enters the wheel
    source = tmp_path / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)])
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    site = tmp_path / "site"
    run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)])
    modules = [path.relative_to(ROOT) for path in (ROOT / "omm_symbreak").rglob("*.py")]
    assert [module for module in modules if not (site / module).is_file()] == []

    work = tmp_path / "work"
    work.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(site)}
    installed = json.loads(run([sys.executable, "-c", PROBE], cwd=work, env=environment))
    for key in ("package", "templates", "model"):
        assert Path(installed[key]).is_relative_to(site), (key, installed[key])
    assert installed["available"] == sorted(path.stem for path in (ROOT / "systems").glob("*.pdb"))

    run([sys.executable, "-m", "omm_symbreak.cli", "simulate", "liquid-64", "--steps", "8",
         "--state-interval", "4", "--trajectory-interval", "4", "--diagnostics-interval", "4",
         "--diagnostic-grid", "1i", "--checkpoint-interval", "8", "-o", "out", "--quiet"],
        cwd=work, env=environment)
    for name in ("run.json", "topology.pdb", "trajectory.dcd", "state.csv", "diagnostics.csv",
                 "checkpoint.pt"):
        assert (work / "out" / name).stat().st_size > 0, name
    shipped_card = json.loads((ROOT / "omm_symbreak" / "models" / "water-pet.card.json").read_text())
    run_record = json.loads((work / "out" / "run.json").read_text())
    assert run_record["model_fingerprint"] == shipped_card["model_fingerprint"]
