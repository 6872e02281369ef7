"""ScanNet v2 (`SRC/scans/<scene>/`, spec data.md §2.1).

Read per scene:
- `<scene>.txt`: `axisAlignment = 16 floats` (row-major, raw mesh frame -> axis-aligned z-up frame); the
  identity where it is missing (ScanNet's test split).
- `<scene>_vh_clean_2.ply` (mesh, raw frame), `<scene>_vh_clean_2.0.010000.segs.json` (`segIndices` per vertex),
  `<scene>.aggregation.json` or `<scene>_vh_clean.aggregation.json` (`segGroups`: `objectId`, `label`, `segments`).
- `SRC/scannetv2-labels.combined.tsv` (when present): raw label -> `category` (ScanNet's cleaned name; `nyu40class`
  with `--option labels=nyu40`).
- The `.sens` stream exported by ScanNet's `SensorData.py` into the scene folder: `color/<i>.jpg`,
  `depth/<i>.png` (uint16, millimetres: depth shift 1000), `pose/<i>.txt` (4 x 4 camera-to-world, OpenCV axes,
  raw frame; `-inf` where tracking failed: skipped), `intrinsic/intrinsic_color.txt` and `intrinsic_depth.txt`
  (4 x 4; colour 1296 x 968 and depth 640 x 480 have different K). `<i>` is the frame index (zero-padded or not);
  timestamps are index / 30 (the stream's 30 Hz).

World = axisAlignment @ raw. Objects: instance id = objectId + 1, box = AABB of the object's aligned vertices (ScanNet
has no official OBBs). Masks: the mesh, labelled per vertex from the segment groups, re-rendered at every frame.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from vst.scene.importers.common import (read_json, ImportError_, ImportOptions, Intrinsics, LabelledMesh, RawFrame, RawScene,
                                        box_from_points, is_structure, read_depth_png, read_mesh, read_rgb,
                                        readable_category, room_from_points)
from vst.scene.types import ObjectInstance

LICENSE = "ScanNet Terms of Use (non-commercial research; no redistribution)"
FPS = 30.0
DEPTH_SHIFT = 1000.0
LABELS_FILE = "scannetv2-labels.combined.tsv"


def _scans(src: Path) -> Path:
    return src / "scans" if (src / "scans").is_dir() else src


def list_scenes(src: Path, options: ImportOptions | None = None) -> list[str]:
    return sorted(p.name for p in _scans(src).iterdir() if p.is_dir() and (p / f"{p.name}_vh_clean_2.ply").is_file())


def read_matrix(path: Path) -> np.ndarray:
    try:
        matrix = np.loadtxt(path, dtype=np.float64)
    except ValueError as error:
        raise ImportError_(f"{path}: not a 4 x 4 matrix of numbers ({error})") from None
    if matrix.shape != (4, 4):
        raise ImportError_(f"{path}: expected a 4 x 4 matrix, got shape {matrix.shape}")
    return matrix


def axis_alignment(path: Path) -> np.ndarray:
    """The `axisAlignment` line of `<scene>.txt` as a 4 x 4 (identity when the file or the line is absent)."""
    if not path.is_file():
        return np.eye(4)
    for line in path.read_text().splitlines():
        if line.strip().startswith("axisAlignment"):
            values = line.split("=", 1)[1].split()
            if len(values) != 16:
                raise ImportError_(f"{path}: axisAlignment: expected 16 numbers, got {len(values)}")
            return np.array([float(v) for v in values]).reshape(4, 4)
    return np.eye(4)


def label_table(src: Path, column: str = "category") -> dict[str, str]:
    path = src / LABELS_FILE
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if rows and ("raw_category" not in rows[0] or column not in rows[0]):
        raise ImportError_(f"{path}: expected columns raw_category and {column}")
    return {row["raw_category"]: row[column] for row in rows if row.get(column)}


def _intrinsics(matrix: np.ndarray, width: int, height: int) -> Intrinsics:
    return Intrinsics(fx=matrix[0, 0], fy=matrix[1, 1], cx=matrix[0, 2], cy=matrix[1, 2], width=width, height=height)


def _by_index(folder: Path, suffix: str) -> dict[int, Path]:
    files = {}
    for path in folder.glob(f"*{suffix}"):
        if path.stem.isdigit():
            files[int(path.stem)] = path
    return files


def read_scene(src: Path, scene_id: str, options: ImportOptions) -> RawScene:
    folder = _scans(src) / scene_id
    align = axis_alignment(folder / f"{scene_id}.txt")
    vertices, faces, colors = read_mesh(folder / f"{scene_id}_vh_clean_2.ply")
    vertices = vertices @ align[:3, :3].T + align[:3, 3]
    segs_path = folder / f"{scene_id}_vh_clean_2.0.010000.segs.json"
    segments = np.asarray(read_json(segs_path).get("segIndices", []), dtype=np.int64)
    if len(segments) != len(vertices):
        raise ImportError_(f"{segs_path}: segIndices: {len(segments)} entries for {len(vertices)} mesh vertices")
    aggregation_path = next((p for p in (folder / f"{scene_id}.aggregation.json", folder / f"{scene_id}_vh_clean.aggregation.json")
                             if p.is_file()), folder / f"{scene_id}.aggregation.json")
    groups = read_json(aggregation_path).get("segGroups", [])
    column = "nyu40class" if options.extra.get("labels") == "nyu40" else "category"
    table = label_table(src, column)
    vertex_ids = np.zeros(len(vertices), dtype=np.int32)
    objects = []
    for index, group in enumerate(groups):
        try:
            instance_id = int(group["objectId"]) + 1
            raw_label = str(group["label"])
            members = np.isin(segments, np.asarray(group["segments"], dtype=np.int64))
        except (KeyError, TypeError, ValueError) as error:
            raise ImportError_(f"{aggregation_path}: segGroups[{index}]: {error}") from None
        if not members.any():
            continue
        vertex_ids[members] = instance_id
        category = readable_category(table.get(raw_label, raw_label))
        objects.append(ObjectInstance(instance_id=instance_id, category=category, raw_label=raw_label,
                                      box=box_from_points(vertices[members]), is_structure=is_structure(category)))
    frames = _frames(folder)
    return RawScene(scene_id=scene_id, source="scannet", license=LICENSE, objects=objects,
                    frames=[_align(f, align) for f in frames],
                    mesh=LabelledMesh(vertices, faces, vertex_ids, colors), room=room_from_points(vertices))


def _align(frame: RawFrame, align: np.ndarray) -> RawFrame:
    if np.isfinite(frame.cam_to_world).all():  # lost frames (-inf) stay invalid and are skipped by select_frames
        frame.cam_to_world = align @ frame.cam_to_world
    return frame


def _frames(folder: Path) -> list[RawFrame]:
    colors, depths, poses = (_by_index(folder / "color", ".jpg"), _by_index(folder / "depth", ".png"),
                             _by_index(folder / "pose", ".txt"))
    if not colors:
        raise ImportError_(f"{folder / 'color'}: no exported colour frames (run SensorData.py --export_color_images)")
    color_k = read_matrix(folder / "intrinsic" / "intrinsic_color.txt")
    depth_k_path = folder / "intrinsic" / "intrinsic_depth.txt"
    depth_k = read_matrix(depth_k_path) if depth_k_path.is_file() else None
    with Image.open(colors[min(colors)]) as image:
        color_size = image.size
    depth_size = None
    if depths:
        with Image.open(depths[min(depths)]) as image:
            depth_size = image.size
    frames = []
    for index in sorted(set(colors) & set(poses)):
        pose = read_matrix(poses[index])
        depth_path = depths.get(index)
        frames.append(RawFrame(
            frame_id=f"{index:06d}", timestamp=index / FPS, intrinsics=_intrinsics(color_k, *color_size),
            cam_to_world=pose, rgb=lambda path=colors[index]: read_rgb(path),
            depth=(lambda path=depth_path: read_depth_png(path, DEPTH_SHIFT)) if depth_path is not None and depth_k is not None else None,
            depth_intrinsics=_intrinsics(depth_k, *depth_size) if depth_k is not None and depth_size else None,
        ))
    return frames

