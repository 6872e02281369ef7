"""Video object counting: categories counted only when every instance is seen in the video; the seen threshold."""

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.skills import get_skill
from vst.data.skills.video_counting import countable_categories
from vst.data.video import NUMERIC_POST_PROMPT, PRE_PROMPT, seen_in_video, video_frames
from vst.scene.types import OBB, Frame, Intrinsics, ObjectInstance, Scene, Visibility

FPS = 4.0
SIZE = (160, 120)


def generate(ctx, seed=0):
    return list(get_skill("video_counting").generate(ctx, np.random.default_rng(seed)))


@pytest.fixture
def counted(scene_builder):
    # two chairs and three cabinets in view; two boxes of which one stands behind every camera; one table
    objects = [("chair", (-1.0, 3.0, 0.4), (0.5, 0.5, 0.8), 0.0), ("chair", (1.0, 3.0, 0.4), (0.5, 0.5, 0.8), 0.0),
               ("cabinet", (-1.2, 4.5, 0.5), (0.6, 0.4, 1.0), 0.0), ("cabinet", (0.0, 4.5, 0.5), (0.6, 0.4, 1.0), 0.0),
               ("cabinet", (1.2, 4.5, 0.5), (0.6, 0.4, 1.0), 0.0), ("box", (0.0, 2.0, 0.2), (0.4, 0.4, 0.4), 0.0),
               ("box", (0.0, -3.0, 0.2), (0.4, 0.4, 0.4), 0.0), ("table", (2.0, 2.5, 0.4), (0.8, 0.6, 0.8), 0.0)]
    cameras = [(f"video-{k:04d}", "video", (-0.4 + 0.4 * k, -0.5, 2.0), (0.0, 3.5, 0.3), k / FPS) for k in range(3)]
    return scene_builder(objects, cameras, size=SIZE, hfov=90.0, fps=FPS, room=(-3.0, -4.0, 3.0, 5.0))


def test_counts_only_fully_seen_categories(counted):
    seen = {obj.instance_id: seen_in_video(counted, video_frames(counted), obj) for obj in counted.objects}
    assert seen == {10: True, 11: True, 12: True, 13: True, 14: True, 15: True, 16: False, 17: True}
    samples = generate(counted)
    answers = {s.meta_info["category"]: s.answer["value"] for s in samples}
    assert answers == {"chair": 2, "cabinet": 3}  # not the box (one never seen) nor the single table
    for sample in samples:
        meta = sample.meta_info
        assert meta["count"] == len(meta["instance_ids"]) == sample.answer["value"] and meta["margin_px"] >= 0
        assert sample.response == str(meta["count"]) and sample.reward == {"fn": "mra"}
        assert sample.question.startswith(f"<|video_pad|>\n{PRE_PROMPT}\n") and sample.question.endswith(NUMERIC_POST_PROMPT)
        assert f"{meta['category']}(s)" in sample.question
        assert sample.modality == "video" and sample.type == "video" and len(sample.images) == 1
    assert sorted(next(s for s in samples if s.meta_info["category"] == "cabinet").meta_info["instance_ids"]) == [12, 13, 14]


def test_seen_threshold_boundary(tmp_path):
    # a frame that is never rendered: the visibility record alone decides whether an instance is seen
    intrinsics = Intrinsics(fx=100.0, fy=100.0, cx=79.5, cy=59.5, width=SIZE[0], height=SIZE[1])
    objects = [ObjectInstance(instance_id=i, category="cup", box=OBB(center=(0, 0, 0), size=(0.1, 0.1, 0.1))) for i in (1, 2)]
    scene = Scene(scene_id="visibility", source="test", objects=objects)
    ctx = SceneContext(scene, tmp_path)
    threshold = ctx.min_pixels(Frame(frame_id="f", intrinsics=intrinsics, cam_to_world=np.eye(4).tolist(), image_path=""))

    def seen(pixels):
        return Visibility(pixels=pixels, bbox_2d=(0, 0, 9, 9), visible_frac=1.0, truncated=False, depth_median=1.0)

    def frame(pixels_second):
        visibility = {1: seen(threshold + 50), 2: seen(pixels_second)}
        return Frame(frame_id="f", intrinsics=intrinsics, cam_to_world=np.eye(4).tolist(), image_path="", visibility=visibility)

    assert seen_in_video(ctx, [frame(threshold)], objects[1]) and not seen_in_video(ctx, [frame(threshold - 1)], objects[1])
    assert list(countable_categories(ctx, [frame(threshold)])) == ["cup"]
    assert countable_categories(ctx, [frame(threshold - 1)]) == {}
    assert countable_categories(ctx, [frame(threshold - 1), frame(threshold)]) != {}  # any one frame is enough


def test_rendered_scene_gives_samples(rendered_scene):
    scene, folder = rendered_scene
    ctx = SceneContext(scene, folder)
    samples = generate(ctx)
    assert samples and all(s.answer["value"] == ctx.category_counts[s.meta_info["category"]] >= 2 for s in samples)
