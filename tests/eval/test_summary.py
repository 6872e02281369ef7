"""Scores with n and bootstrap intervals (vst.eval.summary): hand-computed means, intervals that behave."""

import json

import numpy as np
import pytest

from vst.eval.summary import bootstrap, item_scores, skill_mean, summarise


def items(skill, modality, scores, unparsed=0):
    return [{"skill": skill, "modality": modality, "kind": "mc", "score": float(s), "unparsed": i < unparsed}
            for i, s in enumerate(scores)]


def test_summary_is_the_skill_mean_with_n_per_group():
    data = items("a", "single_image", [1, 1, 0, 0]) + items("b", "single_image", [1, 1, 1, 1, 1, 1, 1, 1, 0, 0], 2) \
        + items("c", "video", [0, 0, 1])
    summary = summarise(data, resamples=200)
    assert summary["overall"] == pytest.approx(100 * (0.5 + 0.8 + 1 / 3) / 3, abs=0.01)  # skills weigh equally
    assert summary["n"] == 17 and summary["n_unparsed"] == 2
    assert summary["modalities"]["single_image"]["score"] == pytest.approx(65.0)
    assert summary["modalities"]["single_image"]["n"] == 14 and summary["modalities"]["video"]["n"] == 3
    assert summary["skills"]["b"]["score"] == pytest.approx(80.0) and summary["skills"]["b"]["n"] == 10
    for block in (summary, *summary["skills"].values(), *summary["modalities"].values()):
        low, high = block["ci95"]
        assert low <= block.get("score", block.get("overall")) <= high


def test_intervals_shrink_with_n_and_vanish_for_constant_scores():
    rng = np.random.default_rng(0)
    small = {"a": rng.integers(0, 2, 40).astype(float)}
    large = {"a": rng.integers(0, 2, 4000).astype(float)}
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(bootstrap(large)) < width(bootstrap(small)) / 5
    # binomial standard error of a 50 % rate over 40 items is ~7.9 points: the 95 % interval is ~31 points wide
    assert 20 < width(bootstrap(small)) < 45
    assert bootstrap({"a": np.ones(30)}) == (100.0, 100.0)
    assert skill_mean({"a": np.array([1.0, 0.0]), "b": np.array([1.0])}) == pytest.approx(0.75)
    assert bootstrap(small, seed=3) == bootstrap(small, seed=3)


def test_item_scores_reads_a_vst_synth_predictions_file(tmp_path):
    rows = [
        {"id": "1", "skill": "s", "modality": "single", "answer": {"type": "mc", "value": "B", "options": ["A. x", "B. y"]},
         "response": "B"},
        {"id": "2", "skill": "s", "modality": "single", "answer": {"type": "mc", "value": "A", "options": ["A. x", "B. y"]},
         "response": "no idea"},
        {"id": "3", "skill": "v", "modality": "video", "answer": {"type": "number", "value": 4.0}, "response": "4"},
        {"id": "4", "skill": "c", "modality": "single", "answer": {"type": "text", "value": "a caption"}, "response": "x"},
    ]
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps({**row, "benchmark": "vst-synth"}) + "\n" for row in rows))
    scored = item_scores(path)
    assert [(i["skill"], i["modality"], i["score"], i["unparsed"]) for i in scored] == [
        ("s", "single_image", 1.0, False), ("s", "single_image", 0.0, True), ("v", "video", 1.0, False)]
