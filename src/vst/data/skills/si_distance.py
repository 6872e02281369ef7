"""Single-image metric distances (VST skill "Distance Prediction", modality single; spec paper.md §2.3, data.md §4.3 #4).

Emits `si_distance` (VST type `si_distance`) on every still and every view-pair frame, in three forms:
- "pair": metric distance between two objects A and B, either closest-point (`geometry.box_distance`) or
  centre-to-centre; the question says which. Answer in metres, 1 decimal; reward "mra".
- "camera": distance from the camera to an object, closest point of its box or its centre; metres, "mra".
- "nearer": which of B / C is nearer to (or farther from) A, closest-point distances; multiple choice or the name.
Filters (spec data.md §1.9): objects referable (ctx.referable); every closest-point distance involved
>= `MIN_DISTANCE_M` (0.2 m: touching objects are skipped); comparison gap >= max(0.15 m, 10 %); each object unique
among the visible objects of its category or marked by a coloured point that the question names.
`meta_info` keeps the distances, the margin (m) to the nearest filter boundary, markers and instance ids.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vst.data.choices import LetterBalancer, multiple_choice
from vst.data.context import SceneContext
from vst.data.sample import Sample
from vst.data.scene_graph import Referent, box_of, refer
from vst.data.skills.registry import register_skill
from vst.data.skills.si_depth import gap_margin
from vst.scene.geometry import box_distance, point_box_distance
from vst.scene.types import Frame

SKILL = "si_distance"
MIN_DISTANCE_M = 0.2
GAP_M, GAP_REL = 0.15, 0.10
ATTEMPTS_PER_FRAME = 8
FORMS, FORM_WEIGHTS = ("pair", "camera", "nearer"), (0.45, 0.2, 0.35)

MEASURES = {
    "closest": ("measuring from the closest points of the two objects", "from the closest point of the object"),
    "center": ("measuring between the centers of the two objects", "to the center of the object"),
}
PAIR_TEMPLATES = [
    "What is the distance between {a} and {b}, {how}? Answer in meters.",
    "How far apart are {a} and {b} in the real world, {how}? Give the answer in meters.",
    "Estimate the direct distance from {a} to {b}, {how}, in meters.",
    "{How_capital}, how many meters separate {a} and {b}?",
    "Tell me the real-world distance in meters between {a} and {b}, {how}.",
]
CAMERA_TEMPLATES = [
    "How far is {a} from the camera, measured {how}? Answer in meters.",
    "What is the distance between the camera and {a}, measured {how}? Give the answer in meters.",
    "Estimate, in meters, how far the camera is from {a}, measured {how}.",
    "Measured {how}, how many meters lie between the camera and {a}?",
    "Give the real-world distance from the camera to {a} in meters, measured {how}.",
]
NEARER_TEMPLATES = [
    "By estimating the real-world distances, identify which of {b} or {c} is {relation} {a}.",
    "Which object is {relation} {a}: {b} or {c}? Measure from the closest points of the objects.",
    "Measuring from closest points, is {b} or {c} {relation} {a}?",
    "Between {b} and {c}, which one lies {relation} {a} in the room?",
    "Considering real distances between object surfaces, which of {b} and {c} is {relation} {a}?",
]
RELATIONS = {"nearer": "nearer to", "farther": "farther from"}


def distance_margin(distance_m: float) -> float:
    """How far a closest-point distance clears the touching threshold MIN_DISTANCE_M; negative = skip."""
    return distance_m - MIN_DISTANCE_M


def object_distance(box_a, box_b, measure: str) -> float:
    """Distance (m) between two world boxes: closest points ("closest") or centres ("center")."""
    if measure == "closest":
        return box_distance(box_a, box_b)
    return float(np.linalg.norm(np.asarray(box_a.center) - np.asarray(box_b.center)))


def camera_distance(box, cam_to_world, measure: str) -> float:
    """Distance (m) from the camera centre to a world box: its closest point ("closest") or its centre ("center")."""
    eye = np.asarray(cam_to_world, dtype=np.float64)[:3, 3]
    if measure == "closest":
        return float(point_box_distance(eye[None], box)[0])
    return float(np.linalg.norm(np.asarray(box.center) - eye))


def _meta(frame: Frame, form: str, referents: list[Referent], **values) -> dict:
    return {"form": form, "frame_ids": [frame.frame_id], "instance_ids": [r.obj.instance_id for r in referents],
            "markers": [r.marker.to_meta() for r in referents if r.marker], **values}


def _media(ctx: SceneContext, frame: Frame, referents: list[Referent]):
    return [ctx.image_media(frame, [r.marker for r in referents if r.marker])]


def _number_sample(ctx, frame, referents, question, value: float, meta: dict) -> Sample:
    answer = {"type": "number", "value": round(value, 1), "unit": "m"}
    media = _media(ctx, frame, referents)
    return ctx.sample(SKILL, question, f"{value:.1f}", answer, {"fn": "mra"}, media, meta, "single", SKILL)


def _fresh(asked: set, key: tuple) -> bool:
    """True the first time a question key is seen (so a scene never repeats a question)."""
    if key in asked:
        return False
    asked.add(key)
    return True


def _pair_sample(ctx, frame, objects, rng, asked: set) -> Sample | None:
    a, b = (objects[i] for i in rng.choice(len(objects), size=2, replace=False))
    closest = box_distance(box_of(a), box_of(b))
    measure = str(rng.choice(list(MEASURES)))
    key = (frame.frame_id, "pair", measure, frozenset((a.instance_id, b.instance_id)))
    if distance_margin(closest) < 0 or not _fresh(asked, key):
        return None
    referents = refer(ctx, frame, [a, b], rng)
    if referents is None:
        return None
    value = object_distance(box_of(a), box_of(b), measure)
    how = MEASURES[measure][0]
    question = str(rng.choice(PAIR_TEMPLATES)).format(a=referents[0].phrase, b=referents[1].phrase, how=how,
                                                       How_capital=how.capitalize())
    meta = _meta(frame, "pair", referents, measure=measure, distance_m=round(value, 4), closest_distance_m=round(closest, 4),
                 margin_m=round(distance_margin(closest), 4))
    return _number_sample(ctx, frame, referents, question, value, meta)


def _camera_sample(ctx, frame, objects, rng, asked: set) -> Sample | None:
    obj = objects[int(rng.integers(len(objects)))]
    measure = str(rng.choice(list(MEASURES)))
    value = camera_distance(box_of(obj), frame.pose, measure)
    closest = camera_distance(box_of(obj), frame.pose, "closest")
    if distance_margin(closest) < 0 or not _fresh(asked, (frame.frame_id, "camera", measure, obj.instance_id)):
        return None
    referents = refer(ctx, frame, [obj], rng)
    if referents is None:
        return None
    question = str(rng.choice(CAMERA_TEMPLATES)).format(a=referents[0].phrase, how=MEASURES[measure][1])
    meta = _meta(frame, "camera", referents, measure=measure, distance_m=round(value, 4),
                 closest_distance_m=round(closest, 4), margin_m=round(distance_margin(closest), 4))
    return _number_sample(ctx, frame, referents, question, value, meta)


def _nearer_sample(ctx, frame, objects, rng, balancer: LetterBalancer, asked: set) -> Sample | None:
    if len(objects) < 3:
        return None
    a, b, c = (objects[i] for i in rng.choice(len(objects), size=3, replace=False))
    distances = [box_distance(box_of(a), box_of(other)) for other in (b, c)]
    margin = min(gap_margin(*distances, GAP_M, GAP_REL), *(distance_margin(d) for d in distances))
    if margin < 0 or not _fresh(asked, (frame.frame_id, "nearer", a.instance_id, frozenset((b.instance_id, c.instance_id)))):
        return None
    referents = refer(ctx, frame, [a, b, c], rng)
    if referents is None or referents[1].label == referents[2].label:
        return None
    relation = str(rng.choice(list(RELATIONS)))
    winner = int(np.argmin(distances) if relation == "nearer" else np.argmax(distances))
    right, wrong = referents[1 + winner].label, referents[2 - winner].label
    question = str(rng.choice(NEARER_TEMPLATES)).format(a=referents[0].phrase, b=referents[1].phrase, c=referents[2].phrase,
                                                         relation=RELATIONS[relation])
    if rng.random() < 0.5:
        choice = multiple_choice(right, [wrong], balancer, rng)
        question, answer_text, answer, reward = choice.prompt(question), choice.letter, choice.answer, {"fn": "multiple_choice"}
    else:
        answer_text, reward = right, {"fn": "option_text"}
        answer = {"type": "text", "value": right, "options": [referents[1].label, referents[2].label]}
    meta = _meta(frame, "nearer", referents, relation=relation, distances_m=[round(d, 4) for d in distances],
                 margin_m=round(margin, 4))
    return ctx.sample(SKILL, question, answer_text, answer, reward, _media(ctx, frame, referents), meta, "single", SKILL)


@register_skill(SKILL, "Distance Prediction", "single")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    balancer = LetterBalancer()
    frames = ctx.frames("still") + ctx.frames("pair")
    asked: set[tuple] = set()
    for index in rng.permutation(len(frames)):
        frame = frames[index]
        objects = ctx.referable(frame)
        if len(objects) < 2:
            continue
        for _ in range(ATTEMPTS_PER_FRAME):
            form = str(rng.choice(FORMS, p=FORM_WEIGHTS))
            if form == "pair":
                sample = _pair_sample(ctx, frame, objects, rng, asked)
            elif form == "camera":
                sample = _camera_sample(ctx, frame, objects, rng, asked)
            else:
                sample = _nearer_sample(ctx, frame, objects, rng, balancer, asked)
            if sample is not None:
                yield sample
