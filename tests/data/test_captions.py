"""Scene captions: every number in a caption is parsed back and checked against the scene's geometry."""

import re

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.scene_graph import box_of, wall_distance
from vst.data.skills import captions, get_skill
from vst.data.skills.captions import count_phrase
from vst.scene.geometry import box_corners, box_distance, point_box_distance, polygon_area, world_to_camera

SKILLS = ("si_scene_caption", "mi_scene_caption", "video_scene_caption")

# ids 10 table, 11 chair (1.0 m right of the table), 12 box (0.2 m left of it), 13 vase on the table, 14 lamp 5 cm from
# the back wall (y = 4) of an 8 x 8 m room, 3 m high
OBJECTS = [("table", (0, 3, 0.4), (1.2, 0.8, 0.8), 0), ("chair", (1.85, 3, 0.45), (0.5, 0.5, 0.9), 0),
           ("box", (-0.95, 3, 0.15), (0.3, 0.3, 0.3), 0), ("vase", (0.2, 3.25, 0.95), (0.2, 0.2, 0.3), 0),
           ("lamp", (-1.8, 3.8, 0.6), (0.3, 0.3, 1.2), 0)]
TARGET = (0, 3, 0.4)
CAMERAS = [("still-00", "still-00", (0, 0.3, 1.8), TARGET, 0.0),
           ("pair-00-a", "pair-00", (0.5, 0.3, 1.8), TARGET, 0.0), ("pair-00-b", "pair-00", (-0.8, 0.6, 1.8), TARGET, 1.0)]
CAMERAS += [(f"video-{i:02d}", "video", (-1.5 + 0.4 * i, 0.0, 1.6), TARGET, i / 4) for i in range(8)]


@pytest.fixture
def scene(scene_builder):
    return scene_builder(OBJECTS, CAMERAS, hfov=90.0, fps=4.0)


def check_numbers(ctx, sample):
    """Every number written in the caption is one recorded fact, in order, and each fact is true to the scene."""
    numbers = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", sample.response)]
    facts = sample.meta_info["facts"]
    assert numbers == [fact["value"] for fact in facts]
    scene = ctx.scene
    for fact in facts:
        ids = fact.get("instance_ids", [])
        if fact["kind"] == "box_distance":
            truth = box_distance(box_of(scene.object(ids[0])), box_of(scene.object(ids[1])))
        elif fact["kind"] == "camera_distance":
            truth = point_box_distance(scene.frame(fact["frame_id"]).pose[None, :3, 3], box_of(scene.object(ids[0])))[0]
        elif fact["kind"] == "camera_baseline":
            first, second = (scene.frame(f).pose[:3, 3] for f in fact["frame_ids"])
            truth = np.linalg.norm(first - second)
        elif fact["kind"] == "room_area":
            truth = polygon_area(scene.room.floor_polygon)
        else:
            assert fact["kind"] == "ceiling_height"
            truth = scene.room.ceiling_z - scene.room.floor_z
        assert fact["value"] == round(float(truth), 1), fact


def check_relations(ctx, sample):
    """Each stated relation holds in the geometry (camera-relative ones in the first frame's camera)."""
    frame = ctx.scene.frame(sample.meta_info["frame_ids"][0])
    for subject, predicate, target, _, margin in sample.meta_info["relations"]:
        a = box_of(ctx.scene.object(subject))
        assert margin >= 0
        assert f"the {sample.meta_info['names'][str(subject)]}" in sample.response.lower()
        if predicate == "against the wall":
            assert wall_distance(a, ctx.scene.room.floor_polygon) < 0.3
            continue
        b = box_of(ctx.scene.object(target))
        ca, cb = (world_to_camera(box_corners(box), frame.pose) for box in (a, b))
        checks = {
            "left of": lambda: ca[:, 0].max() < cb[:, 0].min(), "right of": lambda: ca[:, 0].min() > cb[:, 0].max(),
            "in front of": lambda: ca[:, 2].max() < cb[:, 2].min(), "behind": lambda: ca[:, 2].min() > cb[:, 2].max(),
            "on": lambda: abs(box_corners(a)[:, 2].min() - box_corners(b)[:, 2].max()) < 0.05,
            "next to": lambda: box_distance(a, b) < 0.5,
        }
        assert checks[predicate](), (subject, predicate, target)


@pytest.mark.parametrize("skill", SKILLS)
def test_captions_true_to_hand_built_scene(scene, skill):
    samples = [s for seed in range(4) for s in get_skill(skill).generate(scene, np.random.default_rng(seed))]
    assert samples
    for sample in samples:
        assert sample.answer == {"type": "text", "value": sample.response} and sample.reward == {}
        check_numbers(scene, sample)
        check_relations(scene, sample)
    texts = {s.response for s in samples}
    assert len(texts) >= 3  # wording varies with the rng


def test_single_caption_known_facts(scene):
    samples = [s for seed in range(10) for s in get_skill("si_scene_caption").generate(scene, np.random.default_rng(seed))]
    stills = [s for s in samples if s.meta_info["frame_ids"] == ["still-00"]]
    stated = [(a, p, b) for s in stills for a, p, b, _, _ in s.meta_info["relations"]]
    chair_table = [(a, p, b) for a, p, b in stated if {a, b} == {10, 11} and p in ("left of", "right of")]
    assert chair_table and all((a, p) in ((10, "left of"), (11, "right of")) for a, p, _ in chair_table)
    assert (13, "on", 10) in stated  # the vase stands on the table
    assert not any(p == "next to" and {a, b} == {10, 11} for a, p, b in stated)  # 1.0 m apart is not "next to"
    for sample in samples:
        assert sample.modality == "single" and sample.type == "si_scene_caption"
        assert sample.question.startswith("<|image_pad|>\n")
        assert sample.meta_info["facts"][0]["kind"] == "camera_distance"
        assert sample.meta_info["facts"][0]["instance_ids"] == [10]  # the table is nearest to every camera


def test_multi_and_video_formats(scene):
    multi = next(get_skill("mi_scene_caption").generate(scene, np.random.default_rng(0)))
    assert multi.modality == "multi" and len(multi.images) == 2
    assert multi.question.startswith("<|image_pad|><|image_pad|>\n")
    assert multi.meta_info["frame_ids"] == ["pair-00-a", "pair-00-b"]
    assert multi.meta_info["facts"][-1]["kind"] == "camera_baseline"
    video = next(get_skill("video_scene_caption").generate(scene, np.random.default_rng(0)))
    assert video.modality == "video" and video.type == "video" and len(video.images) == 1
    assert video.question.startswith("<|video_pad|>\nThese are frames of a video.\n")
    area, ceiling = video.meta_info["facts"][:2]
    assert (area["kind"], area["value"], ceiling["kind"], ceiling["value"]) == ("room_area", 64.0, "ceiling_height", 3.0)
    assert "64.0 square meters" in video.response


def test_template_banks_and_counts():
    for bank in (captions.SI_PROMPTS, captions.MI_PROMPTS, captions.VIDEO_PROMPTS, captions.SI_OPENINGS, captions.MI_OPENINGS,
                 captions.VIDEO_OPENINGS, captions.CONNECTIVES, captions.NEAREST, captions.BASELINE, captions.FURNITURE):
        assert len(set(bank)) >= 5
    phrases = [count_phrase("chair", 1), count_phrase("armchair", 1), count_phrase("box", 3), count_phrase("cup", 12)]
    assert phrases == ["a chair", "an armchair", "three boxes", "many cups"]


def test_rendered_scene_smoke(rendered_scene):
    scene, folder = rendered_scene
    ctx = SceneContext(scene, folder)
    for skill in SKILLS:
        samples = list(get_skill(skill).generate(ctx, np.random.default_rng(0)))
        assert samples, skill
        for sample in samples:
            check_numbers(ctx, sample)
            check_relations(ctx, sample)
