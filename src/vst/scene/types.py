"""The Scene contract: typed objects for `scene.json` with a JSON round trip and validation.

World frame: gravity-aligned, z up, metres. Camera axes: OpenCV (x right, y down, z forward).
Paths inside a scene are relative to the scene folder. See DESIGN.md "Contracts / Scene" and
`docs/scenes.md` for the optional fields vst adds (`Frame.sequence`, `ObjectInstance.attributes.parts`).

Validation errors are raised as `SceneError("<file>: <field.path>: <message>")`, one line, so the CLI
can print them as they are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCENE_FILE = "scene.json"
ROTATION_TOLERANCE = 1e-4  # max |R^T R - I| entry for a rotation to count as orthonormal


class SceneError(ValueError):
    """A scene file or folder that breaks the Scene contract. The message names the file and field."""


class _Model(BaseModel):
    # allow_inf_nan=False rejects NaN/inf anywhere a float is parsed; extra="forbid" catches typos in hand-written files.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=False)


def _check_rotation(matrix: list[list[float]]) -> list[list[float]]:
    rotation = np.asarray(matrix, dtype=np.float64)
    if rotation.shape != (3, 3):
        raise ValueError(f"expected a 3x3 matrix, got shape {rotation.shape}")
    error = np.abs(rotation.T @ rotation - np.eye(3)).max()
    if error > ROTATION_TOLERANCE:
        raise ValueError(f"rotation is not orthonormal (max |R^T R - I| = {error:.2g})")
    if np.linalg.det(rotation) < 0:
        raise ValueError("rotation has determinant -1 (a reflection, not a rotation)")
    return matrix


class OBB(_Model):
    """Oriented box. `rotation` maps box axes to world (columns = box axes); `size` is full extents along them."""

    center: tuple[float, float, float]
    size: tuple[float, float, float]
    rotation: list[list[float]] = Field(default_factory=lambda: np.eye(3).tolist())

    @field_validator("size")
    @classmethod
    def _size_positive(cls, size: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(size) < 0:
            raise ValueError(f"sizes must be >= 0, got {list(size)}")
        return size

    @field_validator("rotation")
    @classmethod
    def _rotation_valid(cls, rotation: list[list[float]]) -> list[list[float]]:
        return _check_rotation(rotation)

    @property
    def rotation_matrix(self) -> np.ndarray:
        return np.asarray(self.rotation, dtype=np.float64)


class ObjectInstance(_Model):
    instance_id: int = Field(gt=0)
    category: str
    raw_label: str = ""
    description: str = ""
    box: OBB | None = None
    is_structure: bool = False
    points_path: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Intrinsics(_Model):
    """OpenCV pinhole; pixel (i, j) has its centre at (i, j); no distortion."""

    fx: float = Field(gt=0)
    fy: float = Field(gt=0)
    cx: float
    cy: float
    width: int = Field(gt=0)
    height: int = Field(gt=0)

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


class Visibility(_Model):
    """How one instance appears in one frame, measured on the instance-id map."""

    pixels: int = Field(ge=0)
    bbox_2d: tuple[int, int, int, int]  # x0, y0, x1, y1 inclusive pixel indices
    visible_frac: float = Field(ge=0.0, le=1.0)  # visible pixels / pixels of the object drawn alone (occlusion only)
    truncated: bool  # some OBB corner projects outside the image or behind the camera
    depth_median: float  # metres, over the visible pixels


def confined_path(path: str) -> str:
    """`path` if it names a file inside its folder: relative, no `..`, no drive or root. Scene and shard files are
    made by other people; a frame pointing at `/etc/passwd` or `../../secret` must not be read (or copied into a
    shard)."""
    from pathlib import PurePosixPath, PureWindowsPath

    if not path:  # not rendered yet (a camera-only frame)
        return path
    posix, windows = PurePosixPath(path), PureWindowsPath(path)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in posix.parts \
            or ".." in windows.parts or "\0" in path:
        raise ValueError(f"must be a relative path inside the scene folder (no '..', no absolute path), got {path!r}")
    return path


class Frame(_Model):
    frame_id: str
    timestamp: float = 0.0
    intrinsics: Intrinsics
    cam_to_world: list[list[float]]
    image_path: str
    depth_path: str | None = None
    depth_scale: float = Field(default=1000.0, ge=1e-3, le=1e6)  # stored depth units per metre (1000: millimetres)
    instance_path: str | None = None
    visibility: dict[int, Visibility] = Field(default_factory=dict)
    sequence: str = ""  # vst extension: frames sharing a sequence name form one video / view set, ordered by timestamp

    @field_validator("image_path", "depth_path", "instance_path")
    @classmethod
    def _inside_scene(cls, path: str | None) -> str | None:
        return None if path is None else confined_path(path)

    @field_validator("cam_to_world")
    @classmethod
    def _pose_valid(cls, pose: list[list[float]]) -> list[list[float]]:
        matrix = np.asarray(pose, dtype=np.float64)
        if matrix.shape != (4, 4):
            raise ValueError(f"expected a 4x4 matrix, got shape {matrix.shape}")
        if not np.allclose(matrix[3], [0, 0, 0, 1]):
            raise ValueError(f"last row must be [0, 0, 0, 1], got {matrix[3].tolist()}")
        _check_rotation(matrix[:3, :3].tolist())
        return pose

    @property
    def pose(self) -> np.ndarray:
        """(4, 4) float64 cam_to_world."""
        return np.asarray(self.cam_to_world, dtype=np.float64)


class Room(_Model):
    floor_polygon: list[tuple[float, float]] = Field(min_length=3)
    floor_z: float = 0.0
    ceiling_z: float
    area_m2: float = Field(ge=0)

    @model_validator(mode="after")
    def _ceiling_above_floor(self) -> Room:
        if self.ceiling_z <= self.floor_z:
            raise ValueError(f"ceiling_z ({self.ceiling_z}) must be above floor_z ({self.floor_z})")
        return self


class Scene(_Model):
    scene_id: str
    source: str
    up_axis: str = "+z"
    objects: list[ObjectInstance] = Field(default_factory=list)
    frames: list[Frame] = Field(default_factory=list)
    room: Room | None = None
    mesh_path: str | None = None
    fps: float | None = None
    license: str = ""

    @model_validator(mode="after")
    def _ids_consistent(self) -> Scene:
        ids = [obj.instance_id for obj in self.objects]
        seen: set[int] = set()
        for index, instance_id in enumerate(ids):
            if instance_id in seen:
                raise _FieldError(f"objects[{index}].instance_id", f"duplicate instance_id {instance_id}")
            seen.add(instance_id)
        frame_ids: set[str] = set()
        for index, frame in enumerate(self.frames):
            unknown = sorted(set(frame.visibility) - seen)
            if unknown:
                raise _FieldError(f"frames[{index}].visibility", f"unknown instance id {unknown[0]}")
            if frame.frame_id in frame_ids:  # frames are looked up and cached by id
                raise _FieldError(f"frames[{index}].frame_id", f"duplicate frame_id {frame.frame_id!r}")
            frame_ids.add(frame.frame_id)
        return self

    # -- lookups -------------------------------------------------------------------------------------------
    def object(self, instance_id: int) -> ObjectInstance:
        for obj in self.objects:
            if obj.instance_id == instance_id:
                return obj
        raise KeyError(f"scene {self.scene_id}: no object with instance_id {instance_id}")

    def frame(self, frame_id: str) -> Frame:
        for frame in self.frames:
            if frame.frame_id == frame_id:
                return frame
        raise KeyError(f"scene {self.scene_id}: no frame {frame_id!r}")

    def sequences(self) -> dict[str, list[Frame]]:
        """Frames grouped by `sequence` (ungrouped frames under ""), each list ordered by timestamp."""
        groups: dict[str, list[Frame]] = {}
        for frame in self.frames:
            groups.setdefault(frame.sequence, []).append(frame)
        return {name: sorted(frames, key=lambda f: f.timestamp) for name, frames in groups.items()}

    # -- JSON io -------------------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source_name: str = SCENE_FILE) -> Scene:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SceneError(f"{source_name}: invalid JSON at line {error.lineno}: {error.msg}") from None
        return cls.from_dict(data, source_name)

    @classmethod
    def from_dict(cls, data: Any, source_name: str = SCENE_FILE) -> Scene:
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise SceneError(f"{source_name}: {_describe(error)}") from None

    def save(self, scene_dir: str | Path) -> Path:
        """Write `scene.json` atomically (temp name, then rename)."""
        path = Path(scene_dir) / SCENE_FILE
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def load(cls, scene_dir: str | Path, check_files: bool = True) -> Scene:
        """Read and validate `<scene_dir>/scene.json`; with `check_files`, also require every referenced frame file."""
        scene_dir = Path(scene_dir)
        path = scene_dir / SCENE_FILE if scene_dir.is_dir() else scene_dir
        if not path.is_file():
            raise SceneError(f"{path}: file not found")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise SceneError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
        scene = cls.from_json(text, str(path))
        if check_files:
            scene.check_files(path.parent, str(path))
        return scene

    def check_files(self, scene_dir: Path, source_name: str) -> None:
        for index, frame in enumerate(self.frames):
            for field in ("image_path", "depth_path", "instance_path"):
                relative = getattr(frame, field)
                if relative and not (scene_dir / relative).is_file():
                    raise SceneError(f"{source_name}: frames[{index}].{field}: file not found: {scene_dir / relative}")


class _FieldError(ValueError):
    """Raised inside model validators to point at a nested field by path."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _describe(error: ValidationError) -> str:
    """One line `field.path: message` for the first error of a pydantic ValidationError."""
    first = error.errors(include_url=False)[0]
    location = _format_location(first["loc"])
    context_error = (first.get("ctx") or {}).get("error")
    if isinstance(context_error, _FieldError):
        location = ".".join(part for part in (location, context_error.field) if part)
        return f"{location}: {context_error.message}"
    message = first["msg"]
    message = message.removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "missing required field"
    elif first["type"] == "finite_number":
        message = f"must be a finite number, got {first.get('input')!r}"
    return f"{location}: {message}" if location else message


def _format_location(location: tuple[Any, ...]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith(("function-", "tuple[")):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to `<path>.tmp-<pid>` and rename over `path`, so readers never see half a file."""
    path = Path(path)
    temp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temp.write_bytes(data)
    os.replace(temp, path)
