"""Route planning: turn classification at its boundaries, an L-shaped corridor, and rendered empty rooms with known turns."""

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.skills import get_skill
from vst.data.skills.video_route import (
    RoutePlanner, classify_turn, heading_change_deg, plan_route, route_margin_deg, turn_margin_deg)
from vst.scene.cameras import GRID_RESOLUTION, FreeSpace
from vst.scene.types import Room, Scene

FPS = 2.0


def test_turn_boundaries():
    assert classify_turn(59.9) is None and classify_turn(60.1) == "left"
    assert classify_turn(-60.1) == "right" and classify_turn(-119.9) == "right"
    assert classify_turn(120.1) is None and classify_turn(149.9) is None
    assert classify_turn(150.1) == "back" and classify_turn(-150.1) == "back" and classify_turn(180.0) == "back"
    assert classify_turn(10.0) is None
    assert turn_margin_deg(60.1) == pytest.approx(0.1) and turn_margin_deg(59.9) == pytest.approx(-0.1)
    assert turn_margin_deg(90.0) == pytest.approx(30.0) and turn_margin_deg(150.1) == pytest.approx(0.1)
    assert turn_margin_deg(140.0) < 0 and turn_margin_deg(-125.0) < 0


def test_heading_change_wraps():
    assert heading_change_deg(170.0, -170.0) == pytest.approx(20.0)  # counter-clockwise across 180
    assert heading_change_deg(90.0, 0.0) == pytest.approx(-90.0)  # north to east is a right turn
    assert heading_change_deg(0.0, 180.0) == pytest.approx(180.0) and heading_change_deg(180.0, 0.0) == pytest.approx(180.0)


def cell_at(planner: RoutePlanner, xy) -> int:
    grid = np.rint((np.asarray(xy) - planner.space.origin) / GRID_RESOLUTION).astype(int)
    return int(planner.index[tuple(grid)])


def test_l_corridor_gives_one_right_turn():
    # an L-shaped floor: a 2 m wide corridor north along x in [0, 2], then east along y in [4, 6] to x = 8.
    # Walking north from (1.6, 0.6) up the corridor's east side, the walker rounds the inner corner (2, 4) (kept 0.3 m
    # away) and heads east along y ~ 4.4 to (7, 4.4): north to east is a clockwise change of about -90 deg, a right turn.
    floor = [(0, 0), (2, 0), (2, 4), (8, 4), (8, 6), (0, 6)]
    scene = Scene(scene_id="l", source="test", room=Room(floor_polygon=floor, ceiling_z=3.0, area_m2=20.0))
    planner = RoutePlanner(FreeSpace(scene))
    route = plan_route(planner, cell_at(planner, (1.6, 0.6)), np.array([1.6, 3.0]), cell_at(planner, (7.0, 4.4)))
    assert route is not None
    assert [kind for _, kind, _ in route.turns] == ["right"]
    assert len(route.stretches) == 2 and route.turns[0][0] == 1  # the turn comes between the two stretches
    assert route.turns[0][2] == pytest.approx(-90.0, abs=8.0)
    assert route_margin_deg(route) >= 0 and all(abs(change) < 20.0 for change in route.straight_changes_deg)
    assert np.allclose(route.points[0], (1.6, 0.6)) and np.allclose(route.points[-1], (7.0, 4.4))
    corner = route.points[1]
    assert 1.7 <= corner[0] <= 2.4 and 4.0 <= corner[1] <= 4.4  # the bend sits at the inner corner


def test_walk_of_no_length_gives_no_route():
    floor = [(0, 0), (2, 0), (2, 4), (8, 4), (8, 6), (0, 6)]
    scene = Scene(scene_id="l", source="test", room=Room(floor_polygon=floor, ceiling_z=3.0, area_m2=20.0))
    planner = RoutePlanner(FreeSpace(scene))
    start = cell_at(planner, (1.6, 0.6))
    assert plan_route(planner, start, np.array([1.6, 3.0]), start) is None  # no walk, nothing to ask


def empty_room(scene_builder, destination_x):
    # chair A at the origin, table B 3 m north, sofa C 3 m west (or east), 0.6 m north. Free cells keep 0.3 m from
    # the boxes' rectangles, so the chair's closest free cells are (-0.2..0.2, +-0.6) and the start is the one
    # nearest the table, (0, 0.6), facing north; the sofa's closest cells are (-2.4 or 2.4, 0.4..0.8) and the goal is
    # the one nearest the start, (+-2.4, 0.6). The walk heads due west (+90 deg, counter-clockwise: turn left) or due
    # east (-90 deg: turn right). Sizes of 0.45 m keep the clearance edges off the 0.1 m grid lines.
    objects = [("chair", (0.0, 0.0, 0.4), (0.45, 0.45, 0.8), 0.0), ("table", (0.0, 3.0, 0.4), (0.6, 0.6, 0.8), 0.0),
               ("sofa", (destination_x, 0.6, 0.4), (0.45, 0.45, 0.8), 0.0)]
    cameras = [(f"video-{k:04d}", "video", (0.0, -3.5, 1.6), (x, 1.0, 0.3), k / FPS) for k, x in enumerate((-4, -2, 0, 2, 4))]
    return scene_builder(objects, cameras, size=(160, 120), fps=FPS)


def samples(ctx: SceneContext, seed=0):
    return list(get_skill("video_route_plan").generate(ctx, np.random.default_rng(seed)))


@pytest.mark.parametrize("destination_x, turn", [(-3.0, "Turn Left"), (3.0, "Turn Right")])
def test_empty_room_route(scene_builder, destination_x, turn):
    produced = samples(empty_room(scene_builder, destination_x))
    chosen = [s for s in produced if s.meta_info["instance_ids"] == [10, 11, 12]]
    assert len(chosen) == 1
    sample = chosen[0]
    option = next(o for o in sample.answer["options"] if o.startswith(sample.answer["value"] + "."))
    assert option.endswith(turn)
    assert len(sample.answer["options"]) == 3  # one blank: the other two turn words
    meta = sample.meta_info
    assert meta["turn_changes_deg"] == [pytest.approx(90.0 if turn == "Turn Left" else -90.0, abs=0.01)]
    assert meta["margin_deg"] == pytest.approx(30.0, abs=0.01)
    assert np.allclose(meta["path_xy"], [[0.0, 0.6], [np.sign(destination_x) * 2.4, 0.6]])
    assert meta["landmark_ids"] == [12] and meta["start_distance_m"] == pytest.approx(0.375, abs=1e-3)
    assert "1. [please fill in] 2. Go forward until the sofa." in sample.question
    assert sample.question.startswith("<|video_pad|>\nThese are frames of a video.\n")
    for other in produced:  # every route's turns lie in the accepted ranges
        assert all(classify_turn(change) is not None for change in other.meta_info["turn_changes_deg"])


def test_rendered_scene_smoke(rendered_scene):
    scene, folder = rendered_scene
    produced = samples(SceneContext(scene, folder))
    assert produced and all(s.skill == "video_route_plan" and s.answer["type"] == "mc" for s in produced)
