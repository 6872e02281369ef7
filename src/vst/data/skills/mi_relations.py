"""Multi-image object-object relations (VST skill "Object-Object", modality multi; spec paper.md §2.3, data.md §4.3 #10).

Emits `mi_object_object` (VST type `mi_object_object_relation`, the released subset's name) about an object seen in
image 1 and one seen in image 2 of a view pair (`mi_correspondence.view_pairs`):
- distance: closest-point distance between their 3D boxes, metres (reward `mra`); skipped under 0.2 m (touching);
- closer: which of the two is closer to the camera of image k (closest point of its box to the camera centre);
  gap >= max(0.15 m, 10 %) (si_depth.gap_margin);
- cardinal: VST's allocentric frame, "If the {ref} is north of the {anchor}, in which direction is the {target}
  from the {anchor}?", or anchored at camera k ("At the camera position of the second image, the direction toward
  {ref} is south, ..."), 8 directions on the world xy plane from box centres. The stated direction of the reference
  is north half the time, another direction otherwise. Filters: anchor-ref and anchor-target centres 0.5-5 m apart
  on the floor plane; the answer >= 15 degrees from both sector boundaries (sectors are 45 degrees wide, so the
  target lies within 7.5 degrees of the answer direction); >= 6 of the 8 box corners of the target (and of the ref)
  give the same answer as its centre (spec data.md §1.9).
Referents are unique in the scene (`ctx.unique_in_scene`), referable in the image they are taken from, and marked
there by a coloured point. `meta_info` keeps positions, distances, angles and the margin to the decision boundary.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vst.data.choices import LetterBalancer, multiple_choice
from vst.data.context import SceneContext
from vst.data.directions import CARDINAL_DIRECTIONS, cardinal_angle, cardinal_direction, clockwise_angle
from vst.data.markers import MARKER_COLORS, Marker, pick_marker_point
from vst.data.sample import Sample
from vst.data.skills.mi_correspondence import view_pairs
from vst.data.skills.registry import register_skill
from vst.data.skills.si_depth import gap_margin
from vst.scene.geometry import box_corners, box_distance, point_box_distance
from vst.scene.types import Frame, ObjectInstance

SKILL, SAMPLE_TYPE = "mi_object_object", "mi_object_object_relation"
MIN_DISTANCE_M = 0.2
CLOSER_GAP_M, CLOSER_GAP_REL = 0.15, 0.10
MIN_SECTOR_MARGIN_DEG = 15.0
MIN_CORNER_AGREEMENT = 6 / 8
BEARING_DISTANCE_M = (0.5, 5.0)
ATTEMPTS_PER_PAIR = 6
ORDINALS = ("first", "second")

DISTANCE_TEMPLATES = [
    "Measuring from the closest point of each object, what is the distance between {a} and {b}, in meters?",
    "How far apart are {a} and {b}? Give the distance between their closest points in meters.",
    "Estimate the gap in meters between {a} and {b}, measured between the nearest points of the two objects.",
    "What is the shortest distance, in meters, from {a} to {b}?",
    "In meters, how much space separates {a} from {b} at their closest points?",
]
CLOSER_TEMPLATES = [
    "Which object is closer to the camera that took the {k} image: {a} or {b}?",
    "Standing where the {k} image was taken, which is nearer to you, {a} or {b}?",
    "From the camera position of the {k} image, is {a} or {b} closer?",
    "Of {a} and {b}, which one lies nearer to the viewpoint of the {k} image?",
    "Considering the camera of the {k} image, which is at a smaller distance from it: {a} or {b}?",
]
OBJECT_ANCHOR_TEMPLATES = [
    "If {ref} is {stated} of {anchor}, in which direction is {target} from {anchor}?",
    "Suppose {ref} lies to the {stated} of {anchor}. Which direction is {target} from {anchor}?",
    "Taking the direction from {anchor} to {ref} as {stated}, where is {target} relative to {anchor}?",
    "Imagine a compass where {ref} is due {stated} of {anchor}. In which compass direction does {target} lie from {anchor}?",
    "Given that {ref} is {stated} of {anchor}, what is the direction of {target} as seen from {anchor}?",
]
CAMERA_ANCHOR_TEMPLATES = [
    "At the camera position of the {k} image, the direction toward {ref} is {stated}. "
    "Which direction is {target} relative to me?",
    "I stand where the {k} image was taken, and {ref} is {stated} of me. In which direction is {target}?",
    "From the viewpoint of the {k} image, {ref} lies to the {stated}. What direction is {target} from there?",
    "Suppose the camera of the {k} image is the origin and {ref} is due {stated} of it. Where is {target} from the camera?",
    "Standing at the {k} camera, if {ref} is {stated}, which compass direction points to {target}?",
]


def _name(obj: ObjectInstance) -> str:
    return obj.category.replace("_", " ")


def bearing_answer(anchor_xy, ref_xy, target_xy, stated: str) -> tuple[str, float, float]:
    """(direction, margin_deg, angle_deg) of `target_xy` seen from `anchor_xy` (world xy, metres) when the direction
    from the anchor to `ref_xy` is called `stated`; angle_deg is clockwise from north."""
    anchor = np.asarray(anchor_xy, dtype=np.float64)
    angle = (cardinal_angle(stated) + clockwise_angle(np.asarray(ref_xy) - anchor, np.asarray(target_xy) - anchor)) % 360.0
    direction, margin = cardinal_direction(angle)
    return direction, margin, float(angle)


def corner_agreement(anchor_xy, ref_points, target_points, stated: str, direction: str) -> float:
    """Lower of two shares: of the target's corners (rows 1.. of `target_points` (9, 2), row 0 = centre) that give
    `direction` with the ref's centre, and of the ref's corners that give it with the target's centre."""
    ref_points, target_points = np.asarray(ref_points), np.asarray(target_points)
    by_target = np.mean([bearing_answer(anchor_xy, ref_points[0], p, stated)[0] == direction for p in target_points[1:]])
    by_ref = np.mean([bearing_answer(anchor_xy, p, target_points[0], stated)[0] == direction for p in ref_points[1:]])
    return float(min(by_target, by_ref))


def _footprint(obj: ObjectInstance) -> np.ndarray:
    """(9, 2) world xy: the box centre, then its 8 corners."""
    box = (obj.box.center, obj.box.size, obj.box.rotation)
    return np.vstack([np.asarray(obj.box.center)[None, :2], box_corners(box)[:, :2]])


def _box(obj: ObjectInstance):
    return obj.box.center, obj.box.size, obj.box.rotation


class _Marking:
    """Point markers for one sample: which object is marked in which image, and how the question names it."""

    def __init__(self, ctx: SceneContext, frames: tuple[Frame, Frame], rng):
        self.ctx, self.frames, self.rng = ctx, frames, rng
        self.colors = [str(c) for c in rng.permutation(list(MARKER_COLORS))]
        self.markers: list[list[Marker]] = [[], []]

    def mention(self, obj: ObjectInstance, image: int) -> str | None:
        """"the sofa (red point in image 1)", after drawing the point; None if no spot on the object fits a marker."""
        taken = [m.xy for m in self.markers[image]]
        point = pick_marker_point(self.ctx.instance_ids(self.frames[image]) == obj.instance_id, self.rng, avoid=taken)
        if point is None:
            return None
        color = self.colors[len(self.markers[0]) + len(self.markers[1])]
        self.markers[image].append(Marker("point", color, point))
        return f"the {_name(obj)} ({color} point in image {image + 1})"

    def mention_pair(self, a: ObjectInstance, b: ObjectInstance) -> tuple[str, str] | None:
        """Mentions of `a` marked in image 1 and `b` marked in image 2; None if either cannot be marked."""
        first = self.mention(a, 0)
        second = self.mention(b, 1) if first is not None else None
        return (first, second) if second is not None else None

    def meta(self) -> list[dict]:
        return [{"image": i, **m.to_meta()} for i in (0, 1) for m in self.markers[i]]


def _pick(candidates: list[ObjectInstance], exclude: list[ObjectInstance], rng) -> ObjectInstance | None:
    pool = [o for o in candidates if all(o.instance_id != e.instance_id for e in exclude)]
    return pool[int(rng.integers(len(pool)))] if pool else None


def _distance_form(a, b, marking, rng):
    distance = box_distance(_box(a), _box(b))
    mentions = marking.mention_pair(a, b) if distance >= MIN_DISTANCE_M else None
    if mentions is None:
        return None
    value = round(distance, 2)
    question = str(rng.choice(DISTANCE_TEMPLATES)).format(a=mentions[0], b=mentions[1])
    raw = {"distance_m": round(distance, 4), "margin_m": round(distance - MIN_DISTANCE_M, 4)}
    return question, f"{value:.2f}", {"type": "number", "value": value, "unit": "m"}, {"fn": "mra"}, [a, b], raw


def _closer_form(a, b, frames, marking, rng, balancer):
    k = int(rng.integers(2))
    camera = frames[k].pose[:3, 3][None]
    distances = [float(point_box_distance(camera, _box(o))[0]) for o in (a, b)]
    margin = gap_margin(*distances, CLOSER_GAP_M, CLOSER_GAP_REL)
    mentions = marking.mention_pair(a, b) if margin >= 0 else None
    if mentions is None:
        return None
    question = str(rng.choice(CLOSER_TEMPLATES)).format(k=ORDINALS[k], a=mentions[0], b=mentions[1])
    winner, loser = (a, b) if distances[0] < distances[1] else (b, a)
    choice = multiple_choice(_name(winner), [_name(loser)], balancer, rng)
    raw = {"camera_image": k + 1, "camera_distances_m": [round(d, 4) for d in distances], "margin_m": round(margin, 4)}
    return choice.prompt(question), choice.letter, choice.answer, {"fn": "multiple_choice"}, [a, b], raw


def _cardinal_form(ctx, a, b, frames, marking, rng, balancer):
    k = int(rng.integers(2)) if rng.random() < 0.5 else None  # camera k as the anchor, or object a
    referable = [o for o in ctx.referable(frames[0]) + ctx.referable(frames[1]) if ctx.unique_in_scene(o)]
    ref = _pick(referable, [a, b], rng)
    if ref is None:
        return None
    anchor_xy = frames[k].pose[:2, 3] if k is not None else np.asarray(a.box.center[:2])
    target = b
    ref_points, target_points = _footprint(ref), _footprint(target)
    spans = [np.linalg.norm(points[0] - anchor_xy) for points in (ref_points, target_points)]
    if not all(BEARING_DISTANCE_M[0] <= s <= BEARING_DISTANCE_M[1] for s in spans):
        return None
    stated = "north" if rng.random() < 0.5 else str(rng.choice(CARDINAL_DIRECTIONS[1:]))
    direction, margin, angle = bearing_answer(anchor_xy, ref_points[0], target_points[0], stated)
    agreement = corner_agreement(anchor_xy, ref_points, target_points, stated, direction)
    if margin < MIN_SECTOR_MARGIN_DEG or agreement < MIN_CORNER_AGREEMENT:
        return None
    ref_image = 0 if any(o.instance_id == ref.instance_id for o in ctx.referable(frames[0])) else 1
    mentions = [marking.mention(obj, image) for obj, image in ((ref, ref_image), (target, 1))]
    anchor_mention = marking.mention(a, 0) if k is None else ORDINALS[k]
    if None in mentions or anchor_mention is None:
        return None
    templates = OBJECT_ANCHOR_TEMPLATES if k is None else CAMERA_ANCHOR_TEMPLATES
    names = {"ref": mentions[0], "target": mentions[1], "anchor": anchor_mention, "k": anchor_mention, "stated": stated}
    question = str(rng.choice(templates)).format(**names)
    others = [d for d in CARDINAL_DIRECTIONS if d != direction]
    choice = multiple_choice(direction, [others[i] for i in rng.choice(len(others), size=3, replace=False)], balancer, rng)
    raw = {"anchor": "object" if k is None else f"camera {k + 1}", "anchor_xy": [round(float(v), 4) for v in anchor_xy],
           "ref_id": ref.instance_id, "stated_direction": stated, "angle_deg": round(angle, 2), "direction": direction,
           "corner_agreement": round(agreement, 3), "margin_deg": round(margin, 2)}
    referred = ([a] if k is None else []) + [ref, target]
    return choice.prompt(question), choice.letter, choice.answer, {"fn": "multiple_choice"}, referred, raw


@register_skill(SKILL, "Object-Object", "multi")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    balancer, asked = LetterBalancer(), set()
    for first, second, origin in view_pairs(ctx, rng):
        firsts = [o for o in ctx.referable(first) if ctx.unique_in_scene(o)]
        seconds = [o for o in ctx.referable(second) if ctx.unique_in_scene(o)]
        for _ in range(ATTEMPTS_PER_PAIR):
            a = _pick(firsts, [], rng)
            b = _pick(seconds, [a], rng) if a is not None else None
            if b is None:
                break
            frames, marking = (first, second), _Marking(ctx, (first, second), rng)
            form = str(rng.choice(["distance", "closer", "cardinal"], p=[0.3, 0.3, 0.4]))
            key = (first.frame_id, second.frame_id, form, a.instance_id, b.instance_id)
            if key in asked:
                continue
            if form == "distance":
                built = _distance_form(a, b, marking, rng)
            elif form == "closer":
                built = _closer_form(a, b, frames, marking, rng, balancer)
            else:
                built = _cardinal_form(ctx, a, b, frames, marking, rng, balancer)
            if built is None:
                continue
            asked.add(key)
            question, answer_text, answer, reward, referred, raw = built
            meta = {"form": form, "frame_ids": [first.frame_id, second.frame_id], "pair_origin": origin,
                    "instance_ids": [o.instance_id for o in referred], "markers": marking.meta(),
                    "centers_xyz": {str(o.instance_id): [round(float(v), 4) for v in o.box.center] for o in referred}, **raw}
            media = [ctx.image_media(first, marking.markers[0]), ctx.image_media(second, marking.markers[1])]
            yield ctx.sample(SKILL, question, answer_text, answer, reward, media, meta, "multi", SAMPLE_TYPE)
