"""Video measurement on a hand-built scene with known sizes, distance and room area; the VSI prompt; the mp4."""

import io

import av
import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.skills import get_skill
from vst.data.skills import video_measurement
from vst.data.skills.video_measurement import longest_dimension_cm, round_metres
from vst.data.video import NUMERIC_POST_PROMPT, PRE_PROMPT, seen_in_video, video_frames

FPS = 4.0
SIZE = (160, 120)


def video_cameras(count=4, eye_y=-0.5, target=(0.0, 3.0, 0.4)):
    """`count` video frames panning sideways in front of the boxes, timestamps k / FPS."""
    return [(f"video-{k:04d}", "video", (-0.3 + 0.2 * k, eye_y, 1.6), target, k / FPS) for k in range(count)]


def two_boxes(gap_m):
    """A chair and a table side by side along x with faces exactly `gap_m` apart (overlapping in y and z)."""
    return [("chair", (-0.25 - gap_m / 2, 3.0, 0.4), (0.5, 0.5, 0.8), 0.0),
            ("table", (0.25 + gap_m / 2, 3.0, 0.35), (0.5, 1.2, 0.7), 0.0)]


@pytest.fixture
def measured(scene_builder):
    # the chair is 80 cm at most, the table 120 cm; the lamp stands behind the camera (never seen); the two cups are
    # seen but share a category; the room is 8 m x 8 m = 64 m^2
    objects = two_boxes(1.0) + [("lamp", (0.0, -3.0, 0.5), (0.3, 0.3, 1.0), 0.0),
                                ("cup", (-0.4, 2.0, 0.1), (0.2, 0.2, 0.2), 0.0), ("cup", (0.4, 2.0, 0.1), (0.2, 0.2, 0.2), 0.0)]
    return scene_builder(objects, video_cameras(), size=SIZE, fps=FPS)


def generate(ctx, seed=0):
    return list(get_skill("video_measurement").generate(ctx, np.random.default_rng(seed)))


def test_helpers():
    assert longest_dimension_cm((0.5, 1.204, 0.7)) == 120 and longest_dimension_cm((0.4, 0.3, 0.806)) == 81
    assert round_metres(0.254) == 0.25 and round_metres(1.04) == 1.0 and round_metres(2.66) == 2.7


def test_answers_match_the_built_scene(measured):
    seen = {obj.instance_id: seen_in_video(measured, video_frames(measured), obj) for obj in measured.objects}
    assert seen == {10: True, 11: True, 12: False, 13: True, 14: True}  # so the filters below are really exercised
    samples = generate(measured)
    by_form = {}
    for sample in samples:
        by_form.setdefault(sample.meta_info["form"], []).append(sample)
    assert sorted(by_form) == ["object_abs_distance", "object_size_estimation", "room_size_estimation"]
    sizes = {s.meta_info["instance_ids"][0]: s.answer["value"] for s in by_form["object_size_estimation"]}
    assert sizes == {10: 80, 11: 120}  # neither the unseen lamp (12) nor the two cups (13, 14)
    [distance] = by_form["object_abs_distance"]
    assert sorted(distance.meta_info["instance_ids"]) == [10, 11]
    assert distance.meta_info["distance_m"] == pytest.approx(1.0, abs=1e-6)
    assert distance.answer == {"type": "number", "value": 1.0, "unit": "m"} and distance.response == "1.0"
    assert distance.meta_info["margin_m"] == pytest.approx(0.8, abs=1e-6)
    [room] = by_form["room_size_estimation"]
    assert room.answer["value"] == 64.0 and room.answer["unit"] == "m2"
    for sample in samples:
        assert sample.modality == "video" and sample.type == "video" and sample.reward == {"fn": "mra"}
        assert sample.question.startswith(f"<|video_pad|>\n{PRE_PROMPT}\n")
        assert sample.question.endswith(f"\n{NUMERIC_POST_PROMPT}")
        assert sample.meta_info["frame_ids"] == [f"video-{k:04d}" for k in range(4)] and sample.meta_info["video_fps"] == FPS
        assert "cup" not in sample.question and "lamp" not in sample.question


def test_media_is_a_decodable_mp4_with_every_frame(measured):
    sample = generate(measured)[0]
    assert len(sample.images) == 1 and sample.images[0].path.endswith(".mp4")
    with av.open(io.BytesIO(sample.images[0].bytes)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape == (SIZE[1], SIZE[0], 3)


@pytest.mark.parametrize("gap_m, asked", [(0.19, False), (0.21, True)])
def test_touching_pairs_are_skipped(scene_builder, gap_m, asked):
    ctx = scene_builder(two_boxes(gap_m), video_cameras(2), size=SIZE, fps=FPS)
    distances = [s.meta_info["distance_m"] for s in generate(ctx) if s.meta_info["form"] == "object_abs_distance"]
    assert distances == ([pytest.approx(gap_m, abs=1e-6)] if asked else [])
    assert video_measurement.MIN_DISTANCE_M == 0.2


def test_rendered_scene_gives_samples(rendered_scene):
    scene, folder = rendered_scene
    samples = generate(SceneContext(scene, folder))
    assert samples and all(s.answer["type"] == "number" and s.answer["value"] > 0 for s in samples)
