"""3D detection and grounding: hand-built scenes with known camera-frame boxes, a projection round trip against the
rendered masks, the filter at its thresholds, determinism and a smoke test on a procedural scene."""

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from vst.data.context import SceneContext
from vst.data.fov import BASE_FOCAL, vst_fov
from vst.data.skills import get_skill
from vst.data.skills.si_detection import (
    MIN_DEPTH_M,
    MIN_VISIBLE_FRAC,
    category_phrase,
    encode_boxes,
    is_detectable,
    pick_categories,
)
from vst.scene.geometry import box_corners, project_points, vst9_to_box
from vst.scene.types import Intrinsics

FENCE = re.compile(r"\A```json\n(.*)\n```\Z", re.DOTALL)
ROOM = (-4.0, -4.0, 4.0, 6.0)  # x0, y0, x1, y1: deep enough that nothing pokes through the back wall
PIXEL_TOLERANCE = 2.0  # mask rasterisation (< 1 px) plus the 1 cm / 0.9 degree rounding of the answer


def parse_answer(text: str) -> list[dict]:
    match = FENCE.match(text)
    assert match, text
    return json.loads(match.group(1))


def rows(ctx, skill, seed):  # ids count up per context, so compare everything else
    samples = get_skill(skill).generate(ctx, np.random.default_rng(seed))
    return [{k: v for k, v in s.to_row().items() if k != "id"} for s in samples]


def mask_extent(ctx, frame, instance_id) -> np.ndarray:
    ys, xs = np.nonzero(ctx.instance_ids(frame) == instance_id)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=float)


def projected_extent(values, intrinsics: Intrinsics) -> np.ndarray:
    corners = box_corners(vst9_to_box(values))
    projection = project_points(corners, intrinsics.matrix, intrinsics.width, intrinsics.height)
    assert projection.in_image.all()
    return np.concatenate([projection.uv.min(axis=0), projection.uv.max(axis=0)])


@pytest.fixture
def chair_and_table(scene_builder):
    # level camera 0.8 m high looking along +y: camera x = world x, camera y = 0.8 - world z, camera z = world y.
    # chair (yaw 0) at (0.5, 3.0, 0.45) -> [0.5, 0.35, 3.0], VST sizes (width, height, depth) = (0.4, 0.9, 0.6), no rotation;
    # table yawed +30 deg (counter-clockwise from above) at (-0.8, 4.0, 0.4) -> [-0.8, 0.4, 4.0], rotation about the
    # camera's y axis by -30 deg, i.e. yaw = -30 / 180 = -0.17. The second still looks down from 1.5 m (pitch and roll).
    objects = [("chair", (0.5, 3.0, 0.45), (0.4, 0.6, 0.9), 0.0), ("table", (-0.8, 4.0, 0.4), (1.2, 0.6, 0.8), 30.0)]
    cameras = [("still-00", "still-00", (0, 0, 0.8), (0, 1, 0.8), 0.0),
               ("still-01", "still-01", (0.3, 0.2, 1.5), (-0.2, 3.5, 0.4), 0.0)]
    return scene_builder(objects, cameras, room=ROOM)


KNOWN = {"chair": [0.5, 0.35, 3.0, 0.4, 0.9, 0.6, 0.0, 0.0, 0.0], "table": [-0.8, 0.4, 4.0, 1.2, 0.8, 0.6, 0.0, -0.17, 0.0]}


def test_detection_answers_known_boxes(chair_and_table):
    samples = [s for s in get_skill("si_3d_detection").generate(chair_and_table, np.random.default_rng(0))
               if s.meta_info["frame_ids"] == ["still-00"]]
    asked = {frozenset(s.meta_info["categories"]) for s in samples}
    assert asked == {frozenset({"chair"}), frozenset({"table"}), frozenset({"chair", "table"})}
    for sample in samples:
        entries = parse_answer(sample.response)
        assert sorted(e["label"] for e in entries) == sorted(sample.meta_info["categories"])
        for entry in entries:
            assert entry["bbox_3d"] == pytest.approx(KNOWN[entry["label"]], abs=1e-9)
        assert sample.answer == {"type": "boxes3d", "value": entries} and sample.reward == {"fn": "boxes3d"}
        assert sample.type == "bbox_3d" and sample.modality == "single"


def test_detection_round_trip_matches_rendered_masks(chair_and_table):
    ctx = chair_and_table
    samples = list(get_skill("si_3d_detection").generate(ctx, np.random.default_rng(1)))
    assert {s.meta_info["frame_ids"][0] for s in samples} == {"still-00", "still-01"}
    for sample in samples:
        frame = ctx.scene.frame(sample.meta_info["frame_ids"][0])
        shown = Intrinsics(**sample.meta_info["intrinsics_shown"][0])
        for entry, instance_id in zip(parse_answer(sample.response), sample.meta_info["instance_ids"]):
            seen = frame.visibility[instance_id]
            assert not seen.truncated and seen.visible_frac > 0.99  # the box outline is the silhouette
            mask = mask_extent(ctx, frame, instance_id)
            np.testing.assert_allclose(projected_extent(entry["bbox_3d"], frame.intrinsics), mask, atol=PIXEL_TOLERANCE)
            # the same box in the FoV-unified image lands on the rescaled mask
            scale = np.tile([shown.width / frame.intrinsics.width, shown.height / frame.intrinsics.height], 2)
            np.testing.assert_allclose(projected_extent(entry["bbox_3d"], shown), (mask + 0.5) * scale - 0.5,
                                       atol=PIXEL_TOLERANCE * scale.max())


def test_fov_unified_prompt_and_image_agree(chair_and_table):
    sample = next(get_skill("si_3d_detection").generate(chair_and_table, np.random.default_rng(0)))
    frame = chair_and_table.scene.frame(sample.meta_info["frame_ids"][0])
    image = Image.open(io.BytesIO(sample.images[0].bytes))
    hfov, vfov = vst_fov(frame.intrinsics.fx, 320, 240)
    # 320 px at hfov 70 deg -> 2 * 696.32 * tan(35 deg) = 975 px wide, 2 * 696.32 * 120 / 228.51 = 731 px high
    assert image.size == (975, 731)
    assert f"hfov={hfov:.2f}, and vertical fov, vfov={vfov:.2f}. Image width=975 and height=731." in sample.question
    assert sample.meta_info["intrinsics_shown"][0]["fx"] == pytest.approx(BASE_FOCAL, rel=2e-3)
    assert sample.question.startswith("<|image_pad|>\nHere are the detailed camera parameters")


def test_fov_unify_off_keeps_the_original_image(chair_and_table):
    ctx = SceneContext(chair_and_table.scene, chair_and_table.folder, {"fov_unify": False})
    sample = next(get_skill("si_3d_detection").generate(ctx, np.random.default_rng(0)))
    assert Image.open(io.BytesIO(sample.images[0].bytes)).size == (320, 240)
    assert "Image width=320 and height=240." in sample.question and sample.meta_info["fov_unified"] is False


def test_filter_thresholds():
    assert not is_detectable(MIN_VISIBLE_FRAC - 0.001, 500, 2.0, 400)
    assert is_detectable(MIN_VISIBLE_FRAC + 0.001, 500, 2.0, 400)
    assert not is_detectable(0.9, 399, 2.0, 400) and is_detectable(0.9, 400, 2.0, 400)
    assert not is_detectable(0.9, 500, MIN_DEPTH_M - 0.001, 400) and is_detectable(0.9, 500, MIN_DEPTH_M + 0.001, 400)


def test_category_with_a_failing_instance_is_never_asked(scene_builder):
    # one chair is hidden behind the wardrobe but for a 5 cm sliver: the chair's ground truth would be ambiguous
    objects = [("wardrobe", (0.0, 3.0, 1.0), (1.2, 0.6, 2.0), 0.0), ("chair", (0.62, 3.8, 0.45), (0.4, 0.4, 0.9), 0.0),
               ("chair", (-1.2, 2.5, 0.45), (0.4, 0.4, 0.9), 0.0)]
    ctx = scene_builder(objects, [("still-00", "still-00", (0, 0, 1.0), (0, 1, 0.8), 0.0)])
    hidden, shown = ctx.scene.frames[0].visibility[11], ctx.scene.frames[0].visibility[12]
    assert 0 < hidden.visible_frac < MIN_VISIBLE_FRAC and shown.visible_frac > 0.99 and not shown.truncated
    samples = list(get_skill("si_3d_detection").generate(ctx, np.random.default_rng(0)))
    assert samples and all(s.meta_info["categories"] == ["wardrobe"] for s in samples)


def test_grounding_unique_and_marked_objects(scene_builder):
    objects = [("chair", (0.5, 3.0, 0.45), (0.4, 0.6, 0.9), 0.0), ("chair", (-0.3, 3.2, 0.45), (0.4, 0.6, 0.9), 0.0),
               ("table", (-1.6, 4.5, 0.4), (1.2, 0.6, 0.8), 30.0)]
    ctx = scene_builder(objects, [("still-00", "still-00", (0, 0, 0.8), (0, 1, 0.8), 0.0)], room=ROOM)
    frame = ctx.scene.frames[0]
    samples = list(get_skill("si_3d_grounding").generate(ctx, np.random.default_rng(2)))
    assert {s.meta_info["instance_ids"][0] for s in samples} == {10, 11, 12}
    for sample in samples:
        (instance_id,) = sample.meta_info["instance_ids"]
        (entry,) = parse_answer(sample.response)
        assert entry["label"] == ctx.scene.object(instance_id).category
        assert frame.visibility[instance_id].visible_frac > 0.99 and not frame.visibility[instance_id].truncated
        np.testing.assert_allclose(projected_extent(entry["bbox_3d"], frame.intrinsics), mask_extent(ctx, frame, instance_id),
                                   atol=PIXEL_TOLERANCE)
        if entry["label"] == "table":  # unique in view: named, no marker
            assert not sample.meta_info["markers"] and "the table" in sample.question
        else:  # two chairs in view: a point marker on the asked one, in the pixels of the unified image
            (marker,) = sample.meta_info["markers"]
            assert f"marked by the {marker['color']} point" in sample.question
            shown = sample.meta_info["intrinsics_shown"][0]
            x = (marker["xy"][0] + 0.5) * 320 / shown["width"] - 0.5
            y = (marker["xy"][1] + 0.5) * 240 / shown["height"] - 0.5
            assert ctx.instance_ids(frame)[round(y), round(x)] == instance_id


def test_answer_text_format():
    entries = [{"bbox_3d": [0.5, 0.35, 3.0, 0.4, 0.9, 0.6, 0.0, 0.0, 0.0], "label": "chair"},
               {"bbox_3d": [1.0] * 9, "label": "table"}]
    expected = ('```json\n[\n\t{"bbox_3d": [0.5, 0.35, 3.0, 0.4, 0.9, 0.6, 0.0, 0.0, 0.0], "label": "chair"},\n'
                '\t{"bbox_3d": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], "label": "table"}\n]\n```')
    assert encode_boxes(entries) == expected and parse_answer(expected) == entries
    assert category_phrase(["chair"]) == "chair" and category_phrase(["chair", "table", "lamp"]) == "chair, table and lamp"


def test_pick_categories_counts():
    rng = np.random.default_rng(0)
    names = ["a", "b", "c", "d", "e"]
    picks = [pick_categories(names, rng) for _ in range(200)]
    assert {len(p) for p in picks} == {1, 2, 3} and all(len(set(p)) == len(p) for p in picks)
    assert all(pick_categories(names, rng, first="c")[0] == "c" for _ in range(50))
    assert pick_categories(["a"], rng, first="a") == ["a"]


@pytest.mark.parametrize("skill", ["si_3d_detection", "si_3d_grounding"])
def test_smoke_on_procedural_scene(rendered_scene, skill):
    scene, folder = rendered_scene
    samples = list(get_skill(skill).generate(SceneContext(scene, folder), np.random.default_rng(0)))
    assert samples
    for sample in samples:
        entries = parse_answer(sample.response)
        assert entries and len(entries) == len(sample.meta_info["instance_ids"])
        assert all(len(e["bbox_3d"]) == 9 and all(-1.0 <= a <= 1.0 for a in e["bbox_3d"][6:]) for e in entries)
        assert all(e["bbox_3d"][2] > MIN_DEPTH_M for e in entries)
