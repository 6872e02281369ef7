"""Video spatiotemporal questions (VST skill "Spatiotemporal", modality video; spec data.md §1.6, §4.3 row 18).

Emits `video_spatiotemporal` (VST type `video`) in three forms, VSI-Bench prompt style (benchmarks.md §2.2):
- appearance order: the first-time appearance order of 3-4 objects, multiple choice over permutations (VSI
  `obj_appearance_order`). First appearance = first video frame where the object has >= `ctx.min_pixels` pixels;
  consecutive first appearances must be >= `MIN_GAP_S` (1 s, VSI's SAVE_MARGIN) apart.
- camera displacement (VLM-3R VSTI): straight-line distance in metres between the camera centres at two times,
  >= `MIN_DISPLACEMENT_M`; reward "mra".
- camera-object distance (VLM-3R VSTI): closest-point distance in metres from the camera centre to an object's box
  at a given time, the object referable in that frame, >= `MIN_CAMERA_DISTANCE_M`; reward "mra".
Times are stated in seconds from the first frame, restricted to multiples of `TIME_STEP_S` (the frame nearest each
multiple, within half a frame, stands for it), so a model that samples the video at 2 fps (VST's SFT setting,
paper.md §2.5) has the frame. Referents are unique in the
scene and seen in the video. `first_appearances` and `seen_unique_objects` are shared
with the route and others modules; prompts and frames come from `vst.data.video`.
"""

from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

from vst.data.choices import LetterBalancer, multiple_choice
from vst.data.context import SceneContext
from vst.data.sample import Sample
from vst.data.skills.registry import register_skill
from vst.scene.geometry import point_box_distance
from vst.data.video import choice_prompt, numeric_prompt, object_name, video_fps, video_frames
from vst.scene.types import Frame, ObjectInstance

SKILL = "video_spatiotemporal"
MIN_GAP_S = 1.0
MIN_DISPLACEMENT_M = 0.3
MIN_CAMERA_DISTANCE_M = 0.3
TIME_STEP_S = 0.5
ORDER_SIZES = (3, 4)
ORDER_ATTEMPTS = 200
ORDER_DISTRACTORS = 3
MAX_PER_FORM = 6

ORDER_TEMPLATES = [
    "What will be the first-time appearance order of the following categories in the video: {names}?",
    "In what order do these objects first show up in the video: {names}?",
    "Sort the following objects by the moment they first appear in the video: {names}.",
    "Which sequence gives the order in which {names} are first seen in the video?",
    "Watching the video from the start, in which order do you first see {names}?",
]
DISPLACEMENT_TEMPLATES = [
    "How far, in meters, did the camera move between {t0} seconds and {t1} seconds of the video?",
    "What is the straight-line distance (in meters) between the camera position at {t0} s and at {t1} s?",
    "Between second {t0} and second {t1}, how many meters is the camera displaced?",
    "Measure the distance in meters from where the camera is at {t0} s to where it is at {t1} s.",
    "By how many meters does the camera position at {t1} seconds differ from its position at {t0} seconds?",
]
CAMERA_DISTANCE_TEMPLATES = [
    "At {t} seconds into the video, how far is the camera from the {name} (closest point, in meters)?",
    "Measuring to the closest point of the {name}, what is its distance from the camera at {t} s, in meters?",
    "What is the distance in meters between the camera and the nearest point of the {name} at second {t}?",
    "At the {t}-second mark, how many meters separate the camera from the {name} (to its closest point)?",
    "How close is the camera to the {name} at {t} seconds? Give the closest-point distance in meters.",
]


# -- helpers shared by the video skill modules ----------------------------------------------------------------
def first_appearances(ctx: SceneContext, frames: list[Frame]) -> dict[int, int]:
    """instance_id -> index into `frames` of the first frame where the object has >= ctx.min_pixels pixels."""
    first: dict[int, int] = {}
    for index, frame in enumerate(frames):
        threshold = ctx.min_pixels(frame)
        for instance_id, seen in frame.visibility.items():
            if seen.pixels >= threshold and instance_id not in first:
                first[instance_id] = index
    return first


def seen_unique_objects(ctx: SceneContext, first: dict[int, int]) -> list[ObjectInstance]:
    """Objects unique in the scene (category count 1) and seen in the video."""
    return [o for o in ctx.objects if ctx.unique_in_scene(o) and o.instance_id in first]


def format_seconds(seconds: float) -> str:
    return f"{round(seconds, 2):g}"


# -- filters ----------------------------------------------------------------------------------------------------
def order_margin_s(times: list[float], min_gap: float = MIN_GAP_S) -> float:
    """Smallest gap between consecutive sorted first-appearance times minus `min_gap` (s); negative = rejected."""
    ordered = np.sort(np.asarray(times, dtype=float))
    return float(np.min(np.diff(ordered)) - min_gap)


def camera_object_distance(frame: Frame, obj: ObjectInstance) -> float:
    """Metres from the camera centre to the closest point of the object's box (0 inside)."""
    box = (obj.box.center, obj.box.size, obj.box.rotation)
    return float(point_box_distance(frame.pose[None, :3, 3], box)[0])


def anchor_times(frames: list[Frame], fps: float) -> dict[int, float]:
    """Frame index -> stated time (s): for each multiple of TIME_STEP_S, the frame nearest to it within half a frame."""
    seconds = np.array([f.timestamp - frames[0].timestamp for f in frames])
    multiples = np.round(seconds / TIME_STEP_S)
    error = np.abs(seconds - multiples * TIME_STEP_S)
    anchors: dict[float, int] = {}
    for index in np.flatnonzero(error <= 0.5 / fps + 1e-9):
        stated = float(multiples[index] * TIME_STEP_S)
        if stated not in anchors or error[index] < error[anchors[stated]]:
            anchors[stated] = int(index)
    return {index: stated for stated, index in anchors.items()}


# -- question forms ---------------------------------------------------------------------------------------------
def _order_candidates(objects: list[ObjectInstance], times: dict[int, float], rng) -> list[tuple[ObjectInstance, ...]]:
    chosen: dict[frozenset, tuple[ObjectInstance, ...]] = {}
    sizes = [size for size in ORDER_SIZES if size <= len(objects)]
    for _ in range(ORDER_ATTEMPTS):
        if not sizes or len(chosen) >= MAX_PER_FORM:
            break
        size = int(rng.choice(sizes))
        group = tuple(objects[i] for i in rng.choice(len(objects), size=size, replace=False))
        key = frozenset(o.instance_id for o in group)
        if key not in chosen and order_margin_s([times[o.instance_id] for o in group]) >= 0:
            chosen[key] = group
    return list(chosen.values())


def _order_sample(ctx, frames, first, group, rng, balancer) -> Sample:
    start = frames[0].timestamp
    times = [frames[first[o.instance_id]].timestamp - start for o in group]
    correct = [object_name(group[i]) for i in np.argsort(times, kind="stable")]
    permutations = [list(p) for p in itertools.permutations(correct) if list(p) != correct]
    picks = rng.choice(len(permutations), size=min(ORDER_DISTRACTORS, len(permutations)), replace=False)
    choice = multiple_choice(", ".join(correct), [", ".join(permutations[i]) for i in picks], balancer, rng)
    question = str(rng.choice(ORDER_TEMPLATES)).format(names=", ".join(object_name(o) for o in group))
    meta = {"form": "appearance_order", "frame_ids": [frames[first[o.instance_id]].frame_id for o in group],
            "instance_ids": [o.instance_id for o in group], "first_appearance_s": [round(t, 3) for t in times],
            "order": correct, "margin_s": round(order_margin_s(times), 3)}
    return ctx.sample(SKILL, choice_prompt(question, choice), choice.letter, choice.answer, {"fn": "multiple_choice"},
                      [ctx.video_media(frames, video_fps(ctx, frames))], meta, "video", "video")


def _displacement_sample(ctx, frames, pair, anchors, rng) -> Sample:
    a, b = (frames[i] for i in pair)
    distance = float(np.linalg.norm(b.pose[:3, 3] - a.pose[:3, 3]))
    t0, t1 = (format_seconds(anchors[i]) for i in pair)
    question = str(rng.choice(DISPLACEMENT_TEMPLATES)).format(t0=t0, t1=t1)
    value = round(distance, 2)
    meta = {"form": "camera_displacement", "frame_ids": [a.frame_id, b.frame_id], "instance_ids": [],
            "times_s": [float(t0), float(t1)], "frame_times_s": [_seconds(frames, i) for i in pair],
            "displacement_m": round(distance, 4), "margin_m": round(distance - MIN_DISPLACEMENT_M, 4)}
    answer = {"type": "number", "value": value, "unit": "m"}
    return ctx.sample(SKILL, numeric_prompt(question), f"{value:g}", answer, {"fn": "mra"},
                      [ctx.video_media(frames, video_fps(ctx, frames))], meta, "video", "video")


def _camera_distance_sample(ctx, frames, index, obj, anchors, rng) -> Sample:
    frame = frames[index]
    distance = camera_object_distance(frame, obj)
    t = format_seconds(anchors[index])
    question = str(rng.choice(CAMERA_DISTANCE_TEMPLATES)).format(t=t, name=object_name(obj))
    value = round(distance, 2)
    meta = {"form": "camera_object_distance", "frame_ids": [frame.frame_id], "instance_ids": [obj.instance_id],
            "time_s": float(t), "frame_time_s": _seconds(frames, index), "distance_m": round(distance, 4),
            "margin_m": round(distance - MIN_CAMERA_DISTANCE_M, 4)}
    answer = {"type": "number", "value": value, "unit": "m"}
    return ctx.sample(SKILL, numeric_prompt(question), f"{value:g}", answer, {"fn": "mra"},
                      [ctx.video_media(frames, video_fps(ctx, frames))], meta, "video", "video")


def _seconds(frames: list[Frame], index: int) -> float:
    return round(frames[index].timestamp - frames[0].timestamp, 4)


def _first_items(items: list, rng) -> list:
    return [items[i] for i in rng.permutation(len(items))[:MAX_PER_FORM]]


@register_skill(SKILL, "Spatiotemporal", "video")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = video_frames(ctx)
    if len(frames) < 2:
        return
    balancer = LetterBalancer()
    first = first_appearances(ctx, frames)
    unique = seen_unique_objects(ctx, first)
    times = {o.instance_id: frames[first[o.instance_id]].timestamp for o in unique}
    anchors = anchor_times(frames, video_fps(ctx, frames))
    pairs = [(i, j) for i, j in itertools.combinations(sorted(anchors), 2)
             if frames[j].timestamp - frames[i].timestamp >= MIN_GAP_S
             and np.linalg.norm(frames[j].pose[:3, 3] - frames[i].pose[:3, 3]) >= MIN_DISPLACEMENT_M]
    unique_ids = {o.instance_id for o in unique}
    sightings = [(i, o) for i in sorted(anchors) for o in ctx.referable(frames[i])
                 if o.instance_id in unique_ids and camera_object_distance(frames[i], o) >= MIN_CAMERA_DISTANCE_M]
    jobs = [("order", group) for group in _order_candidates(unique, times, rng)]
    jobs += [("displacement", pair) for pair in _first_items(pairs, rng)]
    jobs += [("distance", sighting) for sighting in _first_items(sightings, rng)]
    for index in rng.permutation(len(jobs)):
        form, item = jobs[index]
        if form == "order":
            yield _order_sample(ctx, frames, first, item, rng, balancer)
        elif form == "displacement":
            yield _displacement_sample(ctx, frames, item, anchors, rng)
        else:
            yield _camera_distance_sample(ctx, frames, *item, anchors, rng)
