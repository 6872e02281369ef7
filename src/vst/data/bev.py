"""Bird's-eye-view (BEV) renders for VST-R: the teacher's extra view of the scene and a picture for previews.

VST prompted its teacher with "RGB images, the corresponding BEV visualizations, detailed object information, and
question-answer pairs" (spec paper.md §3.2): the BEV shows the room outline, oriented object footprints with labels,
the cameras as frusta named "Cam-1", "Cam-2", and the question's reference objects highlighted. `render_bev` draws
exactly that (the drawing itself is `vst.scene.preview.draw_bev`, shared with `vst scenes show`), and
`object_facts` is the matching "detailed object information" as plain data.
"""

from __future__ import annotations

import io
from typing import Collection, Sequence

import numpy as np
from PIL import Image

from vst.data.directions import in_level_frame, level_heading
from vst.scene.preview import draw_bev
from vst.scene.types import Frame, Scene


def camera_names(count: int) -> list[str]:
    return [f"Cam-{i + 1}" for i in range(count)]


def render_bev(scene: Scene, frames: Sequence[Frame] = (), highlight_ids: Collection[int] = (), size_px: int = 640,
               title: str | None = None) -> Image.Image:
    """An RGB image (size_px x size_px) of the scene from above with `frames` drawn as "Cam-1", "Cam-2", ... and the
    objects in `highlight_ids` outlined in red. Deterministic: the same inputs give the same pixels."""
    return Image.open(io.BytesIO(bev_png(scene, frames, highlight_ids, size_px, title))).convert("RGB")


def bev_png(scene: Scene, frames: Sequence[Frame] = (), highlight_ids: Collection[int] = (), size_px: int = 640,
            title: str | None = None) -> bytes:
    """`render_bev` as PNG bytes, encoded once (what the teacher request carries)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dpi = 100
    figure = plt.figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    axis = figure.add_axes((0.06, 0.05, 0.9, 0.88))
    draw_bev(axis, scene, list(frames), camera_labels=camera_names(len(frames)), highlight_ids=set(highlight_ids), others=False)
    axis.set_title(title or f"{scene.scene_id}: top view (x east, y north; dots mark object fronts)", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def object_facts(scene: Scene, frames: Sequence[Frame] = (), ids: Collection[int] | None = None) -> list[dict]:
    """Per object: category, box centre and size (m), yaw (degrees, counter-clockwise from +x), and for every camera
    its position in that camera's levelled frame (right, forward, metres) and its depth in the image (m)."""
    facts = []
    for obj in scene.objects:
        if obj.is_structure or obj.box is None or (ids is not None and obj.instance_id not in ids):
            continue
        center = np.asarray(obj.box.center, dtype=np.float64)
        rotation = np.asarray(obj.box.rotation, dtype=np.float64)
        fact = {"id": obj.instance_id, "category": obj.category.replace("_", " "),
                "center_m": [round(float(v), 2) for v in center], "size_m": [round(float(v), 2) for v in obj.box.size],
                "yaw_deg": round(float(np.degrees(np.arctan2(rotation[1, 0], rotation[0, 0]))), 1)}
        for name, frame in zip(camera_names(len(frames)), frames):
            heading = level_heading(frame.pose)
            if heading is None:
                continue
            right, forward, _ = in_level_frame(center - frame.pose[:3, 3], heading)
            seen = frame.visibility.get(obj.instance_id)
            fact[name] = {"right_m": round(float(right), 2), "forward_m": round(float(forward), 2),
                          "visible": seen is not None, **({"depth_m": round(seen.depth_median, 2)} if seen else {})}
        facts.append(fact)
    return facts
