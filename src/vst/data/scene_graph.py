"""Scene graph: pairwise spatial relations among the objects seen in a set of frames, each with its metric facts.

Feeds the caption skills (`skills/captions.py`); its referent helpers name objects in single-image questions
(`skills/si_distance.py`, `skills/si_measurement.py`). Rules (spec data.md §1.9 "Relation separation", §4.3 #7):

- camera-relative, for one reference camera (OpenCV axes): "left of" / "right of" when the boxes' camera-x extents
  are separated by at least `SEPARATION_M` (0.05 m) AND their projected image extents by `SEPARATION_IMAGE_FRAC`
  (3 %) of the image width, so the relation holds both in 3D and in the picture; "in front of" / "behind" when
  the camera-z (depth) extents are separated by `SEPARATION_M`. Boxes with a corner closer than `MIN_DEPTH_M`
  to the camera plane get no camera-relative relation.
- view-independent: "on" (`attributes["on"]` names the support, or the bottom face lies within `SUPPORT_GAP_M`
  of the support's top with its centre over the support); "next to" (closest-point distance < `NEXT_TO_M` = 0.5 m,
  not stacked); "against the wall" (footprint within `WALL_NEAR_M` of a floor-polygon edge).

Every relation carries the closest-point distance of the two boxes (metres) and its margin to the decision boundary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from vst.data.context import SceneContext
from vst.data.markers import MARKER_COLORS, Marker, pick_marker_point
from vst.scene.geometry import Box, box_corners, box_distance, world_to_camera
from vst.scene.types import Frame, ObjectInstance

SEPARATION_M = 0.05
SEPARATION_IMAGE_FRAC = 0.03
MIN_DEPTH_M = 0.1
SUPPORT_GAP_M = 0.05
NEXT_TO_M = 0.5
WALL_NEAR_M = 0.3

INVERSE = {"left of": "right of", "right of": "left of", "in front of": "behind", "behind": "in front of"}


# ---------------------------------------------------------------------------------------------------------------
# naming objects
# ---------------------------------------------------------------------------------------------------------------
def category_name(obj: ObjectInstance) -> str:
    return obj.category.replace("_", " ")


def plural(name: str) -> str:
    """English plural of a category name ("bookshelf" -> "bookshelves", "box" -> "boxes")."""
    if name.endswith("shelf"):
        return name[:-1] + "ves"
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    return name + "s"


def visible_objects(ctx: SceneContext, frames: Iterable[Frame]) -> list[ObjectInstance]:
    """Objects with any visible pixel in any of `frames`: the set an image-level referent must be unique in."""
    frames = list(frames)
    return [o for o in ctx.objects
            if any(f.visibility[o.instance_id].pixels > 0 for f in frames if o.instance_id in f.visibility)]


@dataclass(frozen=True)
class Referent:
    """How a question names one object of one image: `label` ("chair" or "chair (red point)"), plus its marker."""

    obj: ObjectInstance
    label: str
    marker: Marker | None

    @property
    def phrase(self) -> str:
        return f"the {self.label}"


def refer(ctx: SceneContext, frame: Frame, objects: list[ObjectInstance], rng: np.random.Generator,
          mark_probability: float = 0.3) -> list[Referent] | None:
    """Name each object in `frame`: by category when unique among visible objects, else by a coloured point marker.

    Unique objects are still marked with probability `mark_probability` (VST marks them too: "the table (pink
    point-1)"). Returns None when a marker cannot be placed (object too thin near the border).
    """
    counts = Counter(o.category for o in visible_objects(ctx, [frame]))
    colors = [str(c) for c in rng.permutation(list(MARKER_COLORS))]
    referents, points = [], []
    for obj in objects:
        mark = counts[obj.category] > 1 or rng.random() < mark_probability
        if not mark:
            referents.append(Referent(obj, category_name(obj), None))
            continue
        point = pick_marker_point(ctx.instance_ids(frame) == obj.instance_id, rng, avoid=points)
        if point is None:
            return None
        points.append(point)
        color = colors[len(points) - 1]
        referents.append(Referent(obj, f"{category_name(obj)} ({color} point)", Marker("point", color, point)))
    return referents


def graph_names(objects: list[ObjectInstance], pool: list[ObjectInstance]) -> dict[int, str | None]:
    """Caption names: the category when unique in `pool`, else "<colour> <category>" when no other object of `pool`
    shares both (procedural copies never share a colour), else None (the object is listed but not related)."""
    categories = Counter(o.category for o in pool)
    colored = Counter((o.category, o.attributes.get("color_name")) for o in pool)
    names: dict[int, str | None] = {}
    for obj in objects:
        color = obj.attributes.get("color_name")
        if categories[obj.category] == 1:
            names[obj.instance_id] = category_name(obj)
        elif color and colored[(obj.category, color)] == 1:
            names[obj.instance_id] = f"{color} {category_name(obj)}"
        else:
            names[obj.instance_id] = None
    return names


# ---------------------------------------------------------------------------------------------------------------
# pure relation tests
# ---------------------------------------------------------------------------------------------------------------
def box_of(obj: ObjectInstance) -> Box:
    return Box(np.asarray(obj.box.center, dtype=np.float64), np.asarray(obj.box.size, dtype=np.float64), obj.box.rotation_matrix)


def interval_order(a: tuple[float, float], b: tuple[float, float], margin: float) -> tuple[int, float]:
    """Strict order of two 1D extents (min, max): -1 when a ends more than `margin` before b starts, +1 when a starts
    more than `margin` after b ends, 0 otherwise; with the slack beyond `margin` (negative when 0)."""
    before, after = b[0] - a[1] - margin, a[0] - b[1] - margin
    if before > 0:
        return -1, before
    if after > 0:
        return 1, after
    return 0, max(before, after)


def camera_relations(box_a: Box, box_b: Box, frame: Frame) -> list[tuple[str, float]]:
    """Camera-relative predicates of a relative to b in `frame` ("left of", "in front of"...), each with margin (m)."""
    corners = [world_to_camera(box_corners(b), frame.pose) for b in (box_a, box_b)]
    if min(c[:, 2].min() for c in corners) < MIN_DEPTH_M:
        return []
    k = frame.intrinsics
    x = [(c[:, 0].min(), c[:, 0].max()) for c in corners]
    u = [(float((k.fx * c[:, 0] / c[:, 2]).min()), float((k.fx * c[:, 0] / c[:, 2]).max())) for c in corners]
    z = [(c[:, 2].min(), c[:, 2].max()) for c in corners]
    relations = []
    side, slack = interval_order(x[0], x[1], SEPARATION_M)
    image_side, _ = interval_order(u[0], u[1], SEPARATION_IMAGE_FRAC * k.width)
    if side != 0 and side == image_side:
        relations.append(("left of" if side < 0 else "right of", float(slack)))
    depth, slack = interval_order(z[0], z[1], SEPARATION_M)
    if depth != 0:
        relations.append(("in front of" if depth < 0 else "behind", float(slack)))
    return relations


def support_gap(top: ObjectInstance, support: ObjectInstance) -> float:
    """|bottom of `top` - top face of `support`| in metres (world z)."""
    return float(abs(box_corners(box_of(top))[:, 2].min() - box_corners(box_of(support))[:, 2].max()))


def rests_on(top: ObjectInstance, support: ObjectInstance) -> bool:
    """True when `top` stands on `support`: recorded in attributes, or its bottom touches the support's top face
    (within SUPPORT_GAP_M) with its centre over the support's footprint."""
    if top.attributes.get("on") == support.instance_id:
        return True
    if support_gap(top, support) > SUPPORT_GAP_M:
        return False
    support_box = box_of(support)
    local = (np.asarray(top.box.center) - support_box.center) @ support_box.rotation
    return bool(np.all(np.abs(local[:2]) <= support_box.size[:2] / 2.0))


def wall_distance(box: Box, polygon) -> float:
    """Smallest xy distance (m) from a box's footprint corners to the edges of a floor polygon (n, 2)."""
    points = box_corners(box)[:, :2]
    polygon = np.asarray(polygon, dtype=np.float64)
    best = np.inf
    for start, end in zip(polygon, np.roll(polygon, -1, axis=0)):
        direction = end - start
        t = np.clip((points - start) @ direction / max(direction @ direction, 1e-12), 0.0, 1.0)
        best = min(best, float(np.linalg.norm(points - (start + t[:, None] * direction), axis=1).min()))
    return best


# ---------------------------------------------------------------------------------------------------------------
# the graph
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Relation:
    subject: int  # instance id
    predicate: str  # left of | right of | in front of | behind | on | next to | against the wall
    target: int | None  # instance id; None for "against the wall"
    distance_m: float  # closest-point distance between the boxes (to the wall line for "against the wall")
    margin_m: float  # how far the evidence clears the decision boundary


@dataclass
class SceneGraph:
    objects: list[ObjectInstance]  # nodes: objects referable in at least one frame
    names: dict[int, str | None]  # caption names, None when the object cannot be told apart
    relations: list[Relation]

    def named(self) -> list[ObjectInstance]:
        return [o for o in self.objects if self.names[o.instance_id]]


def build_scene_graph(ctx: SceneContext, frames: list[Frame], reference: Frame | None = None,
                      scene_level: bool = False) -> SceneGraph:
    """Relations among objects referable in `frames`; camera-relative ones seen from `reference` (when given) and
    only between objects referable there. Names are unique in the scene (`scene_level`) or among visible objects."""
    seen: dict[int, ObjectInstance] = {}
    for frame in frames:
        for obj in ctx.referable(frame):
            seen.setdefault(obj.instance_id, obj)
    objects = sorted(seen.values(), key=lambda o: o.instance_id)
    names = graph_names(objects, ctx.objects if scene_level else visible_objects(ctx, frames))
    named = [o for o in objects if names[o.instance_id]]
    in_reference = {o.instance_id for o in ctx.referable(reference)} if reference is not None else set()
    relations: list[Relation] = []
    # distances between boxes (the costly part) and to the walls: computed once per scene, shared by every caption
    for i, a in enumerate(named):
        for b in named[i + 1:]:
            seen_from = reference if {a.instance_id, b.instance_id} <= in_reference else None
            distance = ctx.memo(("box_distance", a.instance_id, b.instance_id), lambda: box_distance(box_of(a), box_of(b)))
            relations += pair_relations(a, b, seen_from, distance)
    if ctx.scene.room is not None:
        for obj in named:
            distance = ctx.memo(("wall_distance", obj.instance_id),
                                lambda: wall_distance(box_of(obj), ctx.scene.room.floor_polygon))
            if distance < WALL_NEAR_M:
                relations.append(Relation(obj.instance_id, "against the wall", None, distance, WALL_NEAR_M - distance))
    return SceneGraph(objects, names, relations)


def pair_relations(a: ObjectInstance, b: ObjectInstance, reference: Frame | None, distance: float | None = None) -> list[Relation]:
    """Relations between two objects: "on" either way, else "next to" and, seen from `reference`, camera-relative ones.
    `distance`: their `box_distance` when the caller already has it."""
    distance = box_distance(box_of(a), box_of(b)) if distance is None else distance
    relations = []
    stacked = False
    for top, support in ((a, b), (b, a)):
        if rests_on(top, support):
            margin = max(SUPPORT_GAP_M - support_gap(top, support), 0.0)
            relations.append(Relation(top.instance_id, "on", support.instance_id, distance, margin))
            stacked = True
    if not stacked and distance < NEXT_TO_M:
        relations.append(Relation(a.instance_id, "next to", b.instance_id, distance, NEXT_TO_M - distance))
    if reference is not None and not stacked:
        for predicate, margin in camera_relations(box_of(a), box_of(b), reference):
            relations.append(Relation(a.instance_id, predicate, b.instance_id, distance, margin))
    return relations
