"""analysis/ship_model.py: the shipped model's card is what the committed results make of it,
it describes the shipped checkpoint, and the evaluations it runs are ones ``evaluate_files``
accepts (a changed grid API once broke it after 13 minutes of evaluation)."""

import json
import shutil
import sys

import pytest

from conftest import analysis_script, tiny_model
from omm_symbreak.evaluate import evaluate_files
from omm_symbreak.model import load_model, model_fingerprint, save_model
from omm_symbreak.model.model_file import DEFAULT_MODEL

@pytest.fixture(scope="module")
def ship_model():
    return analysis_script("ship_model")


def test_the_committed_card_is_what_the_committed_results_give(ship_model, tmp_path,
                                                              monkeypatch):
    committed = json.loads(ship_model.CARD.read_text())
    card = tmp_path / "card.json"
    shutil.copyfile(ship_model.CARD, card)
    monkeypatch.setattr(ship_model, "CARD", card)
    monkeypatch.setattr(sys, "argv", ["ship_model.py", "--card-only"])
    ship_model.main()
    assert json.loads(card.read_text()) == committed
    assert committed["model_fingerprint"] == model_fingerprint(load_model(DEFAULT_MODEL))


def test_shipping_needs_a_checkpoint_named(ship_model, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["ship_model.py"])
    with pytest.raises(SystemExit) as exit_status:
        ship_model.main()
    assert exit_status.value.code == 2
    assert "--model" in capsys.readouterr().err


def test_the_cards_evaluations_run(ship_model, tmp_path):
    model_file = tmp_path / "tiny.ckpt"
    save_model(tiny_model(), model_file)
    for options, _ in ship_model.evaluation_runs(1, 2).values():
        options = dict(options, output=tmp_path / "metrics.json", n_rotations=2,
                       max_structures=1)
        result = evaluate_files(model_file, ship_model.TEST_SET, force=True, **options)
        assert set(result["grids"]) == {"none", *(grid.spec for grid in options.get("grids", ()))}
