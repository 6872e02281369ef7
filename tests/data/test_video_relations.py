"""Video object-object relations: hand-built layouts with known nearest objects and directions; filter boundaries."""

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.skills import get_skill
from vst.data.skills.video_relations import SECTORS, direction_angles_deg, gap_margin_m, sector_label, sector_margin_deg
from vst.data.video import PRE_PROMPT, seen_in_video, video_frames, world_box
from vst.scene.geometry import box_distance

FPS = 4.0
SIZE = (160, 120)


def video_cameras(eye, target, count=3):
    """`count` video frames sliding along x from `eye`, timestamps k / FPS."""
    return [(f"video-{k:04d}", "video", (eye[0] - 0.3 + 0.3 * k, eye[1], eye[2]), target, k / FPS) for k in range(count)]


def generate(ctx, seed=0):
    return list(get_skill("video_object_object").generate(ctx, np.random.default_rng(seed)))


def correct_option(sample) -> str:
    letter = sample.answer["value"]
    return next(o for o in sample.answer["options"] if o.startswith(letter + "."))[len(letter) + 2:]


def test_nearest_gap_boundary():
    # small room: the nearest must lead the second by 0.15 m (10 % of ~1.15 m is less)
    assert gap_margin_m([1.0, 1.149, 3.0, 4.0], 30.0) < 0 < gap_margin_m([1.0, 1.151, 3.0, 4.0], 30.0)
    # rooms over 40 m^2 need 0.30 m (the room-adaptive gap VLM-3R never applied)
    assert gap_margin_m([1.0, 1.299, 3.0, 4.0], 40.5) < 0 < gap_margin_m([1.0, 1.301, 3.0, 4.0], 40.5)
    assert gap_margin_m([1.0, 1.2, 3.0, 4.0], 40.0) > 0  # exactly 40 m^2 is not large
    # far away the relative part dominates: the second at 3.33 m needs 0.333 m
    assert gap_margin_m([3.0, 3.33], 30.0) < 0 < gap_margin_m([3.0, 3.34], 30.0)


def test_direction_angles_and_sectors():
    # standing at the origin facing +y: (-1, 1) is 45 deg to the left, (1, -1) is behind on the right
    assert direction_angles_deg((0, 0), (0, 2), [(-1, 1), (1, -1), (0, -3)]) == pytest.approx([45.0, 225.0, 180.0])
    assert [sector_label(45.0, SECTORS[d]) for d in ("easy", "medium", "hard")] == ["left", "left", "front-left"]
    assert [sector_label(200.0, SECTORS[d]) for d in ("easy", "medium", "hard")] == ["right", "back", "back-right"]
    assert sector_label(300.0, SECTORS["medium"]) == "right" and sector_label(100.0, SECTORS["medium"]) == "left"


@pytest.mark.parametrize("difficulty, boundary", [("easy", 0.0), ("easy", 180.0), ("medium", 135.0), ("medium", 225.0),
                                                  ("hard", 90.0), ("hard", 270.0)])
def test_sector_margin_is_symmetric(difficulty, boundary):
    for side in (-1.0, 1.0):  # VLM-3R checked one side only
        assert sector_margin_deg((boundary + side * 14.9) % 360, SECTORS[difficulty]) < 15.0
        assert sector_margin_deg((boundary + side * 15.1) % 360, SECTORS[difficulty]) > 15.0


@pytest.fixture
def nearest_layout(scene_builder):
    # closest-point distances from the table: chair 0.5 m, box 0.8 m, lamp 1.3 m, plant 1.7 m; room 6 m x 6 m = 36 m^2
    objects = [("table", (0.0, 3.0, 0.4), (0.6, 0.6, 0.8), 0.0), ("chair", (1.0, 3.0, 0.3), (0.4, 0.4, 0.6), 0.0),
               ("box", (-1.3, 3.0, 0.2), (0.4, 0.4, 0.4), 0.0), ("lamp", (0.0, 4.8, 0.6), (0.4, 0.4, 1.2), 0.0),
               ("plant", (2.2, 3.0, 0.3), (0.4, 0.4, 0.6), 0.0)]
    return scene_builder(objects, video_cameras((0.0, -0.5, 2.0), (0.0, 3.2, 0.3)), size=SIZE, hfov=90.0, fps=FPS,
                         room=(-3.0, -1.0, 3.0, 5.0))


def test_relative_distance_picks_the_known_nearest(nearest_layout):
    ctx = nearest_layout
    assert all(seen_in_video(ctx, video_frames(ctx), obj) for obj in ctx.objects)
    samples = [s for s in generate(ctx) if s.meta_info["form"] == "object_rel_distance"]
    assert samples
    table = [s for s in samples if s.meta_info["instance_ids"][0] == 10]
    assert len(table) == 1 and correct_option(table[0]) == "chair"
    hand = {11: 0.5, 12: 0.8, 13: 1.3, 14: 1.7}
    assert dict(zip(table[0].meta_info["instance_ids"][1:], table[0].meta_info["distances_m"])) == pytest.approx(hand, abs=1e-6)
    assert table[0].meta_info["margin_m"] == pytest.approx(0.15, abs=1e-6)  # 0.8 - 0.5 - 0.15
    for sample in samples:
        target, *options = (ctx.scene.object(i) for i in sample.meta_info["instance_ids"])
        distances = [box_distance(world_box(target), world_box(o)) for o in options]
        assert sample.meta_info["distances_m"] == pytest.approx(distances, abs=1e-4)
        assert correct_option(sample) == options[int(np.argmin(distances))].category
        assert sample.answer["options"] == [f"{letter}. {o.category}" for letter, o in zip("ABCD", options)]
        assert sample.question.startswith(f"<|video_pad|>\n{PRE_PROMPT}\n") and "\nOptions:\nA. " in sample.question


@pytest.fixture
def direction_layout(scene_builder):
    # sofa at the origin, tv 2 m ahead (+y), lamp at (-1, 1), stool 1.2 m behind the sofa
    objects = [("sofa", (0.0, 0.0, 0.3), (0.4, 0.4, 0.6), 0.0), ("tv", (0.0, 2.0, 0.3), (0.4, 0.4, 0.6), 0.0),
               ("lamp", (-1.0, 1.0, 0.3), (0.4, 0.4, 0.6), 0.0), ("stool", (0.0, -1.2, 0.3), (0.4, 0.4, 0.6), 0.0)]
    return scene_builder(objects, video_cameras((0.0, -3.0, 2.5), (0.0, 0.8, 0.0)), size=SIZE, hfov=90.0, fps=FPS,
                         room=(-3.0, -3.5, 3.0, 3.0))


# (standing, facing, query) -> hand-computed angle and the answer per difficulty (None: within 15 deg of a boundary)
EXPECTED = {
    (10, 11, 12): (45.0, {"easy": "left", "medium": "left", "hard": "front-left"}),
    (11, 10, 12): (315.0, {"easy": "right", "medium": "right", "hard": "front-right"}),
    (12, 10, 11): (90.0, {"easy": "left", "medium": "left", "hard": None}),
    (12, 11, 10): (270.0, {"easy": "right", "medium": "right", "hard": None}),
    (10, 11, 13): (180.0, {"easy": None, "medium": "back", "hard": None}),
}


def test_relative_direction_matches_hand_computed_angles(direction_layout):
    ctx = direction_layout
    assert all(seen_in_video(ctx, video_frames(ctx), obj) for obj in ctx.objects)
    checked = set()
    for seed in range(6):
        for sample in generate(ctx, seed):
            meta = sample.meta_info
            assert meta["form"] == f"object_rel_direction_{meta['difficulty']}" and meta["margin_deg"] >= 0
            assert correct_option(sample) == meta["label"]
            assert len(sample.answer["options"]) == len(SECTORS[meta["difficulty"]])
            key = tuple(meta["instance_ids"])
            if key in EXPECTED:
                angle, labels = EXPECTED[key]
                assert meta["angle_deg"] == pytest.approx(angle, abs=1e-6)
                assert labels[meta["difficulty"]] is not None and meta["label"] == labels[meta["difficulty"]]
                checked.add((key, meta["difficulty"]))
    assert ((10, 11, 13), "medium") in checked  # the only form that survives at exactly 180 deg
    assert {difficulty for _, difficulty in checked} == {"easy", "medium", "hard"}


@pytest.mark.parametrize("bench_length, asked", [(2.0, False), (0.4, True)])
def test_query_straddling_a_boundary_is_skipped(scene_builder, bench_length, asked):
    # facing +y from the origin, the bench centre is 20 deg left of straight ahead (clear of the 15 deg margin), but a
    # 2 m bench reaches across the line of sight: 4 of its 8 corners are on the right, fewer than the 6 required
    centre = (-2.0 * np.sin(np.radians(20.0)), 2.0 * np.cos(np.radians(20.0)), 0.3)
    objects = [("sofa", (0.0, 0.0, 0.3), (0.4, 0.4, 0.6), 0.0), ("tv", (0.0, 4.0, 0.3), (0.4, 0.4, 0.6), 0.0),
               ("bench", centre, (bench_length, 0.2, 0.6), 0.0)]
    ctx = scene_builder(objects, video_cameras((0.0, -2.5, 2.5), (0.0, 1.5, 0.0)), size=SIZE, hfov=90.0, fps=FPS,
                        room=(-3.0, -3.0, 3.0, 4.5))
    assert all(seen_in_video(ctx, video_frames(ctx), obj) for obj in ctx.objects)
    asked_triples = [tuple(s.meta_info["instance_ids"]) for s in generate(ctx)]
    assert ((10, 11, 12) in asked_triples) == asked


def test_rendered_scene_gives_samples(rendered_scene):
    scene, folder = rendered_scene
    samples = generate(SceneContext(scene, folder))
    forms = {s.meta_info["form"] for s in samples}
    assert "object_rel_distance" in forms and any(form.startswith("object_rel_direction_") for form in forms)
