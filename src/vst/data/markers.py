"""Markers drawn on copies of images: points, circles and 2D boxes in a colour the question names.

Questions refer to marked things by colour and label ("the red point", "point B"), the convention of SAT, SPAR and
VST's own 2.5D data (spec paper.md §2.3). Marker coordinates are absolute pixels of the image they are drawn
on and are kept in `meta_info["markers"]`, so a sample can be audited or re-drawn in another style.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MARKER_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25), "green": (20, 200, 40), "blue": (30, 90, 255), "yellow": (255, 225, 0),
    "purple": (160, 40, 220), "orange": (255, 130, 0), "pink": (255, 80, 190), "cyan": (0, 210, 230),
}
MIN_BORDER = 20  # pixels between a marker and the image border (spec data.md §4.3)
MIN_SEPARATION = 40  # pixels between two point markers


@dataclass
class Marker:
    kind: str  # point | circle | box
    color: str
    xy: tuple[float, ...]  # point/circle: (x, y); box: (x0, y0, x1, y1)
    label: str = ""

    def to_meta(self) -> dict:
        return asdict(self)


def draw_markers(image: Image.Image, markers: list[Marker]) -> Image.Image:
    """A copy of `image` with the markers drawn on it (radius scales with image size)."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    radius = max(4, round(min(canvas.size) / 64))
    font = ImageFont.load_default(size=max(10, radius * 3))
    for marker in markers:
        color = MARKER_COLORS[marker.color]
        if marker.kind == "point":
            x, y = marker.xy
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color, outline=(255, 255, 255), width=max(1, radius // 3))
            anchor = (x + radius + 2, y - radius - 2)
        elif marker.kind == "circle":
            x, y = marker.xy
            r = radius * 3
            draw.ellipse([x - r, y - r, x + r, y + r], outline=color, width=max(2, radius // 2))
            anchor = (x + r + 2, y - r)
        elif marker.kind == "box":
            x0, y0, x1, y1 = marker.xy
            draw.rectangle([x0, y0, x1, y1], outline=color, width=max(2, radius // 2))
            anchor = (x0 + 2, y0 + 2)
        else:
            raise ValueError(f"unknown marker kind {marker.kind!r}; expected point, circle or box")
        if marker.label:
            draw.text(anchor, marker.label, fill=color, font=font, stroke_width=2, stroke_fill=(0, 0, 0))
    return canvas


def pick_marker_point(mask: np.ndarray, rng: np.random.Generator, border: int = MIN_BORDER, avoid: list[tuple[float, float]] = (), separation: float = MIN_SEPARATION) -> tuple[int, int] | None:
    """A pixel (x, y) inside `mask` (H, W bool), away from the border, preferring the mask's interior.

    The mask is eroded first so the point sits on the object, not on its silhouette edge, where a few pixels'
    error would put it on the background.
    """
    from scipy import ndimage

    height, width = mask.shape
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if not len(rows):
        return None
    top, left = rows[0], cols[0]
    crop = mask[top : rows[-1] + 1, left : cols[-1] + 1]  # erode only the object's bounding box: 10x faster
    interior = ndimage.binary_erosion(crop, iterations=3) if crop.sum() > 200 else crop
    ys, xs = np.nonzero(interior)
    ys, xs = ys + top, xs + left
    keep = (xs >= border) & (xs < width - border) & (ys >= border) & (ys < height - border)
    for ax, ay in avoid:
        keep &= np.hypot(xs - ax, ys - ay) >= separation
    if not keep.any():
        return None
    index = int(rng.choice(np.nonzero(keep)[0]))
    return int(xs[index]), int(ys[index])
