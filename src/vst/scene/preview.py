"""`vst scenes show`: a picture of a rendered scene - RGB, depth and instance maps of a few frames beside a
top-down (BEV) plan of the room with labelled object footprints and camera poses/frusta."""

from __future__ import annotations

from pathlib import Path
from typing import Collection

import numpy as np

from vst.scene.capture import read_depth, read_instance_ids
from vst.scene.geometry import box_corners
from vst.scene.mesh import category_color
from vst.scene.types import Frame, Scene


def pick_frames(scene: Scene, count: int = 3) -> list[Frame]:
    """One frame from each kind of sequence (stills, pairs, video) first, then the rest in order."""
    chosen: list[Frame] = []
    for prefix in ("still", "pair", "video"):
        group = [f for f in scene.frames if f.sequence.startswith(prefix)]
        if group:
            chosen.append(group[len(group) // 2] if prefix == "video" else group[0])
    chosen += [f for f in scene.frames if f not in chosen]
    return chosen[:count]


def instance_colors(max_id: int) -> np.ndarray:
    """(max_id + 1, 3) uint8: a fixed random colour per instance id, black for 0."""
    colors = np.random.default_rng(12345).integers(40, 256, size=(max_id + 1, 3)).astype(np.uint8)
    colors[0] = 0
    return colors


def draw_bev(axis, scene: Scene, highlight: list[Frame], camera_labels: list[str] | None = None,
             highlight_ids: Collection[int] = (), others: bool = True) -> None:
    """Top view of `scene` on a matplotlib axis: room outline, object footprints (dot = front) with labels, camera
    frusta. `highlight` frames are drawn large in red and labelled by `camera_labels` (default: frame ids);
    `highlight_ids` objects get a thick red outline; `others=False` leaves out the other cameras and the video path."""
    import matplotlib.patches as patches

    labels = camera_labels or [f.frame_id for f in highlight]

    if scene.room is not None:
        polygon = np.asarray(scene.room.floor_polygon)
        axis.add_patch(patches.Polygon(polygon, closed=True, facecolor="#f1efe9", edgecolor="#444", linewidth=2.5))
    for obj in scene.objects:
        if obj.is_structure or obj.box is None:
            continue
        footprint = box_corners((obj.box.center, obj.box.size, obj.box.rotation))[[0, 2, 6, 4], :2]
        color = tuple(obj.attributes.get("color", category_color(obj.category)))
        on_top = "on" in obj.attributes
        marked = obj.instance_id in highlight_ids
        axis.add_patch(patches.Polygon(footprint, closed=True, facecolor=(*color, 0.5 if on_top else 0.75), edgecolor="#d62728" if marked else "black",
                                       linewidth=2.2 if marked else 0.6, linestyle=":" if on_top and not marked else "-"))
        front = np.asarray(obj.box.center[:2]) + np.asarray(obj.box.rotation)[:2, 1] * obj.box.size[1] / 2
        axis.plot(*front, marker=".", color="black", markersize=2)
        axis.annotate(obj.category.replace("_", " "), obj.box.center[:2], fontsize=5.5, ha="center", va="center")
    video = [f for f in scene.frames if f.sequence == "video"] if others else []
    if video:
        path = np.array([f.pose[:2, 3] for f in video])
        axis.plot(path[:, 0], path[:, 1], color="#1f77b4", linewidth=1, alpha=0.8, label="video path")
        axis.plot(*path[0], marker="o", color="#1f77b4", markersize=4)
    for frame in scene.frames:
        chosen = frame in highlight
        if not chosen and (frame.sequence == "video" or not others):
            continue
        _draw_frustum(axis, frame, "#d62728" if chosen else "#2ca02c", 1.4 if chosen else 0.7)
        if chosen:
            label = labels[highlight.index(frame)]
            axis.annotate(label, frame.pose[:2, 3], fontsize=6 if others else 8, color="#d62728", xytext=(3, 3), textcoords="offset points")
    axis.set_aspect("equal")
    axis.autoscale_view()
    axis.set_title(f"{scene.scene_id}: top view (x right, y up; dots mark object fronts)", fontsize=8)
    axis.tick_params(labelsize=6)


def _draw_frustum(axis, frame: Frame, color: str, length: float) -> None:
    intrinsics = frame.intrinsics
    pose = frame.pose
    corners = []
    for u in (-0.5, intrinsics.width - 0.5):
        ray = np.array([(u - intrinsics.cx) / intrinsics.fx, 0.0, 1.0])
        corners.append(pose[:3, :3] @ (ray / np.linalg.norm(ray)) * length + pose[:3, 3])
    eye = pose[:3, 3]
    outline = np.array([eye, corners[0], corners[1], eye])[:, :2]
    axis.plot(outline[:, 0], outline[:, 1], color=color, linewidth=0.8)
    axis.plot(*eye[:2], marker="o", color=color, markersize=2.5)


def show_scene(scene_dir: str | Path, out: str | Path, count: int = 3) -> Path:
    """Write a preview PNG of the rendered scene in `scene_dir` to `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    scene_dir = Path(scene_dir)
    scene = Scene.load(scene_dir)
    frames = [f for f in pick_frames(scene, count) if f.image_path]
    rows = max(len(frames), 1)
    figure = plt.figure(figsize=(13, 3.3 * rows + 0.4), dpi=110)
    grid = figure.add_gridspec(rows, 5, width_ratios=[1, 1, 1, 0.08, 2.2])
    colors = instance_colors(max((o.instance_id for o in scene.objects), default=0))
    for row, frame in enumerate(frames):
        rgb = np.asarray(Image.open(scene_dir / frame.image_path))
        axes = [figure.add_subplot(grid[row, column]) for column in range(3)]
        axes[0].imshow(rgb)
        axes[0].set_title(f"{frame.frame_id} RGB", fontsize=8)
        if frame.depth_path:
            depth = read_depth(scene_dir / frame.depth_path, frame.depth_scale)
            image = axes[1].imshow(np.where(depth > 0, depth, np.nan), cmap="turbo")
            figure.colorbar(image, ax=axes[1], fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
            axes[1].set_title("depth (m)", fontsize=8)
        if frame.instance_path:
            ids = read_instance_ids(scene_dir / frame.instance_path)
            axes[2].imshow(colors[np.clip(ids, 0, len(colors) - 1)])
            axes[2].set_title("instance ids", fontsize=8)
            for instance_id, seen in frame.visibility.items():
                obj = scene.object(instance_id)
                if obj.is_structure or seen.pixels < 400:
                    continue
                x0, y0, x1, y1 = seen.bbox_2d
                axes[2].annotate(obj.category.replace("_", " "), ((x0 + x1) / 2, (y0 + y1) / 2), fontsize=5.5, ha="center", color="white", bbox={"facecolor": "black", "alpha": 0.4, "pad": 0.5, "linewidth": 0})
        for axis in axes:
            axis.set_xticks([])
            axis.set_yticks([])
    draw_bev(figure.add_subplot(grid[:, 4]), scene, frames)
    figure.suptitle(f"{scene.scene_id} ({scene.source}): {len([o for o in scene.objects if not o.is_structure])} objects, {len(scene.frames)} frames", fontsize=10)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
