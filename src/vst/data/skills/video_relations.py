"""Video object-object relations (VST skill "Object-Object", video; spec data.md §1.6, §1.9, §1.10, §4.3 row 15).

Emits `video_object_object` (modality video, VST type `video`), multiple choice in VSI-Bench's two forms:
- relative distance: "which of these four objects is closest to X", distances between closest box points. The
  nearest option must beat the second by max(`REL_GAP_M`, `REL_GAP_REL` x second) — `REL_GAP_LARGE_ROOM_M` when the
  room is larger than `LARGE_ROOM_M2` (VLM-3R computed that room-adaptive gap but never used it; here it is used) —
  and must not touch X (`MIN_CLOSEST_M`).
- relative direction, easy / medium / hard as VSI-Bench: standing at A's centre facing B's centre, is C left or
  right (easy); left, right or back, back meaning a turn of at least 135 deg (medium); front-left, front-right,
  back-left or back-right (hard). Angles are counter-clockwise on the floor plane, 0 = straight ahead. C's
  centre must be at least `MIN_SECTOR_MARGIN_DEG` from every sector boundary on both sides (VLM-3R's check was
  one-sided), at least `MIN_CORNERS_IN_SECTOR` of C's 8 box corners must share its sector, and all three
  closest-point pair distances lie in [`MIN_PAIR_M`, `MAX_PAIR_M`]. The difficulty is stored in `meta_info`.
Every named object is unique in the scene and seen in the video (video.py). As in si_depth, `margin_m` is the
nearest-vs-second gap's slack above the required gap and `margin_deg` the angular slack above
`MIN_SECTOR_MARGIN_DEG` (so the distance to the nearest sector boundary is margin_deg + 15); the raw distances and
the angle are stored beside them.
"""

from __future__ import annotations

from itertools import permutations
from typing import Iterator

import numpy as np

from vst.data.choices import LetterBalancer, multiple_choice
from vst.data.context import SceneContext
from vst.data.sample import Sample
from vst.data.skills.registry import register_skill
from vst.data.video import choice_sample, interleave, object_name, video_frames, video_referents, world_box
from vst.scene.geometry import box_corners, box_distance
from vst.scene.types import Frame, ObjectInstance

SKILL = "video_object_object"
REL_OPTIONS = 4
REL_GAP_M, REL_GAP_REL = 0.15, 0.10
REL_GAP_LARGE_ROOM_M, LARGE_ROOM_M2 = 0.30, 40.0
MIN_CLOSEST_M = 0.15
REL_ATTEMPTS_PER_OBJECT = 4
MIN_PAIR_M, MAX_PAIR_M = 0.3, 5.0
MIN_SECTOR_MARGIN_DEG = 15.0
MIN_CORNERS_IN_SECTOR = 6

# Sectors as (start angle in degrees, label), counter-clockwise from straight ahead; each runs to the next start.
SECTORS = {
    "easy": ((0.0, "left"), (180.0, "right")),
    "medium": ((0.0, "left"), (135.0, "back"), (225.0, "right")),
    "hard": ((0.0, "front-left"), (90.0, "back-left"), (180.0, "back-right"), (270.0, "front-right")),
}

DISTANCE_TEMPLATES = [
    "Measuring from the closest point of each object, which of these objects ({options}) is the closest to the {target}?",
    "Which of the following objects is nearest to the {target}, measured between closest points: {options}?",
    "Taking the closest point of each object, which one of {options} lies nearest to the {target}?",
    "Among {options}, which object is the shortest distance from the {target}, measured from closest point to closest point?",
    "Which object is closest to the {target} when distances are measured between the nearest points of the objects: {options}?",
]
DIRECTION_TEMPLATES = {
    "easy": [
        "If I am standing by the {a} and facing the {b}, is the {c} to the left or the right of the {b}?",
        "Imagine standing next to the {a} while looking toward the {b}. Is the {c} on the left or on the right of the {b}?",
        "Suppose I stand at the {a} and face the {b}. Would the {c} be to the left or to the right of the {b}?",
        "Picture yourself beside the {a}, facing the {b}. From that viewpoint, is the {c} to the left or the right of the {b}?",
        "Standing by the {a} with the {b} straight ahead, is the {c} on the left side or the right side of the {b}?",
    ],
    "medium": [
        "If I am standing by the {a} and facing the {b}, is the {c} to my left, right, or back?",
        "Imagine I am next to the {a} while looking toward the {b}. Is the {c} on my left, on my right, or behind me?",
        "Suppose I stand at the {a} and face the {b}. Is the {c} to my left, to my right, or at my back?",
        "Picture me beside the {a}, facing the {b}. Where is the {c}: to my left, to my right, or at my back?",
        "Standing by the {a} with the {b} straight ahead, would the {c} be to my left, my right, or my back?",
    ],
    "hard": [
        "If I am standing by the {a} and facing the {b}, is the {c} to my front-left, front-right, back-left, or back-right?",
        "Imagine I stand next to the {a}, looking at the {b}. Is the {c} at my front-left, front-right, back-left or back-right?",
        "Say I stand at the {a}, facing the {b}. Which quadrant holds the {c}: front-left, front-right, back-left, back-right?",
        "Picture me beside the {a}, facing the {b}. Is the {c} to my front-left, front-right, back-left, or back-right?",
        "With the {b} straight ahead of me as I stand by the {a}, is the {c} front-left, front-right, back-left, or back-right?",
    ],
}
DIRECTION_RULES = {
    "easy": "",
    "medium": " An object is to my back if I would have to turn at least 135 degrees in order to face it.",
    "hard": (" The directions refer to the quadrants of a Cartesian plane (if I am standing at the origin and facing along the"
             " positive y-axis)."),
}


def required_gap_m(second_m: float, room_area_m2: float) -> float:
    """The lead the nearest option needs over the second-nearest one (metres)."""
    absolute = REL_GAP_LARGE_ROOM_M if room_area_m2 > LARGE_ROOM_M2 else REL_GAP_M
    return max(absolute, REL_GAP_REL * second_m)


def gap_margin_m(distances_m, room_area_m2: float) -> float:
    """How far the nearest-vs-second gap of option distances (n,) exceeds `required_gap_m`; < 0 = ambiguous."""
    nearest, second = np.sort(np.asarray(distances_m, dtype=np.float64))[:2]
    return float(second - nearest - required_gap_m(second, room_area_m2))


def direction_angles_deg(standing_xy, facing_xy, query_xy) -> np.ndarray:
    """Counter-clockwise angles in [0, 360) of query points (n, 2) seen from `standing_xy` (2,) facing `facing_xy` (2,).

    World xy, z up: 0 = straight ahead, 90 = to the left, 180 = behind, 270 = to the right.
    """
    standing = np.asarray(standing_xy, dtype=np.float64)
    ahead = np.asarray(facing_xy, dtype=np.float64) - standing
    query = np.atleast_2d(np.asarray(query_xy, dtype=np.float64)) - standing
    angles = np.arctan2(query[:, 1], query[:, 0]) - np.arctan2(ahead[1], ahead[0])
    return np.degrees(angles) % 360.0


def sector_label(angle_deg: float, sectors) -> str:
    """The label of the sector containing `angle_deg` in [0, 360)."""
    return [label for start, label in sectors if start <= angle_deg][-1]


def sector_margin_deg(angle_deg: float, sectors) -> float:
    """Angular distance (deg) from `angle_deg` to the nearest sector boundary, either side."""
    starts = np.array([start for start, _ in sectors])
    difference = np.abs(angle_deg - starts) % 360.0
    return float(np.min(np.minimum(difference, 360.0 - difference)))


class PairDistances:
    """Closest-point distances (m) between objects' boxes, each pair computed once."""

    def __init__(self):
        self._cache: dict[tuple[int, int], float] = {}

    def __call__(self, a: ObjectInstance, b: ObjectInstance) -> float:
        key = (min(a.instance_id, b.instance_id), max(a.instance_id, b.instance_id))
        if key not in self._cache:
            self._cache[key] = box_distance(world_box(a), world_box(b))
        return self._cache[key]


def _distance_samples(ctx: SceneContext, frames: list[Frame], referents: list[ObjectInstance], distance: PairDistances, rng,
                      balancer: LetterBalancer) -> Iterator[Sample]:
    if len(referents) < REL_OPTIONS + 1:
        return
    area = ctx.scene.room.area_m2 if ctx.scene.room is not None else 0.0
    for index in rng.permutation(len(referents)):
        target = referents[index]
        pool = [obj for obj in referents if obj is not target]
        for _ in range(REL_ATTEMPTS_PER_OBJECT):
            options = [pool[i] for i in rng.choice(len(pool), size=REL_OPTIONS, replace=False)]
            distances = [distance(target, obj) for obj in options]
            margin = gap_margin_m(distances, area)
            nearest = int(np.argmin(distances))
            if margin < 0 or distances[nearest] < MIN_CLOSEST_M:
                continue
            names = [object_name(obj) for obj in options]
            choice = multiple_choice(names[nearest], names[:nearest] + names[nearest + 1:], balancer, rng)
            question = str(rng.choice(DISTANCE_TEMPLATES)).format(options=", ".join(choice.options), target=object_name(target))
            order = [names.index(name) for name in choice.options]  # names are unique: every referent is unique in the scene
            meta = {"form": "object_rel_distance", "instance_ids": [target.instance_id] + [options[i].instance_id for i in order],
                    "distances_m": [round(distances[i], 4) for i in order], "room_area_m2": round(float(area), 4),
                    "required_gap_m": round(required_gap_m(sorted(distances)[1], area), 4), "margin_m": round(margin, 4)}
            yield choice_sample(ctx, SKILL, frames, question, choice, meta)
            break


def _pair_distances_ok(triple, distance: PairDistances) -> list[float] | None:
    """Closest-point distances of the pairs (a, b), (a, c), (b, c), or None when one is outside the allowed range."""
    a, b, c = triple
    distances = [distance(a, b), distance(a, c), distance(b, c)]
    return distances if all(MIN_PAIR_M <= d <= MAX_PAIR_M for d in distances) else None


def _direction_sample(ctx: SceneContext, frames: list[Frame], triple, difficulty: str, distances: list[float], rng,
                      balancer: LetterBalancer) -> Sample | None:
    a, b, c = triple
    sectors = SECTORS[difficulty]
    angle = float(direction_angles_deg(a.box.center[:2], b.box.center[:2], c.box.center[:2])[0])
    margin = sector_margin_deg(angle, sectors) - MIN_SECTOR_MARGIN_DEG
    label = sector_label(angle, sectors)
    corner_angles = direction_angles_deg(a.box.center[:2], b.box.center[:2], box_corners(world_box(c))[:, :2])
    corners_in_sector = sum(sector_label(float(x), sectors) == label for x in corner_angles)
    if margin < 0 or corners_in_sector < MIN_CORNERS_IN_SECTOR:
        return None
    choice = multiple_choice(label, [other for _, other in sectors if other != label], balancer, rng)
    names = {"a": object_name(a), "b": object_name(b), "c": object_name(c)}
    question = str(rng.choice(DIRECTION_TEMPLATES[difficulty])).format(**names) + DIRECTION_RULES[difficulty]
    meta = {"form": f"object_rel_direction_{difficulty}", "difficulty": difficulty, "roles": ["standing", "facing", "query"],
            "instance_ids": [a.instance_id, b.instance_id, c.instance_id], "angle_deg": round(angle, 3), "label": label,
            "corners_in_sector": int(corners_in_sector), "pair_distances_m": [round(d, 4) for d in distances],
            "margin_deg": round(margin, 3)}
    return choice_sample(ctx, SKILL, frames, question, choice, meta)


def _direction_samples(ctx: SceneContext, frames: list[Frame], referents: list[ObjectInstance], distance: PairDistances, rng,
                       balancer: LetterBalancer) -> Iterator[Sample]:
    triples = list(permutations(referents, 3))
    for index in rng.permutation(len(triples)):
        distances = _pair_distances_ok(triples[index], distance)
        if distances is None:
            continue
        for difficulty in rng.permutation(list(SECTORS)):
            sample = _direction_sample(ctx, frames, triples[index], str(difficulty), distances, rng, balancer)
            if sample is not None:
                yield sample
                break


@register_skill(SKILL, "Object-Object", "video")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = video_frames(ctx)
    if not frames:
        return
    referents = video_referents(ctx, frames)
    balancer, distance = LetterBalancer(), PairDistances()
    streams = [_distance_samples(ctx, frames, referents, distance, rng, balancer),
               _direction_samples(ctx, frames, referents, distance, rng, balancer)]
    yield from interleave(streams, rng)
