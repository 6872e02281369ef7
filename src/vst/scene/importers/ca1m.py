"""CA-1M / Cubify Anything (`SRC/**/ca1m-<split>-<video_id>.tar`, WebDataset; spec data.md §2.6).

Layout, from apple/ml-cubifyanything (README "Understanding the CA-1M data", `cubifyanything/dataset.py`,
`tools/demo.py`, `cubifyanything/boxes.py`, `cubifyanything/cubify_transformer.py`):

- One uncompressed tar per capture; members `<video_id>/<ts>.<key>` with `<ts>` the integer timestamp in
  nanoseconds. A member's key is what upstream's `split_into_prefix_suffix` gives: the text after the first `.`
  up to the next `.` (the file extension is dropped), lower-cased by webdataset (`gt/RT.json` -> `gt/rt`).
- `wide/image.png` (RGB, 1024 x 768, already upright: portrait and landscape frames may alternate, so every
  frame has its own size and K), `wide/image/K.json` (3 x 3, JSON), `_wide/image/size` (`[w, h]`).
- `wide/depth.png` (ARKit LiDAR depth, uint16 mm, 256 x 192) with `wide/depth/K.json`; `gt/depth.png` (depth
  rendered from the FARO laser scan, uint16 mm, 512 x 384, 0 = not registered) with `gt/depth/K.json`. Both are
  planar depth (`demo.py` `unproject`: K^-1 (u z, v z, z), pixel centres at integer (u, v)).
- `gt/RT.json`: 4 x 4 row-major, the camera -> laser-scanner-world pose with OpenCV camera axes (`demo.py` logs it
  as the transform of the pinhole camera into `/world`, and `unproject` maps camera points by `RT @ xyz`).
- `wide/instances.json`: per-frame boxes `[{id, category, position, scale, R, box_2d_rend, box_2d_proj}]` in the
  camera frame (`dataset.py`: "At this point, everything is in camera coordinates", `wide.RT = I`; the model's
  boxes are K^-1-back-projected centres with rotation `T_gravity @ Ry(yaw)`).
- `wide/T_gravity.json`: 3 x 3, gravity-aligned camera frame -> camera frame (`cubify_transformer.py`
  `inference`: box rotation = T_gravity @ Ry(yaw)); `capture_stream.py` `get_camera_to_gravity_transform` builds
  it with the gravity frame's y axis = world -z, so its column 1 is "down" in camera coordinates.
- `<video_id>/world.gt/instances.json`: the whole scene's boxes (same fields) in the laser-scanner world,
  including structure (`wall`, `floor`, `ceiling`, `door_frame`).
- A box (`boxes.py` `GeneralInstance3DBoxes.corners`): centre `position`, full extents `scale` along the columns
  of `R` (box -> frame), i.e. directly vst's `OBB(center, size, rotation)`.

Conversions:
- World up: vst needs z up. The laser world's up axis is measured per scene: up = -mean(RT_R @ T_gravity[:, 1])
  over frames (without T_gravity: -mean of the cameras' y axes, which point down in upright images). The nearest
  signed world axis must lie within 10 degrees (45 without T_gravity), else the scene fails; the world is then
  turned so that axis becomes +z (identity when the laser world is already z up). `--option up=+y` (or any signed
  axis) overrides the measurement.
- Objects: `world.gt/instances.json` when present, else each id's per-frame box (from the frame where its
  `box_2d_rend` is largest) moved to the world by that frame's RT. Instance ids are 1.. in file order; the
  dataset's string id is kept in `attributes["ca1m_id"]`, `caption` (when present) as the description.
- Depth (`--option depth=`): `fill` (default) = laser depth, with its unregistered pixels (0) filled from the
  ARKit depth resampled onto the laser grid; `gt` = laser depth only (0 stays no depth); `arkit` = ARKit only.
  Frames without laser depth use the ARKit depth. Masks then come from depth + boxes (common.write_scene).
- Room: from the structure boxes (`structure_room`: floor box + walls or ceiling), else none.
Tars are read sequentially once for their headers and the small JSON members; pixels are read lazily, member by
member, at their byte offsets (so only plain, uncompressed tars are supported, as released).
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vst.scene.importers.common import (ImportError_, ImportOptions, Intrinsics, RawFrame, RawScene, is_structure,
                                        read_depth_png, read_rgb,
                                        proper_rotation, readable_category, resample_plane)
from vst.scene.types import OBB, ObjectInstance, Room

LICENSE = "CC BY-NC-ND 4.0 (CA-1M; non-commercial, no derivatives)"
DEPTH_UNITS = 1000.0  # uint16 millimetres (dataset.py MM_TO_M)
WORLD_KEY = "world"
JSON_KEYS = {"wide/image/k", "wide/depth/k", "gt/depth/k", "gt/rt", "wide/t_gravity"}
PNG_KEYS = {"wide/image", "wide/depth", "gt/depth"}
LAZY_KEYS = PNG_KEYS | {"wide/instances"}
DEPTH_MODES = ("fill", "gt", "arkit")
UP_TOLERANCE_DEGREES = 10.0  # measured with T_gravity
UP_TOLERANCE_CAMERA_DEGREES = 45.0  # measured from the cameras' y axes
AXES = {"+x": np.array([1.0, 0, 0]), "-x": np.array([-1.0, 0, 0]), "+y": np.array([0, 1.0, 0]),
        "-y": np.array([0, -1.0, 0]), "+z": np.array([0, 0, 1.0]), "-z": np.array([0, 0, -1.0])}
# a rotation taking each signed axis to +z (world -> vst world)
TO_Z_UP = {"+z": np.eye(3), "-z": np.diag([1.0, -1.0, -1.0]),
           "+y": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), "-y": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
           "+x": np.array([[0, 0, -1.0], [0, 1, 0], [1, 0, 0]]), "-x": np.array([[0, 0, 1.0], [0, 1, 0], [-1, 0, 0]])}


@dataclass
class Member:
    """Where a member's bytes lie in its (uncompressed) tar."""

    name: str
    offset: int
    size: int
    png_size: tuple[int, int] | None = None  # (width, height) from the PNG header


@dataclass
class Sample:
    timestamp: int  # nanoseconds
    json: dict[str, object] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)


# -- finding scenes -----------------------------------------------------------------------------------------------------
def video_id(path: Path) -> str:
    """`ca1m-<split>-<video_id>.tar` -> video id (as `tools/demo.py` filters `--video-ids`)."""
    return path.name[: -len(".tar")].split("-")[-1]


def _tars(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    return sorted(p for p in src.rglob("ca1m-*.tar") if p.is_file())


def list_scenes(src: Path, options: ImportOptions | None = None) -> list[str]:
    return sorted({video_id(p) for p in _tars(src)})


def find_tar(src: Path, scene_id: str) -> Path:
    matches = [p for p in _tars(src) if video_id(p) == scene_id]
    if not matches:
        raise ImportError_(f"{src}: no ca1m-<split>-{scene_id}.tar")
    if len(matches) > 1:
        raise ImportError_(f"{src}: several tars for video {scene_id}: {', '.join(map(str, matches))}")
    return matches[0]


# -- reading a tar ------------------------------------------------------------------------------------------------------
def split_key(name: str) -> tuple[str, str] | None:
    """Member name -> (sample key, member key), as upstream groups them: `42898570/1234.wide/image/K.json` ->
    (`42898570/1234`, `wide/image/k`)."""
    while name.startswith("./"):
        name = name[2:]
    parts = name.split(".")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1].lower()


def _png_header_size(header: bytes) -> tuple[int, int] | None:
    if len(header) >= 24 and header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR":
        return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    return None


def _json_bytes(data: bytes, where: str):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ImportError_(f"{where}: invalid JSON ({error})") from None


def scan_tar(path: Path, scene_id: str) -> tuple[dict[int, Sample], list | None]:
    """One sequential pass over the tar's headers: the frames' small JSON members parsed, the others located.
    Returns (samples by timestamp, world instances or None)."""
    with open(path, "rb") as handle:
        if handle.read(2) == b"\x1f\x8b":
            raise ImportError_(f"{path}: a gzip-compressed tar; CA-1M tars are plain tars (decompress it first)")
    samples: dict[int, Sample] = {}
    world, videos = None, set()
    try:
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                split = split_key(info.name)
                if split is None:
                    continue
                prefix, key = split
                video, _, stamp = prefix.rpartition("/")
                if video and video != scene_id:
                    videos.add(video)
                    continue
                where = f"{path}:{info.name}"
                if stamp == WORLD_KEY:
                    if key == "gt/instances":
                        world = _json_bytes(tar.extractfile(info).read(), where)
                    continue
                if not stamp.isdigit() or (key not in JSON_KEYS and key not in LAZY_KEYS):
                    continue
                sample = samples.setdefault(int(stamp), Sample(int(stamp)))
                if key in JSON_KEYS:
                    sample.json[key] = _json_bytes(tar.extractfile(info).read(), where)
                else:
                    member = Member(info.name, info.offset_data, info.size)
                    if key in PNG_KEYS:
                        member.png_size = _png_header_size(tar.extractfile(info).read(24))
                        if member.png_size is None:
                            raise ImportError_(f"{where}: not a PNG image")
                    sample.members[key] = member
    except tarfile.TarError as error:
        raise ImportError_(f"{path}: not a readable tar ({error})") from None
    if not samples and world is None and videos:
        raise ImportError_(f"{path}: holds video(s) {', '.join(sorted(videos))}, not {scene_id}")
    return samples, world


def read_member(path: Path, member: Member) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(member.offset)
        data = handle.read(member.size)
    if len(data) != member.size:
        raise ImportError_(f"{path}:{member.name}: truncated ({len(data)} of {member.size} bytes)")
    return data


def _decode_rgb(path: Path, member: Member) -> np.ndarray:
    return read_rgb(read_member(path, member), name=f"{path}:{member.name}")


def _decode_depth(path: Path, member: Member) -> np.ndarray:
    return read_depth_png(read_member(path, member), DEPTH_UNITS, name=f"{path}:{member.name}")


# -- conventions ----------------------------------------------------------------------------------------------------------
def _matrix(value, shape: tuple[int, int], where: str) -> np.ndarray:
    try:
        matrix = np.asarray(value, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError):
        raise ImportError_(f"{where}: expected {shape[0]} x {shape[1]} numbers") from None
    if not np.isfinite(matrix).all():
        raise ImportError_(f"{where}: non-finite values")
    return matrix


def intrinsics_from(k: np.ndarray, size: tuple[int, int], where: str) -> Intrinsics:
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ImportError_(f"{where}: focal lengths must be positive, got {k[0, 0]}, {k[1, 1]}")
    return Intrinsics(fx=float(k[0, 0]), fy=float(k[1, 1]), cx=float(k[0, 2]), cy=float(k[1, 2]),
                      width=int(size[0]), height=int(size[1]))


def clean_pose(pose: np.ndarray) -> np.ndarray:
    """A float32-rounded rigid pose made exactly orthonormal (only when it is a rotation to 1e-3; anything else is
    left for `select_frames` to reject)."""
    pose = pose.copy()
    rotation = pose[:3, :3]
    if np.abs(rotation.T @ rotation - np.eye(3)).max() < 1e-3 and np.linalg.det(rotation) > 0:
        u, _, vt = np.linalg.svd(rotation)
        pose[:3, :3] = u @ vt
        pose[3] = [0.0, 0.0, 0.0, 1.0]
    return pose


def measure_up(poses: list[np.ndarray], gravities: list[np.ndarray | None]) -> tuple[str, float]:
    """(nearest signed world axis to "up", angle in degrees between them). Down in the world is RT_R @
    T_gravity[:, 1] (or, without T_gravity, roughly the camera's y axis: the images are upright)."""
    with_gravity = [(p, g) for p, g in zip(poses, gravities) if g is not None]
    if with_gravity:
        downs = [p[:3, :3] @ g[:, 1] for p, g in with_gravity]
    else:
        downs = [p[:3, :3][:, 1] for p in poses]
    up = -np.mean(downs, axis=0)
    norm = np.linalg.norm(up)
    if norm < 1e-6:
        return "+z", 90.0
    up /= norm
    axis = max(AXES, key=lambda name: float(AXES[name] @ up))
    return axis, float(np.degrees(np.arccos(np.clip(AXES[axis] @ up, -1.0, 1.0))))


def box_from_row(row, where: str) -> OBB:
    if not isinstance(row, dict):
        raise ImportError_(f"{where}: expected an object with position, scale and R")
    try:
        center = _matrix(row["position"], (3,), f"{where}.position")
        size = np.abs(_matrix(row["scale"], (3,), f"{where}.scale"))
        rotation = _matrix(row["R"], (3, 3), f"{where}.R")
    except KeyError as error:
        raise ImportError_(f"{where}: missing field {error}") from None
    return OBB(center=tuple(center.tolist()), size=tuple(size.tolist()), rotation=proper_rotation(rotation).tolist())


def moved_box(box: OBB, rotation: np.ndarray, translation: np.ndarray) -> OBB:
    """`box` in the frame that (rotation, translation) maps into the target frame."""
    center = rotation @ np.asarray(box.center) + translation
    return OBB(center=tuple(center.tolist()), size=box.size,
               rotation=proper_rotation(rotation @ box.rotation_matrix).tolist())


def _object(instance_id: int, row: dict, box: OBB) -> ObjectInstance:
    raw_label = str(row.get("category") or "object")
    category = readable_category(raw_label)
    caption = row.get("caption")
    return ObjectInstance(instance_id=instance_id, category=category, raw_label=raw_label,
                          description=caption if isinstance(caption, str) else "", box=box,
                          is_structure=is_structure(category), attributes={"ca1m_id": str(row.get("id"))})


def _area(box_2d) -> float:
    try:
        x0, y0, x1, y1 = (float(v) for v in box_2d)
    except (TypeError, ValueError):
        return -1.0
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def world_objects(rows, where: str) -> list[ObjectInstance]:
    if not isinstance(rows, list):
        raise ImportError_(f"{where}: expected a list of instances")
    return [_object(index + 1, row, box_from_row(row, f"{where}[{index}]")) for index, row in enumerate(rows)]


def frame_objects(path: Path, samples: list[Sample], poses: dict[int, np.ndarray]) -> list[ObjectInstance]:
    """No world boxes: each id's per-frame box from the frame where it is seen largest (`box_2d_rend`, else
    `box_2d_proj`), moved from that camera to the world."""
    best: dict[str, tuple[float, dict, OBB]] = {}
    order: list[str] = []
    for sample in samples:
        member = sample.members.get("wide/instances")
        if member is None or sample.timestamp not in poses:
            continue
        where = f"{path}:{member.name}"
        rows = _json_bytes(read_member(path, member), where)
        if not isinstance(rows, list):
            raise ImportError_(f"{where}: expected a list of instances")
        pose = poses[sample.timestamp]
        for index, row in enumerate(rows):
            box = box_from_row(row, f"{where}[{index}]")
            key = str(row.get("id"))
            area = _area(row["box_2d_rend"] if "box_2d_rend" in row else row.get("box_2d_proj"))
            if key not in best:
                order.append(key)
            if key not in best or area > best[key][0]:
                best[key] = (area, row, moved_box(box, pose[:3, :3], pose[:3, 3]))
    return [_object(index + 1, best[key][1], best[key][2]) for index, key in enumerate(order)]


def structure_room(objects: list[ObjectInstance]) -> Room | None:
    """The room the structure boxes bound, when there is a floor box and a ceiling or wall box: the floor polygon is
    the convex hull of the floor and wall boxes' corners (xy), the floor height the floor boxes' top (median), the
    ceiling height the ceiling boxes' bottom (median; else the walls' top)."""
    from scipy.spatial import ConvexHull, QhullError

    from vst.scene.geometry import box_corners

    def corners(kind: str) -> list[np.ndarray]:
        return [box_corners((o.box.center, o.box.size, o.box.rotation)) for o in objects
                if o.category == kind and o.box is not None]

    floors, walls, ceilings = corners("floor"), corners("wall"), corners("ceiling")
    if not floors or not (walls or ceilings):
        return None
    floor_z = float(np.median([c[:, 2].max() for c in floors]))
    ceiling_z = float(np.median([c[:, 2].min() for c in ceilings])) if ceilings else max(float(c[:, 2].max()) for c in walls)
    if ceiling_z <= floor_z:
        return None
    xy = np.concatenate(floors + walls)[:, :2]
    try:
        hull = ConvexHull(xy)
    except (QhullError, ValueError):  # degenerate (collinear) footprint: no room rather than a wrong one
        return None
    return Room(floor_polygon=[(round(float(x), 4), round(float(y), 4)) for x, y in xy[hull.vertices]],
                floor_z=round(floor_z, 4), ceiling_z=round(ceiling_z, 4), area_m2=round(float(hull.volume), 4))


# -- the scene ------------------------------------------------------------------------------------------------------------
def read_scene(src: Path, scene_id: str, options: ImportOptions) -> RawScene:
    path = find_tar(src, scene_id)
    mode = str(options.extra.get("depth", "fill"))
    if mode not in DEPTH_MODES:
        raise ImportError_(f"option depth={mode!r}: choose one of {', '.join(DEPTH_MODES)}")
    samples, world = scan_tar(path, scene_id)
    ordered = [samples[t] for t in sorted(samples)]
    raw_poses, gravities, kept = {}, [], []
    for sample in ordered:
        if "gt/rt" not in sample.json or "wide/image" not in sample.members or "wide/image/k" not in sample.json:
            continue  # unregistered or incomplete frame: cannot be placed in the world
        where = f"{path}:{scene_id}/{sample.timestamp}"
        raw_poses[sample.timestamp] = clean_pose(_matrix(sample.json["gt/rt"], (4, 4), f"{where}.gt/RT.json"))
        gravity = sample.json.get("wide/t_gravity")
        gravities.append(None if gravity is None else _matrix(gravity, (3, 3), f"{where}.wide/T_gravity.json"))
        kept.append(sample)
    if not kept:
        raise ImportError_(f"{path}: no frame with wide/image.png, wide/image/K.json and gt/RT.json")
    up = options.extra.get("up")
    if up is None:
        up, angle = measure_up([raw_poses[s.timestamp] for s in kept], gravities)
        tolerance = UP_TOLERANCE_DEGREES if any(g is not None for g in gravities) else UP_TOLERANCE_CAMERA_DEGREES
        if angle > tolerance:
            raise ImportError_(f"{path}: the world's up direction is {angle:.1f} degrees from the nearest axis ({up}); "
                               "expected a gravity-aligned laser world (force one with --option up=+z)")
    if up not in TO_Z_UP:
        raise ImportError_(f"option up={up!r}: choose one of {', '.join(TO_Z_UP)}")
    align = np.eye(4)
    align[:3, :3] = TO_Z_UP[up]
    if world is not None:
        objects = world_objects(world, f"{path}:{scene_id}/world.gt/instances.json")
    else:
        objects = frame_objects(path, kept, raw_poses)
    objects = [o.model_copy(update={"box": moved_box(o.box, align[:3, :3], np.zeros(3))}) for o in objects]
    frames = [_frame(path, sample, align @ raw_poses[sample.timestamp], mode) for sample in kept]
    return RawScene(scene_id=scene_id, source="ca1m", license=LICENSE, objects=objects, frames=frames,
                    room=structure_room(objects))


def _frame(path: Path, sample: Sample, pose: np.ndarray, mode: str) -> RawFrame:
    where = f"{path}:{sample.members['wide/image'].name}"
    image = sample.members["wide/image"]
    intrinsics = intrinsics_from(_matrix(sample.json["wide/image/k"], (3, 3), f"{where} K"), image.png_size, where)
    depths = {}
    for prefix in ("gt", "wide"):
        member, k = sample.members.get(f"{prefix}/depth"), sample.json.get(f"{prefix}/depth/k")
        if member is not None and k is not None:
            depths[prefix] = (member, intrinsics_from(_matrix(k, (3, 3), f"{path}:{member.name} K"), member.png_size,
                                                      f"{path}:{member.name}"))
    if mode == "arkit":
        depths.pop("gt", None)
    if mode == "gt" and "gt" in depths:
        depths.pop("wide", None)
    main = depths.get("gt") or depths.get("wide")
    fill = depths.get("wide") if "gt" in depths else None

    def depth() -> np.ndarray:
        member, k = main
        plane = _decode_depth(path, member)
        if fill is not None and (plane <= 0).any():
            wide = resample_plane(_decode_depth(path, fill[0]), fill[1], k)
            plane = np.where(plane > 0, plane, wide).astype(np.float32)
        return plane

    return RawFrame(frame_id=str(sample.timestamp), timestamp=sample.timestamp / 1e9, intrinsics=intrinsics,
                    cam_to_world=pose, rgb=lambda: _decode_rgb(path, image),
                    depth=depth if main is not None else None, depth_intrinsics=main[1] if main is not None else None)
