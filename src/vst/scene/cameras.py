"""Camera paths for procedural rooms: single views, view pairs, and walk-through videos.

- Stills (spec data.md §3.4): height 1.2-1.7 m, pitch -30..+10 degrees, roll within 3 degrees, hfov 55-90
  degrees, aimed near a random object; resampled until at least `min_objects_in_view` object centres project
  into the image.
- Pairs: a still plus a second view `pair_baseline` metres away, turned by `pair_rotation` degrees, accepted
  when the share of objects in view of both (over those in either) lies in `pair_overlap`.
- Video: a smooth walk at eye height along shortest paths (on a free-space grid) between random waypoints,
  0.3-0.6 m/s, `video_fps` frames per second, heading blended towards the room centre so furniture stays in view.

Frames are tagged with `sequence` ("still-00", "pair-00", "video") and carry timestamps in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.csgraph import dijkstra

from vst.scene.geometry import focal_from_fov, look_at, points_in_polygon, project_points, world_to_camera
from vst.scene.types import Frame, Intrinsics, Scene

GRID_RESOLUTION = 0.1  # metres per free-space cell
CAMERA_MARGIN = 0.3  # metres kept between a camera and walls or furniture
RESAMPLE_TRIES = 200


@dataclass
class CameraConfig:
    width: int = 448
    height: int = 448
    n_stills: int = 4
    n_pairs: int = 2
    video: bool = True
    video_fps: float = 4.0
    video_frames: tuple[int, int] = (30, 120)
    hfov: tuple[float, float] = (55.0, 90.0)
    still_height: tuple[float, float] = (1.2, 1.7)
    still_pitch: tuple[float, float] = (-30.0, 10.0)
    still_roll: float = 3.0
    pair_baseline: tuple[float, float] = (0.3, 1.5)
    pair_rotation: tuple[float, float] = (5.0, 45.0)
    pair_overlap: tuple[float, float] = (0.3, 0.9)
    walk_speed: tuple[float, float] = (0.3, 0.6)
    eye_height: tuple[float, float] = (1.45, 1.65)
    video_hfov: float = 70.0
    min_objects_in_view: int = 2


def intrinsics_for(hfov_degrees: float, width: int, height: int) -> Intrinsics:
    focal = focal_from_fov(hfov_degrees, width)
    return Intrinsics(fx=focal, fy=focal, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)


def camera_pose(eye, yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """cam_to_world for a camera at `eye` heading `yaw` (radians from +x, counter-clockwise), pitched up by `pitch`, rolled by `roll`."""
    forward = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    pose = look_at(eye, np.asarray(eye, dtype=float) + forward)
    c, s = np.cos(roll), np.sin(roll)
    pose[:3, :3] = pose[:3, :3] @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return pose


class FreeSpace:
    """Grid of floor cells at least CAMERA_MARGIN from walls and from anything standing below 2 m."""

    def __init__(self, scene: Scene):
        polygon = np.asarray(scene.room.floor_polygon)
        self.origin = polygon.min(axis=0)
        shape = np.ceil((polygon.max(axis=0) - self.origin) / GRID_RESOLUTION).astype(int) + 1
        ix, iy = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
        self.points = self.origin + np.stack([ix, iy], -1).reshape(-1, 2) * GRID_RESOLUTION
        free = points_in_polygon(self.points, polygon)
        for start, end in zip(polygon, np.roll(polygon, -1, axis=0)):
            free &= _segment_distance_2d(self.points, start, end) > CAMERA_MARGIN
        for obj in scene.objects:
            if obj.is_structure or obj.box is None or obj.box.center[2] - obj.box.size[2] / 2 > 2.0:
                continue
            local = (self.points - np.asarray(obj.box.center[:2])) @ np.asarray(obj.box.rotation)[:2, :2]
            free &= ~np.all(np.abs(local) <= np.asarray(obj.box.size[:2]) / 2 + CAMERA_MARGIN, axis=1)
        self.shape = tuple(shape)
        self.free = free.reshape(self.shape)
        labels, count = ndimage.label(self.free, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        self.walkable = labels == (np.argmax(sizes) + 1) if count else self.free  # largest 8-connected region

    def cells(self, walkable: bool = False) -> np.ndarray:
        return np.argwhere(self.walkable if walkable else self.free)

    def point(self, cell) -> np.ndarray:
        return self.origin + np.asarray(cell, dtype=float) * GRID_RESOLUTION

    def is_free(self, xy) -> bool:
        cell = np.rint((np.asarray(xy) - self.origin) / GRID_RESOLUTION).astype(int)
        return bool(np.all(cell >= 0) and np.all(cell < self.shape) and self.free[tuple(cell)])

    def shortest_path(self, start, goal) -> np.ndarray | None:
        """Cells (k, 2) of an 8-connected shortest path between two free cells, or None if unreachable."""
        index = -np.ones(self.shape, dtype=int)
        cells = self.cells(walkable=True)
        index[tuple(cells.T)] = np.arange(len(cells))
        rows, cols, weights = [], [], []
        for dx, dy in ((1, 0), (0, 1), (1, 1), (1, -1)):
            neighbours = cells + (dx, dy)
            ok = np.all((neighbours >= 0) & (neighbours < self.shape), axis=1)
            ok[ok] &= self.free[tuple(neighbours[ok].T)]
            rows.append(index[tuple(cells[ok].T)])
            cols.append(index[tuple(neighbours[ok].T)])
            weights.append(np.full(ok.sum(), np.hypot(dx, dy)))
        graph = sparse.coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(len(cells),) * 2).tocsr()
        source, target = index[tuple(start)], index[tuple(goal)]
        _, predecessors = dijkstra(graph, directed=False, indices=source, return_predecessors=True)
        if predecessors[target] < 0 and source != target:
            return None
        path = [target]
        while path[-1] != source:
            path.append(predecessors[path[-1]])
        return cells[path[::-1]]


def _segment_distance_2d(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    direction = end - start
    t = np.clip((points - start) @ direction / (direction @ direction), 0.0, 1.0)
    return np.linalg.norm(points - (start + t[:, None] * direction), axis=1)


def objects_in_view(scene: Scene, intrinsics: Intrinsics, pose: np.ndarray, max_depth: float = 10.0) -> set[int]:
    """Ids of non-structure objects whose box centre projects into the image between 0.3 m and `max_depth`."""
    objects = [o for o in scene.objects if not o.is_structure and o.box is not None]
    if not objects:
        return set()
    centers = world_to_camera(np.array([o.box.center for o in objects]), pose)
    projection = project_points(centers, intrinsics.matrix, intrinsics.width, intrinsics.height)
    keep = projection.in_image & (projection.depth > 0.3) & (projection.depth < max_depth)
    return {o.instance_id for o, k in zip(objects, keep) if k}


def _random_still(scene: Scene, space: FreeSpace, rng: np.random.Generator, config: CameraConfig) -> tuple[Intrinsics, np.ndarray]:
    cells = space.cells()
    targets = [o for o in scene.objects if not o.is_structure and o.box is not None]
    intrinsics = pose = None
    for _ in range(RESAMPLE_TRIES):
        xy = space.point(cells[int(rng.integers(len(cells)))]) + rng.uniform(-0.05, 0.05, 2)
        eye = np.array([*xy, rng.uniform(*config.still_height)])
        target = np.asarray(targets[int(rng.integers(len(targets)))].box.center)
        offset = target - eye
        yaw = np.arctan2(offset[1], offset[0]) + np.radians(rng.uniform(-15, 15))
        pitch = np.clip(np.arctan2(offset[2], np.linalg.norm(offset[:2])) + np.radians(rng.uniform(-8, 8)), *np.radians(config.still_pitch))
        roll = np.radians(rng.uniform(-config.still_roll, config.still_roll))
        intrinsics = intrinsics_for(rng.uniform(*config.hfov), config.width, config.height)
        pose = camera_pose(eye, yaw, pitch, roll)
        if len(objects_in_view(scene, intrinsics, pose)) >= config.min_objects_in_view:
            break
    return intrinsics, pose


def _pair_second_view(scene: Scene, space: FreeSpace, rng: np.random.Generator, config: CameraConfig, intrinsics: Intrinsics, pose: np.ndarray) -> np.ndarray | None:
    first_view = objects_in_view(scene, intrinsics, pose)
    forward = pose[:3, 2]
    yaw0, pitch0 = np.arctan2(forward[1], forward[0]), np.arcsin(np.clip(forward[2], -1, 1))
    for _ in range(RESAMPLE_TRIES):
        angle = rng.uniform(0, 2 * np.pi)
        eye = pose[:3, 3] + rng.uniform(*config.pair_baseline) * np.array([np.cos(angle), np.sin(angle), 0.0])
        eye[2] = np.clip(eye[2] + rng.uniform(-0.1, 0.1), *config.still_height)
        if not space.is_free(eye[:2]):
            continue
        yaw = yaw0 + rng.choice([-1, 1]) * np.radians(rng.uniform(*config.pair_rotation))
        second = camera_pose(eye, yaw, pitch0 + np.radians(rng.uniform(-5, 5)), np.radians(rng.uniform(-config.still_roll, config.still_roll)))
        second_view = objects_in_view(scene, intrinsics, second)
        union = first_view | second_view
        overlap = len(first_view & second_view) / len(union) if union else 0.0
        if config.pair_overlap[0] <= overlap <= config.pair_overlap[1] and len(second_view) >= config.min_objects_in_view:
            return second
    return None


def walk_path(space: FreeSpace, rng: np.random.Generator, n_waypoints: int = 3) -> np.ndarray | None:
    """Polyline (k, 2) through random free waypoints along grid shortest paths."""
    cells = space.cells(walkable=True)
    if len(cells) < 2:
        return None
    waypoints = [cells[int(rng.integers(len(cells)))]]
    for _ in range(n_waypoints - 1):
        candidates = cells[rng.choice(len(cells), size=min(16, len(cells)), replace=False)]
        distances = np.linalg.norm(candidates - waypoints[-1], axis=1)
        waypoints.append(candidates[int(np.argmax(distances))])  # far-ish points make a walk that covers the room
    segments = []
    for start, goal in zip(waypoints[:-1], waypoints[1:]):
        path = space.shortest_path(start, goal)
        if path is None:
            return None
        segments.append(path if not segments else path[1:])
    return np.array([space.point(cell) for cell in np.concatenate(segments)])


def _content_heading(scene: Scene, positions: np.ndarray, hfov: float) -> np.ndarray:
    """Per-frame yaw (n,) that keeps furniture in view: for each position, the heading (in 10-degree steps)
    seeing the most object centres 0.5-6 m away, with a bonus for looking where the camera walks; smoothed."""
    centers = np.array([o.box.center[:2] for o in scene.objects if not o.is_structure and o.box is not None])
    tangent = np.gradient(positions, axis=0)
    walk_yaw = np.arctan2(tangent[:, 1], tangent[:, 0])
    candidates = np.radians(np.arange(0, 360, 10))
    offsets = centers[None] - positions[:, None]  # (n, m, 2)
    distance = np.linalg.norm(offsets, axis=2)
    bearing = np.arctan2(offsets[..., 1], offsets[..., 0])
    off_axis = np.abs(np.angle(np.exp(1j * (bearing[:, :, None] - candidates[None, None]))))  # (n, m, k)
    visible = (off_axis < np.radians(hfov) * 0.4) & ((distance > 0.5) & (distance < 6.0))[..., None]
    score = visible.sum(axis=1) + 1.5 * np.cos(candidates[None] - walk_yaw[:, None])
    best = np.unwrap(candidates[np.argmax(score, axis=1)])
    return ndimage.gaussian_filter1d(best, sigma=2.5, mode="nearest")


def _video_poses(scene: Scene, space: FreeSpace, rng: np.random.Generator, config: CameraConfig) -> list[np.ndarray]:
    path = None
    for _ in range(10):
        path = walk_path(space, rng)
        if path is not None and len(path) > 8:
            break
    if path is None or len(path) <= 8:
        return []
    # smooth the grid polyline: resample at 5 cm arc-length steps, then low-pass both coordinates
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    samples = np.arange(0.0, arc[-1], 0.05)
    dense = np.column_stack([np.interp(samples, arc, path[:, i]) for i in range(2)])
    dense = ndimage.gaussian_filter1d(dense, sigma=6.0, axis=0, mode="nearest")
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    speed = rng.uniform(*config.walk_speed)
    lo, hi = config.video_frames
    count = int(np.clip(round(arc[-1] / speed * config.video_fps), lo, hi))
    step = min(speed / config.video_fps, arc[-1] / max(count - 1, 1))
    positions = np.array([np.interp(np.arange(count) * step, arc, dense[:, i]) for i in range(2)]).T
    yaw = _content_heading(scene, positions, config.video_hfov)
    height = rng.uniform(*config.eye_height)
    pitch = np.radians(rng.uniform(-18, -8))
    return [camera_pose([x, y, height], a, pitch, np.radians(rng.normal(0, 0.5))) for (x, y), a in zip(positions, yaw)]


def add_cameras(scene: Scene, rng: np.random.Generator, config: CameraConfig) -> Scene:
    """Return `scene` with still, pair and video frames (no images yet: paths are filled at render time)."""
    space = FreeSpace(scene)
    if not space.free.any():
        raise ValueError(f"scene {scene.scene_id}: no free floor space for cameras")
    frames: list[Frame] = []

    def add(frame_id: str, sequence: str, intrinsics: Intrinsics, pose: np.ndarray, timestamp: float = 0.0) -> None:
        frames.append(Frame(frame_id=frame_id, timestamp=round(timestamp, 6), intrinsics=intrinsics, cam_to_world=pose.tolist(), image_path="", sequence=sequence))

    for index in range(config.n_stills):
        intrinsics, pose = _random_still(scene, space, rng, config)
        add(f"still-{index:02d}", f"still-{index:02d}", intrinsics, pose)
    for index in range(config.n_pairs):
        for _ in range(20):
            intrinsics, pose = _random_still(scene, space, rng, config)
            second = _pair_second_view(scene, space, rng, config, intrinsics, pose)
            if second is not None:
                add(f"pair-{index:02d}-a", f"pair-{index:02d}", intrinsics, pose, 0.0)
                add(f"pair-{index:02d}-b", f"pair-{index:02d}", intrinsics, second, 1.0)
                break
    fps = None
    if config.video:
        intrinsics = intrinsics_for(config.video_hfov, config.width, config.height)
        poses = _video_poses(scene, space, rng, config)
        for index, pose in enumerate(poses):
            add(f"video-{index:04d}", "video", intrinsics, pose, index / config.video_fps)
        fps = config.video_fps if poses else None
    return scene.model_copy(update={"frames": frames, "fps": fps})
