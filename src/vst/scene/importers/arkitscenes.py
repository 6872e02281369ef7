"""ARKitScenes 3DOD (`SRC/<video_id>/` or `SRC/3dod/{Training,Validation}/<video_id>/`, spec data.md §2.3).

Read per video (apple/ARKitScenes `threedod/README.md`, `benchmark_scripts/utils/tenFpsDataLoader.py`, `box_utils.py`,
`rectify_im.py`, `rotation.py`):
- `<vid>_3dod_annotation.json`: `data[]` with `label`, `uid` and `segments.obbAligned` {`centroid`, `axesLengths`,
  `normalizedAxes` (9, row-major; the box axes are its rows: corners = Rᵀ local + centroid)}. World frame: gravity
  aligned with z up (`rotation.upright_camera_relative_transform`: "z-dim as height"), metres.
- `<vid>_3dod_mesh.ply`: the mesh in the same frame; its vertices are labelled by the boxes that contain them, and
  the labelled mesh is re-rendered for instance masks.
- `<vid>_frames/lowres_wide/<vid>_<ts>.png` (256 x 192 RGB), `lowres_depth/<vid>_<ts>.png` (uint16 mm, registered
  to lowres_wide), `lowres_wide_intrinsics/<vid>_<ts>.pincam` (one line `w h fx fy cx cy`; the loader also tries
  ts ± 0.001), `lowres_wide.traj` (lines `ts rx ry rz tx ty tz`: world -> camera as axis-angle + translation;
  camera-to-world is its inverse, OpenCV axes). A frame takes the pose whose timestamp is within 5 ms (the
  official loader's tolerance); frames without one are skipped.
Phones record in any orientation (metadata.csv `sky_direction`): every frame is turned upright from its pose
(`common.upright`, the same decision as `rectify_im.decide_pose`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from vst.scene.importers.common import (read_json, ImportError_, ImportOptions, Intrinsics, LabelledMesh, RawFrame, RawScene,
                                        axis_angle_matrix, invert_rigid, is_structure, obb_from_axes, points_in_boxes,
                                        read_depth_png, read_mesh, read_rgb, readable_category, rigid, room_from_points,
                                        upright)
from vst.scene.types import ObjectInstance

LICENSE = "ARKitScenes: CC BY-NC-SA 4.0"
POSE_TOLERANCE_S = 0.005
MESH_MARGIN_M = 0.01  # a vertex on a box face belongs to it (annotated boxes touch their surfaces)


@functools.cache  # one walk per process: a 3dod root holds millions of frame files, and every scene looks itself up
def _video_dirs(src: Path) -> dict[str, Path]:
    return {p.parent.name: p.parent for p in src.rglob("*_3dod_annotation.json") if p.name == f"{p.parent.name}_3dod_annotation.json"}


def list_scenes(src: Path, options: ImportOptions | None = None) -> list[str]:
    return sorted(_video_dirs(src))


def read_traj(path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """(timestamps, camera-to-world poses) of a `.traj` file."""
    times, poses = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 7:
            raise ImportError_(f"{path}: line {number}: expected 7 numbers (ts, axis-angle, translation), got {len(tokens)}")
        values = [float(t) for t in tokens]
        world_to_camera = rigid(axis_angle_matrix(values[1:4]), values[4:7])
        times.append(values[0])
        poses.append(invert_rigid(world_to_camera))
    return np.asarray(times), poses


def read_pincam(path: Path) -> Intrinsics:
    values = path.read_text().split()
    if len(values) != 6:
        raise ImportError_(f"{path}: expected 'w h fx fy cx cy', got {len(values)} values")
    w, h, fx, fy, cx, cy = (float(v) for v in values)
    return Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=int(w), height=int(h))


def _timestamp(path: Path, video_id: str) -> str:
    return path.stem[len(video_id) + 1:]


def read_objects(path: Path) -> list[ObjectInstance]:
    data = read_json(path)
    objects = []
    for index, item in enumerate(data.get("data", [])):
        try:
            box = item["segments"]["obbAligned"]
            obb = obb_from_axes(box["centroid"], box["axesLengths"], box["normalizedAxes"])
            label = str(item["label"])
        except (KeyError, TypeError, ValueError) as error:
            raise ImportError_(f"{path}: data[{index}].segments.obbAligned: {error}") from None
        category = readable_category(label)
        objects.append(ObjectInstance(instance_id=index + 1, category=category, raw_label=label, box=obb,
                                      is_structure=is_structure(category), attributes={"uid": str(item.get("uid", ""))}))
    return objects


def read_scene(src: Path, scene_id: str, options: ImportOptions) -> RawScene:
    folder = _video_dirs(src).get(scene_id)
    if folder is None:
        raise ImportError_(f"{src}: no {scene_id}/{scene_id}_3dod_annotation.json")
    objects = read_objects(folder / f"{scene_id}_3dod_annotation.json")
    mesh = room = None
    mesh_path = folder / f"{scene_id}_3dod_mesh.ply"
    if mesh_path.is_file():
        vertices, faces, colors = read_mesh(mesh_path)
        mesh = LabelledMesh(vertices, faces, points_in_boxes(vertices, objects, margin=MESH_MARGIN_M), colors)
        room = room_from_points(vertices)
    frames_dir = folder / f"{scene_id}_frames"
    times, poses = read_traj(frames_dir / "lowres_wide.traj")
    if not len(times):
        raise ImportError_(f"{frames_dir / 'lowres_wide.traj'}: no poses")
    frames = []
    for image_path in sorted((frames_dir / "lowres_wide").glob(f"{scene_id}_*.png")):
        stamp = _timestamp(image_path, scene_id)
        t = float(stamp)
        nearest = int(np.abs(times - t).argmin())
        if abs(times[nearest] - t) > POSE_TOLERANCE_S:
            continue
        intrinsics_path = next((p for p in (frames_dir / "lowres_wide_intrinsics" / f"{scene_id}_{s}.pincam"
                                            for s in (stamp, f"{t - 0.001:.3f}", f"{t + 0.001:.3f}")) if p.is_file()), None)
        if intrinsics_path is None:
            continue
        depth_path = frames_dir / "lowres_depth" / image_path.name
        frames.append(upright(RawFrame(
            frame_id=stamp.replace(".", "_"), timestamp=t, intrinsics=read_pincam(intrinsics_path), cam_to_world=poses[nearest],
            rgb=lambda path=image_path: read_rgb(path),
            depth=(lambda path=depth_path: read_depth_png(path)) if depth_path.is_file() else None)))
    if not frames:
        raise ImportError_(f"{frames_dir}: no lowres_wide frame with intrinsics and a pose within {POSE_TOLERANCE_S} s")
    return RawScene(scene_id=scene_id, source="arkitscenes", license=LICENSE, objects=objects, frames=frames,
                    mesh=mesh, room=room)
