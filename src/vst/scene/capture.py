"""Render a scene's frames to files (JPEG RGB, uint16-mm PNG depth, uint16 PNG ids) and fill `visibility`.

File names: `frames/<frame_id>.jpg`, `frames/<frame_id>_depth.png`, `frames/<frame_id>_ids.png`. Encoding
settings follow spec data.md §3.2: JPEG quality 90; PNGs at compress level 1 (8 ms instead of 20 ms for depth).
"""

from __future__ import annotations

import io
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from vst.scene.geometry import box_corners, project_points, world_to_camera
from vst.scene.mesh import scene_mesh
from vst.scene.render import Renderer, RenderOutput
from vst.scene.types import Frame, Scene, SceneError, Visibility, atomic_write_bytes

FRAMES_DIR = "frames"
JPEG_QUALITY = 90
PNG_COMPRESS_LEVEL = 1
DEPTH_SCALE = 1000.0  # uint16 PNG depth in millimetres; 0 = no depth, max 65.535 m
MEDIAN_SAMPLE_PIXELS = 4096  # larger instances take the depth median over every other row and column
WRITER_THREADS = 2  # encoding releases the GIL: frames are encoded while the next one renders


def encode_jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def encode_png16(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def depth_to_png16(depth: np.ndarray, scale: float = DEPTH_SCALE) -> np.ndarray:
    """float32 metres (H, W) -> uint16 (H, W) in 1/scale metres, rounded, clipped to the uint16 range."""
    return np.clip(np.rint(depth * scale), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def read_depth(path: str | Path, scale: float = DEPTH_SCALE) -> np.ndarray:
    """uint16 PNG depth -> float32 metres (H, W)."""
    return _read_plane(path, "depth").astype(np.float32) / scale


def read_instance_ids(path: str | Path) -> np.ndarray:
    return _read_plane(path, "instance ids").astype(np.int32)


def _read_plane(path: str | Path, what: str) -> np.ndarray:
    """One-channel PNG as an array; a missing, truncated or foreign file is a SceneError naming it."""
    try:
        with Image.open(path) as image:
            plane = np.asarray(image)
    except (OSError, SyntaxError, ValueError) as error:  # PIL: unidentified, truncated or corrupt
        raise SceneError(f"{path}: not a readable {what} image ({error})") from None
    if plane.ndim != 2:
        raise SceneError(f"{path}: {what} image must have one channel, got shape {plane.shape}")
    return plane


def object_corners(scene: Scene) -> dict[int, np.ndarray]:
    """Instance id -> (8, 3) world corners of its box, for every object that has one."""
    return {o.instance_id: box_corners((o.box.center, o.box.size, o.box.rotation)) for o in scene.objects if o.box is not None}


def truncated_instances(corners: dict[int, np.ndarray], frame: Frame) -> dict[int, bool]:
    """Instance id -> True when some corner of its box projects outside the image or lies behind the camera."""
    if not corners:
        return {}
    ids = list(corners)
    points = world_to_camera(np.concatenate([corners[i] for i in ids]), frame.pose)
    inside = project_points(points, frame.intrinsics.matrix, frame.intrinsics.width, frame.intrinsics.height).in_image
    return dict(zip(ids, (~inside.reshape(len(ids), 8).all(axis=1)).tolist()))


def compute_visibility(
    scene: Scene, frame: Frame, output: RenderOutput, unoccluded: dict[int, int] | None = None, corners: dict[int, np.ndarray] | None = None
) -> dict[int, Visibility]:
    """Per-instance visibility of one rendered frame, measured on its id map (`corners` from `object_corners`)."""
    truncated = truncated_instances(object_corners(scene) if corners is None else corners, frame)
    ids = output.instance_ids
    counts = np.bincount(ids.ravel())
    slices = ndimage.find_objects(ids)
    visibility: dict[int, Visibility] = {}
    for instance_id in (int(i) for i in np.nonzero(counts)[0] if i > 0):
        rows, cols = slices[instance_id - 1]
        bbox = (cols.start, rows.start, cols.stop - 1, rows.stop - 1)
        pixels = int(counts[instance_id])
        if pixels > MEDIAN_SAMPLE_PIXELS:  # surfaces are smooth: a quarter of the pixels gives the same median
            rows, cols = slice(rows.start, rows.stop, 2), slice(cols.start, cols.stop, 2)
        window = ids[rows, cols] == instance_id
        full = (unoccluded or {}).get(instance_id, pixels)
        visibility[instance_id] = Visibility(
            pixels=pixels,
            bbox_2d=bbox,
            visible_frac=float(min(1.0, pixels / full)) if full else 1.0,
            truncated=truncated.get(instance_id, False),
            depth_median=round(float(np.median(output.depth[rows, cols][window])), 4),
        )
    return visibility


def frame_paths(frame_id: str) -> tuple[str, str, str]:
    return (f"{FRAMES_DIR}/{frame_id}.jpg", f"{FRAMES_DIR}/{frame_id}_depth.png", f"{FRAMES_DIR}/{frame_id}_ids.png")


def _write_frame(scene: Scene, frame: Frame, scene_dir: Path, output: RenderOutput, unoccluded: dict[int, int], corners: dict[int, np.ndarray]) -> Frame:
    """Encode and atomically write one frame's files; return the frame with paths and visibility."""
    image_path, depth_path, instance_path = frame_paths(frame.frame_id)
    atomic_write_bytes(scene_dir / image_path, encode_jpeg(output.rgb))
    atomic_write_bytes(scene_dir / depth_path, encode_png16(depth_to_png16(output.depth)))
    atomic_write_bytes(scene_dir / instance_path, encode_png16(output.instance_ids))
    return frame.model_copy(
        update={
            "image_path": image_path,
            "depth_path": depth_path,
            "depth_scale": DEPTH_SCALE,
            "instance_path": instance_path,
            "visibility": compute_visibility(scene, frame, output, unoccluded, corners),
        }
    )


def render_frames(renderer: Renderer, scene: Scene, scene_dir: Path, threads: int = WRITER_THREADS) -> list[Frame]:
    """Render every frame (GL work stays on this thread) while writer threads encode finished ones."""
    def rendered():
        for frame in scene.frames:
            output = renderer.render(frame.intrinsics, frame.pose)
            visible = np.nonzero(np.bincount(output.instance_ids.ravel()))[0]
            yield frame, output, renderer.unoccluded_pixels(frame.intrinsics, frame.pose, [int(i) for i in visible if i > 0])

    corners = object_corners(scene)
    if threads <= 0:
        return [_write_frame(scene, frame, scene_dir, output, unoccluded, corners) for frame, output, unoccluded in rendered()]
    frames: list[Frame] = []
    pending: deque = deque()
    with ThreadPoolExecutor(threads) as writers:
        for frame, output, unoccluded in rendered():
            pending.append(writers.submit(_write_frame, scene, frame, scene_dir, output, unoccluded, corners))
            if len(pending) > 2 * threads:  # bound the frames held in memory while writers catch up
                frames.append(pending.popleft().result())
        frames += [future.result() for future in pending]
    return frames


def render_scene(scene: Scene, scene_dir: str | Path, renderer: Renderer | None = None, threads: int = WRITER_THREADS) -> Scene:
    """Render every frame of `scene` into `scene_dir/frames/` and save the updated scene.json last."""
    scene_dir = Path(scene_dir)
    (scene_dir / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
    own_renderer = renderer is None
    renderer = renderer or Renderer()
    try:
        renderer.set_mesh(scene_mesh(scene))
        frames = render_frames(renderer, scene, scene_dir, threads)
    finally:
        if own_renderer:
            renderer.release()
    rendered = scene.model_copy(update={"frames": frames})
    rendered.save(scene_dir)
    return rendered
