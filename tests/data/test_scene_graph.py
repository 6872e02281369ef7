"""Scene-graph relations: pure tests at the filter boundaries, then a rendered hand-built scene with known relations."""

import numpy as np
import pytest

from vst.data.scene_graph import (NEXT_TO_M, SEPARATION_M, box_of, build_scene_graph, camera_relations, graph_names,
                                  interval_order, pair_relations, plural, rests_on, wall_distance)
from vst.scene.geometry import Box, look_at
from vst.scene.types import OBB, Frame, Intrinsics, ObjectInstance


def _object(instance_id, category, center, size, **attributes):
    return ObjectInstance(instance_id=instance_id, category=category, box=OBB(center=center, size=size), attributes=attributes)


def _frame(eye=(0.0, 0.0, 1.0), target=(0.0, 1.0, 1.0), width=320):
    intrinsics = Intrinsics(fx=200.0, fy=200.0, cx=(width - 1) / 2, cy=119.5, width=width, height=240)
    return Frame(frame_id="f", intrinsics=intrinsics, cam_to_world=look_at(eye, target).tolist(), image_path="")


def _box(center, size=(0.4, 0.4, 0.4)):
    return Box(np.array(center, dtype=float), np.array(size, dtype=float), np.eye(3))


def test_interval_order_boundary():
    # a ends at 1.0; b must start beyond 1.0 + 0.05 for a strict "before"
    assert interval_order((0.0, 1.0), (1.049, 2.0), SEPARATION_M)[0] == 0
    assert interval_order((0.0, 1.0), (1.051, 2.0), SEPARATION_M)[0] == -1
    assert interval_order((1.051, 2.0), (0.0, 1.0), SEPARATION_M)[0] == 1
    order, slack = interval_order((0.0, 1.0), (1.25, 2.0), SEPARATION_M)
    assert order == -1 and slack == pytest.approx(0.2)


def test_camera_relations_left_right_and_depth():
    frame = _frame()  # at the origin, looking along +y: camera x = world x, camera depth = world y
    left, right = _box((-1.0, 3.0, 1.0)), _box((1.0, 3.0, 1.0))
    assert [p for p, _ in camera_relations(left, right, frame)] == ["left of"]
    assert [p for p, _ in camera_relations(right, left, frame)] == ["right of"]
    near, far = _box((0.0, 2.0, 1.0)), _box((0.0, 4.0, 1.0))
    relations = dict(camera_relations(near, far, frame))
    assert set(relations) == {"in front of"} and relations["in front of"] == pytest.approx(2.0 - 0.4 - SEPARATION_M)
    # 3D says the far box is further left, but in the picture the near box is: no left/right is stated
    near_left, far_lefter = _box((-0.6, 1.0, 1.0), (0.2, 0.2, 0.2)), _box((-1.2, 6.0, 1.0), (0.2, 0.2, 0.2))
    assert [p for p, _ in camera_relations(near_left, far_lefter, frame)] == ["in front of"]


def test_camera_relations_skip_boxes_behind_the_camera():
    assert camera_relations(_box((0.0, -2.0, 1.0)), _box((1.0, 3.0, 1.0)), _frame()) == []


def test_support_gap_boundary():
    table = _object(1, "table", (0.0, 0.0, 0.4), (1.0, 1.0, 0.8))
    on = _object(2, "cup", (0.1, 0.0, 0.8 + 0.049 + 0.05), (0.1, 0.1, 0.1))
    floating = _object(3, "cup", (0.1, 0.0, 0.8 + 0.051 + 0.05), (0.1, 0.1, 0.1))
    beside = _object(4, "cup", (0.7, 0.0, 0.85), (0.1, 0.1, 0.1))  # right height, but not over the table
    assert rests_on(on, table) and not rests_on(floating, table) and not rests_on(beside, table)
    assert rests_on(_object(5, "cup", (3.0, 3.0, 3.0), (0.1, 0.1, 0.1), on=1), table)  # recorded support wins
    assert [r.predicate for r in pair_relations(on, table, None)] == ["on"]


def test_next_to_boundary():
    table = _object(1, "table", (0.0, 0.0, 0.4), (1.0, 1.0, 0.8))
    close = _object(2, "box", (0.5 + 0.49 + 0.1, 0.0, 0.1), (0.2, 0.2, 0.2))
    far = _object(3, "box", (0.5 + 0.51 + 0.1, 0.0, 0.1), (0.2, 0.2, 0.2))
    relations = pair_relations(close, table, None)
    assert [r.predicate for r in relations] == ["next to"] and relations[0].distance_m == pytest.approx(0.49)
    assert relations[0].margin_m == pytest.approx(NEXT_TO_M - 0.49)
    assert pair_relations(far, table, None) == []


def test_wall_distance():
    square = [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0)]
    assert wall_distance(_box((2.0, 3.6, 0.2)), square) == pytest.approx(0.2)
    assert wall_distance(_box((2.0, 2.0, 0.2)), square) == pytest.approx(1.8)


def test_names_and_plurals():
    red = _object(1, "chair", (0, 0, 0), (1, 1, 1), color_name="red")
    blue = _object(2, "chair", (2, 0, 0), (1, 1, 1), color_name="blue")
    plain_a, plain_b = _object(3, "lamp", (4, 0, 0), (1, 1, 1)), _object(4, "lamp", (6, 0, 0), (1, 1, 1))
    table = _object(5, "coffee_table", (8, 0, 0), (1, 1, 1))
    names = graph_names([red, plain_a, table], [red, blue, plain_a, plain_b, table])
    assert names == {1: "red chair", 3: None, 5: "coffee table"}
    assert [plural(n) for n in ("chair", "box", "bookshelf", "glass")] == ["chairs", "boxes", "bookshelves", "glasses"]


def test_graph_on_rendered_scene(scene_builder):
    # table in the middle, chair 1.0 m to its right (camera x), a box 0.2 m to its left, a vase on top
    objects = [("table", (0, 3, 0.4), (1.2, 0.8, 0.8), 0), ("chair", (1.85, 3, 0.45), (0.5, 0.5, 0.9), 0),
               ("box", (-0.95, 3, 0.15), (0.3, 0.3, 0.3), 0), ("vase", (0.2, 3, 0.95), (0.2, 0.2, 0.3), 0)]
    ctx = scene_builder(objects, [("still-00", "still-00", (0, 0.3, 1.8), (0, 3, 0.4), 0.0)], hfov=90.0)
    frame = ctx.scene.frames[0]
    graph = build_scene_graph(ctx, [frame], reference=frame)
    assert {o.instance_id for o in graph.objects} == {10, 11, 12, 13}
    facts = {(r.subject, r.predicate, r.target): r for r in graph.relations}
    assert (13, "on", 10) in facts
    assert (10, "left of", 11) in facts and facts[(10, "left of", 11)].distance_m == pytest.approx(1.0)
    # the box is 0.2 m left of the table in 3D, but only ~9 px apart in the picture (< 3 % of 320 px): no left/right
    assert not any(r.predicate in ("left of", "right of") and {r.subject, r.target} == {10, 12} for r in graph.relations)
    assert (11, "right of", 12) in facts
    assert facts[(10, "next to", 12)].distance_m == pytest.approx(0.2)
    assert not any(r.predicate == "next to" and {r.subject, r.target} == {10, 11} for r in graph.relations)
    assert box_of(ctx.scene.object(11)).center[0] == pytest.approx(1.85)
