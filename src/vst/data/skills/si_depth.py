"""Single-image depth comparison and ordering (VST skill "Depth Comparison", 2.5D; spec paper.md §2.3).

Emits `si_depth_comparison` (modality single, VST type `si_depth_comparison`) in three forms:
- two marked points on two objects: which is closer / farther (answer: the object's name). The question names the
  objects, so a sample is kept only when the marked points' depths and the objects' median visible depths
  (`Visibility.depth_median`) give the same order: a point on the far headboard of a bed that is nearer than a
  bookshelf as a whole would otherwise make "the bookshelf" the closer object (`object_gap_in_point_order`);
- three to five lettered points: order them near-to-far or far-to-near (answer: letter sequence);
- two objects named by 2D boxes `bbox_2d: [x0, y0, x1, y1]` (absolute pixels, Qwen2.5-VL style): which is closer.
Filters (spec data.md §1.9, §4.3): objects referable (≥ 400 px at 448², ≥ 30 % unoccluded); point depths differ
by ≥ max(0.10 m, 10 %); box comparisons use median visible depth with a gap ≥ max(0.15 m, 10 %); markers
≥ 20 px from the border and ≥ 40 px apart. `meta_info` keeps the depths (point forms: of the points, and
`object_depths_m` of the objects), the margin above the gap threshold (point pairs: also no more than the objects'
median-depth gap in the points' order, the distance to the agreement boundary), marker pixels and instance ids.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vst.data.choices import LetterBalancer, multiple_choice
from vst.data.context import SceneContext
from vst.data.markers import MARKER_COLORS, Marker, pick_marker_point
from vst.data.sample import Sample
from vst.data.skills.registry import register_skill
from vst.scene.types import Frame

SKILL = "si_depth_comparison"
POINT_GAP_M, POINT_GAP_REL = 0.10, 0.10
OBJECT_GAP_M, OBJECT_GAP_REL = 0.15, 0.10
ATTEMPTS_PER_FRAME = 6

PAIR_TEMPLATES = [
    "Which object is {relation} the camera: the {a} (marked by the {ca} point) or the {b} (marked by the {cb} point)?",
    "Two points are drawn on the image, a {ca} one on the {a} and a {cb} one on the {b}. Which of these objects is {relation} the camera?",
    "Judging from the image, is the {a} ({ca} point) or the {b} ({cb} point) {relation} the viewer?",
    "Looking at the {ca} point on the {a} and the {cb} point on the {b}, which object lies {relation} the camera?",
    "Based on your analysis of the image, which object, the {a} ({ca} point) or the {b} ({cb} point), is {relation} the camera?",
]
ORDER_TEMPLATES = [
    "Several points are marked in the image with the letters {labels}. Order them from {first} to {last} relative to the camera.",
    "The image shows labelled points {labels}. List the points in order from {first} to {last} with respect to the camera.",
    "Sort the marked points ({labels}) by their distance from the camera, {first} first and {last} last.",
    "There are several points in the image. Present the points in an order that goes from {first} to {last}.",
    "Rank the lettered points {labels} from {first} to {last} as seen from the camera.",
]
BOX_TEMPLATES = [
    "Which one is {relation} the camera: {a} (bbox_2d: {box_a}) or {b} (bbox_2d: {box_b})?",
    "Consider {a} at bbox_2d {box_a} and {b} at bbox_2d {box_b}. Which of the two is {relation} the camera?",
    "Between {a} (bbox_2d: {box_a}) and {b} (bbox_2d: {box_b}), which object is {relation} the viewer?",
    "Of the two objects {a} (bbox_2d: {box_a}) and {b} (bbox_2d: {box_b}), tell me which is {relation} the camera.",
    "Which object lies {relation} the camera, {a} with bbox_2d {box_a} or {b} with bbox_2d {box_b}?",
]
RELATIONS = {"closer": "closer to", "farther": "farther from"}


def gap_margin(depth_a: float, depth_b: float, absolute: float, relative: float) -> float:
    """How far |a - b| exceeds the required gap max(absolute, relative * max(a, b)); negative = too close to call."""
    return abs(depth_a - depth_b) - max(absolute, relative * max(depth_a, depth_b))


def object_gap_in_point_order(point_depths, object_depths) -> float:
    """How far (m) the objects' depths are apart in the order their marked points give; <= 0 means the objects'
    order disagrees with (or cannot confirm) the points' order, so a question about the objects would be wrong."""
    near, far = (0, 1) if point_depths[0] < point_depths[1] else (1, 0)
    return float(object_depths[far] - object_depths[near])


def _name(obj) -> str:
    return obj.category.replace("_", " ")


def _marked_points(ctx: SceneContext, frame: Frame, objects, rng) -> list[tuple[int, int]] | None:
    ids = ctx.instance_ids(frame)
    points: list[tuple[int, int]] = []
    for obj in objects:
        point = pick_marker_point(ids == obj.instance_id, rng, avoid=points)
        if point is None:
            return None
        points.append(point)
    return points


def _pair_sample(ctx: SceneContext, frame: Frame, rng, balancer: LetterBalancer) -> Sample | None:
    candidates = ctx.referable(frame)
    names = {}
    for obj in candidates:
        names.setdefault(_name(obj), []).append(obj)
    unique = [objs[0] for objs in names.values() if len(objs) == 1]  # the answer is a name, so names must be unique in view
    if len(unique) < 2:
        return None
    a, b = (unique[i] for i in rng.choice(len(unique), size=2, replace=False))
    points = _marked_points(ctx, frame, [a, b], rng)
    if points is None:
        return None
    depth = ctx.depth(frame)
    depths = [float(depth[y, x]) for x, y in points]
    object_depths = [float(frame.visibility[o.instance_id].depth_median) for o in (a, b)]
    object_gap = object_gap_in_point_order(depths, object_depths)
    margin = min(gap_margin(*depths, POINT_GAP_M, POINT_GAP_REL), object_gap)
    if margin < 0 or object_gap <= 0:
        return None
    colors = [str(c) for c in rng.choice(list(MARKER_COLORS), size=2, replace=False)]
    relation = str(rng.choice(list(RELATIONS)))
    winner = (a, b)[int(np.argmin(depths) if relation == "closer" else np.argmax(depths))]
    question = str(rng.choice(PAIR_TEMPLATES)).format(relation=RELATIONS[relation], a=_name(a), b=_name(b), ca=colors[0], cb=colors[1])
    markers = [Marker("point", c, p) for c, p in zip(colors, points)]
    if rng.random() < 0.5:
        choice = multiple_choice(_name(winner), [_name(b if winner is a else a)], balancer, rng)
        question, answer_text, answer, reward = choice.prompt(question), choice.letter, choice.answer, {"fn": "multiple_choice"}
    else:
        answer_text = _name(winner)
        answer = {"type": "text", "value": answer_text, "options": [_name(a), _name(b)]}
        reward = {"fn": "option_text"}
    meta = {"form": "points", "frame_ids": [frame.frame_id], "instance_ids": [a.instance_id, b.instance_id], "relation": relation,
            "markers": [m.to_meta() for m in markers], "depths_m": [round(d, 4) for d in depths],
            "object_depths_m": [round(d, 4) for d in object_depths], "margin_m": round(margin, 4)}
    return ctx.sample(SKILL, question, answer_text, answer, reward, [ctx.image_media(frame, markers)], meta, "single", SKILL)


def _order_sample(ctx: SceneContext, frame: Frame, rng) -> Sample | None:
    candidates = ctx.referable(frame)
    count = int(rng.integers(3, 6))
    if len(candidates) < count:
        return None
    chosen = [candidates[i] for i in rng.choice(len(candidates), size=count, replace=False)]
    points = _marked_points(ctx, frame, chosen, rng)
    if points is None:
        return None
    depth = ctx.depth(frame)
    depths = np.array([float(depth[y, x]) for x, y in points])
    ascending = np.argsort(depths)
    margin = min(gap_margin(depths[i], depths[j], POINT_GAP_M, POINT_GAP_REL) for i, j in zip(ascending[:-1], ascending[1:]))
    if margin < 0:
        return None
    labels = "ABCDE"[:count]
    near_first = bool(rng.random() < 0.5)
    order = ascending if near_first else ascending[::-1]
    first, last = ("closest", "farthest") if near_first else ("farthest", "closest")
    color = str(rng.choice(list(MARKER_COLORS)))
    markers = [Marker("point", color, p, label) for p, label in zip(points, labels)]
    question = str(rng.choice(ORDER_TEMPLATES)).format(labels=", ".join(labels), first=first, last=last) + " Answer with the letters separated by commas."
    sequence = [labels[i] for i in order]
    meta = {"form": "order", "frame_ids": [frame.frame_id], "instance_ids": [o.instance_id for o in chosen], "near_first": near_first,
            "markers": [m.to_meta() for m in markers], "depths_m": [round(float(d), 4) for d in depths], "margin_m": round(float(margin), 4)}
    answer = {"type": "order", "value": sequence}
    return ctx.sample(SKILL, question, ", ".join(sequence), answer, {"fn": "order"}, [ctx.image_media(frame, markers)], meta, "single", SKILL)


def _box_sample(ctx: SceneContext, frame: Frame, rng, balancer: LetterBalancer) -> Sample | None:
    candidates = [o for o in ctx.referable(frame)]
    if len(candidates) < 2:
        return None
    a, b = (candidates[i] for i in rng.choice(len(candidates), size=2, replace=False))
    medians = [frame.visibility[o.instance_id].depth_median for o in (a, b)]
    margin = gap_margin(*medians, OBJECT_GAP_M, OBJECT_GAP_REL)
    if margin < 0:
        return None
    name_a, name_b = _name(a), _name(b)
    if name_a == name_b:  # same category: tell them apart by a suffix, as VST's "boat-A" / "boat-B"
        name_a, name_b = f"{name_a}-A", f"{name_b}-B"
    relation = str(rng.choice(list(RELATIONS)))
    boxes = [list(frame.visibility[o.instance_id].bbox_2d) for o in (a, b)]
    winner_index = int(np.argmin(medians) if relation == "closer" else np.argmax(medians))
    winner, loser = ((name_a, name_b) if winner_index == 0 else (name_b, name_a))
    question = str(rng.choice(BOX_TEMPLATES)).format(relation=RELATIONS[relation], a=name_a, b=name_b, box_a=boxes[0], box_b=boxes[1])
    choice = multiple_choice(winner, [loser], balancer, rng)
    meta = {"form": "boxes", "frame_ids": [frame.frame_id], "instance_ids": [a.instance_id, b.instance_id], "relation": relation,
            "bbox_2d": boxes, "depths_m": [round(m, 4) for m in medians], "margin_m": round(margin, 4)}
    return ctx.sample(SKILL, choice.prompt(question), choice.letter, choice.answer, {"fn": "multiple_choice"}, [ctx.image_media(frame)], meta, "single", SKILL)


@register_skill(SKILL, "Depth Comparison", "single")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    balancer = LetterBalancer()
    frames = ctx.frames("still") + ctx.frames("pair")
    for index in rng.permutation(len(frames)):
        frame = frames[index]
        for _ in range(ATTEMPTS_PER_FRAME):
            form = rng.choice(["pair", "order", "boxes"], p=[0.5, 0.25, 0.25])
            if form == "pair":
                sample = _pair_sample(ctx, frame, rng, balancer)
            elif form == "order":
                sample = _order_sample(ctx, frame, rng)
            else:
                sample = _box_sample(ctx, frame, rng, balancer)
            if sample is not None:
                yield sample
