"""What every scan importer shares: the raw scene a format reader returns, the geometry that converts datasets'
conventions to the Scene contract (pure functions, tested against analytic answers), and `write_scene`, which turns
a raw scene into a vst scene folder (frames resized to one grid, planar depth in millimetres, instance masks,
visibility, sequences for stills / view pairs / video).

A format module (`vst.scene.importers.<format>`) only reads its files and converts its conventions: world = z up,
metres; cameras = OpenCV cam-to-world; boxes = `OBB` (rotation box -> world, columns = box axes); depth = planar
metres. Instance masks come, in this order of preference, from the dataset's own masks, from re-rendering the
dataset's mesh labelled per vertex with vst's renderer, or from depth + boxes (back-projected pixels inside a box).
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from scipy.spatial import ConvexHull, QhullError

from vst.scene.capture import FRAMES_DIR, compute_visibility, depth_to_png16, encode_jpeg, encode_png16, object_corners
from vst.scene.mesh import Mesh, scene_mesh
from vst.scene.render import Renderer, RenderOutput
from vst.scene.types import OBB, Frame, Intrinsics, ObjectInstance, Room, Scene, SceneError, atomic_write_bytes
from vst.scene.video import write_scene_video

DEPTH_BOX_MARGIN_M = 0.02  # depth + boxes masks: a point this close outside a box still belongs to it (sensor noise,
                           # and surfaces that lie exactly on a box face, such as a floor on its box's top)
STRUCTURE = {"wall", "floor", "ceiling", "door_frame", "window_frame", "structure", "beam", "column"}


class ImportError_(SceneError):
    """A scan that cannot be imported; the message names the file and field."""


@dataclass
class RawFrame:
    """One frame of a scan in vst's conventions, with its pixels loaded lazily (scans are large)."""

    frame_id: str
    timestamp: float  # seconds
    intrinsics: Intrinsics  # of the colour image as `rgb()` returns it
    cam_to_world: np.ndarray  # (4, 4) OpenCV camera -> z-up metric world
    rgb: Callable[[], np.ndarray]  # (H, W, 3) uint8
    depth: Callable[[], np.ndarray] | None = None  # planar metres (h, w) float32 on `depth_intrinsics`' grid; 0 = none
    depth_intrinsics: Intrinsics | None = None  # None: the colour grid
    instance_ids: Callable[[], np.ndarray] | None = None  # the dataset's own mask on the colour grid (0 = none)


@dataclass
class LabelledMesh:
    """A scan's mesh in the z-up world with one instance id per vertex (0 = unlabelled)."""

    vertices: np.ndarray  # (n, 3) float
    faces: np.ndarray  # (m, 3) int
    vertex_ids: np.ndarray  # (n,) int
    colors: np.ndarray | None = None  # (n, 3) uint8


@dataclass
class RawScene:
    scene_id: str
    source: str
    license: str
    objects: list[ObjectInstance]
    frames: list[RawFrame]
    mesh: LabelledMesh | None = None
    room: Room | None = None
    selected: bool = False  # the reader already applied select_frames (it decodes a video stream once, for those)
    room_from_depth: bool = True  # without `room`, estimate one from the frames' depth (not where depth sees outdoors)


@dataclass
class ImportOptions:
    stride: int = 1  # keep every stride-th frame of the stream
    max_frames: int | None = None  # then at most this many, evenly spaced
    max_side: int = 640  # frames are resized so that their longer side is at most this
    fps: float = 2.0  # the walk-through video's frame rate (VST samples videos at 2 fps)
    stills: int = 8  # frames also offered as single views
    pairs: int = 4  # view pairs, ~pair_gap_s apart
    pair_gap_s: float = 1.5
    extra: dict = field(default_factory=dict)  # format-specific options (e.g. `labels` for ScanNet)


# -- geometry (pure) -------------------------------------------------------------------------------------------------
def obb_from_axes(centroid, axes_lengths, normalized_axes) -> OBB:
    """ARKitScenes / ScanNet++ / VSI box: `normalizedAxes` holds the box axes as rows (row-major 3 x 3), so
    R = reshape(normalizedAxes, 3, 3).T has them as columns (the official `compute_box_3d`)."""
    rotation = np.asarray(normalized_axes, dtype=np.float64).reshape(3, 3).T
    return OBB(center=tuple(map(float, centroid)), size=tuple(map(float, axes_lengths)),
               rotation=proper_rotation(rotation).tolist())


def proper_rotation(matrix: np.ndarray) -> np.ndarray:
    """The nearest rotation (det +1) to a nearly orthonormal matrix; a reflection is made proper by negating its
    third column (a box's third axis may point either way: the box is the same)."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, dtype=np.float64))
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:
        rotation[:, 2] *= -1
    return rotation


def euler_zxy(alpha: float, beta: float, gamma: float) -> np.ndarray:
    """EmbodiedScan's 9-DoF box angles: pytorch3d `euler_angles_to_matrix([α, β, γ], "ZXY")` = Rz(α) Rx(β) Ry(γ)."""
    ca, sa, cb, sb, cg, sg = np.cos(alpha), np.sin(alpha), np.cos(beta), np.sin(beta), np.cos(gamma), np.sin(gamma)
    rz = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cb, -sb], [0, sb, cb]])
    ry = np.array([[cg, 0, sg], [0, 1, 0], [-sg, 0, cg]])
    return rz @ rx @ ry


def axis_angle_matrix(rotvec) -> np.ndarray:
    """Rodrigues: a rotation vector (axis x angle in radians) -> 3 x 3."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(np.asarray(rotvec, dtype=np.float64)).as_matrix()


def rigid(rotation: np.ndarray, translation) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = translation
    return pose


def invert_rigid(pose: np.ndarray) -> np.ndarray:
    inverse = np.eye(4)
    inverse[:3, :3] = pose[:3, :3].T
    inverse[:3, 3] = -pose[:3, :3].T @ pose[:3, 3]
    return inverse


GL_TO_CV = np.diag([1.0, -1.0, -1.0])  # camera axes: OpenGL (x right, y up, looking down -z) -> OpenCV


NEAR_VERTICAL = np.cos(np.radians(20))  # upright_turns leaves cameras within 20 degrees of vertical alone
ROT90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # camera axes after np.rot90(image, 1)


def rot90_camera(intrinsics: Intrinsics, cam_to_world: np.ndarray, k: int) -> tuple[Intrinsics, np.ndarray]:
    """The camera of `np.rot90(image, k)` (k quarter turns counter-clockwise). One turn maps pixel (u, v) to
    (v, W - 1 - u): the new x axis is the old y, the new y axis the old -x."""
    pose = np.asarray(cam_to_world, dtype=np.float64).copy()
    for _ in range(k % 4):
        intrinsics = Intrinsics(fx=intrinsics.fy, fy=intrinsics.fx, cx=intrinsics.cy, cy=intrinsics.width - 1 - intrinsics.cx,
                                width=intrinsics.height, height=intrinsics.width)
        pose[:3, :3] = pose[:3, :3] @ ROT90
    return intrinsics, pose


def upright_turns(cam_to_world: np.ndarray) -> int:
    """Quarter turns (for np.rot90) that make an image upright: its y axis (image down) closest to world -z.
    Phones record portrait and landscape videos (ARKitScenes' `sky_direction`); vst's questions about left,
    right, above and below need upright images."""
    rotation = np.asarray(cam_to_world, dtype=np.float64)[:3, :3]
    if abs(rotation[2, 2]) > NEAR_VERTICAL:  # looking (almost) straight up or down: no image direction is "down"
        return 0
    downness = [-(rotation @ np.linalg.matrix_power(ROT90, k))[2, 1] for k in range(4)]
    return int(np.argmax(downness))


def upright(frame: RawFrame) -> RawFrame:
    """`frame` with its image, depth, masks, intrinsics and pose turned upright (see `upright_turns`)."""
    k = upright_turns(frame.cam_to_world)
    if k == 0:
        return frame
    intrinsics, pose = rot90_camera(frame.intrinsics, frame.cam_to_world, k)
    depth_intrinsics = rot90_camera(frame.depth_intrinsics, frame.cam_to_world, k)[0] if frame.depth_intrinsics else None

    def turned(load):
        return None if load is None else (lambda: np.ascontiguousarray(np.rot90(load(), k)))

    return RawFrame(frame.frame_id, frame.timestamp, intrinsics, pose, turned(frame.rgb), turned(frame.depth),
                    depth_intrinsics, turned(frame.instance_ids))


def planar_from_ray_distance(distance: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Hypersim's `depth_meters` is the distance from the optical centre along each pixel's ray; planar z is
    distance / |K^-1 (u, v, 1)| (a pinhole without skew: the Hypersim reader refuses skewed cameras first)."""
    height, width = distance.shape
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    norm = np.sqrt(1.0 + ((u - intrinsics.cx) / intrinsics.fx) ** 2 + ((v - intrinsics.cy) / intrinsics.fy) ** 2)
    return (distance / norm).astype(np.float32)


def scaled_intrinsics(intrinsics: Intrinsics, width: int, height: int) -> Intrinsics:
    """The same camera on a resized image: pixel centres map as (i + 0.5) * s - 0.5."""
    sx, sy = width / intrinsics.width, height / intrinsics.height
    return Intrinsics(fx=intrinsics.fx * sx, fy=intrinsics.fy * sy, cx=(intrinsics.cx + 0.5) * sx - 0.5,
                      cy=(intrinsics.cy + 0.5) * sy - 0.5, width=width, height=height)


def output_intrinsics(intrinsics: Intrinsics, max_side: int) -> Intrinsics:
    scale = min(1.0, max_side / max(intrinsics.width, intrinsics.height))
    if scale == 1.0:
        return intrinsics
    return scaled_intrinsics(intrinsics, max(1, round(intrinsics.width * scale)), max(1, round(intrinsics.height * scale)))


def resample_plane(plane: np.ndarray, source: Intrinsics, target: Intrinsics) -> np.ndarray:
    """Nearest-neighbour resampling of a per-pixel map (depth, ids) between two pinhole cameras at the same pose:
    target pixel (u, v) looks along the ray of source pixel (fx_s (u - cx_t) / fx_t + cx_s, ...). Pixels that
    fall outside the source are 0."""
    if plane.shape != (source.height, source.width):
        raise ValueError(f"plane of shape {plane.shape} does not match its intrinsics ({source.width} x {source.height})")
    u = np.rint(source.fx * (np.arange(target.width) - target.cx) / target.fx + source.cx).astype(np.int64)
    v = np.rint(source.fy * (np.arange(target.height) - target.cy) / target.fy + source.cy).astype(np.int64)
    inside_u, inside_v = (u >= 0) & (u < source.width), (v >= 0) & (v < source.height)
    out = plane[np.clip(v, 0, source.height - 1)][:, np.clip(u, 0, source.width - 1)]
    out = np.where(inside_v[:, None] & inside_u[None, :], out, 0)
    return out.astype(plane.dtype)


def backproject(depth: np.ndarray, intrinsics: Intrinsics, cam_to_world: np.ndarray) -> np.ndarray:
    """(H, W) planar depth -> (H, W, 3) world points (NaN where depth is 0)."""
    height, width = depth.shape
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    z = np.where(depth > 0, depth, np.nan)
    camera = np.stack([(u - intrinsics.cx) / intrinsics.fx * z, (v - intrinsics.cy) / intrinsics.fy * z, z], axis=-1)
    return camera @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]


def points_in_boxes(points: np.ndarray, objects: list[ObjectInstance], margin: float = 0.0) -> np.ndarray:
    """Instance id per point (0 = in no box). A point inside several boxes goes to an object before a structure
    box (floor, wall), and among objects to the smallest (a lamp on a table belongs to the lamp). `points` is
    (..., 3); NaN points get 0."""
    flat = points.reshape(-1, 3)
    ids = np.zeros(len(flat), dtype=np.int32)
    boxes = sorted((o for o in objects if o.box is not None), key=lambda o: (not o.is_structure, -np.prod(o.box.size)))
    for obj in boxes:  # structure, then the largest objects first, so that smaller boxes overwrite
        local = (flat - np.asarray(obj.box.center)) @ obj.box.rotation_matrix
        half = np.asarray(obj.box.size) / 2 + margin
        with np.errstate(invalid="ignore"):
            inside = np.all(np.abs(local) <= half, axis=1)
        ids[inside] = obj.instance_id
    return ids.reshape(points.shape[:-1])


def room_from_points(points: np.ndarray) -> Room:
    """A room from a scan's points: the convex hull of their xy as the floor, the 1st / 99th percentile of z as
    floor and ceiling (scans have stray points below the floor and above the ceiling)."""
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) < 4:
        raise ValueError("too few points to estimate the room")
    floor_z, ceiling_z = np.percentile(points[:, 2], [1, 99])
    hull = ConvexHull(points[:, :2])
    polygon = points[hull.vertices, :2]
    return Room(floor_polygon=[(round(float(x), 4), round(float(y), 4)) for x, y in polygon],
                floor_z=round(float(floor_z), 4), ceiling_z=round(float(max(ceiling_z, floor_z + 0.5)), 4),
                area_m2=round(float(hull.volume), 4))


def box_from_points(points: np.ndarray) -> OBB:
    """Axis-aligned box of points (ScanNet's objects: the AABB of their aligned vertices)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return OBB(center=tuple(((lo + hi) / 2).tolist()), size=tuple((hi - lo).tolist()))


# -- files ------------------------------------------------------------------------------------------------------------
def _open(source: Path | bytes):
    import io

    return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)


def read_rgb(source: Path | bytes, name: str | None = None) -> np.ndarray:
    """An image file (or its bytes; `name` says where they came from) -> (H, W, 3) uint8."""
    try:
        with _open(source) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as error:
        raise ImportError_(f"{name or source}: not a readable image ({error})") from None


def read_depth_png(source: Path | bytes, units_per_metre: float = 1000.0, name: str | None = None) -> np.ndarray:
    """A one-channel uint16 depth PNG (a file or its bytes) -> float32 metres."""
    name = name or source
    try:
        with _open(source) as image:
            plane = np.asarray(image)
    except OSError as error:
        raise ImportError_(f"{name}: not a readable depth image ({error})") from None
    if plane.ndim != 2:
        raise ImportError_(f"{name}: depth must be one uint16 channel, got shape {plane.shape}")
    return plane.astype(np.float32) / units_per_metre


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ImportError_(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise ImportError_(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from None


def read_mesh(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(vertices (n, 3), faces (m, 3), vertex colours (n, 3) uint8 or None) of a PLY mesh (trimesh reads binary and
    ASCII PLY, with or without colours)."""
    import trimesh

    try:
        mesh = trimesh.load(path, process=False, force="mesh")
    except Exception as error:  # trimesh raises many types on a foreign or truncated file
        raise ImportError_(f"{path}: not a readable PLY mesh ({error})") from None
    colors = getattr(mesh.visual, "vertex_colors", None)
    colors = None if colors is None or len(colors) != len(mesh.vertices) else np.asarray(colors)[:, :3]
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64), colors


# -- categories --------------------------------------------------------------------------------------------------------
@functools.cache
def _vocabulary() -> dict[str, str]:
    """Raw label (lower case) -> vst's readable category, from the shipped table `categories.tsv`."""
    table = {}
    with open(Path(__file__).with_name("categories.tsv"), encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if row and not row[0].startswith("#"):
                table[row[0].strip().lower()] = row[1].strip()
    return table


def readable_category(raw: str) -> str:
    """One vocabulary across datasets, in the procedural catalogue's style (lower case, `_` between words): the
    shipped mapping `categories.tsv` where it has the label ("couch" -> "sofa", "tv_monitor" -> "tv"), else the raw
    label normalised ("Kitchen Cabinet" -> "kitchen_cabinet")."""
    key = " ".join(raw.replace("_", " ").replace("-", " ").lower().split())
    return _vocabulary().get(key, key.replace(" ", "_"))


def is_structure(category: str) -> bool:
    return category in STRUCTURE


# -- writing a scene -------------------------------------------------------------------------------------------------
def select_frames(frames: list[RawFrame], options: ImportOptions) -> list[RawFrame]:
    """Every `stride`-th frame with a finite rigid pose, then at most `max_frames` of them, evenly spaced."""
    kept = [f for f in frames[:: max(1, options.stride)] if _valid_pose(f.cam_to_world)]
    if options.max_frames and len(kept) > options.max_frames:
        kept = [kept[i] for i in np.linspace(0, len(kept) - 1, options.max_frames).round().astype(int)]
    return kept


def _valid_pose(pose: np.ndarray) -> bool:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        return False
    rotation = pose[:3, :3]
    return bool(np.abs(rotation.T @ rotation - np.eye(3)).max() < 1e-3 and np.linalg.det(rotation) > 0)


def video_frames(frames: list[RawFrame], fps: float) -> list[RawFrame]:
    """The frames nearest to a `fps` clock over the stream (each frame at most once)."""
    if len(frames) < 2:
        return frames
    start, end = frames[0].timestamp, frames[-1].timestamp
    times = np.array([f.timestamp for f in frames])
    chosen = []
    for tick in np.arange(start, end + 1e-9, 1.0 / fps):
        index = int(np.abs(times - tick).argmin())
        if not chosen or index != chosen[-1]:
            chosen.append(index)
    return [frames[i] for i in chosen]


def labelled_render_mesh(mesh: LabelledMesh) -> Mesh:
    """A dataset mesh as a vst render `Mesh`: each face takes the id its vertices agree on (majority; 0 if all
    three differ), and faces are grouped by id so that `Renderer.unoccluded_pixels` can draw one instance alone."""
    faces = np.asarray(mesh.faces, dtype=np.int64)
    corner_ids = mesh.vertex_ids[faces]
    face_ids = np.where(corner_ids[:, 0] == corner_ids[:, 1], corner_ids[:, 0],
                        np.where(corner_ids[:, 1] == corner_ids[:, 2], corner_ids[:, 1],
                                 np.where(corner_ids[:, 0] == corner_ids[:, 2], corner_ids[:, 0], 0)))
    order = np.argsort(face_ids, kind="stable")
    faces, face_ids = faces[order], face_ids[order]
    positions = mesh.vertices[faces].reshape(-1, 3).astype(np.float32)
    edges1 = positions[1::3] - positions[0::3]
    edges2 = positions[2::3] - positions[0::3]
    normals = np.cross(edges1, edges2)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    normals = np.repeat(normals, 3, axis=0).astype(np.float32)
    if mesh.colors is not None:
        colors = (np.asarray(mesh.colors, dtype=np.float32)[faces].reshape(-1, 3) / 255.0) ** 2.2  # sRGB -> linear
    else:
        colors = np.full((len(positions), 3), 0.6, dtype=np.float32)
    ids = np.repeat(face_ids, 3).astype(np.int32)
    ranges, start = {}, 0
    for instance_id, count in zip(*np.unique(face_ids, return_counts=True)):
        ranges[int(instance_id)] = (start * 3, int(count) * 3)
        start += int(count)
    return Mesh(positions, normals, colors.astype(np.float32), ids, np.zeros(len(positions), dtype=np.int32), ranges)


def _resized_rgb(rgb: np.ndarray, target: Intrinsics, name: str) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ImportError_(f"{name}: colour image must be H x W x 3, got shape {rgb.shape}")
    rgb = np.ascontiguousarray(rgb[..., :3].astype(np.uint8))
    if rgb.shape[:2] != (target.height, target.width):
        rgb = np.asarray(Image.fromarray(rgb).resize((target.width, target.height), Image.Resampling.BICUBIC))
    return rgb


def write_scene(raw: RawScene, out_dir: str | Path, options: ImportOptions, renderer: Renderer | None = None) -> Scene:
    """Write `raw` as a vst scene into `out_dir` (frames first, scene.json last, atomically) and return it."""
    out_dir = Path(out_dir)
    (out_dir / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
    stream = raw.frames if raw.selected else select_frames(raw.frames, options)
    if not stream:
        raise ImportError_(f"{raw.scene_id}: no frame with a valid pose (of {len(raw.frames)})")
    objects = raw.objects
    skeleton = Scene(scene_id=raw.scene_id, source=raw.source, objects=objects, license=raw.license)
    corners = object_corners(skeleton)
    if raw.mesh is not None:
        mesh = labelled_render_mesh(raw.mesh)
    elif any(o.box is not None for o in objects):  # occlusion-free silhouettes of the boxes, for visible_frac
        mesh = scene_mesh(skeleton.model_copy(update={"objects": [o for o in objects if not o.is_structure and o.box]}))
    else:
        mesh = None  # nothing to render: no renderer (a caller's is left alone)
    own_renderer = mesh is not None and renderer is None
    renderer = None if mesh is None else renderer or Renderer(antialias=False)
    room_points = raw.room is None and raw.room_from_depth
    written: dict[str, Frame] = {}
    clouds: list[np.ndarray] = []
    try:
        if renderer is not None:
            renderer.set_mesh(mesh)
        plan = plan_sequences(stream, options)
        for raw_frame in {id(entry[0]): entry[0] for entry in plan}.values():
            written[raw_frame.frame_id], cloud = _write_frame(raw, raw_frame, out_dir, options, renderer, skeleton,
                                                              corners, room_points)
            if cloud is not None:
                clouds.append(cloud)
    finally:
        if own_renderer:
            renderer.release()
    frames = [written[raw_frame.frame_id].model_copy(update={"frame_id": frame_id, "sequence": sequence, "timestamp": timestamp})
              for raw_frame, frame_id, sequence, timestamp in plan]
    room = raw.room if not room_points else _room_from_clouds(clouds)
    scene = skeleton.model_copy(update={"frames": frames, "room": room,
                                        "fps": options.fps if any(f.sequence == "video" for f in frames) else None})
    scene = Scene.model_validate(scene.model_dump())  # validate the assembled scene once, as a reader would
    write_scene_video(scene, out_dir)  # encoded once here instead of on every data-engine run over the scan
    scene.save(out_dir)
    return scene


ROOM_PIXEL_STEP = 8  # every 8th pixel of every written frame's depth estimates a room for scans without a mesh


def _room_cloud(depth_mm: np.ndarray, intrinsics: Intrinsics, pose: np.ndarray) -> np.ndarray:
    """World points of every `ROOM_PIXEL_STEP`-th pixel of a frame's depth as written (uint16 millimetres)."""
    depth = depth_mm[::ROOM_PIXEL_STEP, ::ROOM_PIXEL_STEP].astype(np.float32) / 1000.0
    k = intrinsics
    sparse = k.model_copy(update={"fx": k.fx / ROOM_PIXEL_STEP, "fy": k.fy / ROOM_PIXEL_STEP, "cx": k.cx / ROOM_PIXEL_STEP,
                                  "cy": k.cy / ROOM_PIXEL_STEP, "width": depth.shape[1], "height": depth.shape[0]})
    return backproject(depth, sparse, pose).reshape(-1, 3)


def _room_from_clouds(clouds: list[np.ndarray]) -> Room | None:
    """The room seen by the frames' depth (scans without a mesh or structure boxes): `room_from_points` over their
    back-projected pixels; None when there is too little depth."""
    try:
        return room_from_points(np.concatenate(clouds)) if clouds else None
    except (ValueError, QhullError):  # too few points, or all on a line
        return None


def _write_frame(raw: RawScene, raw_frame: RawFrame, out_dir: Path, options: ImportOptions, renderer: Renderer | None,
                 skeleton: Scene, corners: dict, room_points: bool = False) -> tuple[Frame, np.ndarray | None]:
    """Write one frame's files; returns the frame and, with `room_points`, its sparse world points (for the room)."""
    name = f"{raw.scene_id}/{raw_frame.frame_id}"
    target = output_intrinsics(raw_frame.intrinsics, options.max_side)
    rgb = _resized_rgb(raw_frame.rgb(), target, name)
    depth = None
    if raw_frame.depth is not None:
        source = raw_frame.depth_intrinsics or raw_frame.intrinsics
        plane = np.nan_to_num(np.asarray(raw_frame.depth(), dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        depth = resample_plane(np.where(plane > 0, plane, 0).astype(np.float32), source, target)
    pose = np.asarray(raw_frame.cam_to_world, dtype=np.float64)
    rendered = None
    if raw.mesh is not None and renderer is not None:
        rendered = renderer.render(target, pose)
    if raw_frame.instance_ids is not None:
        ids = resample_plane(np.asarray(raw_frame.instance_ids(), dtype=np.int32), raw_frame.intrinsics, target)
    elif rendered is not None:
        ids = rendered.instance_ids
    elif depth is not None:
        ids = points_in_boxes(backproject(depth, target, pose), raw.objects, margin=DEPTH_BOX_MARGIN_M)
    else:
        ids = np.zeros((target.height, target.width), dtype=np.int32)
    if depth is None and rendered is not None:
        depth = rendered.depth
    known = {o.instance_id for o in raw.objects}
    ids = np.where(np.isin(ids, list(known)), ids, 0).astype(np.int32)
    depth_for_stats = depth if depth is not None else np.zeros(ids.shape, dtype=np.float32)
    if rendered is not None:  # pixels without sensor depth take the mesh's
        depth_for_stats = np.where(depth_for_stats > 0, depth_for_stats, rendered.depth)
    visible = [int(i) for i in np.unique(ids) if i > 0]
    unoccluded = renderer.unoccluded_pixels(target, pose, [i for i in visible if i in renderer.mesh.ranges]) \
        if renderer is not None and renderer.mesh is not None else None
    frame = Frame(frame_id=raw_frame.frame_id, timestamp=round(float(raw_frame.timestamp), 6), intrinsics=target,
                  cam_to_world=pose.tolist(), image_path=f"{FRAMES_DIR}/{raw_frame.frame_id}.jpg")
    output = RenderOutput(rgb=rgb, depth=depth_for_stats, instance_ids=ids)
    visibility = compute_visibility(skeleton, frame, output, unoccluded, corners)
    atomic_write_bytes(out_dir / frame.image_path, encode_jpeg(rgb))
    update, cloud = {"visibility": visibility}, None
    if depth is not None:
        update |= {"depth_path": f"{FRAMES_DIR}/{raw_frame.frame_id}_depth.png", "depth_scale": 1000.0}
        depth_mm = depth_to_png16(depth)
        atomic_write_bytes(out_dir / update["depth_path"], encode_png16(depth_mm))
        if room_points:
            cloud = _room_cloud(depth_mm, target, pose)
    update["instance_path"] = f"{FRAMES_DIR}/{raw_frame.frame_id}_ids.png"
    atomic_write_bytes(out_dir / update["instance_path"], encode_png16(ids))
    return frame.model_copy(update=update), cloud


def plan_sequences(stream: list[RawFrame], options: ImportOptions) -> list[tuple[RawFrame, str, str, float]]:
    """The stream as vst's sequences, as (frame, frame_id, sequence, timestamp): `video` (the stream on a `fps`
    clock), `still-NN` (evenly spaced frames) and `pair-NN` (two frames ~`pair_gap_s` apart). Stills and pairs are
    extra entries that share the video's files; only planned frames are written."""
    by_time = sorted(stream, key=lambda f: f.timestamp)
    times = np.array([f.timestamp for f in by_time])
    plan = []
    clock = video_frames(by_time, options.fps)
    if len(clock) > 1:
        plan += [(f, f.frame_id, "video", float(f.timestamp)) for f in clock]
    if options.stills:
        picks = np.unique(np.linspace(0, len(by_time) - 1, min(options.stills, len(by_time))).round().astype(int))
        plan += [(by_time[i], f"{by_time[i].frame_id}-still", f"still-{k:02d}", 0.0) for k, i in enumerate(picks)]
    if options.pairs and len(by_time) > 1:
        starts = np.unique(np.linspace(0, len(by_time) - 1, options.pairs + 1)[:-1].round().astype(int))
        for k, first in enumerate(starts):
            second = int(np.abs(times - (times[first] + options.pair_gap_s)).argmin())
            second = second if second > first else min(first + 1, len(by_time) - 1)
            if second != first:
                plan += [(by_time[index], f"{by_time[index].frame_id}-pair{k:02d}{'ab'[slot]}", f"pair-{k:02d}", float(slot))
                         for slot, index in enumerate((first, second))]
    return plan or [(by_time[0], by_time[0].frame_id, "still-00", 0.0)]
