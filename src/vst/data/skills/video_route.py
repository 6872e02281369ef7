"""Video route planning (VST skill "Route Plan", modality video; spec data.md §1.6, §4.3 row 17).

Emits `video_route_plan` (VST type `video`): VSI-Bench's route-plan multiple choice ("You are a robot beginning at
the {A} facing the {B}. You want to navigate to the {C}. ... fill in each [please fill in]"), the answer being the
turn sequence and the distractors other turn sequences of the same length.
Route: start on the walkable free-space cell closest to A's footprint (ties go to the cell nearest B), facing B;
goal on the walkable cell closest to C. The 8-connected shortest path on `FreeSpace` (0.1 m grid, 0.3 m clearance)
is pulled taut (line of sight), simplified (Douglas-Peucker, `SIMPLIFY_TOLERANCE_M`), and bends under
`STRAIGHT_MAX_DEG` are read as going forward. Every other heading change must be unambiguous: left/right when
|change| is in [`TURN_MIN_DEG`, `TURN_MAX_DEG`] (counter-clockwise seen from above = left), "turn back" when
|change| > `BACK_MIN_DEG`; otherwise the route is rejected. Each straight stretch is >= `MIN_STRETCH_M` long and
ends at a named landmark: C for the last one, else the unique seen object closest to the stretch's end (within
`LANDMARK_RADIUS_M`). All landmarks are unique in the scene and seen in the video (>= ctx.min_pixels in a frame).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from vst.data.choices import LetterBalancer, multiple_choice
from vst.data.context import SceneContext
from vst.data.sample import Sample
from vst.data.skills.registry import register_skill
from vst.data.skills.video_spatiotemporal import first_appearances, seen_unique_objects
from vst.data.video import choice_prompt, object_name, video_fps, video_frames
from vst.scene.cameras import GRID_RESOLUTION, FreeSpace
from vst.scene.geometry import point_box_distance
from vst.scene.types import ObjectInstance

SKILL = "video_route_plan"
TURN_MIN_DEG, TURN_MAX_DEG, BACK_MIN_DEG = 60.0, 120.0, 150.0
STRAIGHT_MAX_DEG = 20.0
SIMPLIFY_TOLERANCE_M = 0.3
MIN_STRETCH_M = 0.5
LANDMARK_RADIUS_M = 1.0
MAX_TURNS = 3
MAX_TRIPLES = 120
MAX_SAMPLES = 6
LINE_STEP_M = 0.05
TURN_WORDS = {"left": "Turn Left", "right": "Turn Right", "back": "Turn Back"}

TEMPLATES = [
    "You are a robot beginning at the {a} facing the {b}. You want to navigate to the {c}. You will perform the following "
    "actions (Note: for each [please fill in], choose either 'turn back,' 'turn left,' or 'turn right.'): {steps} "
    "You have reached the final destination.",
    "Imagine you are a robot standing next to the {a} and looking toward the {b}. Your goal is the {c}. Follow these "
    "steps, filling every [please fill in] with 'turn left', 'turn right' or 'turn back': {steps} You have arrived.",
    "A robot starts beside the {a}, facing the {b}, and must reach the {c}. Its plan is: {steps} Each [please fill in] "
    "is one of 'turn left', 'turn right' or 'turn back'. Which turns complete the plan?",
    "Starting at the {a} with the {b} in front of you, you walk to the {c} like this: {steps} Which turns (left, right "
    "or back) belong in the [please fill in] slots?",
    "You stand by the {a}, facing the {b}, and want to get to the {c}. Complete the route, choosing 'turn left', "
    "'turn right' or 'turn back' for each [please fill in]: {steps} Then you are at the destination.",
]


@dataclass
class Route:
    points: np.ndarray  # (k, 2) simplified path vertices, world xy metres, start first
    stretches: list[tuple[int, int]]  # vertex index ranges walked straight
    turns: list[tuple[int, str, float]]  # (stretch index the turn precedes, left|right|back, signed change deg)
    straight_changes_deg: list[float]  # bends read as going forward (including the start, if small)


# -- pure geometry ----------------------------------------------------------------------------------------------
def heading_change_deg(from_heading: float, to_heading: float) -> float:
    """Signed change (degrees, in (-180, 180]) from one heading to another; positive = counter-clockwise = left."""
    change = (to_heading - from_heading + 180.0) % 360.0 - 180.0
    return 180.0 if change == -180.0 else change


def classify_turn(change_deg: float) -> str | None:
    """left/right for |change| in [60, 120], back above 150, None (ambiguous) otherwise."""
    magnitude = abs(change_deg)
    if TURN_MIN_DEG <= magnitude <= TURN_MAX_DEG:
        return "left" if change_deg > 0 else "right"
    if magnitude > BACK_MIN_DEG:
        return "back"
    return None


def turn_margin_deg(change_deg: float) -> float:
    """Degrees from the nearest boundary of the accepted turn ranges (negative when ambiguous)."""
    magnitude = abs(change_deg)
    if magnitude > (TURN_MAX_DEG + BACK_MIN_DEG) / 2:
        return magnitude - BACK_MIN_DEG
    return min(magnitude - TURN_MIN_DEG, TURN_MAX_DEG - magnitude)


def _heading(start: np.ndarray, end: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(end[1] - start[1], end[0] - start[0])))


def _simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker on a 2D polyline (k, 2)."""
    if len(points) < 3:
        return points
    start, end = points[0], points[-1]
    direction = end - start
    length = np.linalg.norm(direction)
    offsets = points[1:-1] - start
    if length > 0:
        distances = np.abs(direction[0] * offsets[:, 1] - direction[1] * offsets[:, 0]) / length
    else:
        distances = np.linalg.norm(offsets, axis=1)
    split = int(np.argmax(distances)) + 1
    if distances[split - 1] <= tolerance:
        return np.array([start, end])
    return np.vstack([_simplify(points[: split + 1], tolerance)[:-1], _simplify(points[split:], tolerance)])


class RoutePlanner:
    """Shortest walkable paths on a scene's FreeSpace grid, the graph built once."""

    def __init__(self, space: FreeSpace):
        self.space = space
        self.cells = space.cells(walkable=True)
        self.index = -np.ones(space.shape, dtype=int)
        self.index[tuple(self.cells.T)] = np.arange(len(self.cells))
        rows, cols, weights = [], [], []
        for dx, dy in ((1, 0), (0, 1), (1, 1), (1, -1)):
            neighbours = self.cells + (dx, dy)
            inside = np.all((neighbours >= 0) & (neighbours < space.shape), axis=1)
            inside[inside] &= space.walkable[tuple(neighbours[inside].T)]
            rows.append(self.index[tuple(self.cells[inside].T)])
            cols.append(self.index[tuple(neighbours[inside].T)])
            weights.append(np.full(inside.sum(), np.hypot(dx, dy)))
        size = (len(self.cells),) * 2
        edges = (np.concatenate(rows), np.concatenate(cols))
        self.graph = sparse.coo_matrix((np.concatenate(weights), edges), shape=size).tocsr()
        self._predecessors: dict[int, np.ndarray] = {}

    def nearest_cell(self, obj: ObjectInstance, toward: np.ndarray) -> tuple[int, float]:
        """Walkable cell index closest to the object's footprint (ties within a cell go to the one nearest `toward`)."""
        points = self.space.point(self.cells)
        flat = np.column_stack([points, np.full(len(points), obj.box.center[2])])
        distance = point_box_distance(flat, (obj.box.center, obj.box.size, obj.box.rotation))
        close = np.flatnonzero(distance <= distance.min() + GRID_RESOLUTION / 2)
        best = close[int(np.argmin(np.linalg.norm(points[close] - toward, axis=1)))]
        return int(best), float(distance[best])

    def path(self, source: int, target: int) -> np.ndarray | None:
        """World xy points (k, 2) of a shortest path between two cell indices, or None if unreachable."""
        if source not in self._predecessors:
            self._predecessors[source] = dijkstra(self.graph, directed=False, indices=source, return_predecessors=True)[1]
        predecessors = self._predecessors[source]
        if target != source and predecessors[target] < 0:
            return None
        chain = [target]
        while chain[-1] != source:
            chain.append(predecessors[chain[-1]])
        return self.space.point(self.cells[chain[::-1]])

    def line_is_walkable(self, start: np.ndarray, end: np.ndarray) -> bool:
        steps = max(2, int(np.ceil(np.linalg.norm(end - start) / LINE_STEP_M)) + 1)
        samples = start + np.linspace(0.0, 1.0, steps)[:, None] * (end - start)
        cells = np.rint((samples - self.space.origin) / GRID_RESOLUTION).astype(int)
        inside = np.all((cells >= 0) & (cells < self.space.shape), axis=1)
        return bool(inside.all() and self.space.walkable[tuple(cells.T)].all())

    def taut(self, points: np.ndarray) -> np.ndarray:
        """String-pull a grid path: from each kept vertex jump to the farthest path point in line of sight."""
        kept, current = [points[0]], 0
        while current < len(points) - 1:
            reach = current + 1
            for candidate in range(len(points) - 1, current + 1, -1):
                if self.line_is_walkable(points[current], points[candidate]):
                    reach = candidate
                    break
            kept.append(points[reach])
            current = reach
        return np.array(kept)


def plan_route(planner: RoutePlanner, start: int, facing_xy: np.ndarray, goal: int) -> Route | None:
    """The turn structure of the walk from cell `start` (facing `facing_xy`) to cell `goal`; None when ambiguous."""
    grid_path = planner.path(start, goal)
    if grid_path is None or len(grid_path) < 2:
        return None
    points = _simplify(planner.taut(grid_path), SIMPLIFY_TOLERANCE_M)
    headings = [_heading(a, b) for a, b in zip(points[:-1], points[1:])]
    stretches, straight, turns = [[0, 1]], [], []
    for k in range(1, len(headings)):
        change = heading_change_deg(headings[k - 1], headings[k])
        if abs(change) < STRAIGHT_MAX_DEG:
            stretches[-1][1] = k + 1
            straight.append(change)
        else:
            stretches.append([k, k + 1])
    chords = [_heading(points[a], points[b]) for a, b in stretches]
    for (a, b), chord in zip(stretches, chords):
        if np.linalg.norm(points[b] - points[a]) < MIN_STRETCH_M:
            return None
        if any(abs(heading_change_deg(chord, headings[k])) >= STRAIGHT_MAX_DEG for k in range(a, b)):
            return None
    previous = _heading(points[0], facing_xy)
    for index, chord in enumerate(chords):
        change = heading_change_deg(previous, chord)
        if index == 0 and abs(change) < STRAIGHT_MAX_DEG:
            straight.append(change)
        else:
            kind = classify_turn(change)
            if kind is None:
                return None
            turns.append((index, kind, change))
        previous = chord
    return Route(points, [tuple(s) for s in stretches], turns, straight)


def route_margin_deg(route: Route) -> float:
    """Degrees from the nearest ambiguity boundary over all turns and all bends read as straight."""
    margins = [turn_margin_deg(change) for _, _, change in route.turns]
    margins += [STRAIGHT_MAX_DEG - abs(change) for change in route.straight_changes_deg]
    return float(min(margins))


# -- samples ----------------------------------------------------------------------------------------------------
def _stretch_landmarks(route: Route, landmarks: list[ObjectInstance], a, c, goal_gap: float) -> list | None:
    """(landmark, metres from the stretch's end to its box) per stretch: the closest unique seen object, C last."""
    named = []
    for _, end in route.stretches[:-1]:
        best, best_distance = None, np.inf
        for obj in landmarks:
            point = np.array([*route.points[end], obj.box.center[2]])
            distance = float(point_box_distance(point[None], (obj.box.center, obj.box.size, obj.box.rotation))[0])
            if distance < best_distance:
                best, best_distance = obj, distance
        if best is None or best_distance > LANDMARK_RADIUS_M or best in (a, c):
            return None
        named.append((best, best_distance))
    named.append((c, goal_gap))
    if any(x[0] is y[0] for x, y in zip(named[:-1], named[1:])):
        return None
    return named


def _steps_text(route: Route, named) -> str:
    turn_before = {index for index, _, _ in route.turns}
    steps = []
    for index, (landmark, _) in enumerate(named):
        if index in turn_before:
            steps.append("[please fill in]")
        steps.append(f"Go forward until the {object_name(landmark)}.")
    return " ".join(f"{number}. {step}" for number, step in enumerate(steps, start=1))


def _turn_distractors(correct: list[str], rng) -> list[str]:
    others = [list(p) for p in itertools.product(TURN_WORDS, repeat=len(correct)) if list(p) != correct]
    picks = rng.choice(len(others), size=min(3, len(others)), replace=False)
    return [", ".join(TURN_WORDS[w] for w in others[i]) for i in picks]


@register_skill(SKILL, "Route Plan", "video")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = video_frames(ctx)
    if len(frames) < 2 or ctx.scene.room is None:
        return
    first = first_appearances(ctx, frames)
    landmarks = seen_unique_objects(ctx, first)
    planner = RoutePlanner(FreeSpace(ctx.scene)) if len(landmarks) >= 3 else None
    if planner is None or len(planner.cells) < 2:
        return
    triples = list(itertools.permutations(range(len(landmarks)), 3))
    balancer, emitted, used_routes = LetterBalancer(), 0, set()
    for index in rng.permutation(len(triples))[:MAX_TRIPLES]:
        a, b, c = (landmarks[i] for i in triples[index])
        start, start_gap = planner.nearest_cell(a, np.asarray(b.box.center[:2]))
        start_xy = planner.space.point(planner.cells[start])
        goal, goal_gap = planner.nearest_cell(c, start_xy)
        if (a.instance_id, c.instance_id) in used_routes or max(start_gap, goal_gap) > LANDMARK_RADIUS_M:
            continue
        route = plan_route(planner, start, np.asarray(b.box.center[:2]), goal)
        if route is None or not 1 <= len(route.turns) <= MAX_TURNS:
            continue
        named = _stretch_landmarks(route, landmarks, a, c, goal_gap)
        if named is None:
            continue
        used_routes.add((a.instance_id, c.instance_id))
        correct = [kind for _, kind, _ in route.turns]
        choice = multiple_choice(", ".join(TURN_WORDS[w] for w in correct), _turn_distractors(correct, rng), balancer, rng)
        names = {"a": object_name(a), "b": object_name(b), "c": object_name(c)}
        question = str(rng.choice(TEMPLATES)).format(steps=_steps_text(route, named), **names)
        changes = [round(change, 2) for _, _, change in route.turns]
        meta = {"frame_ids": sorted({frames[first[o.instance_id]].frame_id for o in (a, b, c, *(n for n, _ in named))}),
                "instance_ids": [a.instance_id, b.instance_id, c.instance_id], "start_distance_m": round(start_gap, 3),
                "landmark_ids": [o.instance_id for o, _ in named], "landmark_distances_m": [round(d, 3) for _, d in named],
                "path_xy": np.round(route.points, 3).tolist(), "turns": correct, "turn_changes_deg": changes,
                "straight_changes_deg": [round(x, 2) for x in route.straight_changes_deg],
                "margin_deg": round(route_margin_deg(route), 2)}
        yield ctx.sample(SKILL, choice_prompt(question, choice), choice.letter, choice.answer, {"fn": "multiple_choice"},
                         [ctx.video_media(frames, video_fps(ctx, frames))], meta, "video", "video")
        emitted += 1
        if emitted >= MAX_SAMPLES:
            return
