"""Multi-image 3D detection: boxes in the first camera's frame on a hand-built view pair, the shared-view rule,
determinism and a smoke test on a procedural scene."""

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from vst.data.context import SceneContext
from vst.data.skills import get_skill
from vst.scene.geometry import box_corners, camera_to_world, project_points, vst9_to_box

FENCE = re.compile(r"\A```json\n(.*)\n```\Z", re.DOTALL)
ROOM = (-4.0, -4.0, 4.0, 6.0)
SEEDS = range(6)

# camera A: 0.8 m high, level, looking along +y (camera x = world x, camera y = 0.8 - world z, camera z = world y);
# the lamp at (2.5, 2.0, 0.6) is outside A's view but seen by B; its box in A's frame is still [2.5, 0.2, 2.0].
OBJECTS = [("chair", (0.5, 3.0, 0.45), (0.4, 0.6, 0.9), 0.0), ("table", (-0.8, 4.0, 0.4), (1.2, 0.6, 0.8), 30.0),
           ("lamp", (2.5, 2.0, 0.6), (0.3, 0.3, 1.2), 0.0)]
PAIR = [("pair-00-a", "pair-00", (0, 0, 0.8), (0, 1, 0.8), 0.0), ("pair-00-b", "pair-00", (0.3, -0.5, 1.2), (1.2, 3.5, 0.4), 1.0)]
KNOWN = {"chair": [0.5, 0.35, 3.0, 0.4, 0.9, 0.6, 0.0, 0.0, 0.0], "table": [-0.8, 0.4, 4.0, 1.2, 0.8, 0.6, 0.0, -0.17, 0.0],
         "lamp": [2.5, 0.2, 2.0, 0.3, 1.2, 0.3, 0.0, 0.0, 0.0]}


def parse_answer(text: str) -> list[dict]:
    match = FENCE.match(text)
    assert match, text
    return json.loads(match.group(1))


def generate(ctx, seed):
    return list(get_skill("mi_3d_detection").generate(ctx, np.random.default_rng(seed)))


@pytest.fixture
def view_pair(scene_builder):
    return scene_builder(OBJECTS, PAIR, room=ROOM)


def test_visibility_premise(view_pair):
    first, second = view_pair.scene.sequences()["pair-00"]
    assert set(first.visibility) >= {10, 11} and 12 not in first.visibility
    assert all(second.visibility[i].visible_frac > 0.99 for i in (10, 11, 12))


def test_boxes_are_in_the_first_camera_frame(view_pair):
    first = view_pair.scene.frame("pair-00-a")
    asked = set()
    for sample in (s for seed in SEEDS for s in generate(view_pair, seed)):
        meta = sample.meta_info
        assert meta["frame_ids"] == ["pair-00-a", "pair-00-b"] and meta["reference_frame_id"] == "pair-00-a"
        entries = parse_answer(sample.response)
        assert sorted({e["label"] for e in entries}) == sorted(meta["categories"])
        for entry, instance_id in zip(entries, meta["instance_ids"]):
            assert entry["bbox_3d"] == pytest.approx(KNOWN[entry["label"]], abs=1e-9)
            # back to the world through camera A's pose: the scene's own box corners, up to the 2-decimal rounding
            world = view_pair.scene.object(instance_id).box
            corners = camera_to_world(box_corners(vst9_to_box(entry["bbox_3d"])), first.pose)
            np.testing.assert_allclose(corners, box_corners((world.center, world.size, world.rotation)), atol=0.03)
            if instance_id in first.visibility:  # and onto A's rendered mask
                ys, xs = np.nonzero(view_pair.instance_ids(first) == instance_id)
                uv = project_points(box_corners(vst9_to_box(entry["bbox_3d"])), first.intrinsics.matrix, 320, 240).uv
                extent = [xs.min(), ys.min(), xs.max(), ys.max()]
                np.testing.assert_allclose(np.concatenate([uv.min(0), uv.max(0)]), extent, atol=2.0)
        assert set(meta["shared_instance_ids"]) & {10, 11}
        asked.add(frozenset(meta["categories"]))
    assert any("lamp" in a for a in asked)  # an object seen only in the second view is still asked for
    assert frozenset({"lamp"}) not in asked  # but never alone: some asked object must be seen in both views


def test_sample_format(view_pair):
    sample = generate(view_pair, 0)[0]
    assert sample.type == "bbox_3d" and sample.modality == "multi" and sample.skill == "mi_3d_detection"
    assert sample.question.startswith("<|image_pad|><|image_pad|>\nHere are the detailed camera parameters for the image.\n")
    assert "Image width=975 and height=731." in sample.question  # 320 x 240 at hfov 70 deg, unified to f = 696.3 px
    assert [Image.open(io.BytesIO(m.bytes)).size for m in sample.images] == [(975, 731), (975, 731)]
    assert sample.answer["type"] == "boxes3d" and sample.reward == {"fn": "boxes3d"}


def test_no_sample_without_an_object_in_both_views(scene_builder):
    # camera B turns round: it sees only the sofa behind A, and A sees only the chair and the table
    objects = OBJECTS[:2] + [("sofa", (0.0, -2.5, 0.4), (1.8, 0.8, 0.8), 0.0)]
    cameras = [PAIR[0], ("pair-00-b", "pair-00", (0, 0.5, 1.0), (0, -1, 0.6), 1.0)]
    ctx = scene_builder(objects, cameras, room=ROOM)
    first, second = ctx.scene.sequences()["pair-00"]
    assert 12 not in first.visibility and 12 in second.visibility and not {10, 11} & set(second.visibility)
    assert all(not generate(ctx, seed) for seed in SEEDS)


def test_smoke_on_procedural_scene(rendered_scene):
    scene, folder = rendered_scene
    samples = list(get_skill("mi_3d_detection").generate(SceneContext(scene, folder), np.random.default_rng(0)))
    assert samples
    for sample in samples:
        assert len(sample.images) == 2 and sample.meta_info["shared_instance_ids"]
        assert len(parse_answer(sample.response)) == len(sample.meta_info["instance_ids"])
