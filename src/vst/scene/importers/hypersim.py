"""Hypersim (`SRC/ai_VVV_NNN/`, spec data.md §2.4): one vst scene per `ai_VVV_NNN` folder, all its cameras' frames.

Layout read (apple/ml-hypersim `README.md` "Working with the Hypersim Dataset"; `code/python/tools/
scene_generate_images_tonemap.py`, `scene_generate_images_bounding_box.py`, `scene_generate_bounding_boxes.py`;
`contrib/mikeroberts3000/` README, notebooks and `metadata_camera_parameters.csv`; issues #9, #24, #40, #53, #79):
- `_detail/metadata_scene.csv`: rows `parameter_name,parameter_value`; `meters_per_asset_unit` scales every asset
  coordinate (camera positions, boxes) to metres. The world is the artist's asset frame, which is z up (3ds Max; the
  cameras' +y "up" axes point along world +z, checked on ai_037_002's real trajectory).
- `_detail/cam_XX/camera_keyframe_{positions,orientations}.hdf5` (key `dataset`): (N, 3) camera positions in asset
  units and (N, 3, 3) rotations camera -> world with OpenGL camera axes (x right, y up, looking along -z).
  `camera_keyframe_frame_indices.hdf5` (when present) maps keyframe rows to frame numbers (the official tools
  look a frame up with `where(frame_indices == frame_id)`); without it, frame IIII is row IIII.
- `images/scene_cam_XX_final_preview/frame.IIII.tonemap.jpg` (the official tone-mapped colour), else
  `images/scene_cam_XX_final_hdf5/frame.IIII.color.hdf5` (linear HDR RGB) tone-mapped here exactly as
  `scene_generate_images_tonemap.py` does (90th-percentile brightness of the valid pixels -> 0.8 after gamma 1/2.2;
  valid = `render_entity_id != -1` when that file is there, else every pixel).
- `images/scene_cam_XX_geometry_hdf5/frame.IIII.depth_meters.hdf5`: float16 distance in metres from the optical
  centre along each pixel's ray (NOT planar; NaN where nothing was hit), converted with
  `common.planar_from_ray_distance`; `frame.IIII.semantic_instance.hdf5` (instance id per pixel, -1 = none) is the
  frame's instance mask; `frame.IIII.semantic.hdf5` (NYU40 id per pixel) labels instances when the mesh
  annotation files are absent.
- `_detail/mesh/metadata_semantic_instance_bounding_box_object_aligned_2d_{positions,extents,orientations}.hdf5`:
  row k = semantic instance k (rows of unused ids are inf: skipped); centre (asset units), full lengths along the box
  axes (asset units), rotation object -> world whose columns are the box axes (corners = t + R diag(extents)
  (c - 0.5), `scene_generate_images_bounding_box.py`), z axis up: exactly vst's `OBB` convention after scaling.
- `_detail/mesh/mesh_objects_si.hdf5` and `mesh_objects_sii.hdf5` (NYU40 label and semantic instance per low-level
  mesh object). They ship in ml-hypersim's repository (`evermotion_dataset/scenes/<scene>/_detail/mesh/`), not
  necessarily in the scene download: they are read from the scene folder or from `--option annotations=PATH`
  (that repository, or its `evermotion_dataset/scenes`). Without them an instance's label is the majority NYU40 id
  of its pixels over every frame; an instance seen in no frame then has no label and is left out.

Cameras. The image-plane geometry comes from `metadata_camera_parameters.csv` (ml-hypersim's
`contrib/mikeroberts3000/`; not part of the scene download): `SRC/metadata_camera_parameters.csv`, or
`--option camera_parameters=PATH`. Its `M_cam_from_uv` maps uv (pixel centres, u = -1 + (2 j + 1) / W left to
right, v = 1 - (2 i + 1) / H top to bottom) to camera-space ray directions (notebook 01). 288 of the 482 scenes use
V-Ray tilt-shift lenses: the map is then a general 3 x 3 homography, which an RQ decomposition splits exactly
into a pinhole K and a small rotation of the image plane relative to the stored camera orientation (up to 13
degrees, principal points up to 200 px off centre). The OpenCV camera-to-world is therefore `orientation @ GL_TO_CV
@ tilt`, not just `orientation @ GL_TO_CV`. Where the homography has skew (both shifts set; 14 scenes exceed
`SKEW_TOLERANCE_PX`), no pinhole without skew reproduces the image and the scene is refused with `ImportError_`.
`--option camera_parameters=nominal` uses the nominal 60-degree horizontal field of view with a centred principal
point instead. That is right only for scenes without tilt-shift (the CSV's `use_camera_physical` is False or all
offsets and shifts are 0), so it is an explicit choice and never a silent fallback.

Ids and labels: vst instance id = Hypersim semantic instance id (ids start at 1 in every scene's
`mesh_objects_sii`: row 0 of `metadata_semantic_instance_colors` is the -1 "none" entry); mask pixels -1 -> 0.
Category = `readable_category` of the NYU40 name (`NYU40`, from `semantic_label_descs.csv`).

Frames and time: Hypersim trajectories are random walks with no clock (consecutive keyframes ~1 m and ~11 degrees
apart). A trajectory's frame IIII is at IIII / `FPS` seconds (a walking pace), and each camera starts
`CAMERA_GAP_S` after the previous one's last frame, so vst's video, stills and pairs see one timeline, with the
trajectories in camera-name order. `--option cameras=cam_00,cam_02` imports only those. Frame ids are `cam_XX-IIII`.
Frames are not turned upright (`common.upright`): Hypersim keeps its cameras within a few degrees of upright (issue
#95), and for a camera looking straight down that rule would flip the image on a whim.
No mesh and no room: Hypersim's meshes need the purchased assets, and the depth of open scenes reaches outdoors, so
a room from depth points would be wrong.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from PIL import Image

from vst.scene.importers.common import (GL_TO_CV, ImportError_, ImportOptions, Intrinsics, RawFrame, RawScene,
                                        is_structure, planar_from_ray_distance, read_rgb, readable_category, rigid)
from vst.scene.types import OBB, ObjectInstance

LICENSE = ("Hypersim: CC BY-SA 3.0 (Apple ml-hypersim); underlying scene assets: Evermotion (TurboSquid) terms; "
           "ship no samples")
FPS = 1.0  # keyframes per second along a trajectory (Hypersim has no clock; see the module docstring)
CAMERA_GAP_S = 5.0  # between one camera trajectory's last frame and the next one's first
SKEW_TOLERANCE_PX = 1.0  # largest pixel error allowed from dropping a tilt-shift camera's skew
NOMINAL_FOV_X = np.pi / 3.0  # `_vray_user_params.py`: fov_x = pi / 3 for every rendered image
CAMERA_PARAMETERS_FILE = "metadata_camera_parameters.csv"
SCENE_PATTERN = re.compile(r"^ai_\d{3}_\d{3}$")
FRAME_PATTERN = re.compile(r"^frame\.(\d+)\.")
BOX_FILES = {part: f"metadata_semantic_instance_bounding_box_object_aligned_2d_{part}.hdf5"
             for part in ("positions", "orientations", "extents")}

# NYU40 ids as Hypersim names them (ml-hypersim code/cpp/tools/scene_annotation_tool/semantic_label_descs.csv)
NYU40 = {1: "wall", 2: "floor", 3: "cabinet", 4: "bed", 5: "chair", 6: "sofa", 7: "table", 8: "door", 9: "window",
         10: "bookshelf", 11: "picture", 12: "counter", 13: "blinds", 14: "desk", 15: "shelves", 16: "curtain",
         17: "dresser", 18: "pillow", 19: "mirror", 20: "floormat", 21: "clothes", 22: "ceiling", 23: "books",
         24: "refrigerator", 25: "television", 26: "paper", 27: "towel", 28: "showercurtain", 29: "box",
         30: "whiteboard", 31: "person", 32: "nightstand", 33: "toilet", 34: "sink", 35: "lamp", 36: "bathtub",
         37: "bag", 38: "otherstructure", 39: "otherfurniture", 40: "otherprop"}


def list_scenes(src: Path, options: ImportOptions | None = None) -> list[str]:
    return sorted(p.name for p in Path(src).iterdir()
                  if p.is_dir() and SCENE_PATTERN.match(p.name) and (p / "_detail").is_dir())


# -- files -------------------------------------------------------------------------------------------------------------
def read_hdf5(path: Path) -> np.ndarray:
    """The `dataset` array of one Hypersim HDF5 file."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if "dataset" not in handle:
                raise ImportError_(f"{path}: no 'dataset' array (keys: {', '.join(handle.keys()) or 'none'})")
            return handle["dataset"][()]
    except FileNotFoundError:
        raise ImportError_(f"{path}: file not found") from None
    except OSError as error:
        raise ImportError_(f"{path}: not a readable HDF5 file ({error})") from None


def _hdf5_shape(path: Path) -> tuple[int, ...]:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return tuple(handle["dataset"].shape)
    except (OSError, KeyError) as error:
        raise ImportError_(f"{path}: not a readable HDF5 file with a 'dataset' array ({error})") from None


def meters_per_asset_unit(path: Path) -> float:
    """`meters_per_asset_unit` from `_detail/metadata_scene.csv` (rows `parameter_name,parameter_value`)."""
    try:
        with open(path, encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise ImportError_(f"{path}: file not found (it holds meters_per_asset_unit)") from None
    for row in rows:
        if (row.get("parameter_name") or "").strip() == "meters_per_asset_unit":
            try:
                value = float(row["parameter_value"])
            except (TypeError, ValueError):
                raise ImportError_(f"{path}: meters_per_asset_unit: not a number: {row.get('parameter_value')!r}") from None
            if not np.isfinite(value) or value <= 0:
                raise ImportError_(f"{path}: meters_per_asset_unit must be > 0, got {value}")
            return value
    raise ImportError_(f"{path}: no meters_per_asset_unit row (expected columns parameter_name,parameter_value)")


def camera_parameters(path: Path, scene_id: str) -> np.ndarray:
    """The scene's `M_cam_from_uv` (3 x 3) from ml-hypersim's `metadata_camera_parameters.csv`."""
    try:
        with open(path, encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("scene_name") == scene_id]
    except FileNotFoundError:
        raise ImportError_(f"{path}: file not found") from None
    if not rows:
        raise ImportError_(f"{path}: no row for scene {scene_id}")
    try:
        return np.array([[float(rows[0][f"M_cam_from_uv_{i}{j}"]) for j in range(3)] for i in range(3)])
    except (KeyError, TypeError, ValueError) as error:
        raise ImportError_(f"{path}: {scene_id}: M_cam_from_uv_ij: missing or not a number ({error})") from None


def nominal_cam_from_uv(width: int, height: int, fov_x: float = NOMINAL_FOV_X) -> np.ndarray:
    """The canonical `M_cam_from_uv` of a camera without tilt-shift (dataset_generate_camera_parameters_metadata.py)."""
    fov_y = 2.0 * np.arctan(height * np.tan(fov_x / 2.0) / width)
    return np.diag([np.tan(fov_x / 2.0), np.tan(fov_y / 2.0), -1.0])


def camera_model(cam_from_uv: np.ndarray, width: int, height: int, name: str = "") -> tuple[Intrinsics, np.ndarray]:
    """A Hypersim camera as (OpenCV intrinsics, `body_from_cv`): OpenCV camera-to-world = [orientation @ body_from_cv |
    position], where `orientation` is the stored camera -> world rotation (OpenGL axes).

    Pixel (j, i) looks along `cam_from_uv @ (u, v, 1)` in the stored camera frame (u = -1 + (2 j + 1) / W,
    v = 1 - (2 i + 1) / H). With A mapping pixels to uv, C = GL_TO_CV @ cam_from_uv @ A maps pixels to rays in
    OpenCV axes; the RQ decomposition C^-1 = K Q (K upper triangular with a positive diagonal, Q a rotation) gives
    ray = Q^T K^-1 (j, i, 1): a pinhole K whose image plane is turned by Q^T. Plain cameras give Q = I."""
    from scipy.linalg import rq

    cam_from_uv = np.asarray(cam_from_uv, dtype=np.float64)
    pixel_to_uv = np.array([[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, -2.0 / height, 1.0 - 1.0 / height], [0, 0, 1.0]])
    rays = GL_TO_CV @ cam_from_uv @ pixel_to_uv
    if not np.isfinite(rays).all() or abs(np.linalg.det(rays)) < 1e-12:
        raise ImportError_(f"{name}: M_cam_from_uv is singular or not finite: {cam_from_uv.tolist()}")
    k, q = rq(np.linalg.inv(rays))
    signs = np.diag(np.sign(np.diag(k)))
    k, q = k @ signs, signs @ q
    if np.linalg.det(q) < 0:
        raise ImportError_(f"{name}: M_cam_from_uv mirrors the image (det < 0); not a camera vst can represent")
    k = k / k[2, 2]
    worst_row = max(k[1, 2], height - 1 - k[1, 2])
    skew_error = abs(k[0, 1]) * worst_row / k[1, 1]
    if skew_error > SKEW_TOLERANCE_PX:
        raise ImportError_(f"{name}: tilt-shift camera with skew {k[0, 1]:.3f} (up to {skew_error:.1f} px off "
                           f"without it, tolerance {SKEW_TOLERANCE_PX} px): vst's pinhole has no skew")
    intrinsics = Intrinsics(fx=float(k[0, 0]), fy=float(k[1, 1]), cx=float(k[0, 2]), cy=float(k[1, 2]),
                            width=int(width), height=int(height))
    return intrinsics, GL_TO_CV @ q.T


def tonemap(color: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """HDR linear RGB -> uint8, as ml-hypersim's `scene_generate_images_tonemap.py`: scale so that the 90th
    percentile of CCIR601 brightness over the valid pixels becomes 0.8 after gamma 1/2.2."""
    color = np.nan_to_num(np.asarray(color, dtype=np.float32)[..., :3], nan=0.0, posinf=0.0, neginf=0.0)
    gamma, percentile, desired = 1.0 / 2.2, 90, 0.8
    valid = np.ones(color.shape[:2], dtype=bool) if valid is None else valid
    if not valid.any():
        scale = 1.0
    else:
        brightness = 0.3 * color[..., 0] + 0.59 * color[..., 1] + 0.11 * color[..., 2]
        current = np.percentile(brightness[valid], percentile)
        scale = 0.0 if current < 0.0001 else np.power(desired, 1.0 / gamma) / current
    mapped = np.clip(np.power(np.maximum(scale * color, 0), gamma), 0, 1)
    return (mapped * 255).astype(np.uint8)  # matplotlib's imsave truncates the same way


# -- objects -----------------------------------------------------------------------------------------------------------
def read_boxes(mesh_dir: Path, scale: float) -> dict[int, OBB]:
    """Semantic instance id -> OBB in metres (rows that are not finite belong to no instance)."""
    parts = {part: np.asarray(read_hdf5(mesh_dir / name), dtype=np.float64) for part, name in BOX_FILES.items()}
    positions, orientations, extents = parts["positions"], parts["orientations"], parts["extents"]
    count = len(positions)
    if positions.shape != (count, 3) or extents.shape != (count, 3) or orientations.shape != (count, 3, 3):
        raise ImportError_(f"{mesh_dir}: bounding boxes: expected (N, 3), (N, 3, 3), (N, 3) arrays, got "
                           f"{positions.shape}, {orientations.shape}, {extents.shape}")
    boxes = {}
    for instance_id in range(count):
        rotation = orientations[instance_id]
        if not (np.isfinite(positions[instance_id]).all() and np.isfinite(extents[instance_id]).all()
                and np.isfinite(rotation).all()):
            continue
        if instance_id == 0:
            raise ImportError_(f"{mesh_dir / BOX_FILES['positions']}: a box for semantic instance 0 (Hypersim's "
                               "instances start at 1; vst's id 0 means none)")
        if np.abs(rotation.T @ rotation - np.eye(3)).max() > 1e-3 or np.linalg.det(rotation) < 0:
            raise ImportError_(f"{mesh_dir / BOX_FILES['orientations']}: row {instance_id} is not a rotation")
        u, _, vt = np.linalg.svd(rotation)
        boxes[instance_id] = OBB(center=tuple((positions[instance_id] * scale).tolist()),
                                 size=tuple((np.abs(extents[instance_id]) * scale).tolist()),
                                 rotation=(u @ vt).tolist())
    return boxes


def _annotation_dir(folder: Path, scene_id: str, options: ImportOptions) -> Path | None:
    candidates = [folder / "_detail" / "mesh"]
    if options.extra.get("annotations"):
        root = Path(options.extra["annotations"])
        candidates += [root / scene_id / "_detail" / "mesh", root / "evermotion_dataset" / "scenes" / scene_id / "_detail" / "mesh"]
    return next((c for c in candidates if (c / "mesh_objects_si.hdf5").is_file() and (c / "mesh_objects_sii.hdf5").is_file()), None)


def labels_from_mesh(mesh_dir: Path) -> dict[int, int]:
    """Semantic instance id -> NYU40 id: the majority label of the instance's low-level mesh objects."""
    si = np.asarray(read_hdf5(mesh_dir / "mesh_objects_si.hdf5")).astype(np.int64).ravel()
    sii = np.asarray(read_hdf5(mesh_dir / "mesh_objects_sii.hdf5")).astype(np.int64).ravel()
    if si.shape != sii.shape:
        raise ImportError_(f"{mesh_dir}: mesh_objects_si has {len(si)} objects, mesh_objects_sii {len(sii)}")
    return _majority(_label_counts(sii, si))


def _label_counts(instances: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(instances, 41) counts of NYU40 labels 1..40 per semantic instance id (> 0)."""
    keep = (instances > 0) & (labels >= 1) & (labels <= 40)
    counts = np.bincount(instances[keep] * 41 + labels[keep])
    return np.pad(counts, (0, (-len(counts)) % 41)).reshape(-1, 41)


def _majority(counts: np.ndarray) -> dict[int, int]:
    return {int(i): int(counts[i].argmax()) for i in np.flatnonzero(counts.sum(axis=1))}


def labels_from_frames(frames: list[tuple[Path, Path]]) -> dict[int, int]:
    """Semantic instance id -> NYU40 id: the majority over the pixels of every frame's (semantic_instance, semantic)."""
    total = np.zeros((0, 41), dtype=np.int64)
    for instance_path, semantic_path in frames:
        ids = np.asarray(read_hdf5(instance_path)).astype(np.int64).ravel()
        nyu = np.asarray(read_hdf5(semantic_path)).astype(np.int64).ravel()
        if ids.shape != nyu.shape:
            raise ImportError_(f"{semantic_path}: {nyu.size} pixels, but {instance_path.name} has {ids.size}")
        counts = _label_counts(ids, nyu)
        if len(counts) > len(total):
            total = np.pad(total, ((0, len(counts) - len(total)), (0, 0)))
        total[: len(counts)] += counts
    return _majority(total)


# -- frames ------------------------------------------------------------------------------------------------------------
def _frame_files(folder: Path, suffix: str) -> dict[int, Path]:
    files = {}
    if folder.is_dir():
        for path in folder.glob(f"frame.*.{suffix}"):
            match = FRAME_PATTERN.match(path.name)
            if match and path.name == f"frame.{match[1]}.{suffix}":
                files[int(match[1])] = path
    return files


def _cameras(folder: Path, options: ImportOptions) -> list[str]:
    present = sorted(p.name for p in (folder / "_detail").glob("cam_*")
                     if p.is_dir() and (p / "camera_keyframe_positions.hdf5").is_file())
    wanted = options.extra.get("cameras")
    if not wanted:
        return present
    names = [n.strip() for n in (wanted.split(",") if isinstance(wanted, str) else wanted) if n.strip()]
    missing = [n for n in names if n not in present]
    if missing:
        raise ImportError_(f"{folder / '_detail'}: no camera trajectory {', '.join(missing)} (has {', '.join(present) or 'none'})")
    return names


class _Camera:
    """One trajectory's files: poses (keyframe rows) and, per frame number, the image files."""

    def __init__(self, folder: Path, name: str):
        detail, images = folder / "_detail" / name, folder / "images"
        self.name = name
        positions = np.asarray(read_hdf5(detail / "camera_keyframe_positions.hdf5"), dtype=np.float64)
        orientations = np.asarray(read_hdf5(detail / "camera_keyframe_orientations.hdf5"), dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] != 3 or orientations.shape != (len(positions), 3, 3):
            raise ImportError_(f"{detail}: camera_keyframe positions {positions.shape} / orientations "
                               f"{orientations.shape}: expected (N, 3) and (N, 3, 3)")
        indices_path = detail / "camera_keyframe_frame_indices.hdf5"
        indices = (np.asarray(read_hdf5(indices_path)).astype(np.int64).ravel() if indices_path.is_file()
                   else np.arange(len(positions)))
        if len(indices) != len(positions):
            raise ImportError_(f"{indices_path}: {len(indices)} frame indices for {len(positions)} keyframes")
        self.keyframes = {int(frame): row for row, frame in enumerate(indices)}
        self.positions, self.orientations, self.detail = positions, orientations, detail
        self.tonemapped = _frame_files(images / f"scene_{name}_final_preview", "tonemap.jpg")
        self.hdr = _frame_files(images / f"scene_{name}_final_hdf5", "color.hdf5")
        geometry = images / f"scene_{name}_geometry_hdf5"
        self.depth = _frame_files(geometry, "depth_meters.hdf5")
        self.instances = _frame_files(geometry, "semantic_instance.hdf5")
        self.semantic = _frame_files(geometry, "semantic.hdf5")
        self.entity = _frame_files(geometry, "render_entity_id.hdf5")
        self.frames = sorted(set(self.tonemapped) | set(self.hdr))

    def size(self) -> tuple[int, int] | None:
        """(width, height) of the first frame's images."""
        for index in self.frames:
            for files in (self.depth, self.instances, self.hdr):
                if index in files:
                    shape = _hdf5_shape(files[index])
                    return shape[1], shape[0]
            with Image.open(self.tonemapped[index]) as image:
                return image.size
        return None

    def pose(self, index: int, scale: float, body_from_cv: np.ndarray) -> np.ndarray:
        row = self.keyframes.get(index)
        if row is None:
            raise ImportError_(f"{self.detail}: frame.{index:04d} has no keyframe (camera_keyframe_frame_indices "
                               f"lists {len(self.keyframes)} frames)")
        return rigid(self.orientations[row] @ body_from_cv, self.positions[row] * scale)

    def rgb(self, index: int) -> np.ndarray:
        if index in self.tonemapped:
            return read_rgb(self.tonemapped[index])
        valid = None
        if index in self.entity:
            valid = np.asarray(read_hdf5(self.entity[index])) != -1
        return tonemap(read_hdf5(self.hdr[index]), valid)

    def depth_plane(self, index: int, intrinsics: Intrinsics) -> np.ndarray:
        distance = np.asarray(read_hdf5(self.depth[index]), dtype=np.float64)
        _check_grid(self.depth[index], distance, intrinsics)
        distance = np.where(np.isfinite(distance) & (distance > 0), distance, 0.0)
        return planar_from_ray_distance(distance, intrinsics)

    def instance_plane(self, index: int, intrinsics: Intrinsics) -> np.ndarray:
        ids = np.asarray(read_hdf5(self.instances[index]))
        _check_grid(self.instances[index], ids, intrinsics)
        return np.where(ids > 0, ids, 0).astype(np.int32)


def _check_grid(path: Path, plane: np.ndarray, intrinsics: Intrinsics) -> None:
    if plane.shape[:2] != (intrinsics.height, intrinsics.width):
        raise ImportError_(f"{path}: shape {plane.shape}, but the camera's images are {intrinsics.width} x {intrinsics.height}")


def _camera_matrix(src: Path, scene_id: str, options: ImportOptions, width: int, height: int) -> np.ndarray:
    choice = options.extra.get("camera_parameters")
    if choice == "nominal":
        return nominal_cam_from_uv(width, height)
    path = Path(choice) if choice else src / CAMERA_PARAMETERS_FILE
    if not path.is_file():
        raise ImportError_(f"{path}: file not found; {scene_id}'s camera needs ml-hypersim's "
                           f"contrib/mikeroberts3000/{CAMERA_PARAMETERS_FILE} (tilt-shift lenses in 288 of 482 scenes): "
                           "put it in SRC, pass --option camera_parameters=PATH, or --option camera_parameters=nominal "
                           "for the plain 60-degree camera")
    return camera_parameters(path, scene_id)


def read_scene(src: Path, scene_id: str, options: ImportOptions) -> RawScene:
    src = Path(src)
    folder = src / scene_id
    if not (folder / "_detail").is_dir():
        raise ImportError_(f"{folder}: not a Hypersim scene folder (no _detail/)")
    scale = meters_per_asset_unit(folder / "_detail" / "metadata_scene.csv")
    cameras = [_Camera(folder, name) for name in _cameras(folder, options)]
    cameras = [c for c in cameras if c.frames]
    if not cameras:
        raise ImportError_(f"{folder / 'images'}: no frames (scene_cam_XX_final_preview/frame.IIII.tonemap.jpg or "
                           "scene_cam_XX_final_hdf5/frame.IIII.color.hdf5)")
    frames: list[RawFrame] = []
    start = 0.0
    for camera in cameras:
        width, height = camera.size()
        intrinsics, body_from_cv = camera_model(_camera_matrix(src, scene_id, options, width, height), width, height,
                                                f"{scene_id}/{camera.name}")
        for index in camera.frames:
            frames.append(RawFrame(
                frame_id=f"{camera.name}-{index:04d}", timestamp=start + index / FPS, intrinsics=intrinsics,
                cam_to_world=camera.pose(index, scale, body_from_cv),
                rgb=lambda c=camera, i=index: c.rgb(i),
                depth=(lambda c=camera, i=index, k=intrinsics: c.depth_plane(i, k)) if index in camera.depth else None,
                instance_ids=(lambda c=camera, i=index, k=intrinsics: c.instance_plane(i, k)) if index in camera.instances else None,
            ))
        start += camera.frames[-1] / FPS + CAMERA_GAP_S
    mesh_dir = folder / "_detail" / "mesh"
    boxes = read_boxes(mesh_dir, scale)
    annotations = _annotation_dir(folder, scene_id, options)
    if annotations is not None:
        labels = labels_from_mesh(annotations)
    else:
        labels = labels_from_frames([(c.instances[i], c.semantic[i]) for c in cameras for i in c.frames
                                     if i in c.instances and i in c.semantic])
    objects = []
    for instance_id, box in sorted(boxes.items()):
        nyu = labels.get(instance_id)
        if nyu is None:  # seen in no frame and not in the mesh annotation: no label to give it
            continue
        raw_label = NYU40[nyu]
        category = readable_category(raw_label)
        objects.append(ObjectInstance(instance_id=instance_id, category=category, raw_label=raw_label, box=box,
                                      is_structure=is_structure(category)))
    return RawScene(scene_id=scene_id, source="hypersim", license=LICENSE, objects=objects, frames=frames,
                    room_from_depth=False)  # depth of open scenes reaches outdoors
