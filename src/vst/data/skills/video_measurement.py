"""Video measurement (VST skill "Measurement", video; spec paper.md §2.1 row 13, data.md §1.6 and §4.3 row 14).

Emits `video_measurement` (modality video, VST type `video`) in VSI-Bench's three numeric forms, each scored by
mean relative accuracy (reward "mra"):
- object size: the longest of the object's three box dimensions, in centimetres (integer);
- room size: the floor area `Scene.room.area_m2`, in square metres (one decimal);
- absolute distance: closest-point distance between two objects' boxes (`geometry.box_distance`), in metres.
Filters: every named object is the only one of its category in the scene and is seen in the video (video.py);
two objects of a distance question are at least `MIN_DISTANCE_M` apart (VSI skips touching pairs). `meta_info`
keeps the box sizes or the distance; `margin_m` is the distance above `MIN_DISTANCE_M`, and None for the size
forms, whose answers have no decision boundary (MRA grades them continuously).
"""

from __future__ import annotations

from itertools import combinations
from typing import Iterator

import numpy as np

from vst.data.context import SceneContext
from vst.data.sample import Sample
from vst.data.skills.registry import register_skill
from vst.data.video import interleave, numeric_sample, object_name, video_frames, video_referents, world_box
from vst.scene.geometry import box_distance
from vst.scene.types import Frame, ObjectInstance

SKILL = "video_measurement"
MIN_DISTANCE_M = 0.2
CENTIMETRES_PER_METRE = 100

SIZE_TEMPLATES = [
    "What is the length of the longest dimension (length, width, or height) of the {obj}, measured in centimeters?",
    "Measured in centimeters, how long is the largest dimension (length, width, or height) of the {obj}?",
    "Estimate the size of the {obj} along its longest side, be it length, width or height. Answer in centimeters.",
    "In centimeters, what is the biggest of the three dimensions (length, width, height) of the {obj}?",
    "How many centimeters does the {obj} measure along its longest dimension (length, width, or height)?",
]
ROOM_TEMPLATES = [
    "What is the size of this room (in square meters)? If multiple rooms are shown, estimate the size of the combined space.",
    "Estimate the floor area of this room in square meters. If the video shows several rooms, give their combined area.",
    "How large is this room, in square meters? If more than one room appears, estimate the total area of the combined space.",
    "In square meters, how much floor does this room cover? If several rooms are shown, count the combined space.",
    "Approximately how many square meters is this room? If the video spans multiple rooms, estimate their combined size.",
]
DISTANCE_TEMPLATES = [
    "Measuring from the closest point of each object, what is the direct distance between the {a} and the {b} (in meters)?",
    "What is the distance in meters between the {a} and the {b}, measured between their closest points?",
    "How far apart are the {a} and the {b}, in meters, measured from the nearest point of one to the nearest point of the other?",
    "Measured between their closest points, how many meters separate the {a} from the {b}?",
    "Estimate the straight-line gap in meters between the {a} and the {b}, taking the closest point of each object.",
]


def longest_dimension_cm(size_m) -> int:
    """The longest of three box extents (3,) in metres, as whole centimetres."""
    return int(round(float(np.max(size_m)) * CENTIMETRES_PER_METRE))


def round_metres(value: float) -> float:
    """Metres for an answer: two decimals below 1 m (so short distances keep their precision), one above."""
    return round(float(value), 2 if value < 1.0 else 1)


def _size_samples(ctx: SceneContext, frames: list[Frame], referents: list[ObjectInstance], rng) -> Iterator[Sample]:
    for index in rng.permutation(len(referents)):
        obj = referents[index]
        size_cm = longest_dimension_cm(obj.box.size)
        question = str(rng.choice(SIZE_TEMPLATES)).format(obj=object_name(obj))
        meta = {"form": "object_size_estimation", "instance_ids": [obj.instance_id],
                "box_size_m": [round(extent, 4) for extent in obj.box.size], "longest_cm": size_cm, "margin_m": None}
        yield numeric_sample(ctx, SKILL, frames, question, size_cm, "cm", meta)


def _room_samples(ctx: SceneContext, frames: list[Frame], rng) -> Iterator[Sample]:
    room = ctx.scene.room
    if room is None or room.area_m2 <= 0:
        return
    area = round(float(room.area_m2), 1)
    question = str(rng.choice(ROOM_TEMPLATES))
    meta = {"form": "room_size_estimation", "instance_ids": [], "area_m2": round(float(room.area_m2), 4), "margin_m": None}
    yield numeric_sample(ctx, SKILL, frames, question, area, "m2", meta)


def _distance_samples(ctx: SceneContext, frames: list[Frame], referents: list[ObjectInstance], rng) -> Iterator[Sample]:
    pairs = list(combinations(referents, 2))
    for index in rng.permutation(len(pairs)):
        a, b = pairs[index] if rng.random() < 0.5 else pairs[index][::-1]
        distance = box_distance(world_box(a), world_box(b))
        if distance < MIN_DISTANCE_M:
            continue
        question = str(rng.choice(DISTANCE_TEMPLATES)).format(a=object_name(a), b=object_name(b))
        meta = {"form": "object_abs_distance", "instance_ids": [a.instance_id, b.instance_id], "distance_m": round(distance, 4),
                "margin_m": round(distance - MIN_DISTANCE_M, 4)}
        yield numeric_sample(ctx, SKILL, frames, question, round_metres(distance), "m", meta)


@register_skill(SKILL, "Measurement", "video")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = video_frames(ctx)
    if not frames:
        return
    referents = video_referents(ctx, frames)
    streams = [_size_samples(ctx, frames, referents, rng), _room_samples(ctx, frames, rng),
               _distance_samples(ctx, frames, referents, rng)]
    yield from interleave(streams, rng)
