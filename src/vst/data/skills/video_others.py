"""Video "Others": cognitive maps and frame locating (VST skill "Others", modality video; spec data.md §1.7, §4.3 row 19).

Emits `video_others` (VST type `video`) in two forms, VSI-Bench prompt style (benchmarks.md §2.2):
- cognitive map (SpaceR's "map imagination"): the grid cells of 3-`MAP_MAX_OBJECTS` objects on a 10x10 grid laid
  over the floor polygon's bounding box, answered as JSON `{category: [[column, row]]}` (answer type "map",
  reward "map"). The grid is turned by a multiple of 90 degrees so that row 0 is the far side as the camera faces
  in the first frame (column 0 left, row 0 far, row 9 near); the first heading must lie within
  45 - `MAP_HEADING_MARGIN_DEG` degrees of a world axis, or the map orientation would be ambiguous.
- frame locate: "at which second does the {category} first appear" (first frame with >= ctx.min_pixels pixels,
  seconds from the first frame, >= `MIN_FIRST_APPEARANCE_S`). Reward "numeric" with a relative tolerance equal to
  max(`LOCATE_TOLERANCE_S`, one frame interval) / answer: half a second because VST's SFT samples videos at
  2 fps (paper.md §2.5), so a finer time cannot be seen; never finer than the video's own frame interval. The
  tolerance is stored with `LOCATE_TOLERANCE_DECIMALS` decimals, rounded up and relative to the stored answer
  (seconds, 2 decimals), so the window it allows is never narrower than that: 0.5 s at 1.5 s is 0.3334, not
  0.3333 (which would allow only 0.49995 s).
Referents are unique in the scene and seen in the video.
"""

from __future__ import annotations

import json
import math
from typing import Iterator

import numpy as np

from vst.data.context import SceneContext
from vst.data.sample import Sample
from vst.data.skills.registry import register_skill
from vst.data.skills.video_spatiotemporal import first_appearances, format_seconds, seen_unique_objects
from vst.data.video import PRE_PROMPT, numeric_prompt, object_name, video_fps, video_frames
from vst.scene.types import Frame

SKILL = "video_others"
GRID_CELLS = 10
MAP_MIN_OBJECTS, MAP_MAX_OBJECTS = 3, 8
MAP_SAMPLES = 3
MAP_HEADING_MARGIN_DEG = 15.0
MIN_FIRST_APPEARANCE_S = 1.0
LOCATE_TOLERANCE_S = 0.5
LOCATE_TOLERANCE_DECIMALS = 4
MAX_LOCATE_SAMPLES = 6

MAP_TEMPLATES = [
    "Imagine a {n}x{n} grid laid over the floor of this room. Give the grid cell of each of these objects: {names}.",
    "Draw a cognitive map of the room as a {n}x{n} grid over its floor and place the following objects on it: {names}.",
    "Split the room's floor into a {n}x{n} grid. In which cell does each of these objects stand: {names}?",
    "Build a top-down {n}x{n} grid map of the room from the video and locate {names} on it.",
    "Think of the room seen from above as a {n}x{n} grid. Mark the cells that hold {names}.",
]
MAP_CONVENTION = (
    "The grid is aligned with the view at the start of the video: column 0 is the leftmost and column {last} the "
    "rightmost part of the room, row 0 the farthest and row {last} the nearest. Answer with a JSON object mapping "
    "each object name to a list of [column, row] cells, like {{\"object name\": [[column, row]]}}."
)
LOCATE_TEMPLATES = [
    "At which second does the {name} first appear in the video?",
    "How many seconds into the video is the {name} first visible?",
    "When does the {name} show up in the video for the first time? Answer in seconds.",
    "At what time, in seconds from the start, can you first see the {name}?",
    "In the video, after how many seconds does the {name} appear for the first time?",
]


# -- cognitive map geometry -------------------------------------------------------------------------------------
def map_rotation(first_frame: Frame) -> tuple[np.ndarray, float, float]:
    """World-xy -> map (right, forward) rotation (2, 2) snapped to the world axis nearest the first heading.

    Returns (rotation, snapped heading in degrees, margin in degrees: 45 minus the heading's offset from that axis).
    """
    forward = first_frame.pose[:3, 2]
    heading = float(np.degrees(np.arctan2(forward[1], forward[0])))
    snapped = 90.0 * round(heading / 90.0)
    offset = abs((heading - snapped + 180.0) % 360.0 - 180.0)
    angle = np.radians(snapped)
    forward_axis = np.array([np.cos(angle), np.sin(angle)])
    right_axis = np.array([forward_axis[1], -forward_axis[0]])  # z up: right of the heading is clockwise
    return np.stack([right_axis, forward_axis]), snapped, 45.0 - offset


def map_cells(points_xy, floor_polygon, rotation: np.ndarray, cells: int = GRID_CELLS) -> tuple[np.ndarray, np.ndarray]:
    """Grid cells (n, 2) int [column, row] of world points (n, 2), and each point's distance (n,) to a cell edge (m).

    The grid spans the floor polygon's bounding box in map coordinates (right, forward); row 0 is the far side.
    """
    local = np.asarray(points_xy, dtype=float) @ rotation.T
    corners = np.asarray(floor_polygon, dtype=float) @ rotation.T
    low, high = corners.min(axis=0), corners.max(axis=0)
    fraction = (local - low) / (high - low)
    fraction[:, 1] = 1.0 - fraction[:, 1]
    scaled = np.clip(fraction, 0.0, 1.0) * cells
    grid = np.minimum(np.floor(scaled), cells - 1).astype(int)
    edge = np.minimum(scaled - np.floor(scaled), np.ceil(scaled) - scaled) * (high - low) / cells
    return grid, edge.min(axis=1)


def locate_tolerance(answer_seconds: float, fps: float, decimals: int = LOCATE_TOLERANCE_DECIMALS) -> float:
    """Relative tolerance for the frame-locate answer: max(0.5 s, one frame) over the answer, rounded UP to
    `decimals`, so tolerance x answer is never below max(0.5 s, one frame). Pass the answer as stored (rounded)."""
    scale = 10**decimals
    exact = max(LOCATE_TOLERANCE_S, 1.0 / fps) / answer_seconds * scale
    return math.ceil(exact - 1e-9) / scale  # - 1e-9: float noise on an exact step (5000.000000001) must not add one


# -- samples ----------------------------------------------------------------------------------------------------
def _map_sample(ctx, frames, first, objects, rotation, snapped, heading_margin, rng) -> Sample:
    grid, edge = map_cells([o.box.center[:2] for o in objects], ctx.scene.room.floor_polygon, rotation)
    value = {object_name(o): [[int(c), int(r)]] for o, (c, r) in zip(objects, grid)}
    names = ", ".join(object_name(o) for o in objects)
    question = str(rng.choice(MAP_TEMPLATES)).format(n=GRID_CELLS, names=names)
    question += " " + MAP_CONVENTION.format(last=GRID_CELLS - 1)
    seen_in = sorted({frames[first[o.instance_id]].frame_id for o in objects} | {frames[0].frame_id})
    meta = {"form": "cognitive_map", "frame_ids": seen_in, "orientation_frame_id": frames[0].frame_id,
            "instance_ids": [o.instance_id for o in objects],
            "centers_xy": [[round(v, 3) for v in o.box.center[:2]] for o in objects],
            "grid_heading_deg": snapped, "heading_margin_deg": round(heading_margin, 2),
            "cell_edge_m": np.round(edge, 3).tolist(),
            "margin_m": round(float(edge.min()), 3)}
    answer = {"type": "map", "value": value}
    return ctx.sample(SKILL, f"{PRE_PROMPT}\n{question}", json.dumps(value), answer, {"fn": "map"},
                      [ctx.video_media(frames, video_fps(ctx, frames))], meta, "video", "video")


def _locate_sample(ctx, frames, first, obj, rng) -> Sample:
    fps = video_fps(ctx, frames)
    frame = frames[first[obj.instance_id]]
    seconds = frame.timestamp - frames[0].timestamp
    previous = frames[first[obj.instance_id] - 1].visibility.get(obj.instance_id)
    question = str(rng.choice(LOCATE_TEMPLATES)).format(name=object_name(obj))
    value = round(seconds, 2)
    meta = {"form": "frame_locate", "frame_ids": [frame.frame_id], "instance_ids": [obj.instance_id], "first_appearance_s": value,
            "pixels": frame.visibility[obj.instance_id].pixels, "pixels_before": previous.pixels if previous else 0,
            "min_pixels": ctx.min_pixels(frame), "margin_s": round(seconds - MIN_FIRST_APPEARANCE_S, 3)}
    answer = {"type": "number", "value": value, "unit": "s"}
    reward = {"fn": "numeric", "kwargs": {"tolerance": locate_tolerance(value, fps)}}
    return ctx.sample(SKILL, numeric_prompt(question), format_seconds(seconds), answer, reward,
                      [ctx.video_media(frames, fps)], meta, "video", "video")


@register_skill(SKILL, "Others", "video")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = video_frames(ctx)
    if len(frames) < 2:
        return
    first = first_appearances(ctx, frames)
    unique = seen_unique_objects(ctx, first)
    jobs: list[tuple[str, object]] = []
    rotation, snapped, heading_margin = map_rotation(frames[0])
    if ctx.scene.room is not None and heading_margin >= MAP_HEADING_MARGIN_DEG and len(unique) >= MAP_MIN_OBJECTS:
        subsets = set()
        for _ in range(MAP_SAMPLES):
            count = int(rng.integers(MAP_MIN_OBJECTS, min(MAP_MAX_OBJECTS, len(unique)) + 1))
            subsets.add(tuple(sorted(int(i) for i in rng.choice(len(unique), size=count, replace=False))))
        jobs += [("map", [unique[i] for i in subset]) for subset in sorted(subsets)]
    start = frames[0].timestamp
    late = [o for o in unique if frames[first[o.instance_id]].timestamp - start >= MIN_FIRST_APPEARANCE_S]
    jobs += [("locate", late[i]) for i in rng.permutation(len(late))[:MAX_LOCATE_SAMPLES]]
    for index in rng.permutation(len(jobs)):
        form, item = jobs[index]
        if form == "map":
            yield _map_sample(ctx, frames, first, item, rotation, snapped, heading_margin, rng)
        else:
            yield _locate_sample(ctx, frames, first, item, rng)
