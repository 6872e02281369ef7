"""Distance prediction on a hand-built scene with distances computed by hand, and its filters at the boundaries."""

import math
import re

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.markers import MARKER_COLORS
from vst.data.scene_graph import box_of
from vst.data.skills import get_skill
from vst.data.skills.si_depth import gap_margin
from vst.data.skills.si_distance import GAP_M, GAP_REL, camera_distance, distance_margin

# ids 10 table, 11 chair, 12 lamp, 13 box. Table x in [-0.6, 0.6], y in [2.6, 3.4]; chair x in [1.6, 2.1] (1.0 m to
# the right); lamp x in [-2.4, -2.1] (1.5 m to the left); box y in [2.2, 2.5] in front of the table (0.1 m: touching).
OBJECTS = [("table", (0, 3, 0.4), (1.2, 0.8, 0.8), 0), ("chair", (1.85, 3, 0.45), (0.5, 0.5, 0.9), 0),
           ("lamp", (-2.25, 3, 0.6), (0.3, 0.3, 1.2), 0), ("box", (0, 2.35, 0.15), (0.3, 0.3, 0.3), 0)]
CLOSEST = {frozenset((10, 11)): 1.0, frozenset((10, 12)): 1.5, frozenset((11, 12)): 3.7, frozenset((10, 13)): 0.1,
           frozenset((11, 13)): math.hypot(1.45, 0.25), frozenset((12, 13)): math.hypot(1.95, 0.35)}
CENTER = {frozenset((10, 11)): math.hypot(1.85, 0.05), frozenset((10, 12)): math.hypot(2.25, 0.2),
          frozenset((11, 12)): math.hypot(4.1, 0.15), frozenset((11, 13)): math.hypot(1.85, 0.65, 0.3),
          frozenset((12, 13)): math.hypot(2.25, 0.65, 0.45)}


def test_touching_filter_boundary():
    assert distance_margin(0.199) < 0 < distance_margin(0.201)


def test_comparison_gap_boundary():
    # at 1.0 m vs 1.149 m the required gap is max(0.15, 0.1149) = 0.15 m
    assert gap_margin(1.0, 1.149, GAP_M, GAP_REL) < 0 < gap_margin(1.0, 1.151, GAP_M, GAP_REL)
    assert gap_margin(3.0, 3.33, GAP_M, GAP_REL) < 0 < gap_margin(3.0, 3.34, GAP_M, GAP_REL)  # 10 % of the larger


@pytest.fixture
def scene(scene_builder):
    cameras = [("still-00", "still-00", (0, -2, 1.6), (0, 3, 0.5), 0.0)]
    return scene_builder(OBJECTS, cameras)


def _samples(ctx, seeds=range(20)):
    return [s for seed in seeds for s in get_skill("si_distance").generate(ctx, np.random.default_rng(seed))]


def test_answers_match_hand_computed_distances(scene):
    assert {o.instance_id for o in scene.referable(scene.scene.frames[0])} == {10, 11, 12, 13}
    samples = _samples(scene)
    forms = {s.meta_info["form"] for s in samples}
    assert forms == {"pair", "camera", "nearer"}
    chair_table = [s for s in samples if s.meta_info["form"] == "pair" and s.meta_info["measure"] == "closest"
                   and set(s.meta_info["instance_ids"]) == {10, 11}]
    assert chair_table and all(s.answer == {"type": "number", "value": 1.0, "unit": "m"} for s in chair_table)
    for sample in samples:
        meta, ids = sample.meta_info, sample.meta_info["instance_ids"]
        assert sample.skill == sample.type == "si_distance" and sample.modality == "single"
        if meta["form"] != "camera":  # the box is 0.1 m from the table: never asked as a pair or against the anchor
            assert frozenset(ids[:2]) != {10, 13} and frozenset(ids[::2]) != {10, 13}
        if meta["form"] == "pair":
            expected = (CLOSEST if meta["measure"] == "closest" else CENTER)[frozenset(ids)]
            assert sample.answer["value"] == round(expected, 1) and sample.reward == {"fn": "mra"}
            assert ("closest points" if meta["measure"] == "closest" else "centers") in sample.question
            assert "meters" in sample.question
        elif meta["form"] == "camera":
            expected = camera_distance(box_of(scene.scene.object(ids[0])), scene.scene.frames[0].pose, meta["measure"])
            assert sample.answer["value"] == round(expected, 1) and meta["margin_m"] >= 0
        else:
            anchor, first, second = ids
            near = [CLOSEST[frozenset((anchor, first))], CLOSEST[frozenset((anchor, second))]]
            winner = (first, second)[int(np.argmin(near) if meta["relation"] == "nearer" else np.argmax(near))]
            name = scene.scene.object(winner).category
            value = sample.answer["value"]
            if sample.answer["type"] == "mc":
                value = next(o for o in sample.answer["options"] if o.startswith(value + "."))[3:]
            assert value.split(" (")[0] == name and meta["margin_m"] > 0  # "lamp" or "lamp (cyan point)"


def test_duplicates_are_marked_with_named_colours(scene_builder):
    objects = [("chair", (-0.9, 3, 0.45), (0.5, 0.5, 0.9), 0), ("chair", (0.9, 3, 0.45), (0.5, 0.5, 0.9), 0),
               ("table", (0, 4.5, 0.4), (1.2, 0.8, 0.8), 0)]
    ctx = scene_builder(objects, [("still-00", "still-00", (0, -1, 1.6), (0, 3, 0.5), 0.0)])
    samples = _samples(ctx, range(3))
    assert samples
    for sample in samples:
        chairs = [i for i in sample.meta_info["instance_ids"] if i in (10, 11)]
        assert len(sample.meta_info["markers"]) >= len(chairs)
        for marker in sample.meta_info["markers"]:
            assert marker["color"] in MARKER_COLORS and f"({marker['color']} point)" in sample.question
        assert len(re.findall(r"the chair(?! \()", sample.question)) == 0  # a chair is never named without its marker


def test_rendered_scene_smoke(rendered_scene):
    scene, folder = rendered_scene
    samples = list(get_skill("si_distance").generate(SceneContext(scene, folder), np.random.default_rng(0)))
    assert samples
    for sample in samples:
        assert sample.meta_info["margin_m"] >= 0 and sample.images[0].bytes[:2] == b"\xff\xd8"
