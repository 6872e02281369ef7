"""Seeded procedural indoor rooms (spec data.md §3.4): floor plans, furniture, small objects, cameras.

A room is rectangular or L-shaped (10-60 m^2 floor, 2.4-3.2 m high) with floor, ceiling and walls as
structure instances. Furniture comes from `catalog.py` with real-world size priors: wall furniture backs
onto a wall, free furniture stands anywhere (chairs gather around tables), small objects stand on support
surfaces, doors/windows/pictures sit in the walls. Placement rejects any footprint that leaves the floor
polygon or comes within `CLEARANCE` of another object whose height range it shares, so nothing
interpenetrates. Some categories get 2-4 copies (counting questions), the rest one (unique referents);
copies of a category never share a colour name. All randomness comes from the `rng` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vst.scene import catalog
from vst.scene.cameras import CameraConfig, add_cameras
from vst.scene.geometry import points_in_polygon, polygon_area, rotation_z
from vst.scene.types import OBB, ObjectInstance, Room, Scene

CLEARANCE = 0.1  # metres between floor objects (spec data.md §3.4)
SURFACE_CLEARANCE = 0.03  # between small objects on one support
WALL_GAP = 0.02  # between a wall and the back of wall furniture
PLACEMENT_TRIES = 60

THEMES: dict[str, dict[str, float]] = {  # category -> expected count (fractional parts are probabilities)
    "living_room": {"sofa": 1, "armchair": 1.2, "coffee_table": 0.9, "tv_stand": 0.8, "tv": 0.8, "floor_lamp": 0.8, "plant": 1.4, "bookshelf": 0.7, "rug": 0.6, "picture": 1.2, "ottoman": 0.4, "cabinet": 0.5},
    "bedroom": {"bed": 1, "nightstand": 1.6, "wardrobe": 0.8, "dresser": 0.7, "table_lamp": 1.2, "plant": 0.7, "chair": 0.6, "rug": 0.5, "picture": 1.0, "box": 0.6},
    "office": {"desk": 1.6, "chair": 2.5, "monitor": 1.5, "laptop": 0.8, "bookshelf": 1.0, "cabinet": 0.8, "plant": 0.9, "trash_can": 1.0, "table_lamp": 0.5, "box": 0.8},
    "dining_room": {"table": 1.1, "chair": 4.0, "cabinet": 0.9, "plant": 1.0, "floor_lamp": 0.5, "picture": 1.0, "fridge": 0.4, "stool": 0.8, "trash_can": 0.5},
    "bathroom": {"toilet": 1, "sink": 1, "cabinet": 0.6, "trash_can": 0.8, "plant": 0.4, "picture": 0.5},
}
SMALL_OBJECTS = {"bottle": 2.0, "cup": 1.8, "book": 2.0, "vase": 0.8, "bowl": 1.0, "potted_plant": 0.8, "laptop": 0.4, "table_lamp": 0.5}
# Any room also gets a few of these, so rooms of one theme still differ and larger rooms are not empty.
FILLERS = ("plant", "box", "trash_can", "chair", "cabinet", "bookshelf", "floor_lamp", "stool", "ottoman", "armchair", "table", "picture", "dresser")
FILLERS_PER_10_M2 = 1.2


@dataclass
class ProceduralConfig:
    """What one procedural scene contains. Every field is part of the generation fingerprint."""

    room_area: tuple[float, float] = (10.0, 60.0)
    room_height: tuple[float, float] = (2.4, 3.2)
    l_shape_probability: float = 0.4
    cameras: CameraConfig = field(default_factory=CameraConfig)


@dataclass
class _Placed:
    """Collision proxy: yaw-rotated footprint rectangle plus height interval."""

    instance_id: int
    center: np.ndarray  # (2,)
    half: np.ndarray  # (2,) half extents
    yaw: float
    z: tuple[float, float]
    support: bool = False

    def corners(self, grow: float = 0.0) -> np.ndarray:
        signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
        return self.center + (signs * (self.half + grow)) @ rotation_z(self.yaw)[:2, :2].T


def _rectangles_overlap(a: _Placed, b: _Placed, grow: float) -> bool:
    """2D separating-axis test between two yawed rectangles, `a` grown by `grow` on every side."""
    corners_a, corners_b = a.corners(grow), b.corners()
    for yaw in (a.yaw, b.yaw):
        for axis in rotation_z(yaw)[:2, :2].T:
            pa, pb = corners_a @ axis, corners_b @ axis
            if pa.max() <= pb.min() or pb.max() <= pa.min():
                return False
    return True


def make_floor_polygon(rng: np.random.Generator, config: ProceduralConfig) -> np.ndarray:
    """Counter-clockwise rectangle or L-shape (n, 2) whose area lies in `config.room_area`."""
    area = rng.uniform(*config.room_area)
    aspect = rng.uniform(1.0, 1.8)
    if rng.random() >= config.l_shape_probability:
        width = np.sqrt(area * aspect)
        depth = area / width
        return np.array([[0, 0], [width, 0], [width, depth], [0, depth]])
    notch_x, notch_y = rng.uniform(0.3, 0.5, 2)  # fraction of the bounding box cut from one corner
    bounding_area = area / (1.0 - notch_x * notch_y)
    width = np.sqrt(bounding_area * aspect)
    depth = bounding_area / width
    cut_x, cut_y = width * (1 - notch_x), depth * (1 - notch_y)
    return np.array([[0, 0], [width, 0], [width, cut_y], [cut_x, cut_y], [cut_x, depth], [0, depth]])


class _Layout:
    """Mutable state while one room is furnished."""

    def __init__(self, polygon: np.ndarray, height: float, rng: np.random.Generator):
        self.polygon, self.height, self.rng = polygon, height, rng
        self.objects: list[ObjectInstance] = []
        self.placed: list[_Placed] = []
        self.colors_used: dict[str, set[str]] = {}

    def next_id(self) -> int:
        return max((o.instance_id for o in self.objects), default=0) + 1

    def inside(self, proxy: _Placed, grow: float) -> bool:
        corners = proxy.corners(grow)
        edges = [corners[i] + t * (corners[(i + 1) % 4] - corners[i]) for i in range(4) for t in np.linspace(0, 1, 9)]
        return bool(points_in_polygon(np.array(edges), self.polygon).all())

    def free(self, proxy: _Placed, grow: float, ignore: int | None = None) -> bool:
        for other in self.placed:
            if other.instance_id == ignore or proxy.z[1] <= other.z[0] or other.z[1] <= proxy.z[0]:
                continue
            if _rectangles_overlap(proxy, other, grow):
                return False
        return True

    def pick_color(self, spec: catalog.Category) -> str:
        used = self.colors_used.setdefault(spec.name, set())
        choices = [c for c in spec.colors if c not in used] or list(spec.colors)
        name = choices[int(self.rng.integers(len(choices)))]
        used.add(name)
        return name

    def add(self, spec: catalog.Category, size: np.ndarray, center_xy, yaw: float, z0: float, proxy: _Placed | None = None, **attributes) -> ObjectInstance:
        color_name = self.pick_color(spec)
        parts = spec.build(size, self.rng)
        obj = ObjectInstance(
            instance_id=self.next_id(),
            category=spec.name,
            raw_label=spec.name.replace("_", " "),
            description=f"the {color_name} {spec.name.replace('_', ' ')}",
            box=OBB(center=(float(center_xy[0]), float(center_xy[1]), float(z0 + size[2] / 2)), size=tuple(float(v) for v in size), rotation=rotation_z(yaw).tolist()),
            attributes={"color_name": color_name, "color": list(catalog.COLORS[color_name]), "material": str(self.rng.choice(spec.materials)), "parts": parts, **attributes},
        )
        self.objects.append(obj)
        proxy = proxy or _Placed(0, np.asarray(center_xy, float), size[:2] / 2, yaw, (z0, z0 + size[2]))
        proxy.instance_id, proxy.support = obj.instance_id, spec.support
        self.placed.append(proxy)
        return obj


def _sample_size(spec: catalog.Category, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(spec.size_min, spec.size_max)


def _walls(polygon: np.ndarray):
    for index in range(len(polygon)):
        start, end = polygon[index], polygon[(index + 1) % len(polygon)]
        length = float(np.linalg.norm(end - start))
        direction = (end - start) / length
        yield index, start, direction, length, float(np.arctan2(direction[1], direction[0]))


def _place_against_wall(layout: _Layout, spec: catalog.Category, size: np.ndarray, z0: float, gap: float, grow: float, reserve_depth: float = 0.0) -> bool:
    """Back the object onto a random wall, front facing into the room; `reserve_depth` keeps floor in front free."""
    walls = [w for w in _walls(layout.polygon) if w[3] >= size[0] + 0.2]
    footprint_depth = max(size[1], reserve_depth)
    for _ in range(PLACEMENT_TRIES if walls else 0):
        index, start, direction, length, yaw = walls[int(layout.rng.integers(len(walls)))]
        along = layout.rng.uniform(size[0] / 2 + 0.05, length - size[0] / 2 - 0.05)
        inward = np.array([-direction[1], direction[0]])
        base = start + along * direction
        z_top = layout.height if reserve_depth else z0 + size[2]
        proxy = _Placed(0, base + inward * (gap + footprint_depth / 2), np.array([size[0], footprint_depth]) / 2, yaw, (z0, z_top))
        if layout.inside(proxy, -0.005) and layout.free(proxy, grow):
            layout.add(spec, size, base + inward * (gap + size[1] / 2), yaw, z0, proxy=proxy, wall_index=index)
            return True
    return False


def _place_on_floor(layout: _Layout, spec: catalog.Category, size: np.ndarray) -> ObjectInstance | None:
    lo, hi = layout.polygon.min(axis=0), layout.polygon.max(axis=0)
    for _ in range(PLACEMENT_TRIES):
        center = layout.rng.uniform(lo, hi)
        base_yaw = layout.rng.integers(4) * np.pi / 2
        yaw = base_yaw + (layout.rng.normal(0, np.radians(6)) if layout.rng.random() < 0.6 else layout.rng.uniform(-np.pi / 4, np.pi / 4))
        proxy = _Placed(0, center, size[:2] / 2, yaw, (0.0, size[2]))
        if layout.inside(proxy, CLEARANCE) and layout.free(proxy, CLEARANCE):
            return layout.add(spec, size, center, yaw, 0.0)
    return None


def _place_chairs_around(layout: _Layout, table: ObjectInstance, count: int) -> None:
    spec = catalog.category("chair")
    rotation = np.asarray(table.box.rotation)[:2, :2]
    half = np.asarray(table.box.size[:2]) / 2
    sides = [(np.array([0.0, 1.0]), half[1]), (np.array([0.0, -1.0]), half[1]), (np.array([1.0, 0.0]), half[0]), (np.array([-1.0, 0.0]), half[0])]
    for side_index in layout.rng.permutation(4)[:count]:
        normal_local, extent = sides[side_index]
        size = _sample_size(spec, layout.rng)
        normal = rotation @ normal_local
        center = np.asarray(table.box.center[:2]) + normal * (extent + size[1] / 2 + 0.12)
        yaw = float(np.arctan2(normal[1], normal[0]) + np.pi / 2)  # chair front (+y) faces the table
        proxy = _Placed(0, center, size[:2] / 2, yaw, (0.0, size[2]))
        if layout.inside(proxy, CLEARANCE) and layout.free(proxy, 0.05):
            layout.add(spec, size, center, yaw, 0.0, facing=table.instance_id)


def _place_on_support(layout: _Layout, spec: catalog.Category, size: np.ndarray) -> bool:
    supports = [p for p in layout.placed if p.support and (not spec.supported_by or layout_category(layout, p.instance_id) in spec.supported_by)]
    for _ in range(PLACEMENT_TRIES if supports else 0):
        support = supports[int(layout.rng.integers(len(supports)))]
        room = support.half - size[:2] / 2 - 0.02
        if np.any(room < 0):
            continue
        local = layout.rng.uniform(-room, room)
        center = support.center + rotation_z(support.yaw)[:2, :2] @ local
        yaw = support.yaw + (layout.rng.normal(0, np.radians(8)) if spec.supported_by else layout.rng.uniform(0, np.pi))
        proxy = _Placed(0, center, size[:2] / 2, yaw, (support.z[1], support.z[1] + size[2]))
        if layout.inside(proxy, 0.0) and layout.free(proxy, SURFACE_CLEARANCE, ignore=support.instance_id):
            layout.add(spec, size, center, yaw, support.z[1], on=support.instance_id)
            return True
    return False


def layout_category(layout: _Layout, instance_id: int) -> str:
    return next(o.category for o in layout.objects if o.instance_id == instance_id)


def _add_structure(layout: _Layout, polygon: np.ndarray, height: float) -> None:
    lo, hi = polygon.min(axis=0), polygon.max(axis=0)
    center = (lo + hi) / 2
    for surface, z in (("floor", -0.025), ("ceiling", height + 0.025)):
        layout.objects.append(ObjectInstance(
            instance_id=layout.next_id(), category=surface, raw_label=surface, is_structure=True,
            box=OBB(center=(float(center[0]), float(center[1]), z), size=(float(hi[0] - lo[0]), float(hi[1] - lo[1]), 0.05)),
            attributes={"surface": surface},
        ))
    for index, start, direction, length, yaw in _walls(polygon):
        inward = np.array([-direction[1], direction[0]])
        middle = start + direction * length / 2 - inward * 0.05
        layout.objects.append(ObjectInstance(
            instance_id=layout.next_id(), category="wall", raw_label="wall", is_structure=True,
            box=OBB(center=(float(middle[0]), float(middle[1]), height / 2), size=(length, 0.1, height), rotation=rotation_z(yaw).tolist()),
            attributes={"surface": "wall", "wall_index": index},
        ))


def _expected_counts(weights: dict[str, float], rng: np.random.Generator) -> list[str]:
    names = []
    for name, expected in weights.items():
        count = int(expected) + int(rng.random() < expected - int(expected))
        names += [name] * count
    return names


def furnish(layout: _Layout, theme: str) -> None:
    rng = layout.rng
    names = _expected_counts(THEMES[theme], rng)
    fillers = rng.poisson(FILLERS_PER_10_M2 * polygon_area(layout.polygon) / 10.0)
    names += [FILLERS[i] for i in rng.integers(len(FILLERS), size=fillers)]
    # doors and windows first (they constrain the walls), then big furniture, then small objects
    in_wall = ["door"] * (1 + int(rng.random() < 0.25)) + ["window"] * int(rng.integers(0, 3))
    order = {"in_wall": 0, "wall": 1, "floor": 2, "surface": 3}
    queue = sorted(in_wall + names, key=lambda n: order[catalog.category(n).placement])
    for name in queue:
        spec = catalog.category(name)
        size = _sample_size(spec, rng)
        if spec.placement == "in_wall":
            z0 = {"door": 0.0, "window": rng.uniform(0.8, 1.0), "picture": rng.uniform(1.2, 1.6)}[name]
            size[2] = min(size[2], layout.height - z0 - 0.1)
            # a door keeps its swing zone (0.9 m deep, full height) free of furniture
            _place_against_wall(layout, spec, size, z0, 0.001, 0.05, reserve_depth=0.9 if name == "door" else 0.0)
        elif spec.placement == "wall":
            _place_against_wall(layout, spec, size, 0.0, WALL_GAP, CLEARANCE)
        elif spec.placement == "floor":
            table = _place_on_floor(layout, spec, size)
            if table is not None and name == "table" and rng.random() < 0.8:
                _place_chairs_around(layout, table, int(rng.integers(2, 5)))
        else:
            _place_on_support(layout, spec, size)
    for name in _expected_counts(SMALL_OBJECTS, rng):
        spec = catalog.category(name)
        _place_on_support(layout, spec, _sample_size(spec, rng))


def generate_layout(rng: np.random.Generator, scene_id: str, config: ProceduralConfig | None = None) -> Scene:
    """A furnished room with cameras and no rendered images (render with `capture.render_scene`)."""
    config = config or ProceduralConfig()
    polygon = make_floor_polygon(rng, config)
    height = float(rng.uniform(*config.room_height))
    theme = list(THEMES)[int(rng.integers(len(THEMES)))]
    if theme == "bathroom" and polygon_area(polygon) > 20:
        theme = "bedroom"
    layout = _Layout(polygon, height, rng)
    _add_structure(layout, polygon, height)
    furnish(layout, theme)
    room = Room(floor_polygon=[tuple(map(float, p)) for p in polygon], floor_z=0.0, ceiling_z=height, area_m2=polygon_area(polygon))
    scene = Scene(scene_id=scene_id, source="procedural", objects=layout.objects, room=room, license="CC0-1.0 (procedurally generated by vst)")
    return add_cameras(scene, rng, config.cameras)
