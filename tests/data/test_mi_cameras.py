"""Camera-camera and camera-motion skills: a hand-built pair (camera 2 = camera 1 moved +0.5 m along its x axis),
pure relative-pose checks, and the filter boundaries."""

import json

import numpy as np
import pytest

from vst.data.skills import get_skill
from vst.data.skills.mi_cameras import (
    MIN_TRANSLATION_M, RelativePose, camera_questions, dominant_axis, motion_questions, relative_pose,
)
from vst.data.context import SceneContext
from vst.scene.geometry import look_at

OBJECTS = [("cabinet", (0.0, 3.0, 0.6), (1.2, 0.4, 1.2), 0.0), ("chair", (1.2, 2.5, 0.45), (0.5, 0.5, 0.9), 0.0)]
# camera 1 looks along +y, so its x axis (right) is world +x; camera 2 sits 0.5 m to its right, same heading
CAMERAS = [("pair-00-a", "pair-00", (0.0, 0.0, 1.0), (0.0, 3.0, 1.0), 0.0),
           ("pair-00-b", "pair-00", (0.5, 0.0, 1.0), (0.5, 3.0, 1.0), 1.0)]


@pytest.fixture
def sideways_pair(scene_builder):
    return scene_builder(OBJECTS, CAMERAS)


def _answer_word(sample) -> str:
    answer = sample.answer
    if answer["type"] == "mc":
        return next(o for o in answer["options"] if o.startswith(answer["value"] + "."))[3:]
    return str(answer["value"])


def test_relative_pose_of_a_sideways_step():
    relative = relative_pose(look_at((0, 0, 1), (0, 3, 1)), look_at((0.5, 0, 1), (0.5, 3, 1)))
    assert relative.translation == pytest.approx([0.5, 0.0, 0.0])
    assert relative.baseline_m == pytest.approx(0.5) and relative.bearing_deg == pytest.approx(90.0)
    assert relative.yaw_deg == pytest.approx(0.0)
    assert motion_questions(relative) == {"right": ("right", pytest.approx(0.5), pytest.approx(0.3))}
    questions = camera_questions(relative)
    assert questions["clock"] == ("3 o'clock", pytest.approx(15.0))
    assert questions["four_way"][0] == "right" and questions["distance"][0] == 0.5 and "yaw" not in questions


def test_relative_pose_of_a_right_turn():
    # camera 2 at the same spot turned 30 degrees to the right (clockwise from above), 1 m further forward
    turned = np.array([np.sin(np.radians(30)), np.cos(np.radians(30)), 0.0])
    relative = relative_pose(look_at((0, 0, 1), (0, 3, 1)), look_at((0, 1, 1), np.array([0, 1, 1]) + turned))
    assert relative.yaw_deg == pytest.approx(30.0)
    assert relative.translation == pytest.approx([0.0, 1.0, 0.0])
    questions = motion_questions(relative)
    assert questions["yaw"][0] == "right" and questions["forward"][0] == "forward"
    assert camera_questions(relative)["clock"][0] == "12 o'clock"


def test_filter_boundaries():
    assert dominant_axis([0.199, 0.0, 0.0])[1] < 0 < dominant_axis([0.201, 0.0, 0.0])[1]
    assert dominant_axis([0.0, -0.201, 0.0]) == (1, pytest.approx(0.001))
    # the dominant axis must be >= 1.5x the others: 0.3 against 0.3 / 1.49 fails, against 0.3 / 1.51 passes
    assert dominant_axis([0.3, 0.3 / 1.49, 0.0])[1] < 0 < dominant_axis([0.3, 0.3 / 1.51, 0.0])[1]
    assert MIN_TRANSLATION_M == 0.2

    def pose(bearing, yaw=0.0, baseline=1.0):
        translation = baseline * np.array([np.sin(np.radians(bearing)), np.cos(np.radians(bearing)), 0.0])
        return RelativePose(translation, yaw, bearing % 360.0, baseline)

    assert "yaw" not in motion_questions(pose(0.0, yaw=9.9)) and "yaw" in motion_questions(pose(0.0, yaw=-10.1))
    assert "clock" not in camera_questions(pose(97.6)) and "clock" in camera_questions(pose(97.4))
    assert "four_way" not in camera_questions(pose(120.1)) and "four_way" in camera_questions(pose(119.9))
    assert camera_questions(pose(90.0, baseline=0.299)) == {} and "distance" in camera_questions(pose(90.0, baseline=0.301))


def test_motion_on_hand_scene(sideways_pair):
    samples = [s for seed in range(8) for s in get_skill("mi_camera_motion").generate(sideways_pair, np.random.default_rng(seed))]
    assert {s.meta_info["direction"] for s in samples} == {"left", "right"}  # both orders of the pair get asked
    for sample in samples:
        meta = sample.meta_info
        forward_order = meta["frame_ids"] == ["pair-00-a", "pair-00-b"]
        assert meta["form"] in ("right", "right_amount") and meta["margin_m"] == pytest.approx(0.3, abs=1e-3)
        assert meta["direction"] == ("right" if forward_order else "left")
        if meta["form"] == "right":
            assert _answer_word(sample) == meta["direction"].capitalize()
        else:
            assert sample.answer == {"type": "number", "value": 0.5, "unit": "m"} and sample.reward == {"fn": "mra"}
        assert len(sample.images) == 2 and sample.question.startswith("<|image_pad|><|image_pad|>\n")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_camera_camera_on_hand_scene(sideways_pair, seed):
    samples = list(get_skill("mi_camera_camera").generate(sideways_pair, np.random.default_rng(seed)))
    forms = {s.meta_info["form"]: s for s in samples}
    assert set(forms) == {"clock", "four_way", "distance"}  # no yaw question: both cameras face the same way
    forward_order = forms["clock"].meta_info["frame_ids"] == ["pair-00-a", "pair-00-b"]
    assert _answer_word(forms["clock"]) == ("3 o'clock" if forward_order else "9 o'clock")
    assert _answer_word(forms["four_way"]) == ("right" if forward_order else "left")
    assert forms["distance"].answer == {"type": "number", "value": 0.5, "unit": "m"}
    assert forms["clock"].meta_info["margin_deg"] == pytest.approx(15.0, abs=0.01)


@pytest.mark.parametrize("skill", ["mi_camera_motion", "mi_camera_camera"])
def test_rendered_scene_smoke(rendered_scene, skill):
    scene, folder = rendered_scene
    samples = list(get_skill(skill).generate(SceneContext(scene, folder), np.random.default_rng(0)))
    assert samples
    for sample in samples:
        meta = json.loads(sample.to_row()["meta_info"])
        assert sample.modality == "multi" and len(sample.images) == 2 and len(meta["frame_ids"]) == 2
        assert meta["baseline_m"] > 0 and any(key.startswith("margin_") and meta[key] >= 0 for key in meta)
