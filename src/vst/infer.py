"""Inference with a VST checkpoint: chat (optionally with VST's thinking prompt) and 3D detection drawn on the image.

    from vst.infer import chat, detect3d, draw_boxes3d
    chat("runs/ckpt", "Which is closer to the camera, the chair or the lamp?", images=["room.jpg"], think=True)
    detection = detect3d("runs/ckpt", "room.jpg", ["chair", "table"])          # hfov 60 degrees: camera unknown
    draw_boxes3d("room.jpg", detection.boxes, detection.intrinsics).save("room_boxes3d.png")

`model` is a backend spec (`vst.eval.backends.make_backend`: "tiny", a checkpoint folder, a hub id or
"openai:<url>#<name>"), loaded once and cached, or an already built backend.

3D detection follows VST's cookbook (Yangr116/VST:cookbook/object_detection_3d.ipynb; spec paper.md §2.4):
- a camera with unknown intrinsics is assumed to have a 60 degree horizontal field of view, with square pixels and the
  principal point at the image centre: f = W / (2 tan(hfov / 2)), (cx, cy) = (W/2 - 0.5, H/2 - 0.5) since pixel (i, j)
  has its centre at (i, j). The vertical field of view follows from the aspect ratio, `tan(vfov/2) = H/W tan(hfov/2)`,
  which is also how VST derives vfov from f_x in training; the cookbook's shortcut hfov = vfov = 60 would state a
  camera that no square-pixel image has;
- the image is rescaled to VST's virtual camera as in training and in the det3d benchmarks (FoV unification,
  `vst.data.fov`); the prompt states the fields of view and the rescaled size. Camera-frame boxes do not change with
  the rescale, so they are drawn on the original image with its own intrinsics;
- the answer is VST's JSON list of `{"bbox_3d": [x, y, z, sx, sy, sz, pitch, yaw, roll], "label"}` (OpenCV camera
  frame, metres, angles in degrees / 180), parsed by `vst.eval.detection.parse_boxes`. An answer that does not parse
  gives no boxes; the raw text is kept.
Drawing marks no front face: VST's 9 numbers fix a box only up to half turns about its own axes (vst writes the
equivalent rotation with the smallest angles, `geometry.box_to_vst9`), so a detected box has no front.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vst.data.fov import camera_prompt, resize_image, unify_intrinsics, vst_fov
from vst.data.skills.si_detection import DETECTION_TEMPLATES, category_phrase
from vst.eval.backends import Backend, make_backend
from vst.common.clients import Prompt
from vst.eval.detection import parse_boxes
from vst.common.media import open_image
from vst.models.processing import DEFAULT_SYSTEM_PROMPT, THINKING_SYSTEM_PROMPT
from vst.scene.geometry import BOX_EDGES, Box, box_corners, focal_from_fov, project_points, vst9_to_box
from vst.scene.types import Intrinsics

DEFAULT_HFOV = 60.0  # degrees, VST's cookbook assumption for an image whose camera is unknown
DETECTION_QUESTION = DETECTION_TEMPLATES[0]  # "Detect the 3D bounding boxes of {categories}", VST's own wording
MAX_NEW_TOKENS = 1024
NEAR_M = 0.01  # box edges are cut at this depth (metres) before projection, so nothing behind the camera is drawn
# One colour per label, in order of first appearance (matplotlib's tab10, which stays distinct on photos).
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)


# -- backends -------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def load_backend(model: str) -> Backend:
    """The backend for a spec string, built once per process (loading a checkpoint takes seconds to minutes)."""
    return make_backend(model)


def as_backend(model: str | Path | Backend) -> Backend:
    return model if hasattr(model, "generate") else load_backend(str(model))


def _generate(model, prompt: Prompt, max_new_tokens: int, temperature: float) -> str:
    return as_backend(model).generate([prompt], max_new_tokens=max_new_tokens, temperature=temperature)[0]


def _media(item: Any) -> Any:
    return str(item) if isinstance(item, Path) else item


# -- chat -----------------------------------------------------------------------------------------------------------
def chat(model: str | Path | Backend, question: str, images: Sequence[Any] = (), video: Any = None, think: bool = False,
         max_new_tokens: int = MAX_NEW_TOKENS, temperature: float = 0.0) -> str:
    """The model's raw answer to `question` about `images` (paths, bytes or PIL) and/or `video` (path, bytes or frames).

    With `think` the system prompt is VST's thinking prompt (spec paper.md §3.3) and the answer reads
    `<think>...</think> answer` (`vst.common.parsing.strip_think` keeps the answer); otherwise VST's default one.
    """
    system = THINKING_SYSTEM_PROMPT if think else DEFAULT_SYSTEM_PROMPT
    prompt = Prompt(text=question, images=[_media(image) for image in images], video=_media(video), system=system)
    return _generate(model, prompt, max_new_tokens, temperature)


# -- 3D detection ---------------------------------------------------------------------------------------------------
def fov_intrinsics(width: int, height: int, hfov: float = DEFAULT_HFOV) -> Intrinsics:
    """Pinhole intrinsics of a `width` x `height` image with horizontal field of view `hfov` degrees (module docstring)."""
    if not 0.0 < hfov < 180.0:
        raise ValueError(f"hfov must be in (0, 180) degrees, got {hfov}")
    focal = float(focal_from_fov(hfov, width))
    return Intrinsics(fx=focal, fy=focal, cx=width / 2.0 - 0.5, cy=height / 2.0 - 0.5, width=width, height=height)


def detection_question(categories: str | Sequence[str]) -> str:
    """VST's question for `categories` (a list, or one comma-separated string): "... of chair and table"."""
    names = categories.split(",") if isinstance(categories, str) else list(categories)
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise ValueError("categories: give at least one category name, e.g. chair,table")
    return DETECTION_QUESTION.format(categories=category_phrase(names))


@dataclass(frozen=True)
class DetectedBox:
    """One detected box: its label and VST's 9 numbers as the model wrote them (camera frame, metres, degrees / 180)."""

    label: str
    bbox_3d: tuple[float, ...]

    @property
    def box(self) -> Box:
        """The camera-frame vst box: center (3,), size (3,) = width, depth, height, rotation (3, 3) box->camera."""
        return vst9_to_box(self.bbox_3d)

    def to_json(self) -> dict:
        center, size, rotation = self.box
        return {"label": self.label, "bbox_3d": list(self.bbox_3d), "center": center.tolist(), "size": size.tolist(),
                "rotation": rotation.tolist()}


@dataclass(frozen=True)
class Detection3D:
    """What `detect3d` found: the boxes, the raw response, and the camera (of the image as given) the prompt stated."""

    boxes: list[DetectedBox]
    response: str
    intrinsics: Intrinsics
    prompt: str
    parsed: bool  # False when the response held no box answer (then `boxes` is empty)

    @property
    def fov(self) -> tuple[float, float]:
        """(hfov, vfov) degrees, as stated in the prompt."""
        return vst_fov(self.intrinsics.fx, self.intrinsics.width, self.intrinsics.height)

    def to_json(self) -> dict:
        hfov, vfov = self.fov
        return {"boxes": [box.to_json() for box in self.boxes], "parsed": self.parsed, "hfov": round(hfov, 4), "vfov": round(vfov, 4),
                "intrinsics": self.intrinsics.model_dump(), "response": self.response}


def detect3d(model: str | Path | Backend, image: Any, categories: str | Sequence[str], hfov: float = DEFAULT_HFOV, *,
             intrinsics: Intrinsics | None = None, unify_fov: bool = True, max_new_tokens: int = MAX_NEW_TOKENS,
             temperature: float = 0.0) -> Detection3D:
    """Ask for the 3D boxes of `categories` in `image` (path, bytes or PIL) with VST's camera prompt; never raises on
    the model's text. `intrinsics` (pixels, of the image as given) replace the `hfov` assumption when the camera is
    known; `unify_fov=False` shows the image at its own size instead of VST's virtual camera."""
    picture = open_image(_media(image))
    original = intrinsics or fov_intrinsics(picture.width, picture.height, hfov)
    if (original.width, original.height) != picture.size:
        raise ValueError(f"intrinsics are for a {original.width}x{original.height} image, the image is "
                         f"{picture.width}x{picture.height}")
    shown = unify_intrinsics(original) if unify_fov else original
    if (shown.width, shown.height) != picture.size:
        picture = resize_image(picture, shown.width, shown.height)
    text = camera_prompt(original, shown, detection_question(categories))
    response = _generate(model, Prompt(text=text, images=[picture], system=DEFAULT_SYSTEM_PROMPT), max_new_tokens,
                         temperature)
    entries = parse_boxes(response)
    boxes = [DetectedBox(entry["label"], tuple(entry["bbox_3d"])) for entry in entries or []]
    return Detection3D(boxes=boxes, response=response, intrinsics=original, prompt=text, parsed=entries is not None)


# -- drawing --------------------------------------------------------------------------------------------------------
def clip_segments_to_depth(start, end, near: float = NEAR_M) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-frame segments (n, 3) -> their parts with depth z >= `near`: (start (n, 3), end (n, 3), keep (n,) bool)."""
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    start_z, end_z = start[:, 2], end[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):  # t is only used where the segment crosses the plane
        t = np.nan_to_num((near - start_z) / (end_z - start_z), nan=0.0, posinf=0.0, neginf=0.0)
    crossing = start + t[:, None] * (end - start)
    keep = (start_z >= near) | (end_z >= near)
    start = np.where((start_z < near)[:, None], crossing, start)
    end = np.where((end_z < near)[:, None], crossing, end)
    return start, end, keep


def clip_segments_to_rect(start, end, lower, upper) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2D segments (n, 2) cut to the rectangle [lower, upper] (Liang-Barsky): (start, end, keep (n,) bool)."""
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    delta = end - start
    t_in, t_out = np.zeros(len(start)), np.ones(len(start))
    outside = np.zeros(len(start), dtype=bool)
    for axis in range(2):
        # the segment start + t delta is inside where p t <= q, for each of the two bounds of this axis
        for p, q in ((-delta[:, axis], start[:, axis] - lower[axis]), (delta[:, axis], upper[axis] - start[:, axis])):
            outside |= (p == 0) & (q < 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = q / p
            t_in = np.where(p < 0, np.maximum(t_in, ratio), t_in)
            t_out = np.where(p > 0, np.minimum(t_out, ratio), t_out)
    keep = ~outside & (t_in <= t_out)
    return start + t_in[:, None] * delta, start + t_out[:, None] * delta, keep


def box_edge_pixels(box: Box | Sequence, intrinsics: Intrinsics, margin: float = 0.0) -> np.ndarray:
    """The visible parts of a camera-frame box's 12 edges in pixels, (m, 2, 2) with m <= 12: [edge, end, (u, v)].

    Edges are cut at depth `NEAR_M` before projection (a naive projection of a corner behind the camera flips it to
    the other side of the image), then to the image grown by `margin` pixels.
    """
    corners = box_corners(box)
    start, end, keep = clip_segments_to_depth(corners[BOX_EDGES[:, 0]], corners[BOX_EDGES[:, 1]])
    start, end = start[keep], end[keep]
    width, height = intrinsics.width, intrinsics.height
    uv = project_points(np.concatenate([start, end]), intrinsics.matrix, width, height).uv
    lower = np.array([-0.5 - margin, -0.5 - margin])
    upper = np.array([width - 0.5 + margin, height - 0.5 + margin])
    start, end, keep = clip_segments_to_rect(uv[: len(start)], uv[len(start):], lower, upper)
    return np.stack([start[keep], end[keep]], axis=1)


def label_colors(labels: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """One `PALETTE` colour per distinct label, in order of first appearance (cycling after ten labels)."""
    return {label: PALETTE[index % len(PALETTE)] for index, label in enumerate(dict.fromkeys(labels))}


def draw_boxes3d(image: Any, boxes: Sequence[DetectedBox], intrinsics: Intrinsics, *,
                 colors: Mapping[str, tuple[int, int, int]] | None = None, labels: bool = True,
                 line_width: int | None = None) -> Image.Image:
    """A copy of `image` (path, bytes or PIL; RGB) with each box's 12 edges and its label drawn, a colour per label.

    `intrinsics` are those of the image as given (pixels). The label sits above the highest visible point of its box.
    """
    canvas = open_image(_media(image)).copy()
    if canvas.size != (intrinsics.width, intrinsics.height):
        raise ValueError(f"intrinsics are for a {intrinsics.width}x{intrinsics.height} image, the image is "
                         f"{canvas.width}x{canvas.height}")
    colors = {**label_colors([box.label for box in boxes]), **(colors or {})}
    line_width = line_width or max(2, round(max(canvas.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(canvas.size) / 45)))
    draw = ImageDraw.Draw(canvas)
    tags = []
    for detected in boxes:
        segments = box_edge_pixels(detected.box, intrinsics, margin=line_width)
        color = tuple(colors[detected.label])
        for (u0, v0), (u1, v1) in segments:
            draw.line((u0, v0, u1, v1), fill=color, width=line_width)
        if len(segments):
            points = segments.reshape(-1, 2)
            tags.append((detected.label, color, points[np.argmin(points[:, 1])]))
    placed: list[tuple[float, float, float, float]] = []
    for text, color, (u, v) in tags if labels else ():  # labels last, so no edge covers them
        placed.append(_draw_tag(draw, font, text or "?", color, float(u), float(v), canvas.size, placed))
    return canvas


def _draw_tag(draw: ImageDraw.ImageDraw, font, text: str, color, u: float, v: float, size: tuple[int, int],
              placed: Sequence[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """`text` on a box of `color` centred above (u, v), kept inside the image and, where it can, off the tags already
    `placed` (moved up or down a row at a time); returns the box drawn (x0, y0, x1, y1)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = 2
    width, height = right - left + 2 * pad, bottom - top + 2 * pad
    x = min(max(u - width / 2, 0), size[0] - width)
    rows = [min(max(v - height - pad + step * height, 0), size[1] - height) for step in (0, -1, 1, -2, 2, -3, 3)]
    y = next((row for row in rows if not any(x < x1 and x + width > x0 and row < y1 and row + height > y0
                                             for x0, y0, x1, y1 in placed)), rows[0])
    draw.rectangle((x, y, x + width, y + height), fill=color)
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    draw.text((x + pad - left, y + pad - top), text, fill=(0, 0, 0) if luminance > 140 else (255, 255, 255), font=font)
    return x, y, x + width, y + height
