"""Depth comparison on a hand-built scene with known depths, and its gap filter at the boundary."""

import numpy as np
import pytest

import vst.data.skills.si_depth as si_depth
from vst.data.skills import get_skill
from vst.data.skills.si_depth import OBJECT_GAP_M, OBJECT_GAP_REL, gap_margin, object_gap_in_point_order


def test_gap_filter_boundary():
    # at 1.0 m vs 1.149 m the required gap is max(0.15, 0.1149) = 0.15 m
    assert gap_margin(1.0, 1.149, OBJECT_GAP_M, OBJECT_GAP_REL) < 0
    assert gap_margin(1.0, 1.151, OBJECT_GAP_M, OBJECT_GAP_REL) > 0
    # far away the relative part dominates: 4.0 vs 4.43 needs 0.443 m
    assert gap_margin(4.0, 4.43, OBJECT_GAP_M, OBJECT_GAP_REL) < 0 < gap_margin(4.0, 4.46, OBJECT_GAP_M, OBJECT_GAP_REL)


@pytest.fixture
def two_boxes(scene_builder):
    # camera at the origin looking along +y at 1 m height: the chair's front face is 2.0 m deep, the table's 3.5 m
    objects = [("chair", (-0.6, 2.25, 0.5), (0.5, 0.5, 1.0), 0.0), ("table", (0.7, 3.75, 0.5), (0.6, 0.5, 1.0), 0.0)]
    cameras = [("still-00", "still-00", (0, 0, 1.0), (0, 1, 1.0), 0.0)]
    return scene_builder(objects, cameras)


def test_answers_match_known_depths(two_boxes):
    samples = list(get_skill("si_depth_comparison").generate(two_boxes, np.random.default_rng(0)))
    assert samples
    for sample in samples:
        meta = sample.meta_info
        assert meta["scene_id"] == "hand" and meta["frame_ids"] == ["still-00"]
        if meta["form"] in ("points", "boxes"):
            depths = dict(zip(meta["instance_ids"], meta["depths_m"]))
            # points sit on a visible face: the chair spans depths 2.0-2.5 m, the table 3.5-4.0 m
            assert 1.99 <= depths[10] <= 2.51 and 3.49 <= depths[11] <= 4.01
            closer = "chair" if meta["relation"] == "closer" else "table"
            if sample.answer["type"] == "mc":
                option = next(o for o in sample.answer["options"] if o.startswith(sample.answer["value"] + "."))
                assert option.endswith(closer)
            else:
                assert sample.answer["value"] == closer
            assert meta["margin_m"] > 0
        assert sample.images and sample.images[0].bytes[:2] == b"\xff\xd8"  # JPEG with markers drawn
        assert sample.question.startswith("<|image_pad|>\n")


def test_object_gap_in_point_order():
    assert object_gap_in_point_order([1.0, 2.0], [1.5, 2.5]) == pytest.approx(1.0)  # points and objects agree
    assert object_gap_in_point_order([2.0, 1.0], [2.5, 1.5]) == pytest.approx(1.0)
    assert object_gap_in_point_order([3.5, 2.9], [1.8, 2.9]) == pytest.approx(-1.1)  # far point on a near object
    assert object_gap_in_point_order([1.0, 2.0], [2.0, 2.0]) == 0.0  # objects tied: cannot confirm the points' order


@pytest.fixture
def long_bed(scene_builder):
    # a low bed running away from the camera (1.5-4.5 m along y, 0.5 m high) next to a bookshelf whose front face is
    # 3.0 m away; the camera looks slightly down, so the bed's top is seen up to its far end (about 4.2 m deep) while
    # most of its visible pixels are near (median about 1.8 m, the bookshelf's about 2.9 m): a point on the far end of
    # the bed lies behind a point on the bookshelf although the bed is the closer object
    objects = [("bed", (-0.7, 3.0, 0.25), (1.2, 3.0, 0.5), 0.0), ("bookshelf", (0.9, 3.2, 0.9), (0.8, 0.4, 1.8), 0.0)]
    cameras = [("still-00", "still-00", (0, 0, 1.3), (0, 1, 0.9), 0.0)]
    return scene_builder(objects, cameras)


def test_point_pairs_never_contradict_the_objects(long_bed, monkeypatch):
    frame = long_bed.scene.frames[0]
    medians = {i: frame.visibility[i].depth_median for i in (10, 11)}
    bed_depths = long_bed.depth(frame)[long_bed.instance_ids(frame) == 10]
    assert medians[10] < 2.0 < 2.8 < medians[11] and bed_depths.max() > medians[11] + 0.5  # the trap exists
    gaps = []

    def spy(point_depths, object_depths):
        gaps.append(object_gap_in_point_order(point_depths, object_depths))
        return gaps[-1]

    monkeypatch.setattr(si_depth, "object_gap_in_point_order", spy)
    pairs = [s for seed in range(20) for s in get_skill("si_depth_comparison").generate(long_bed, np.random.default_rng(seed))
             if s.meta_info["form"] == "points"]
    assert pairs and any(g <= 0 for g in gaps)  # some markers did land on the far end of the bed, and were dropped
    for sample in pairs:
        meta = sample.meta_info
        points, objects = meta["depths_m"], [medians[i] for i in meta["instance_ids"]]
        assert objects == pytest.approx(meta["object_depths_m"], abs=1e-4)
        assert (points[0] < points[1]) == (objects[0] < objects[1])  # the points' order is the objects' order
        assert meta["margin_m"] > 0
        winner = "bed" if meta["relation"] == "closer" else "bookshelf"
        if sample.answer["type"] == "mc":
            assert next(o for o in sample.answer["options"] if o.startswith(sample.answer["value"] + ".")).endswith(winner)
        else:
            assert sample.answer["value"] == winner
