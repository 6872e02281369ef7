"""Renderer against an analytic float64 ray/box intersector (spec data.md §3.3)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vst.scene import geometry as g
from vst.scene.capture import compute_visibility, read_depth, read_instance_ids, render_scene
from vst.scene.mesh import scene_mesh, triangulate_polygon
from vst.scene.render import Renderer
from vst.scene.types import OBB, Frame, Intrinsics, ObjectInstance, Scene

SIZE = 448


def box_scene(seed: int, n_boxes: int = 10) -> Scene:
    """Random yawed boxes on the floor of a 6 x 5 m area, seen from cameras on an ellipse; no room surfaces."""
    rng = np.random.default_rng(seed)
    objects = []
    for index in range(n_boxes):
        size = rng.uniform(0.3, 1.2, 3)
        center = [rng.uniform(-2.2, 2.2), rng.uniform(-1.8, 1.8), size[2] / 2]
        rotation = Rotation.from_euler("xyz", [rng.uniform(-20, 20), rng.uniform(-20, 20), rng.uniform(0, 180)], degrees=True)
        objects.append(ObjectInstance(instance_id=10 + index, category="box", box=OBB(center=center, size=size.tolist(), rotation=rotation.as_matrix().tolist())))
    focal = g.focal_from_fov(70.0, SIZE)
    intrinsics = Intrinsics(fx=focal, fy=focal, cx=(SIZE - 1) / 2, cy=(SIZE - 1) / 2, width=SIZE, height=SIZE)
    frames = []
    for index, angle in enumerate(np.linspace(0, 2 * np.pi, 4, endpoint=False)):
        eye = [4.5 * np.cos(angle), 4.0 * np.sin(angle), 1.5]
        frames.append(Frame(frame_id=f"view{index}", intrinsics=intrinsics, cam_to_world=g.look_at(eye, [0, 0, 0.4]).tolist(), image_path=""))
    return Scene(scene_id=f"boxes-{seed}", source="test", objects=objects, frames=frames)


def analytic_render(scene: Scene, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """Exact planar depth and instance id at every pixel centre, by ray/OBB slab intersection in float64."""
    intrinsics = frame.intrinsics
    u, v = np.meshgrid(np.arange(intrinsics.width), np.arange(intrinsics.height))
    rays_cam = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones_like(u, dtype=float)], -1).reshape(-1, 3)
    pose = frame.pose
    origin, directions = pose[:3, 3], rays_cam @ pose[:3, :3].T
    best_t = np.full(len(directions), np.inf)
    best_id = np.zeros(len(directions), dtype=np.int64)
    for obj in scene.objects:
        rotation, center, half = obj.box.rotation_matrix, np.asarray(obj.box.center), np.asarray(obj.box.size) / 2
        local_origin, local_direction = (origin - center) @ rotation, directions @ rotation
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-half - local_origin) / local_direction, (half - local_origin) / local_direction
        t_near = np.nanmax(np.minimum(t1, t2), axis=1)
        t_far = np.nanmin(np.maximum(t1, t2), axis=1)
        hit = (t_near <= t_far) & (t_near > 0) & (t_near < best_t)
        best_t[hit], best_id[hit] = t_near[hit], obj.instance_id
    depth = np.where(np.isfinite(best_t), best_t, 0.0)  # ray z component is 1 in camera space: t is planar depth
    return depth.reshape(intrinsics.height, intrinsics.width), best_id.reshape(intrinsics.height, intrinsics.width)


@pytest.fixture(scope="module")
def renderer():
    renderer = Renderer()
    yield renderer
    renderer.release()


@pytest.mark.parametrize("seed", [0, 1])
def test_depth_and_ids_match_analytic(renderer, seed):
    scene = box_scene(seed)
    renderer.set_mesh(scene_mesh(scene))
    for frame in scene.frames:
        output = renderer.render(frame.intrinsics, frame.pose)
        depth, ids = analytic_render(scene, frame)
        agree = output.instance_ids == ids
        assert agree.mean() >= 0.999
        on_object = agree & (ids > 0)
        assert on_object.sum() > 1000
        assert np.abs(output.depth[on_object] - depth[on_object]).max() < 1e-3
        assert np.all(output.depth[ids == 0][agree[ids == 0]] == 0)


def test_box_corner_projection_matches_mask_extent(renderer):
    scene = box_scene(3, n_boxes=1)
    renderer.set_mesh(scene_mesh(scene))
    obj = scene.objects[0]
    for frame in scene.frames:
        output = renderer.render(frame.intrinsics, frame.pose)
        rows, cols = np.nonzero(output.instance_ids == obj.instance_id)
        corners = g.world_to_camera(g.box_corners((obj.box.center, obj.box.size, obj.box.rotation)), frame.pose)
        projection = g.project_points(corners, frame.intrinsics.matrix, SIZE, SIZE)
        assert projection.in_image.all()
        low, high = projection.uv.min(axis=0), projection.uv.max(axis=0)
        assert np.allclose([cols.min(), rows.min()], low, atol=1.0)
        assert np.allclose([cols.max(), rows.max()], high, atol=1.0)


def test_visibility_occlusion_and_truncation(renderer):
    # a big box hides half of a small one behind it; a third box is half outside the image
    focal = g.focal_from_fov(60.0, 200)
    intrinsics = Intrinsics(fx=focal, fy=focal, cx=99.5, cy=99.5, width=200, height=200)
    pose = g.look_at([0, -5, 0], [0, 0, 0])
    objects = [
        ObjectInstance(instance_id=1, category="wall", box=OBB(center=[-0.5, -1, 0], size=[1.0, 0.1, 1.0])),
        ObjectInstance(instance_id=2, category="box", box=OBB(center=[0, 1, 0], size=[1.0, 0.1, 1.0])),
        ObjectInstance(instance_id=3, category="edge", box=OBB(center=[3.46, 1, 0], size=[1.0, 0.1, 1.0])),
    ]
    frame = Frame(frame_id="f", intrinsics=intrinsics, cam_to_world=pose.tolist(), image_path="")
    scene = Scene(scene_id="occlusion", source="test", objects=objects, frames=[frame])
    renderer.set_mesh(scene_mesh(scene))
    output = renderer.render(intrinsics, pose)
    unoccluded = renderer.unoccluded_pixels(intrinsics, pose, [1, 2, 3])
    visibility = compute_visibility(scene, frame, output, unoccluded)
    assert abs(visibility[2].visible_frac - 0.5) < 0.03
    assert visibility[1].visible_frac == 1.0 and not visibility[1].truncated
    assert visibility[3].truncated and not visibility[2].truncated
    assert abs(visibility[2].depth_median - 5.95) < 0.01
    x0, y0, x1, y1 = visibility[2].bbox_2d
    assert x0 >= 99 and y1 > y0


def test_render_scene_writes_files_that_read_back(tmp_path):
    scene = box_scene(5)
    rendered = render_scene(scene, tmp_path)
    loaded = Scene.load(tmp_path)
    assert loaded == rendered
    frame = loaded.frames[0]
    depth, ids = analytic_render(scene, frame)
    stored_ids = read_instance_ids(tmp_path / frame.instance_path)
    stored_depth = read_depth(tmp_path / frame.depth_path)
    agree = (stored_ids == ids) & (ids > 0)
    assert (stored_ids == ids).mean() >= 0.999
    assert np.abs(stored_depth[agree] - depth[agree]).max() <= 0.0006  # mm quantisation plus float32 rendering error
    assert set(frame.visibility) == set(np.unique(ids[ids > 0]).tolist())


def test_triangulate_l_shape():
    polygon = np.array([[0, 0], [4, 0], [4, 2], [2, 2], [2, 3], [0, 3]], dtype=float)
    triangles = triangulate_polygon(polygon)
    assert len(triangles) == 4
    area = sum(g.polygon_area(polygon[list(triangle)]) for triangle in triangles)
    assert np.isclose(area, g.polygon_area(polygon))


def test_renderers_keep_their_own_context():
    # a second context created and released in between must not disturb the first renderer
    scene = box_scene(2)
    first = Renderer()
    first.set_mesh(scene_mesh(scene))
    frame = scene.frames[0]
    before = first.render(frame.intrinsics, frame.pose)
    other = Renderer()
    other.set_mesh(scene_mesh(box_scene(7)))
    other.render(frame.intrinsics, frame.pose)
    other.release()
    after = first.render(frame.intrinsics, frame.pose)
    assert np.array_equal(before.instance_ids, after.instance_ids) and np.array_equal(before.depth, after.depth)
    first.release()


def test_rendering_then_importing_torch_dynamo_does_not_crash(tmp_path):
    # llvmpipe and Triton both carry LLVM: rendering first and importing triton later used to segfault
    import subprocess
    import sys

    script = (
        "import sys; sys.path.insert(0, 'tests/scene'); from test_render import box_scene; "
        "from vst.scene.capture import render_scene; render_scene(box_scene(0), sys.argv[1]); "
        "import importlib.util; importlib.util.find_spec('triton') and __import__('triton'); print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
