"""Multi-image point correspondence (VST skill "Correspondence", modality multi; spec paper.md §2.3, data.md §4.3 #9).

Emits `mi_correspondence` (VST type `mi_correspondence`): a point on an object is circled in image 1; image 2 shows
four labelled points ("1".."4" or "A".."D"); which one is the same 3D point? Answer "point-k", either named
directly (reward `option_text`) or as a lettered option (reward `multiple_choice`, numeric labels only, so option
letters and point labels never mix).

Geometry: the circled pixel's depth unprojects it to camera 1, then world, then camera 2 (geometry.unproject_points,
camera_to_world, world_to_camera, project_points). Filters (spec data.md §1.5 fixes, §1.9):
- the object is referable in image 1 and the point sits in its eroded mask, >= 20 px from the border;
- in image 2 the point is in front, >= 20 px from the border, lands on the same instance, and is not occluded:
  the rendered depth there is within 2 % of the projected depth;
- the three distractors lie on rendered surfaces of image 2 (valid depth), >= 20 px from the border and >= 8 % of the image width
  from the truth and from each other (Multi-SpatialMLLM drew them anywhere, even next to the truth);
- the views share content: >= 10 % of image 1's surface pixels reproject visibly into image 2. The spec's 60 %
  upper bound is not applied: the motion filters of the camera skills already demand a real change of view.

View pairs (`view_pairs`, shared with mi_relations and mi_cameras): each "pair-NN" sequence, plus video frames
1-4 s apart (spec data.md §1.9 temporal margin >= 1 s).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vst.data.choices import LetterBalancer, multiple_choice
from vst.data.context import SceneContext
from vst.data.markers import MARKER_COLORS, MIN_BORDER, Marker, pick_marker_point
from vst.data.sample import Sample
from vst.data.skills.registry import register_skill
from vst.scene.geometry import Projection, camera_to_world, project_points, unproject_points, world_to_camera
from vst.scene.types import Frame

SKILL = "mi_correspondence"
DEPTH_TOLERANCE_REL = 0.02  # rendered vs projected depth, relative to the projected depth
DISTRACTOR_SEPARATION_FRAC = 0.08  # of image 2's width
DISTRACTOR_COUNT = 3
MIN_OVERLAP = 0.10
OVERLAP_GRID_STEP = 8  # pixels between the samples of image 1 used to measure overlap
MIN_VIDEO_GAP_S, MAX_VIDEO_GAP_S = 1.0, 4.0
VIDEO_PAIRS = 8  # video frame pairs drawn per scene
ATTEMPTS_PER_PAIR = 4
LABEL_SETS = ("1234", "ABCD")

TEMPLATES = [
    "In the first image, a point is circled in {circle}. The second image presents several points labeled {labels}. "
    "Which one corresponds to the circled point?",
    "A {circle} circle marks a spot in image 1. Among the {dots} points {labels} drawn on image 2, which shows the same spot?",
    "The {circle} circle in the first picture highlights one point of the scene. Which labelled point in the second picture "
    "({labels}) is that same physical point?",
    "Look at the point circled in {circle} in the first view. In the second view, {count} candidate points are marked {labels}. "
    "Which candidate matches it?",
    "Both images show the same room. Find the location circled in {circle} in image 1 among the {dots} labelled points "
    "({labels}) in image 2.",
    "Which of the points labeled {labels} in the second image is the same 3D point as the one inside the {circle} circle "
    "in the first image?",
]
LABEL_INSTRUCTION = " Answer in the form point-<label>."


def view_pairs(ctx: SceneContext, rng: np.random.Generator, video_pairs: int = VIDEO_PAIRS) -> list[tuple[Frame, Frame, str]]:
    """(first, second, origin) view pairs: every "pair-NN" sequence ("pair") and up to `video_pairs` video frame
    pairs ("video") whose timestamps lie MIN_VIDEO_GAP_S..MAX_VIDEO_GAP_S apart, in time order."""
    pairs = []
    for name, frames in sorted(ctx.scene.sequences().items()):
        frames = [f for f in frames if f.image_path]
        if name.startswith("pair") and len(frames) >= 2:
            pairs.append((frames[0], frames[1], "pair"))
    video = sorted(ctx.frames("video"), key=lambda f: f.timestamp)
    times = np.array([f.timestamp for f in video])
    seen: set[tuple[int, int]] = set()
    for _ in range(video_pairs * 4 if len(video) > 1 else 0):
        i = int(rng.integers(len(video)))
        gaps = times - times[i]
        later = np.nonzero((gaps >= MIN_VIDEO_GAP_S) & (gaps <= MAX_VIDEO_GAP_S))[0]
        if not len(later):
            continue
        j = int(rng.choice(later))
        if (i, j) not in seen:
            seen.add((i, j))
            pairs.append((video[i], video[j], "video"))
        if len(seen) == video_pairs:
            break
    return pairs


def reproject(uv, depth, source: Frame, target: Frame) -> Projection:
    """Pixels (n, 2) of `source` with planar depth (n,) metres -> their projection into `target`."""
    camera_points = unproject_points(uv, depth, source.intrinsics.matrix)
    world = camera_to_world(camera_points, source.pose)
    intrinsics = target.intrinsics
    return project_points(world_to_camera(world, target.pose), intrinsics.matrix, intrinsics.width, intrinsics.height)


def landing_pixels(projection: Projection, depth_map: np.ndarray, border: int = MIN_BORDER,
                   tolerance: float = DEPTH_TOLERANCE_REL) -> tuple[np.ndarray, np.ndarray]:
    """(visible (n,) bool, pixels (n, 2) int x, y): which projected points are seen in the target image.

    Visible = in front, rounded pixel >= `border` px from every edge, and the rendered depth (H, W) at that pixel
    within `tolerance` x the projected depth (otherwise something occludes the point).
    """
    height, width = depth_map.shape
    uv = np.nan_to_num(projection.uv, nan=-1e6)
    pixels = np.rint(uv).astype(np.int64)
    inside = projection.in_front & (pixels[:, 0] >= border) & (pixels[:, 0] < width - border)
    inside &= (pixels[:, 1] >= border) & (pixels[:, 1] < height - border)
    rendered = np.zeros(len(pixels))
    rendered[inside] = depth_map[pixels[inside, 1], pixels[inside, 0]]
    return inside & depth_consistent(rendered, projection.depth, tolerance), pixels


def depth_consistent(rendered, projected, tolerance: float = DEPTH_TOLERANCE_REL) -> np.ndarray:
    """(n,) bool: rendered depth (n,) within `tolerance` (relative) of the projected depth (n,), both metres, > 0."""
    rendered, projected = np.asarray(rendered, dtype=np.float64), np.asarray(projected, dtype=np.float64)
    return (rendered > 0) & (np.abs(rendered - projected) <= tolerance * projected)


def view_overlap(ctx: SceneContext, first: Frame, second: Frame, step: int = OVERLAP_GRID_STEP) -> float:
    """Share of image 1's surface pixels (on a `step`-pixel grid) that are visible in image 2, in [0, 1]."""
    depth = ctx.depth(first)
    ys, xs = np.mgrid[0 : depth.shape[0] : step, 0 : depth.shape[1] : step]
    values = depth[ys, xs].ravel()
    valid = values > 0
    if not valid.any():
        return 0.0
    uv = np.column_stack([xs.ravel(), ys.ravel()])[valid].astype(np.float64)
    visible, _ = landing_pixels(reproject(uv, values[valid], first, second), ctx.depth(second), border=0)
    return float(visible.mean())


def surface_pixels(surface: np.ndarray, border: int = MIN_BORDER) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys) of the mask `surface` (H, W bool) >= `border` px from the edges, in row-major order."""
    height, width = surface.shape
    ys, xs = np.nonzero(surface)
    keep = (xs >= border) & (xs < width - border) & (ys >= border) & (ys < height - border)
    return xs[keep], ys[keep]


def pick_distractors(surface: np.ndarray | tuple[np.ndarray, np.ndarray], truth_xy, rng: np.random.Generator,
                     count: int = DISTRACTOR_COUNT, separation: float = 0.0, border: int = MIN_BORDER) -> list[tuple[int, int]] | None:
    """`count` pixels (x, y) of the mask `surface` (H, W bool), >= `border` px from the edges and >= `separation` px
    from `truth_xy` and from each other; None when the mask has no room for them. `surface` may also be the
    `surface_pixels` of the mask (computed once per image when several questions share it; same picks)."""
    xs, ys = surface if isinstance(surface, tuple) else surface_pixels(surface, border)
    # squared distances in integers: the same decisions as hypot >= separation, without the square roots
    limit = separation * separation
    far = (xs - truth_xy[0]) ** 2 + (ys - truth_xy[1]) ** 2 >= limit
    xs, ys = xs[far], ys[far]
    chosen: list[tuple[int, int]] = []
    for _ in range(count):
        if not len(xs):
            return None
        index = int(rng.integers(len(xs)))
        chosen.append((int(xs[index]), int(ys[index])))
        far = (xs - xs[index]) ** 2 + (ys - ys[index]) ** 2 >= limit
        xs, ys = xs[far], ys[far]
    return chosen


def _sample(ctx: SceneContext, first: Frame, second: Frame, origin: str, overlap: float, rng,
            label_balancer: LetterBalancer, letter_balancer: LetterBalancer) -> Sample | None:
    objects = ctx.referable(first)
    if not objects:
        return None
    obj = objects[int(rng.integers(len(objects)))]
    point = pick_marker_point(ctx.instance_ids(first) == obj.instance_id, rng)
    if point is None:
        return None
    depth = float(ctx.depth(first)[point[1], point[0]])
    if depth <= 0:
        return None
    projection = reproject(np.array([point], dtype=np.float64), np.array([depth]), first, second)
    visible, pixels = landing_pixels(projection, ctx.depth(second))
    truth = (int(pixels[0, 0]), int(pixels[0, 1]))
    ids2 = ctx.instance_ids(second)
    if not visible[0] or ids2[truth[1], truth[0]] != obj.instance_id:
        return None
    separation = DISTRACTOR_SEPARATION_FRAC * second.intrinsics.width
    candidates = ctx.memo(("surface-pixels", second.frame_id), lambda: surface_pixels(ctx.depth(second) > 0))
    distractors = pick_distractors(candidates, truth, rng, separation=separation)
    if distractors is None:
        return None
    labels = LABEL_SETS[int(rng.integers(len(LABEL_SETS)))]
    truth_index = label_balancer.place(len(labels), rng)
    positions = distractors[:truth_index] + [truth] + distractors[truth_index:]
    circle_color, dot_color = (str(c) for c in rng.choice(list(MARKER_COLORS), size=2, replace=False))
    circle = Marker("circle", circle_color, point)
    dots = [Marker("point", dot_color, xy, label) for xy, label in zip(positions, labels)]
    quoted = ", ".join(f"'{c}'" for c in labels)
    question = str(rng.choice(TEMPLATES)).format(circle=circle_color, dots=dot_color, labels=quoted, count=len(labels))
    names = [f"point-{label}" for label in labels]
    if labels.isdigit() and rng.random() < 0.5:
        choice = multiple_choice(names[truth_index], names[:truth_index] + names[truth_index + 1 :], letter_balancer, rng)
        question, answer_text, answer, reward = choice.prompt(question), choice.letter, choice.answer, {"fn": "multiple_choice"}
    else:
        question, answer_text = question + LABEL_INSTRUCTION, names[truth_index]
        answer, reward = {"type": "text", "value": answer_text, "options": names}, {"fn": "option_text"}
    spacing = [float(np.hypot(x - truth[0], y - truth[1])) for x, y in distractors]
    meta = {
        "frame_ids": [first.frame_id, second.frame_id], "instance_ids": [obj.instance_id], "pair_origin": origin,
        "time_gap_s": round(abs(second.timestamp - first.timestamp), 3), "overlap": round(overlap, 3),
        "markers": [{"image": 0, **circle.to_meta()}] + [{"image": 1, **m.to_meta()} for m in dots],
        "truth_label": labels[truth_index], "depth_first_m": round(depth, 4),
        "projected_uv": [round(float(v), 2) for v in projection.uv[0]], "projected_depth_m": round(float(projection.depth[0]), 4),
        "rendered_depth_m": round(float(ctx.depth(second)[truth[1], truth[0]]), 4),
        "candidate_instance_ids": [int(ids2[y, x]) for x, y in positions],
        "distractor_distances_px": [round(s, 1) for s in spacing], "margin_px": round(min(spacing) - separation, 1),
    }
    media = [ctx.image_media(first, [circle]), ctx.image_media(second, dots)]
    return ctx.sample(SKILL, question, answer_text, answer, reward, media, meta, "multi", SKILL)


@register_skill(SKILL, "Correspondence", "multi")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    label_balancer, letter_balancer = LetterBalancer(), LetterBalancer()
    for first, second, origin in view_pairs(ctx, rng):
        if not all(f.depth_path and f.instance_path for f in (first, second)):
            continue
        directions = [(a, b, view_overlap(ctx, a, b)) for a, b in ((first, second), (second, first))]
        for _ in range(ATTEMPTS_PER_PAIR):
            source, target, overlap = directions[int(rng.integers(2))]
            if overlap < MIN_OVERLAP:
                continue
            sample = _sample(ctx, source, target, origin, overlap, rng, label_balancer, letter_balancer)
            if sample is not None:
                yield sample
