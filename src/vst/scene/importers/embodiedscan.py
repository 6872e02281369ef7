"""EmbodiedScan (`SRC/embodiedscan_infos_{train,val,test}.pkl` + the raw datasets' images, spec data.md §2.5).

Layout (OpenRobotLab/EmbodiedScan: `data/README.md`, `embodiedscan/explorer.py`,
`embodiedscan/datasets/embodiedscan_dataset.py`, `embodiedscan/datasets/transforms/{loading,points,multiview}.py`,
`embodiedscan/visualization/{continuous_drawer,img_drawer,utils}.py`, `embodiedscan/structures/bbox_3d/{euler_box3d,
utils}.py`, `embodiedscan/converter/generate_image_scannet.py`):
- SRC is EmbodiedScan's `data/` folder: the info pickles next to the raw datasets (`scannet/`, `3rscan/`,
  `matterport3d/`, `arkitscenes/`). SRC may also be one info pickle (that split only; images are looked up next to
  it, or one folder up when the pickles sit in `data/embodiedscan/`). `--option split=val` reads only
  `embodiedscan_infos_val.pkl`; `--option pkl=PATH` names the pickle explicitly.
- A pickle is `{"metainfo": {"categories": {name: id}, ...}, "data_list": [scene, ...]}`. Per scene: `sample_idx`
  (`scannet/scene0000_00`, `3rscan/<id>`, `matterport3d/<building>/<region>`, `arkitscenes/<split>/<id>`: the vst
  scene id), `axis_align_matrix` (4 x 4; identity when absent, as the dataset class does), `cam2img` (4 x 4, scene
  wide; or per image, e.g. Matterport3D's three cameras), `depth_cam2img` (scene wide or per image; older
  pickles: `cam2depth`; absent: the colour `cam2img`, as `EmbodiedScanDataset.parse_data_info` does, scaled to the
  depth image when its size differs), `images` = [{`img_path`, `depth_path` (both
  relative to SRC, e.g. `scannet/posed_images/scene0000_00/00010.jpg` / `.png`), `cam2global` (4 x 4),
  `visible_instance_ids`, optional `cam2img`}], `instances` = [{`bbox_3d` [x, y, z, dx, dy, dz, α, β, γ],
  `bbox_label_3d` (a `categories` id), `bbox_id`}].
- Cameras: camera-to-world = `axis_align_matrix @ cam2global` in OpenCV axes (`img_drawer.draw_box3d` projects
  with `cam2img @ inv(that)` and keeps z > 0). The depth camera shares the colour camera's pose
  (`ConvertRGBDToPoints` back-projects depth with `depth_cam2img`, then uses the colour extrinsic).
- Depth: uint16 images divided by `depth_shift` = 4000 for Matterport3D, else 1000 (`parse_data_info`).
- Boxes: in the axis-aligned world (z up, metres); centre = gravity centre (origin 0.5, 0.5, 0.5), dx, dy, dz =
  full extents along the box axes, rotation = pytorch3d `euler_angles_to_matrix([α, β, γ], "ZXY")` = Rz Rx Ry
  (`EulerInstance3DBoxes.corners`: corners = (dims * (unit corner - 0.5)) @ Rᵀ + centre; the explorer's open3d
  `get_rotation_matrix_from_zxy` agrees), i.e. R maps box axes to world: vst's OBB rotation as is.

Objects: instance id = index in `instances` + 1 (so `visible_instance_ids`, which index `instances`, map to id + 1);
`bbox_id` is kept in `attributes["bbox_id"]` (EmbodiedScan's visual-grounding files refer to it); category =
`readable_category` of the `categories` name. Masks: EmbodiedScan has none and no labelled mesh is read, so
`write_scene` derives them from depth + boxes. Frames: `frame_id` = the image file's stem (made file-name safe);
timestamps: ScanNet frame number / 30 Hz (EmbodiedScan keeps every 10th frame), ARKitScenes' `<video>_<ts>` stamp,
else the image's position in the list at 1/3 s (EmbodiedScan does not store the capture rate of 3RScan or
Matterport3D). 3RScan and ARKitScenes are handheld phone captures stored sideways: their frames are turned upright
(`common.upright`); ScanNet and Matterport3D frames are already upright.
"""

from __future__ import annotations

import functools
import importlib
import pickle
import re
from pathlib import Path

import numpy as np
from PIL import Image

from vst.scene.importers.common import (ImportError_, ImportOptions, Intrinsics, RawFrame, RawScene, euler_zxy,
                                        is_structure, read_depth_png, read_rgb, readable_category, scaled_intrinsics,
                                        upright)
from vst.scene.types import OBB, ObjectInstance

LICENSE = ("EmbodiedScan annotations: CC BY-NC-SA 4.0; images and depth under the source dataset's terms "
           "(ScanNet, 3RScan, Matterport3D, ARKitScenes)")
SOURCE_TERMS = {"scannet": "ScanNet Terms of Use", "3rscan": "3RScan Terms of Use",
                "matterport3d": "Matterport3D Terms of Use", "arkitscenes": "ARKitScenes: CC BY-NC-SA 4.0"}
INFO_PREFIX = "embodiedscan_infos_"
SPLITS = ("train", "val", "test")
DEPTH_SHIFT = {"matterport3d": 4000.0}  # depth units per metre; every other dataset: 1000
DEFAULT_DEPTH_SHIFT = 1000.0
SCANNET_FPS = 30.0
STEP_S = 1.0 / 3.0  # seconds between listed images when the dataset's clock is unknown
HANDHELD = {"3rscan", "arkitscenes"}  # sideways phone captures: turned upright


# -- info pickles -----------------------------------------------------------------------------------------------------
class _InfoUnpickler(pickle.Unpickler):
    """Info pickles hold dicts, lists, numbers, strings and numpy arrays: any other global is refused (a pickle
    from elsewhere must not run code). numpy 1 pickles name `numpy.core`, numpy 2 `numpy._core`: both load."""

    NUMPY = {"_reconstruct", "scalar", "ndarray", "dtype", "_frombuffer", "float32", "float64", "int32", "int64", "bool_"}
    BUILTINS = {"list", "dict", "set", "frozenset", "tuple", "int", "float", "str", "bytes", "bool", "complex", "slice"}

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "numpy" and name in self.NUMPY:
            for candidate in (module.replace("numpy.core", "numpy._core"), module, module.replace("numpy._core", "numpy.core")):
                try:
                    return getattr(importlib.import_module(candidate), name)
                except (ImportError, AttributeError):
                    continue
        if module == "builtins" and name in self.BUILTINS:
            return super().find_class(module, name)
        if module == "collections" and name in {"OrderedDict", "defaultdict"}:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


@functools.lru_cache(maxsize=4)
def _load_info(path: str, stamp: tuple[int, int]) -> dict:
    del stamp  # part of the cache key only: a changed file is read again
    try:
        with open(path, "rb") as handle:
            data = _InfoUnpickler(handle).load()
    except FileNotFoundError:
        raise ImportError_(f"{path}: file not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise ImportError_(f"{path}: not an EmbodiedScan info pickle ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data_list"), list) or not isinstance(data.get("metainfo"), dict):
        raise ImportError_(f"{path}: expected a dict with 'metainfo' (dict) and 'data_list' (list)")
    return data


def load_info(path: Path) -> dict:
    """The info pickle at `path` (cached per process while the file is unchanged)."""
    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        raise ImportError_(f"{path}: file not found") from None
    return _load_info(str(path), (stat.st_mtime_ns, stat.st_size))


def info_files(src: Path, options: ImportOptions | None = None) -> list[Path]:
    """The info pickles to read: `src` itself when it is one, `extra["pkl"]`, `embodiedscan_infos_<split>.pkl`
    for `extra["split"]`, else every `embodiedscan_infos_*.pkl` in `src` (or `src/embodiedscan`), train first."""
    extra = options.extra if options else {}
    if extra.get("pkl"):
        return [Path(extra["pkl"])]
    src = Path(src)
    if src.is_file():
        return [src]
    folders = [src, src / "embodiedscan"]
    if extra.get("split"):
        name = f"{INFO_PREFIX}{extra['split']}.pkl"
        found = [folder / name for folder in folders if (folder / name).is_file()]
        if not found:
            raise ImportError_(f"{src}: no {name} (split {extra['split']!r})")
        return found[:1]
    for folder in folders:
        found = sorted(folder.glob(f"{INFO_PREFIX}*.pkl"), key=lambda p: (_split_rank(p), p.name))
        if found:
            return found
    return []


def _split_rank(path: Path) -> int:
    split = path.stem[len(INFO_PREFIX):]
    return SPLITS.index(split) if split in SPLITS else len(SPLITS)


def _image_root(src: Path, pkl: Path, scene: dict) -> Path:
    """The folder that the scene's image paths are relative to: SRC, the pickle's folder, or the one above it."""
    images = scene.get("images") or []
    top = str(images[0].get("img_path", "")).split("/")[0] if images else ""
    candidates = ([Path(src)] if Path(src).is_dir() else []) + [pkl.parent, pkl.parent.parent]
    for candidate in candidates:
        if top and (candidate / top).is_dir():
            return candidate
    return candidates[0]


def _scenes(src: Path, options: ImportOptions | None) -> dict[str, tuple[Path, dict, dict]]:
    """sample_idx -> (pickle, scene, metainfo); a scene listed in several pickles is taken from the first."""
    scenes: dict[str, tuple[Path, dict, dict]] = {}
    for path in info_files(src, options):
        data = load_info(path)
        for index, scene in enumerate(data["data_list"]):
            if not isinstance(scene, dict) or not isinstance(scene.get("sample_idx"), str):
                raise ImportError_(f"{path}: data_list[{index}]: expected a dict with a 'sample_idx' string")
            scenes.setdefault(scene["sample_idx"], (path, scene, data["metainfo"]))
    return scenes


def list_scenes(src: Path, options: ImportOptions | None = None) -> list[str]:
    """The scenes of the info pickles whose first image is on disk (as the explorer keeps only scenes whose raw
    folder exists: a data root usually holds some of the four datasets)."""
    ids = []
    for scene_id, (pkl, scene, _) in _scenes(src, options).items():
        images = scene.get("images") or []
        if images and (_image_root(src, pkl, scene) / str(images[0].get("img_path", ""))).is_file():
            ids.append(scene_id)
    return sorted(ids)


# -- conversion -------------------------------------------------------------------------------------------------------
def category_names(metainfo: dict, where: str) -> dict[int, str]:
    """id -> name from `metainfo["categories"]` ({name: id}, or a list whose index is the id, as the explorer
    accepts)."""
    categories = metainfo.get("categories")
    if isinstance(categories, dict):
        return {int(v): str(k) for k, v in categories.items()}
    if isinstance(categories, (list, tuple)):
        return {i: str(name) for i, name in enumerate(categories)}
    raise ImportError_(f"{where}: metainfo.categories: expected {{name: id}} or a list of names")


def box_from_9dof(values, where: str) -> OBB:
    """[x, y, z, dx, dy, dz, α, β, γ] -> OBB (6 or 7 values: the missing angles are 0, as EulerInstance3DBoxes pads)."""
    box = np.asarray(values, dtype=np.float64).ravel()
    if box.size in (6, 7):
        box = np.concatenate([box, np.zeros(9 - box.size)])
    if box.size != 9 or not np.isfinite(box).all():
        raise ImportError_(f"{where}: bbox_3d: expected 9 finite numbers, got {box.tolist()}")
    if (box[3:6] < 0).any():
        raise ImportError_(f"{where}: bbox_3d: negative size {box[3:6].tolist()}")
    return OBB(center=tuple(box[:3].tolist()), size=tuple(box[3:6].tolist()), rotation=euler_zxy(*box[6:9]).tolist())


def _matrix(value, where: str, shapes=((4, 4),)) -> np.ndarray:
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ImportError_(f"{where}: not a matrix of numbers") from None
    if matrix.shape not in shapes:
        raise ImportError_(f"{where}: expected shape {' or '.join(map(str, shapes))}, got {matrix.shape}")
    return matrix


def _intrinsics(value, size: tuple[int, int], where: str) -> Intrinsics:
    k = _matrix(value, where, ((4, 4), (3, 3), (3, 4)))
    if not np.isfinite(k[:3, :3]).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ImportError_(f"{where}: not a pinhole intrinsic matrix: {k[:3, :3].tolist()}")
    return Intrinsics(fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2], width=size[0], height=size[1])


def depth_cam2img(image: dict, scene: dict):
    """The depth camera's K: `depth_cam2img` per image or per scene (`continuous_drawer.py`), else `cam2depth`
    (the name mmscan's `data_io.py` reads for 3RScan), else None (the colour K)."""
    for key in ("depth_cam2img", "cam2depth"):
        for holder in (image, scene):
            if holder.get(key) is not None:
                return holder[key]
    return None


def _image_size(path: Path, cache: dict) -> tuple[int, int]:
    """(width, height) from the file header; one read per folder and suffix (a sequence's frames share a size)."""
    key = (path.parent, path.suffix)
    if key not in cache:
        try:
            with Image.open(path) as image:
                cache[key] = image.size
        except FileNotFoundError:
            raise ImportError_(f"{path}: file not found") from None
        except OSError as error:
            raise ImportError_(f"{path}: not a readable image ({error})") from None
    return cache[key]


def _frame_id(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem)


def _timestamps(dataset: str, stems: list[str]) -> list[float]:
    if dataset == "scannet" and all(s.isdigit() for s in stems):
        return [int(s) / SCANNET_FPS for s in stems]
    if dataset == "arkitscenes":
        try:
            return [float(s.rsplit("_", 1)[-1]) for s in stems]
        except ValueError:
            pass
    return [i * STEP_S for i in range(len(stems))]


def read_scene(src: Path, scene_id: str, options: ImportOptions) -> RawScene:
    found = _scenes(src, options).get(scene_id)
    if found is None:
        files = ", ".join(p.name for p in info_files(src, options)) or "no info pickle"
        raise ImportError_(f"{src}: no scene {scene_id!r} in {files}")
    pkl, scene, metainfo = found
    where = f"{pkl}: {scene_id}"
    dataset = scene_id.split("/")[0]
    names = category_names(metainfo, str(pkl))
    objects = []
    for index, instance in enumerate(scene.get("instances") or []):
        here = f"{where}: instances[{index}]"
        try:
            label = int(instance["bbox_label_3d"])
            values = instance["bbox_3d"]
        except (KeyError, TypeError, ValueError) as error:
            raise ImportError_(f"{here}: {error}") from None
        if label not in names:
            raise ImportError_(f"{here}: bbox_label_3d {label} is not in metainfo.categories")
        category = readable_category(names[label])
        attributes = {"bbox_id": int(instance["bbox_id"])} if instance.get("bbox_id") is not None else {}
        objects.append(ObjectInstance(instance_id=index + 1, category=category, raw_label=names[label],
                                      box=box_from_9dof(values, here), is_structure=is_structure(category),
                                      attributes=attributes))
    align = _matrix(scene["axis_align_matrix"], f"{where}: axis_align_matrix") if "axis_align_matrix" in scene else np.eye(4)
    frames = _frames(src, pkl, scene, dataset, align, where)
    terms = SOURCE_TERMS.get(dataset)
    return RawScene(scene_id=scene_id, source="embodiedscan", license=f"{LICENSE}; {terms}" if terms else LICENSE,
                    objects=objects, frames=[upright(f) for f in frames] if dataset in HANDHELD else frames)


def _frames(src: Path, pkl: Path, scene: dict, dataset: str, align: np.ndarray, where: str) -> list[RawFrame]:
    images = scene.get("images") or []
    if not images:
        raise ImportError_(f"{where}: images: no frames")
    root = _image_root(src, pkl, scene)
    shift = DEPTH_SHIFT.get(dataset, DEFAULT_DEPTH_SHIFT)
    stems = [Path(str(image.get("img_path", ""))).stem for image in images]
    times = _timestamps(dataset, stems)
    sizes: dict = {}
    frames, seen = [], set()
    for index, (image, stem, timestamp) in enumerate(zip(images, stems, times)):
        here = f"{where}: images[{index}]"
        if "img_path" not in image or "cam2global" not in image:
            raise ImportError_(f"{here}: expected 'img_path' and 'cam2global'")
        color_path = root / str(image["img_path"])
        k = image.get("cam2img", scene.get("cam2img"))
        if k is None:
            raise ImportError_(f"{here}: no cam2img (neither per image nor per scene)")
        intrinsics = _intrinsics(k, _image_size(color_path, sizes), f"{here}: cam2img")
        depth = depth_intrinsics = None
        if image.get("depth_path"):
            depth_path = root / str(image["depth_path"])
            depth_size = _image_size(depth_path, sizes)
            depth_k = depth_cam2img(image, scene)
            if depth_k is not None:
                depth_intrinsics = _intrinsics(depth_k, depth_size, f"{here}: depth_cam2img")
            elif depth_size != (intrinsics.width, intrinsics.height):  # no depth K: the colour camera on the depth grid
                depth_intrinsics = scaled_intrinsics(intrinsics, *depth_size)
            depth = lambda path=depth_path: read_depth_png(path, shift)  # noqa: E731
        pose = align @ _matrix(image["cam2global"], f"{here}: cam2global")
        frame_id = _frame_id(stem) or f"{index:05d}"
        if frame_id in seen:
            frame_id = f"{frame_id}_{index:05d}"
        seen.add(frame_id)
        frames.append(RawFrame(frame_id=frame_id, timestamp=timestamp, intrinsics=intrinsics, cam_to_world=pose,
                               rgb=lambda path=color_path: read_rgb(path), depth=depth, depth_intrinsics=depth_intrinsics))
    return frames
