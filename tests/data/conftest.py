"""Hand-built scenes with known answers for skill tests: boxes placed by the test, rendered for real."""

from __future__ import annotations

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.scene.capture import render_scene
from vst.scene.geometry import focal_from_fov, look_at, rotation_z
from vst.scene.types import OBB, Frame, Intrinsics, ObjectInstance, Room, Scene


def build_scene(tmp_path, objects, cameras, size=(320, 240), hfov=70.0, room=(-4.0, -4.0, 4.0, 4.0), fps=None, scene_id="hand"):
    """Render a scene of plain boxes and return its SceneContext.

    objects: [(category, center (3,), size (3,), yaw_degrees)] with instance ids 10, 11, ... in order;
    cameras: [(frame_id, sequence, eye (3,), target (3,), timestamp)]. The room is a rectangle x0, y0, x1, y1, 3 m high.
    """
    width, height = size
    focal = focal_from_fov(hfov, width)
    intrinsics = Intrinsics(fx=focal, fy=focal, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)
    instances = [
        ObjectInstance(instance_id=10 + i, category=category, description=f"the {category}",
                       box=OBB(center=tuple(map(float, center)), size=tuple(map(float, box_size)), rotation=rotation_z(np.radians(yaw)).tolist()))
        for i, (category, center, box_size, yaw) in enumerate(objects)
    ]
    frames = [Frame(frame_id=frame_id, sequence=sequence, timestamp=timestamp, intrinsics=intrinsics, cam_to_world=look_at(eye, target).tolist(), image_path="")
              for frame_id, sequence, eye, target, timestamp in cameras]
    x0, y0, x1, y1 = room
    scene = Scene(scene_id=scene_id, source="test", objects=instances, frames=frames, fps=fps,
                  room=Room(floor_polygon=[(x0, y0), (x1, y0), (x1, y1), (x0, y1)], ceiling_z=3.0, area_m2=(x1 - x0) * (y1 - y0)))
    return SceneContext(render_scene(scene, tmp_path), tmp_path)


@pytest.fixture
def scene_builder(tmp_path):
    def build(objects, cameras, **kwargs):
        return build_scene(tmp_path, objects, cameras, **kwargs)

    return build
