"""Video spatiotemporal questions on hand-built videos: a pan that meets objects one by one, a camera sliding along x."""

import io
import re

import av
import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.skills import get_skill
from vst.data.skills.video_spatiotemporal import MIN_GAP_S, anchor_times, first_appearances, order_margin_s, video_frames
from vst.scene.types import Frame, Intrinsics

FPS = 2.0


def pan_cameras(count=19, step_degrees=10.0):
    """A camera at (0, -3, 1.2) turning clockwise from facing -x (180 deg) to +x, one frame per `step_degrees`."""
    cameras = []
    for k in range(count):
        yaw = np.radians(180.0 - step_degrees * k)
        target = (np.cos(yaw), -3 + np.sin(yaw), 1.0)
        cameras.append((f"video-{k:04d}", "video", (0.0, -3.0, 1.2), target, k / FPS))
    return cameras


@pytest.fixture
def pan_scene(scene_builder):
    # bearings from the camera: chair 121 deg, table 85 deg, cabinet 59 deg; the pan meets them in that order
    objects = [("chair", (-3.0, 2.0, 0.5), (0.6, 0.6, 1.0), 0.0), ("table", (0.4, 2.0, 0.5), (0.6, 0.6, 1.0), 0.0),
               ("cabinet", (3.0, 2.0, 0.5), (0.6, 0.6, 1.0), 0.0)]
    return scene_builder(objects, pan_cameras(), size=(160, 120), fps=FPS)


@pytest.fixture
def slide_scene(scene_builder):
    # camera at (-1 + 0.25 k, -1, 1) looking along +y, 2 frames per second, so it moves 0.5 m per second
    cameras = [(f"video-{k:04d}", "video", (-1.0 + 0.25 * k, -1.0, 1.0), (-1.0 + 0.25 * k, 3.0, 1.0), k / FPS) for k in range(9)]
    objects = [("table", (0.0, 3.0, 0.5), (1.0, 1.0, 1.0), 0.0)]
    return scene_builder(objects, cameras, size=(160, 120), fps=FPS)


def samples(ctx: SceneContext, seed=0):
    return list(get_skill("video_spatiotemporal").generate(ctx, np.random.default_rng(seed)))


def test_temporal_gap_boundary():
    assert MIN_GAP_S == 1.0
    assert order_margin_s([0.0, 0.99, 2.5]) < 0 < order_margin_s([0.0, 1.01, 2.5])
    assert order_margin_s([3.0, 0.0, 1.01]) > 0  # unsorted input is sorted first
    assert order_margin_s([0.0, 2.0, 2.99]) < 0  # the smallest consecutive gap decides


def test_anchor_times_pick_the_frame_nearest_each_half_second():
    intrinsics = Intrinsics(fx=100, fy=100, cx=79.5, cy=59.5, width=160, height=120)
    stamps = [10.0, 10.26, 10.49, 10.77, 11.02]  # a jittery 4 fps clock that does not start at zero
    frames = [Frame(frame_id=str(i), timestamp=t, intrinsics=intrinsics, cam_to_world=np.eye(4).tolist(), image_path="")
              for i, t in enumerate(stamps)]
    # 0.26 and 0.77 s are more than half a frame (0.125 s) from 0.5 and 1.0 s; 0.49 and 1.02 s stand for them
    assert anchor_times(frames, fps=4.0) == {0: 0.0, 2: 0.5, 4: 1.0}


def test_appearance_order_follows_the_pan(pan_scene):
    frames = video_frames(pan_scene)
    first = first_appearances(pan_scene, frames)
    assert first[10] < first[11] < first[12]  # chair, then table, then cabinet
    orders = [s for s in samples(pan_scene) if s.meta_info["form"] == "appearance_order"]
    assert len(orders) == 1
    sample = orders[0]
    option = next(o for o in sample.answer["options"] if o.startswith(sample.answer["value"] + "."))
    assert option.endswith("chair, table, cabinet")
    times = sample.meta_info["first_appearance_s"]
    assert sample.meta_info["margin_s"] >= 0 and min(np.diff(sorted(times))) >= MIN_GAP_S
    assert len(sample.answer["options"]) == 4 and len(set(sample.answer["options"])) == 4
    assert sample.question.startswith("<|video_pad|>\nThese are frames of a video.\n")
    assert "Options:\nA. " in sample.question


def test_stationary_camera_has_no_displacement_question(pan_scene):
    assert all(s.meta_info["form"] != "camera_displacement" for s in samples(pan_scene))


def test_displacement_and_distance_match_the_slide(slide_scene):
    produced = samples(slide_scene)
    forms = {s.meta_info["form"] for s in produced}
    assert forms == {"camera_displacement", "camera_object_distance"}
    for sample in produced:
        meta = sample.meta_info
        if meta["form"] == "camera_displacement":
            t0, t1 = meta["times_s"]
            assert t1 - t0 >= 1.0
            question_line = sample.question.split("\n")[2]
            assert sorted(float(t) for t in re.findall(r"\d+(?:\.\d+)?", question_line)) == [t0, t1]  # times stated in seconds
            assert sample.answer["value"] == pytest.approx(0.5 * (t1 - t0), abs=0.005)
        else:
            x = -1.0 + 0.5 * meta["time_s"]  # the table spans x in [-0.5, 0.5] and its front face is at y = 2.5, 3.5 m ahead
            assert sample.answer["value"] == pytest.approx(np.hypot(max(abs(x) - 0.5, 0.0), 3.5), abs=0.005)
            assert meta["instance_ids"] == [10]
        assert sample.answer["unit"] == "m" and sample.reward == {"fn": "mra"}
        assert sample.question.endswith("\nPlease answer the question using a single word or phrase.")
        assert sample.type == "video" and sample.modality == "video"


def test_media_is_a_decodable_mp4(slide_scene):
    sample = samples(slide_scene)[0]
    with av.open(io.BytesIO(sample.images[0].bytes)) as container:
        decoded = list(container.decode(video=0))
    assert len(decoded) == 9 and decoded[0].width == 160


def test_rendered_scene_smoke(rendered_scene):
    scene, folder = rendered_scene
    produced = samples(SceneContext(scene, folder))
    assert produced and all(s.skill == "video_spatiotemporal" and s.images[0].bytes for s in produced)
