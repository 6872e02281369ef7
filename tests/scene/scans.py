"""A tiny known world for the scan-importer tests: a 6 x 6 m floor, a sofa box and a chair box, and cameras whose
RGB-D frames are rendered with vst's renderer (tested against analytic ray casting in test_render.py). Each format
test writes this world in its dataset's own on-disk layout and conventions, imports it, and compares the result
with the values here.

World: z up, metres. Every box is axis-aligned in the world except the chair, turned 30 degrees about z.
"""

from __future__ import annotations

import numpy as np

from vst.scene.importers.common import LabelledMesh, labelled_render_mesh
from vst.scene.types import Intrinsics

FLOOR_ID, SOFA_ID, CHAIR_ID = 1, 2, 3
SOFA = {"center": np.array([0.0, 0.0, 0.4]), "size": np.array([1.6, 0.8, 0.8]), "yaw": 0.0}
CHAIR = {"center": np.array([1.5, 0.8, 0.5]), "size": np.array([0.5, 0.6, 1.0]), "yaw": np.radians(30)}
BOXES = {SOFA_ID: SOFA, CHAIR_ID: CHAIR}
CAMERA_HEIGHT = 1.6


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def box_rotation(box: dict) -> np.ndarray:
    return rot_z(box["yaw"])


def _box_mesh(box: dict, subdivisions: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A closed box surface with each face split into a grid (so vertex-based labelling is dense)."""
    vertices, faces = [], []
    grid = np.linspace(-0.5, 0.5, subdivisions + 1)
    for axis in range(3):
        u, v = (axis + 1) % 3, (axis + 2) % 3
        for sign in (-0.5, 0.5):
            start = len(vertices)
            for a in grid:
                for b in grid:
                    point = np.zeros(3)
                    point[axis], point[u], point[v] = sign, a, b
                    vertices.append(point)
            n = subdivisions + 1
            for i in range(subdivisions):
                for j in range(subdivisions):
                    p = start + i * n + j
                    faces += [[p, p + n, p + n + 1], [p, p + n + 1, p + 1]]
    local = np.array(vertices) * box["size"]
    return local @ box_rotation(box).T + box["center"], np.array(faces)


def world_mesh() -> LabelledMesh:
    """The world as one labelled triangle mesh (floor id 1, sofa 2, chair 3), z-up metres."""
    vertices, faces, ids = [], [], []
    grid = np.linspace(-3, 3, 13)
    xx, yy = np.meshgrid(grid, grid)
    floor = np.stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)], axis=1)
    n = len(grid)
    floor_faces = [[i * n + j, i * n + j + 1, (i + 1) * n + j + 1] for i in range(n - 1) for j in range(n - 1)]
    floor_faces += [[i * n + j, (i + 1) * n + j + 1, (i + 1) * n + j] for i in range(n - 1) for j in range(n - 1)]
    parts = [(floor, np.array(floor_faces), FLOOR_ID)] + [(*_box_mesh(box), key) for key, box in BOXES.items()]
    for points, tris, instance_id in parts:
        faces.append(tris + sum(len(v) for v in vertices))
        vertices.append(points)
        ids.append(np.full(len(points), instance_id))
    vertices = np.concatenate(vertices)
    ids = np.concatenate(ids).astype(np.int32)
    colors = np.select([ids[:, None] == FLOOR_ID, ids[:, None] == SOFA_ID], [[150, 140, 120], [60, 90, 170]], [170, 60, 50])
    return LabelledMesh(vertices, np.concatenate(faces), ids, colors.astype(np.uint8))


def look_at(eye, target) -> np.ndarray:
    """OpenCV camera-to-world (x right, y down, z forward) at `eye` looking at `target`, image up = world +z."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-6:  # looking straight down: image right = world +x
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward], axis=1)
    pose[:3, 3] = eye
    return pose


def orbit_poses(n: int = 12, radius: float = 3.2) -> list[np.ndarray]:
    """n cameras on a circle around the sofa at eye height, looking at the scene's middle."""
    angles = np.linspace(-0.6, 0.6, n)
    return [look_at([radius * np.sin(a) + 0.5, -radius * np.cos(a), CAMERA_HEIGHT], [0.6, 0.3, 0.4]) for a in angles]


def top_down_pose(height: float = 3.0) -> np.ndarray:
    """Looking straight down at the sofa from `height`: planar depth is height - z of the surface hit."""
    return look_at([0.0, 0.0, height], [0.0, 0.0, 0.0])


def intrinsics(width: int, height: int, hfov_degrees: float = 70.0) -> Intrinsics:
    fx = width / 2 / np.tan(np.radians(hfov_degrees) / 2)
    return Intrinsics(fx=fx, fy=fx, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)


class Views:
    """Renders the world: (rgb uint8, planar depth metres, instance ids) for a camera."""

    def __init__(self):
        from vst.scene.render import Renderer

        self.renderer = Renderer(antialias=False)
        self.renderer.set_mesh(labelled_render_mesh(world_mesh()))

    def __call__(self, k: Intrinsics, cam_to_world: np.ndarray):
        out = self.renderer.render(k, cam_to_world)
        return out.rgb.copy(), out.depth.copy(), out.instance_ids.copy()

    def close(self):
        self.renderer.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def render(k: Intrinsics, cam_to_world: np.ndarray):
    """(rgb, planar depth, ids) of one view of the world, with a renderer made for it."""
    with Views() as views:
        return views(k, cam_to_world)


def box_corners(box: dict) -> np.ndarray:
    signs = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    return (signs * box["size"]) @ box_rotation(box).T + box["center"]


def assert_same_box(obb, box: dict, tol: float = 1e-3) -> None:
    """An imported OBB equals a world box: same corners as a set (box axes may be permuted or flipped)."""
    from vst.scene.geometry import box_corners as vst_corners

    got = vst_corners((obb.center, obb.size, obb.rotation))
    want = box_corners(box)
    distances = np.linalg.norm(got[:, None] - want[None], axis=2)
    assert distances.min(axis=1).max() < tol, (got, want)
    assert distances.min(axis=0).max() < tol, (got, want)


def check_generated(scene_root, out, n: int = 160) -> set[str]:
    """Run the data engine on imported scenes (`scene_root` holds scene folders of this world) and check the
    answers that the world fixes: the sofa's sizes, and which of the sofa and the chair is closer to or farther
    from a frame's camera (median depth of each object's pixels, rendered from the world, not from the import).
    Returns the skills produced."""
    from pathlib import Path

    from vst.data.engine import EngineConfig, run
    from vst.data.recipes import load_recipe
    from vst.data.shards import read_samples
    from vst.scene.types import Scene

    manifest = run(EngineConfig(scenes=Path(scene_root), out=Path(out), recipe=load_recipe("vst-p"), n=n, seed=0))
    assert not manifest["skipped_scenes"], manifest["skipped_scenes"]
    scenes = {p.name: Scene.load(p) for p in Path(scene_root).iterdir() if (p / "scene.json").is_file()}
    samples = list(read_samples(Path(out) / manifest["shard"]))
    views = Views()
    sofa_size = {"height": 0.8, "width": 0.8, "length": 1.6, "longest": 1.6}
    checked = 0
    try:
        checked = _check_samples(samples, scenes, views, sofa_size)
    finally:
        views.close()
    assert checked, "no sample about the sofa's size or the sofa and the chair's depths"
    return {s.skill for s in samples}


def _check_samples(samples, scenes, views, sofa_size) -> int:
    checked = 0
    for sample in samples:
        scene = scenes[sample.meta_info["scene_id"]]
        names = {o.instance_id: o.category for o in scene.objects}
        ids = sample.meta_info.get("instance_ids") or []
        if sample.skill == "si_measurement" and [names.get(i) for i in ids] == ["sofa"]:
            assert abs(sample.meta_info["value_m"] - sofa_size[sample.meta_info["dimension"]]) < 0.005, sample
            checked += 1
        if sample.skill == "si_depth_comparison" and sample.meta_info.get("form") == "boxes" \
                and sorted(names[i] for i in ids) == ["chair", "sofa"]:
            frame = scene.frame(sample.meta_info["frame_ids"][0])
            _, world_depth, world_ids = views(frame.intrinsics, frame.pose)  # the world itself, seen from this camera
            depth = {name: float(np.median(world_depth[world_ids == key])) for name, key in (("sofa", SOFA_ID), ("chair", CHAIR_ID))}
            if abs(depth["sofa"] - depth["chair"]) < 0.1:  # too close to call by hand
                continue
            want = min(depth, key=depth.get) if sample.meta_info["relation"] == "closer" else max(depth, key=depth.get)
            answer = sample.answer["value"]
            if sample.answer["type"] == "mc":
                answer = next(o.split(". ", 1)[1] for o in sample.answer["options"] if o.startswith(answer + "."))
            assert answer == want, (sample.id, sample.answer, depth)
            checked += 1
    return checked
