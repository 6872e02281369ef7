"""Single-image 3D object detection and 3D grounding (VST skills "3D Object Detection" and "3D Grounding").

Emits, modality single, VST `type` "bbox_3d" (spec paper.md §2.3-2.4, data.md §4.3 rows 1-2):
- `si_3d_detection`: VST's camera prompt + "Detect the 3D bounding boxes of {categories}" (1-3 categories); the answer
  lists every instance of the asked categories in the camera frame;
- `si_3d_grounding`: the same prompt + "Give the 3D bounding box of {object}", the object unique among the visible
  objects (named by description or category) or marked by a point when its category repeats in view.
Answer: VST's ```json fence around `[{"bbox_3d": [x, y, z, sx, sy, sz, pitch, yaw, roll], "label": ...}, ...]`, metres
and angles in degrees / 180 (`geometry.box_to_vst9`), rounded to 2 decimals. With `ctx.options["fov_unify"]` (default
on) the image is rescaled to VST's virtual camera (`vst.data.fov`) and the prompt states the rescaled size; camera-frame
boxes do not change with the rescale.
Filter: an instance counts when visible_frac >= 0.3, pixels >= `ctx.min_pixels(frame)` and its centre lies > 0.1 m in
front of the camera. A category with an instance that is visible but fails the filter is never asked (its ground
truth would be ambiguous). Meta keeps the unrounded boxes, both intrinsics and the margins above the filter.
"""

from __future__ import annotations

import json
from typing import Iterator, Sequence

import numpy as np

from vst.data.context import SceneContext
from vst.data.fov import camera_prompt, resize_image, unify_intrinsics
from vst.data.markers import MARKER_COLORS, Marker, draw_markers, pick_marker_point
from vst.data.sample import Media, Sample
from vst.data.skills.registry import register_skill
from vst.scene.capture import encode_jpeg
from vst.scene.geometry import box_in_camera, box_to_vst9
from vst.scene.types import Frame, Intrinsics, ObjectInstance

DETECTION_SKILL, GROUNDING_SKILL = "si_3d_detection", "si_3d_grounding"
SAMPLE_TYPE = "bbox_3d"  # VST's `type` for 3D boxes; its FoV conversion keys on it
MIN_VISIBLE_FRAC = 0.3
MIN_DEPTH_M = 0.1  # box centre in front of the camera by more than this
MAX_CATEGORIES = 3
ATTEMPTS_PER_FRAME = 4
VIDEO_FRAME_STRIDE = 6  # every 6th video frame (1.5 s at 4 fps) also serves as a single image
DECIMALS = 2

DETECTION_TEMPLATES = [
    "Detect the 3D bounding boxes of {categories}",  # VST's own wording
    "Find every {categories} in the image and output their 3D bounding boxes",
    "Output the 3D bounding boxes of all {categories} visible in the image",
    "Locate each instance of {categories} in 3D and give the bounding boxes",
    "Estimate the 3D bounding boxes of the {categories} in this image",
]
GROUNDING_TEMPLATES = [
    "Give the 3D bounding box of {referent}",
    "Output the 3D bounding box of {referent}",
    "Locate {referent} in 3D and give its bounding box",
    "Where is {referent}? Answer with its 3D bounding box",
    "Estimate the 3D bounding box of {referent} in the camera coordinate system",
]


# -- filters (pure) --------------------------------------------------------------------------------------------
def is_detectable(visible_frac: float, pixels: int, depth_m: float, min_pixels: int) -> bool:
    """Whether an instance seen with this visibility and camera-frame centre depth (metres) is ground truth."""
    return visible_frac >= MIN_VISIBLE_FRAC and pixels >= min_pixels and depth_m > MIN_DEPTH_M


def camera_box(obj: ObjectInstance, frame: Frame):
    """The object's box in the OpenCV camera frame of `frame` (geometry.Box)."""
    return box_in_camera((obj.box.center, obj.box.size, obj.box.rotation), frame.pose)


def scene_camera_box(ctx: SceneContext, obj: ObjectInstance, frame: Frame):
    """`camera_box`, computed once per (frame, object) of the scene: the filters and the answers share it."""
    return ctx.memo(("camera_box", frame.frame_id, obj.instance_id), lambda: camera_box(obj, frame))


def passes(ctx: SceneContext, frame: Frame, obj: ObjectInstance) -> bool:
    seen = frame.visibility.get(obj.instance_id)
    if seen is None:
        return False
    return is_detectable(seen.visible_frac, seen.pixels, float(scene_camera_box(ctx, obj, frame).center[2]), ctx.min_pixels(frame))


def is_visible(frame: Frame, obj: ObjectInstance) -> bool:
    seen = frame.visibility.get(obj.instance_id)
    return seen is not None and seen.pixels > 0


def label(obj: ObjectInstance) -> str:
    return obj.category.replace("_", " ")


def detectable_categories(ctx: SceneContext, frames: Sequence[Frame]) -> dict[str, list[ObjectInstance]]:
    """Label -> instances passing the filter in at least one of `frames`.

    A label is left out when one of its instances is visible in some frame but passes in none of them.
    """
    detected: dict[str, list[ObjectInstance]] = {}
    ambiguous: set[str] = set()
    for obj in ctx.objects:
        seen_in = [frame for frame in frames if is_visible(frame, obj)]
        if not seen_in:
            continue
        if any(passes(ctx, frame, obj) for frame in seen_in):
            detected.setdefault(label(obj), []).append(obj)
        else:
            ambiguous.add(label(obj))
    return {name: objs for name, objs in detected.items() if name not in ambiguous}


def filter_margins(ctx: SceneContext, frames: Sequence[Frame], objects: Sequence[ObjectInstance]) -> dict:
    """Smallest margin above each filter threshold over `objects`, each taken in its best frame among `frames`."""
    fractions, pixels, depths = [], [], []
    for obj in objects:
        good = [frame for frame in frames if passes(ctx, frame, obj)]
        fractions.append(max(frame.visibility[obj.instance_id].visible_frac for frame in good) - MIN_VISIBLE_FRAC)
        pixels.append(max(frame.visibility[obj.instance_id].pixels - ctx.min_pixels(frame) for frame in good))
        depths.append(max(float(scene_camera_box(ctx, obj, frame).center[2]) for frame in good) - MIN_DEPTH_M)
    return {"margin_visible_frac": round(min(fractions), 4), "margin_pixels": int(min(pixels)),
            "margin_depth_m": round(min(depths), 4)}


# -- answers and media -----------------------------------------------------------------------------------------
def rounded(values) -> list[float]:
    """Values rounded to VST's 2 decimals (adding 0.0 turns -0.0 into 0.0 so the text never reads "-0.0")."""
    return [round(float(v), DECIMALS) + 0.0 for v in values]


def encode_boxes(entries: list[dict]) -> str:
    """VST's answer text: a ```json fence around a list with one tab-indented JSON object per line."""
    body = ",\n".join(f"\t{json.dumps(entry)}" for entry in entries)
    return f"```json\n[\n{body}\n]\n```"


def box_entries(ctx: SceneContext, objects: Sequence[ObjectInstance], reference: Frame) -> tuple[list[dict], list[list[float]]]:
    """(answer entries with rounded boxes, unrounded VST boxes), both in the camera frame of `reference`; each box is
    converted once per scene and frame."""
    raw = [ctx.memo(("vst9", reference.frame_id, obj.instance_id),
                    lambda obj=obj: box_to_vst9(scene_camera_box(ctx, obj, reference))) for obj in objects]
    entries = [{"bbox_3d": rounded(values), "label": label(obj)} for obj, values in zip(objects, raw)]
    return entries, [[float(v) for v in values] for values in raw]


def scale_marker(marker: Marker, original: Intrinsics, shown: Intrinsics) -> Marker:
    """The marker moved to the pixels of the image rescaled from `original` to `shown` size (centres at integers)."""
    scale = np.array([shown.width / original.width, shown.height / original.height])
    xy = (np.asarray(marker.xy, dtype=float).reshape(-1, 2) + 0.5) * scale - 0.5
    return Marker(marker.kind, marker.color, tuple(round(float(v), 1) for v in xy.ravel()), marker.label)


def detection_media(ctx: SceneContext, frame: Frame, markers: Sequence[Marker] = (),
                    unify: bool = True) -> tuple[Media, Intrinsics, list[Marker]]:
    """(JPEG of the frame as the model sees it, its intrinsics, the markers in its pixels).

    With `unify` the whole image is rescaled (bicubic) to VST's virtual camera before the markers are drawn, so
    markers keep their size and sharpness.
    """
    if not unify:
        return ctx.image_media(frame, list(markers)), frame.intrinsics, list(markers)
    shown = unify_intrinsics(frame.intrinsics)
    moved = [scale_marker(m, frame.intrinsics, shown) for m in markers]
    resized = ctx.memo(("unified", frame.frame_id), lambda: resize_image(ctx.image(frame), shown.width, shown.height))
    if moved:
        data = encode_jpeg(np.asarray(draw_markers(resized, moved)))
    else:  # several questions per frame share one encoded image
        data = ctx.memo(("unified-jpeg", frame.frame_id), lambda: encode_jpeg(np.asarray(resized)))
    return Media(data, f"{ctx.scene.scene_id}/{frame.image_path}"), shown, moved


def boxes_sample(ctx: SceneContext, skill: str, frames: Sequence[Frame], objects: Sequence[ObjectInstance], question: str,
                 modality: str, meta: dict, markers: Sequence[Marker] = ()) -> Sample:
    """A 3D-box sample: boxes of `objects` in the camera frame of `frames[0]`, whose camera the prompt describes."""
    unify = bool(ctx.options.get("fov_unify", True))
    shown = [detection_media(ctx, frame, markers if index == 0 else (), unify) for index, frame in enumerate(frames)]
    reference = frames[0]
    entries, raw = box_entries(ctx, objects, reference)
    prompt = camera_prompt(reference.intrinsics, shown[0][1], question)
    meta = {
        **meta,
        "frame_ids": [frame.frame_id for frame in frames],
        "instance_ids": [obj.instance_id for obj in objects],
        "boxes_3d": raw,
        "fov_unified": unify,
        "intrinsics_original": [frame.intrinsics.model_dump() for frame in frames],
        "intrinsics_shown": [intrinsics.model_dump() for _, intrinsics, _ in shown],
        "markers": [m.to_meta() for m in shown[0][2]],
        **filter_margins(ctx, frames, objects),
    }
    answer = {"type": "boxes3d", "value": entries}
    media = [m for m, _, _ in shown]
    return ctx.sample(skill, prompt, encode_boxes(entries), answer, {"fn": "boxes3d"}, media, meta, modality, SAMPLE_TYPE)


def category_phrase(names: Sequence[str]) -> str:
    """Labels joined as a phrase: chair / chair and table / chair, table and lamp."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def ordered(ctx: SceneContext, objects: Sequence[ObjectInstance], names: Sequence[str], reference: Frame) -> list[ObjectInstance]:
    """Objects grouped by asked label, nearest first within a label."""
    rank = {name: index for index, name in enumerate(names)}
    return sorted(objects, key=lambda obj: (rank[label(obj)], float(scene_camera_box(ctx, obj, reference).center[2]), obj.instance_id))


# -- generators ------------------------------------------------------------------------------------------------
def pick_categories(names: list[str], rng: np.random.Generator, first: str | None = None) -> list[str]:
    """1-3 distinct labels drawn from `names`, starting with `first` when given."""
    lead = [first] if first is not None else []
    pool = [name for name in names if name != first]
    count = int(rng.integers(0 if lead else 1, min(MAX_CATEGORIES - len(lead), len(pool)) + 1))
    return lead + [pool[i] for i in rng.choice(len(pool), size=count, replace=False)] if count else lead


def single_images(ctx: SceneContext) -> list[Frame]:
    """Stills, pair views and a stride of the video's frames: every distinct view a single-image question can use."""
    return ctx.frames("still") + ctx.frames("pair") + ctx.frames("video")[::VIDEO_FRAME_STRIDE]


@register_skill(DETECTION_SKILL, "3D Object Detection", "single")
def generate_detection(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = single_images(ctx)
    for index in rng.permutation(len(frames)):
        frame = frames[index]
        groups = detectable_categories(ctx, [frame])
        names = sorted(groups)
        asked: set[frozenset] = set()
        for _ in range(ATTEMPTS_PER_FRAME if names else 0):
            chosen = pick_categories(names, rng)
            if frozenset(chosen) in asked:
                continue
            asked.add(frozenset(chosen))
            objects = ordered(ctx, [obj for name in chosen for obj in groups[name]], chosen, frame)
            question = str(rng.choice(DETECTION_TEMPLATES)).format(categories=category_phrase(chosen))
            yield boxes_sample(ctx, DETECTION_SKILL, [frame], objects, question, "single", {"categories": chosen})


def _referent(ctx: SceneContext, frame: Frame, obj: ObjectInstance, repeated: bool, rng) -> tuple[str, list[Marker]] | None:
    if not repeated:
        description = obj.description.strip()
        if description.startswith("the ") and rng.random() < 0.5:
            return description, []
        return f"the {label(obj)}", []
    point = pick_marker_point(ctx.instance_ids(frame) == obj.instance_id, rng)
    if point is None:
        return None
    color = str(rng.choice(list(MARKER_COLORS)))
    return f"the {label(obj)} marked by the {color} point", [Marker("point", color, point)]


@register_skill(GROUNDING_SKILL, "3D Grounding", "single")
def generate_grounding(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = single_images(ctx)
    for index in rng.permutation(len(frames)):
        frame = frames[index]
        visible = [obj for obj in ctx.objects if is_visible(frame, obj)]
        candidates = [obj for obj in visible if passes(ctx, frame, obj)]
        for choice in rng.permutation(len(candidates))[:ATTEMPTS_PER_FRAME]:
            obj = candidates[choice]
            repeated = sum(label(other) == label(obj) for other in visible) > 1
            referent = _referent(ctx, frame, obj, repeated, rng)
            if referent is None:
                continue
            text, markers = referent
            question = str(rng.choice(GROUNDING_TEMPLATES)).format(referent=text)
            meta = {"referent": text, "marked": bool(markers)}
            yield boxes_sample(ctx, GROUNDING_SKILL, [frame], [obj], question, "single", meta, markers)
