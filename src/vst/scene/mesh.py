"""Scene -> one triangle soup for the renderer: room surfaces, object parts, per-vertex instance ids.

Objects are drawn from `attributes["parts"]` when present (primitives in the object's box frame, see
`docs/scenes.md`), otherwise as their OBB, so a hand-written scene.json with only boxes renders too.
Room surfaces take the instance id of the structure object whose `attributes["surface"]` names them
("floor", "ceiling", "wall" + `wall_index`), or 0 (unlabelled) when the scene has none.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from vst.scene.types import ObjectInstance, Scene

MATERIALS = {"plain": 0, "wood": 1, "fabric": 2, "metal": 3, "tile": 4, "plaster": 5, "screen": 6}
CYLINDER_SEGMENTS = 12
SPHERE_RINGS, SPHERE_SEGMENTS = 6, 8  # segments a multiple of 4 and rings even keep the [-0.5, 0.5] bounds tight
WALL_CELL = 1.0  # metres: walls are split into a grid this fine, so per-vertex lighting varies smoothly
FLOOR_EDGE = 2.0  # metres: max triangle edge on floor and ceiling


@dataclass
class Mesh:
    """Non-indexed triangles: every 3 consecutive vertices form one; each instance's triangles are contiguous."""

    positions: np.ndarray  # (n, 3) float32, world metres
    normals: np.ndarray  # (n, 3) float32, unit
    colors: np.ndarray  # (n, 3) float32, linear RGB in [0, 1]
    instance_ids: np.ndarray  # (n,) int32
    materials: np.ndarray  # (n,) int32, values of MATERIALS
    ranges: dict[int, tuple[int, int]]  # instance id -> (first vertex, vertex count)

    @property
    def triangle_count(self) -> int:
        return len(self.positions) // 3


# -- unit primitives in [-0.5, 0.5]^3: (positions (n, 3), normals (n, 3)) ---------------------------------------
def _quads_to_triangles(quads: np.ndarray) -> np.ndarray:
    """(k, 4, 3) quads with counter-clockwise corners -> (2k * 3, 3) triangle vertices."""
    return quads[:, [0, 1, 2, 0, 2, 3]].reshape(-1, 3)


@functools.cache
def unit_box() -> tuple[np.ndarray, np.ndarray]:
    quads, normals = [], []
    for axis in range(3):
        u, v = (axis + 1) % 3, (axis + 2) % 3
        for sign in (-0.5, 0.5):
            corners = np.zeros((4, 3))
            corners[:, axis] = sign
            corners[:, u] = [-0.5, 0.5, 0.5, -0.5]
            corners[:, v] = [-0.5, -0.5, 0.5, 0.5]
            if sign < 0:
                corners = corners[::-1]
            normal = np.zeros(3)
            normal[axis] = np.sign(sign)
            quads.append(corners)
            normals.append(np.tile(normal, (6, 1)))
    return _quads_to_triangles(np.array(quads)), np.concatenate(normals)


@functools.cache
def unit_cylinder(taper: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Cylinder along z, or a cone frustum whose top radius is `taper` x the bottom one; fills [-0.5, 0.5]^3."""
    angles = np.linspace(0.0, 2 * np.pi, CYLINDER_SEGMENTS + 1)
    ring = np.column_stack([np.cos(angles), np.sin(angles)]) * 0.5
    bottom_radius, top_radius = (1.0, taper) if taper <= 1.0 else (1.0 / taper, 1.0)  # widest end has radius 0.5
    bottom = np.column_stack([ring * bottom_radius, np.full(len(ring), -0.5)])
    top = np.column_stack([ring * top_radius, np.full(len(ring), 0.5)])
    slope = 0.5 * (bottom_radius - top_radius)  # radius lost over unit height tilts the side normals up
    side_normal = np.column_stack([np.cos(angles), np.sin(angles), np.full(len(angles), slope)])
    side_normal /= np.linalg.norm(side_normal, axis=1, keepdims=True)
    positions, normals = [], []
    for i in range(CYLINDER_SEGMENTS):
        positions += [bottom[i], bottom[i + 1], top[i + 1], bottom[i], top[i + 1], top[i]]
        normals += [side_normal[i], side_normal[i + 1], side_normal[i + 1], side_normal[i], side_normal[i + 1], side_normal[i]]
        positions += [np.array([0, 0, 0.5]), top[i], top[i + 1], np.array([0, 0, -0.5]), bottom[i + 1], bottom[i]]
        normals += [np.array([0, 0, 1.0])] * 3 + [np.array([0, 0, -1.0])] * 3
    return np.array(positions), np.array(normals)


@functools.cache
def unit_sphere() -> tuple[np.ndarray, np.ndarray]:
    theta = np.linspace(0.0, np.pi, SPHERE_RINGS + 1)
    phi = np.linspace(0.0, 2 * np.pi, SPHERE_SEGMENTS + 1)
    grid = np.stack(np.meshgrid(theta, phi, indexing="ij"), axis=-1)
    points = np.stack([np.sin(grid[..., 0]) * np.cos(grid[..., 1]), np.sin(grid[..., 0]) * np.sin(grid[..., 1]), np.cos(grid[..., 0])], -1)
    quads = np.stack([points[:-1, :-1], points[1:, :-1], points[1:, 1:], points[:-1, 1:]], axis=2).reshape(-1, 4, 3)
    unit = _quads_to_triangles(quads)
    return unit * 0.5, unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)


def primitive(shape: str, taper: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    if shape == "box":
        return unit_box()
    if shape == "cylinder":
        return unit_cylinder(round(float(taper), 4))
    if shape == "sphere":
        return unit_sphere()
    raise ValueError(f"unknown part shape {shape!r}; expected box, cylinder or sphere")


# -- polygons -----------------------------------------------------------------------------------------------
def signed_area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0


def triangulate_polygon(polygon) -> np.ndarray:
    """Ear clipping of a simple polygon (n, 2) -> (n - 2, 3) vertex indices, counter-clockwise triangles."""
    polygon = np.asarray(polygon, dtype=np.float64)
    order = list(range(len(polygon)))
    if signed_area(polygon) < 0:
        order.reverse()
    triangles = []

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    while len(order) > 3:
        for k in range(len(order)):
            i, j, m = order[k - 1], order[k], order[(k + 1) % len(order)]
            a, b, c = polygon[i], polygon[j], polygon[m]
            if cross(a, b, c) <= 1e-12:
                continue  # reflex or degenerate corner
            others = [p for p in order if p not in (i, j, m)]
            if any(cross(a, b, polygon[p]) >= 0 and cross(b, c, polygon[p]) >= 0 and cross(c, a, polygon[p]) >= 0 for p in others):
                continue  # another vertex inside this ear
            triangles.append((i, j, m))
            order.pop(k)
            break
        else:
            raise ValueError("floor polygon is not simple (self-intersecting or degenerate)")
    triangles.append(tuple(order))
    return np.array(triangles)


def subdivide_triangles(triangles: np.ndarray, max_edge: float) -> np.ndarray:
    """Split triangles (t, 3, d) into 4 at their edge midpoints until no edge exceeds `max_edge`."""
    done, todo = [], np.asarray(triangles, dtype=np.float64)
    while len(todo):
        edges = np.linalg.norm(todo - np.roll(todo, -1, axis=1), axis=2).max(axis=1)
        done.append(todo[edges <= max_edge])
        big = todo[edges > max_edge]
        a, b, c = big[:, 0], big[:, 1], big[:, 2]
        ab, bc, ca = (a + b) / 2, (b + c) / 2, (c + a) / 2
        todo = np.concatenate([np.stack(t, axis=1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))]) if len(big) else big
    return np.concatenate(done)


# -- scene -> mesh ------------------------------------------------------------------------------------------
def category_color(category: str) -> np.ndarray:
    """A stable colour for objects that carry none (hash of the category name)."""
    digest = hashlib.sha1(category.encode()).digest()
    return 0.25 + 0.6 * np.frombuffer(digest[:3], dtype=np.uint8) / 255.0


def _object_parts(obj: ObjectInstance) -> list[dict]:
    parts = obj.attributes.get("parts")
    if parts:
        return parts
    return [{"shape": "box", "center": [0.0, 0.0, 0.0], "size": list(obj.box.size)}]


def _object_triangles(obj: ObjectInstance):
    base_color = np.asarray(obj.attributes.get("color", category_color(obj.category)), dtype=np.float64)
    base_material = obj.attributes.get("material", "plain")
    rotation, center = obj.box.rotation_matrix, np.asarray(obj.box.center)
    for part in _object_parts(obj):
        positions, normals = primitive(part.get("shape", "box"), part.get("taper", 1.0))
        size = np.maximum(np.asarray(part["size"], dtype=np.float64), 1e-6)
        local = positions * size + np.asarray(part.get("center", (0, 0, 0)), dtype=np.float64)
        local_normals = normals / size
        world_normals = local_normals @ rotation.T
        world_normals /= np.linalg.norm(world_normals, axis=1, keepdims=True)
        color = np.asarray(part.get("color", base_color), dtype=np.float64)
        material = MATERIALS[part.get("material", base_material)]
        yield local @ rotation.T + center, world_normals, color, material


def _room_triangles(scene: Scene):
    room = scene.room
    surface_ids: dict[tuple[str, int], ObjectInstance] = {}
    for obj in scene.objects:
        surface = obj.attributes.get("surface")
        if obj.is_structure and surface:
            surface_ids[(surface, int(obj.attributes.get("wall_index", 0)))] = obj

    def style(surface: str, index: int, default_color, default_material):
        obj = surface_ids.get((surface, index))
        if obj is None:
            return 0, np.asarray(default_color), MATERIALS[default_material]
        color = np.asarray(obj.attributes.get("color", default_color))
        return obj.instance_id, color, MATERIALS[obj.attributes.get("material", default_material)]

    polygon = np.asarray(room.floor_polygon, dtype=np.float64)
    if signed_area(polygon) < 0:
        polygon = polygon[::-1]
    triangles = subdivide_triangles(polygon[triangulate_polygon(polygon)], FLOOR_EDGE)  # (t, 3, 2)
    for surface, z, normal_z in (("floor", room.floor_z, 1.0), ("ceiling", room.ceiling_z, -1.0)):
        positions = np.concatenate([triangles.reshape(-1, 2), np.full((triangles.size // 2, 1), z)], axis=1)
        instance_id, color, material = style(surface, 0, (0.55, 0.5, 0.45) if surface == "floor" else (0.92, 0.92, 0.9), "tile" if surface == "floor" else "plaster")
        yield positions, np.tile([0.0, 0.0, normal_z], (len(positions), 1)), color, material, instance_id
    for index in range(len(polygon)):
        start, end = polygon[index], polygon[(index + 1) % len(polygon)]
        direction = (end - start) / np.linalg.norm(end - start)
        inward = np.array([-direction[1], direction[0], 0.0])  # interior lies left of a counter-clockwise edge
        positions = _wall_grid(start, end, room.floor_z, room.ceiling_z)
        instance_id, color, material = style("wall", index, (0.85, 0.83, 0.78), "plaster")
        yield positions, np.tile(inward, (len(positions), 1)), color, material, instance_id


def _wall_grid(start: np.ndarray, end: np.ndarray, bottom: float, top: float) -> np.ndarray:
    """Triangles (n * 3, 3) of a vertical wall from `start` to `end` (xy) split into cells of about WALL_CELL."""
    columns = max(1, int(np.ceil(np.linalg.norm(end - start) / WALL_CELL)))
    rows = max(1, int(np.ceil((top - bottom) / WALL_CELL)))
    s, z = np.linspace(0.0, 1.0, columns + 1), np.linspace(bottom, top, rows + 1)
    xy = start + s[:, None] * (end - start)
    grid = np.concatenate([np.repeat(xy[:, None], rows + 1, axis=1), np.broadcast_to(z, (columns + 1, rows + 1))[..., None]], axis=2)
    quads = np.stack([grid[:-1, :-1], grid[1:, :-1], grid[1:, 1:], grid[:-1, 1:]], axis=2).reshape(-1, 4, 3)
    return _quads_to_triangles(quads)


def scene_mesh(scene: Scene) -> Mesh:
    """All renderable geometry of a scene as one mesh, grouped by instance id."""
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, int]] = []
    if scene.room is not None:
        pieces += [(p, n, c, m, i) for p, n, c, m, i in _room_triangles(scene)]
    for obj in scene.objects:
        if obj.box is None or obj.attributes.get("surface"):
            continue
        pieces += [(p, n, c, m, obj.instance_id) for p, n, c, m in _object_triangles(obj)]
    # objects before room surfaces: drawn front-to-back, llvmpipe's early depth test skips shading hidden wall pixels
    structure = {obj.instance_id for obj in scene.objects if obj.is_structure} | {0}
    pieces.sort(key=lambda piece: (piece[4] in structure, piece[4]))
    positions = np.concatenate([p for p, *_ in pieces]).astype(np.float32)
    normals = np.concatenate([n for _, n, *_ in pieces]).astype(np.float32)
    colors = np.concatenate([np.tile(c, (len(p), 1)) for p, _, c, _, _ in pieces]).astype(np.float32)
    materials = np.concatenate([np.full(len(p), m) for p, _, _, m, _ in pieces]).astype(np.int32)
    instance_ids = np.concatenate([np.full(len(p), i) for p, *_, i in pieces]).astype(np.int32)
    ranges: dict[int, tuple[int, int]] = {}
    start = 0
    for positions_piece, *_, instance_id in pieces:
        first, count = ranges.get(instance_id, (start, 0))
        ranges[instance_id] = (first, count + len(positions_piece))
        start += len(positions_piece)
    return Mesh(positions, normals, colors, instance_ids, materials, ranges)
