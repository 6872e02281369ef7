"""Training curves: one panel per logged key, missing keys skipped, EMA smoothing debiased."""

import json

import pytest
from PIL import Image

from vst.train.curves import DPI, PANEL_INCHES, plot_history, series, smooth

HISTORY = [
    {"step": 1, "loss": 6.0, "grad_norm": 4.0, "learning_rate": 0.0},
    {"step": 2, "loss": 5.0, "grad_norm": float("nan"), "learning_rate": 1e-3},
    {"step": 3, "loss": 4.5, "grad_norm": 3.0, "learning_rate": 5e-4},
    {"step": 3, "train_loss": 5.2, "train_runtime": 1.0},  # the end-of-training summary entry
]


def panels(path):
    image = Image.open(path)
    image.load()
    return image.size, image.text["Description"].split(",")


def test_one_panel_per_logged_key_missing_keys_skipped(tmp_path):
    out = plot_history(HISTORY, tmp_path / "sub" / "curves.png", keys=("loss", "reward", "grad_norm", "learning_rate"))
    size, keys = panels(out)
    assert keys == ["loss", "grad_norm", "learning_rate"]  # "reward" is never logged
    assert size == (round(PANEL_INCHES[0] * DPI) * 3, round(PANEL_INCHES[1] * DPI))

    single = plot_history(HISTORY, tmp_path / "loss.png")
    assert panels(single) == ((round(PANEL_INCHES[0] * DPI), round(PANEL_INCHES[1] * DPI)), ["loss"])


def test_reads_trainer_state_json_and_dict(tmp_path):
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps({"global_step": 3, "log_history": HISTORY}))
    assert panels(plot_history(state, tmp_path / "a.png", keys=("grad_norm",)))[1] == ["grad_norm"]
    assert panels(plot_history({"log_history": HISTORY}, tmp_path / "b.png", keys=("loss",)))[1] == ["loss"]


def test_nothing_logged_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"none of \['reward'\] is logged"):
        plot_history(HISTORY, tmp_path / "x.png", keys=("reward",))
    assert not (tmp_path / "x.png").exists()


def test_series_skips_non_finite_values_and_smooth_is_debiased():
    assert series(HISTORY, "grad_norm") == ([1, 3], [4.0, 3.0])
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # a constant stays constant from the start
    assert smooth([0.0, 1.0], weight=0.5) == pytest.approx([0.0, 2 / 3])
