"""Single-image object measurement (VST skill "Measurement", modality single; spec paper.md §2.3, data.md §4.3 #5).

Emits `si_measurement` (VST type `si_measurement`): the height, width, length or longest side of one object, from
its 3D box, in centimetres (integer) or metres (2 decimals); the question names the unit. Reward "mra".
VST example: "Provide the height of the table (pink point-1)? Specify the measurement in centimeters. A: 71 cm".

Dimensions (`object_dimensions`), all in metres:
- height: the box's vertical extent (world z range of its corners);
- length: the larger of the two horizontal box sides, width: the smaller (the two box axes other than the one
  closest to vertical); the question says so ("its longer horizontal side"), so the words carry no hidden
  convention about an object's front;
- longest: the largest of the three box sides.
Filters (spec data.md §4.3): the object must be fully seen to be measured: visible_frac >= `MIN_VISIBLE_FRAC`
(0.5), not truncated (every box corner projects into the image), enough visible pixels (ctx.min_pixels); and
unique among the visible objects of its category or marked by a coloured point the question names.
`meta_info` keeps all dimensions, the asked value and the margin above the visible-fraction threshold.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vst.data.context import SceneContext
from vst.data.sample import Sample
from vst.data.scene_graph import box_of, refer
from vst.data.skills.registry import register_skill
from vst.scene.geometry import box_corners
from vst.scene.types import Visibility

SKILL = "si_measurement"
MIN_VISIBLE_FRAC = 0.5
MARK_PROBABILITY = 0.4
DIMENSIONS = ("height", "length", "width", "longest")

PHRASES = {
    "height": "height",
    "length": "length (its longer horizontal side)",
    "width": "width (its shorter horizontal side)",
    "longest": "longest dimension (the largest of its length, width and height)",
}
UNITS = {"cm": "centimeters", "m": "meters"}
TEMPLATES = [
    "Provide the {dimension} of {a}? Specify the measurement in {unit}.",
    "What is the {dimension} of {a}? Answer in {unit}.",
    "Estimate the real-world {dimension} of {a}, in {unit}.",
    "How big is {a}? Give its {dimension} in {unit}.",
    "Measure the {dimension} of {a} and report it in {unit}.",
    "In {unit}, what is the {dimension} of {a}?",
]


def object_dimensions(box) -> dict[str, float]:
    """Height, length, width and longest side (m) of a world box (center, size, rotation); see the module docstring."""
    height = float(np.ptp(box_corners(box)[:, 2]))
    vertical = int(np.argmax(np.abs(np.asarray(box.rotation)[2])))
    horizontal = sorted((float(box.size[i]) for i in range(3) if i != vertical), reverse=True)
    return {"height": height, "length": horizontal[0], "width": horizontal[1], "longest": float(max(box.size))}


def measurable(seen: Visibility, min_pixels: int) -> bool:
    """The object is fully seen: enough pixels, at least MIN_VISIBLE_FRAC unoccluded and not cut by the image border."""
    return seen.pixels >= min_pixels and seen.visible_frac >= MIN_VISIBLE_FRAC and not seen.truncated


def format_measurement(value_m: float, unit: str) -> tuple[float | int, str]:
    """(answer value, answer text): centimetres as an integer, metres with 2 decimals."""
    if unit == "cm":
        centimetres = int(round(value_m * 100))
        return centimetres, f"{centimetres} cm"
    metres = round(value_m, 2)
    return metres, f"{metres:.2f} m"


@register_skill(SKILL, "Measurement", "single")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = ctx.frames("still") + ctx.frames("pair")
    for index in rng.permutation(len(frames)):
        frame = frames[index]
        threshold = ctx.min_pixels(frame)
        objects = [o for o in ctx.objects
                   if o.instance_id in frame.visibility and measurable(frame.visibility[o.instance_id], threshold)]
        for obj_index in rng.permutation(len(objects)):
            obj = objects[obj_index]
            dimensions = object_dimensions(box_of(obj))
            dimension = str(rng.choice(DIMENSIONS))
            unit = str(rng.choice(list(UNITS)))
            referents = refer(ctx, frame, [obj], rng, mark_probability=MARK_PROBABILITY)
            if referents is None:
                continue
            value, answer_text = format_measurement(dimensions[dimension], unit)
            if value == 0:
                continue
            question = str(rng.choice(TEMPLATES)).format(dimension=PHRASES[dimension], a=referents[0].phrase, unit=UNITS[unit])
            markers = [r.marker for r in referents if r.marker]
            meta = {"frame_ids": [frame.frame_id], "instance_ids": [obj.instance_id], "markers": [m.to_meta() for m in markers],
                    "dimension": dimension, "dimensions_m": {k: round(v, 4) for k, v in dimensions.items()},
                    "value_m": round(dimensions[dimension], 4), "visible_frac": frame.visibility[obj.instance_id].visible_frac,
                    "margin_visible_frac": round(frame.visibility[obj.instance_id].visible_frac - MIN_VISIBLE_FRAC, 4)}
            answer = {"type": "number", "value": value, "unit": unit}
            media = [ctx.image_media(frame, markers)]
            yield ctx.sample(SKILL, question, answer_text, answer, {"fn": "mra"}, media, meta, "single", SKILL)
