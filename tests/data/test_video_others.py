"""Cognitive maps and frame locating on a hand-built pan, with grid cells and first-appearance times worked out by hand."""

import json
import math

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.skills import get_skill
from vst.data.skills.video_others import LOCATE_TOLERANCE_S, locate_tolerance, map_cells, map_rotation
from vst.common.rewards import numeric
from vst.scene.geometry import look_at
from vst.scene.types import Frame, Intrinsics

FPS = 2.0
SQUARE_ROOM = [(-4.0, -4.0), (4.0, -4.0), (4.0, 4.0), (-4.0, 4.0)]


def frame_facing(target_xy) -> Frame:
    intrinsics = Intrinsics(fx=100, fy=100, cx=79.5, cy=59.5, width=160, height=120)
    pose = look_at((0, 0, 1.2), (*target_xy, 1.0))
    return Frame(frame_id="f", intrinsics=intrinsics, cam_to_world=pose.tolist(), image_path="")


@pytest.fixture
def pan_scene(scene_builder):
    # camera at (0, -3, 1.2) turning clockwise 10 deg per frame from facing -x; chair, table, cabinet come into view in order
    cameras = []
    for k in range(19):
        yaw = np.radians(180.0 - 10.0 * k)
        cameras.append((f"video-{k:04d}", "video", (0.0, -3.0, 1.2), (np.cos(yaw), -3 + np.sin(yaw), 1.0), k / FPS))
    objects = [("chair", (-3.0, 2.0, 0.5), (0.6, 0.6, 1.0), 0.0), ("table", (0.4, 2.0, 0.5), (0.6, 0.6, 1.0), 0.0),
               ("cabinet", (3.0, 2.0, 0.5), (0.6, 0.6, 1.0), 0.0)]
    return scene_builder(objects, cameras, size=(160, 120), fps=FPS)


def samples(ctx: SceneContext, seed=0):
    return list(get_skill("video_others").generate(ctx, np.random.default_rng(seed)))


def test_map_cells_facing_plus_y():
    # facing +y: columns follow x, rows run from y = +4 (row 0, far) to y = -4 (row 9, near); cells are 0.8 m
    rotation, snapped, margin = map_rotation(frame_facing((0.0, 5.0)))
    assert snapped == 90.0 and margin == pytest.approx(45.0)
    cells, edge = map_cells([(-3.0, 2.0), (0.4, -0.5), (3.9, -3.9)], SQUARE_ROOM, rotation)
    # x -3 -> 1/0.8 = 1.25 -> column 1; y 2 -> (4 - 2)/0.8 = 2.5 -> row 2; (0.4, -0.5) -> 5.5, 5.625; (3.9, -3.9) -> 9.875, 9.875
    assert cells.tolist() == [[1, 2], [5, 5], [9, 9]]
    assert edge == pytest.approx([0.2, 0.3, 0.1])


def test_map_heading_snaps_and_reports_margin():
    _, snapped, margin = map_rotation(frame_facing((1.0, np.tan(np.radians(30.0)))))  # 30 deg off +x
    assert snapped == 0.0 and margin == pytest.approx(15.0)
    _, snapped, margin = map_rotation(frame_facing((-1.0, 0.0)))
    assert abs(snapped) == 180.0 and margin == pytest.approx(45.0)


def test_locate_tolerance_is_half_a_second_or_one_frame():
    assert locate_tolerance(2.0, fps=4.0) == pytest.approx(LOCATE_TOLERANCE_S / 2.0)
    assert locate_tolerance(2.0, fps=1.0) == pytest.approx(1.0 / 2.0)  # one frame at 1 fps is coarser than 0.5 s


@pytest.mark.parametrize("fps", [1.0, 2.0, 3.0, 7.0, 29.97, 30.0])
def test_locate_tolerance_rounds_up_never_below_half_a_second_or_one_frame(fps):
    window = max(LOCATE_TOLERANCE_S, 1.0 / fps)
    for answer in np.round(np.arange(1.0, 60.0, 0.01), 2):  # every stored answer (2 decimals) from 1 s to 60 s
        tolerance = locate_tolerance(float(answer), fps)
        assert tolerance == round(tolerance, 4)  # stored at 4 decimals
        assert tolerance * answer >= window - 1e-12  # never narrower than the promised window ...
        assert (tolerance - 1e-4) * answer < window  # ... and rounded up by less than one step
    # the old round-to-nearest gave 0.3333 at 1.5 s: a guess 0.5 s off (2.0 s) scored 0 under the numeric reward
    assert round(0.5 / 1.5, 4) * 1.5 < 0.5 and locate_tolerance(1.5, 2.0) == 0.3334
    for answer, guess in [(1.5, 2.0), (1.5, 1.0), (1.7, 2.2), (4.5, 5.0), (2.9, 2.4)]:
        reward = numeric(f"{guess}", {"type": "number", "value": answer}, tolerance=locate_tolerance(answer, 2.0))
        assert reward == 1.0, (answer, guess)
    assert numeric("2.01", {"type": "number", "value": 1.5}, tolerance=locate_tolerance(1.5, 2.0)) == 0.0


def test_cognitive_map_on_the_pan(pan_scene):
    maps = [s for s in samples(pan_scene) if s.meta_info["form"] == "cognitive_map"]
    assert maps
    # the first frame faces -x, so the map's forward is -x and its right is +y: column = (y + 4) / 0.8,
    # row = (x + 4) / 0.8 (the chair at x = -3 is far).
    # chair (-3, 2) -> [7.5, 1.25] -> [7, 1]; table (0.4, 2) -> [7.5, 5.5] -> [7, 5]; cabinet (3, 2) -> [7.5, 8.75] -> [7, 8]
    expected = {"chair": [[7, 1]], "table": [[7, 5]], "cabinet": [[7, 8]]}
    for sample in maps:
        assert sample.answer == {"type": "map", "value": expected}
        assert json.loads(sample.response) == expected
        assert sample.reward == {"fn": "map"} and sample.meta_info["grid_heading_deg"] in (180.0, -180.0)
        assert sample.question.startswith("<|video_pad|>\nThese are frames of a video.\n")


def test_frame_locate_on_the_pan(pan_scene):
    located = {s.meta_info["instance_ids"][0]: s for s in samples(pan_scene) if s.meta_info["form"] == "frame_locate"}
    assert set(located) == {10, 11, 12}
    # bearings from the camera: chair 121 deg, table 85 deg, cabinet 59 deg; the 70-deg view meets each one about
    # 35 deg before facing it, i.e. at heading 156 / 120 / 94 deg -> frames 3 / 6 / 9 (10 deg per frame, 2 fps)
    assert [located[i].answer["value"] for i in (10, 11, 12)] == [1.5, 3.0, 4.5]
    for sample in located.values():
        seconds = sample.answer["value"]
        assert sample.answer["unit"] == "s"
        # max(0.5 s, one frame at 2 fps) / answer, rounded UP at 4 decimals: 0.3334, 0.1667, 0.1112
        assert sample.reward == {"fn": "numeric", "kwargs": {"tolerance": math.ceil(0.5 / seconds * 1e4) / 1e4}}
        assert sample.reward["kwargs"]["tolerance"] * seconds >= 0.5
        assert sample.meta_info["pixels"] >= sample.meta_info["min_pixels"] > sample.meta_info["pixels_before"]


def test_rendered_scene_smoke(rendered_scene):
    scene, folder = rendered_scene
    produced = samples(SceneContext(scene, folder))
    assert produced and {s.meta_info["form"] for s in produced} <= {"cognitive_map", "frame_locate"}
