"""Object categories for procedural rooms: real-world size ranges, placement rules and part assemblies.

Sizes are (width x, depth y, height z) in metres in the object's box frame: x right, +y the object's front
(the side a person faces or uses), z up. Builders return primitives (`box`, `cylinder`, `sphere`) in that
frame; `procedural.py` fits the OBB to them, so an object's box is always tight around what is rendered.
Size priors follow common furniture dimensions (spec data.md §3.4: chair about 0.45 x 0.5 x 0.9 m,
door about 0.9 x 2.0 m).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Part = dict  # {"shape", "center" [3], "size" [3], optional "color" [3], "material", "taper"}

# Colour names are what questions will say ("the red chair"), so they must be tellable apart in a render.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.78, 0.16, 0.14), "orange": (0.92, 0.5, 0.12), "yellow": (0.93, 0.8, 0.2), "green": (0.22, 0.6, 0.25),
    "blue": (0.18, 0.35, 0.8), "purple": (0.5, 0.25, 0.65), "pink": (0.93, 0.55, 0.7), "brown": (0.45, 0.28, 0.15),
    "black": (0.1, 0.1, 0.11), "white": (0.93, 0.93, 0.92), "gray": (0.5, 0.5, 0.52), "beige": (0.85, 0.76, 0.6),
    "teal": (0.1, 0.55, 0.55), "navy": (0.12, 0.16, 0.4), "maroon": (0.45, 0.08, 0.12), "olive": (0.45, 0.45, 0.15),
}
WOOD_COLORS = ("brown", "beige", "black", "white", "maroon")


@dataclass(frozen=True)
class Category:
    name: str
    size_min: tuple[float, float, float]
    size_max: tuple[float, float, float]
    placement: str  # floor | wall (back against a wall) | surface (on a support) | in_wall (door, window, picture)
    build: Callable[[np.ndarray, np.random.Generator], list[Part]]
    materials: tuple[str, ...] = ("plain",)
    colors: tuple[str, ...] = tuple(COLORS)
    support: bool = False  # small objects may stand on its top face
    supported_by: tuple[str, ...] = ()  # for placement == "surface": allowed supports (empty = any support)


def part(shape: str, center, size, **extra) -> Part:
    return {"shape": shape, "center": [float(v) for v in center], "size": [float(v) for v in size], **extra}


# -- builders: size = (w, d, h); box frame centred at the origin ------------------------------------------------
def solid(size, rng):
    return [part("box", (0, 0, 0), size)]


def cabinet(size, rng):
    w, d, h = size
    parts = [part("box", (0, -0.01, 0), (w, d - 0.02, h))]
    doors = 2 if w > 0.6 else 1
    for i in range(doors):  # door panels with a small gap on the front face, each with a handle
        x = -w / 2 + (i + 0.5) * w / doors
        parts.append(part("box", (x, d / 2 - 0.015, 0), (w / doors - 0.02, 0.01, h - 0.04)))
        handle_x = x + (0.35 if i == 0 and doors == 2 else -0.35) * w / doors
        parts.append(part("box", (handle_x, d / 2 - 0.005, 0.25 * h), (0.02, 0.01, min(0.15, 0.3 * h)), material="metal"))
    return parts


def table(size, rng):
    w, d, h = size
    top = 0.04
    leg = min(0.06, w / 6, d / 6)
    parts = [part("box", (0, 0, h / 2 - top / 2), (w, d, top))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(part("box", (sx * (w / 2 - leg), sy * (d / 2 - leg), -top / 2), (leg, leg, h - top)))
    return parts


def desk(size, rng):
    w, d, h = size
    top = 0.04
    parts = [part("box", (0, 0, h / 2 - top / 2), (w, d, top))]
    for sx in (-1, 1):
        parts.append(part("box", (sx * (w / 2 - 0.02), 0, -top / 2), (0.04, d, h - top)))
    return parts


def chair(size, rng):
    w, d, h = size
    seat_h, leg = 0.45 * h / 0.9, 0.04
    parts = [part("box", (0, 0, -h / 2 + seat_h), (w, d, 0.05))]
    parts.append(part("box", (0, -d / 2 + 0.025, -h / 2 + seat_h + (h - seat_h) / 2), (w, 0.05, h - seat_h)))
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(part("box", (sx * (w / 2 - leg), sy * (d / 2 - leg), -h / 2 + (seat_h - 0.025) / 2), (leg, leg, seat_h - 0.025)))
    return parts


def stool(size, rng):
    w, d, h = size
    parts = [part("cylinder", (0, 0, h / 2 - 0.025), (w, d, 0.05))]
    for angle in (0.0, 2.1, 4.2):
        parts.append(part("cylinder", (0.32 * w * np.cos(angle), 0.32 * d * np.sin(angle), -0.025), (0.04, 0.04, h - 0.05)))
    return parts


def sofa(size, rng, arms: bool = True):
    w, d, h = size
    arm = 0.15 * min(1.0, w / 1.2)
    seat_h = 0.45 * h
    parts = [
        part("box", (0, 0.05 * d, -h / 2 + seat_h / 2), (w, 0.9 * d, seat_h)),
        part("box", (0, -d / 2 + 0.1 * d, 0), (w, 0.2 * d, h)),
    ]
    if arms:
        for sx in (-1, 1):
            parts.append(part("box", (sx * (w / 2 - arm / 2), 0, -h / 2 + 0.33 * h), (arm, d, 0.66 * h)))
    return parts


def bed(size, rng):
    w, d, h = size
    mattress_top = 0.55 * h
    parts = [
        part("box", (0, 0.03, -h / 2 + mattress_top / 2), (w, d - 0.06, mattress_top), material="fabric"),
        part("box", (0, -d / 2 + 0.03, 0), (w, 0.06, h), material="wood"),
        part("box", (0, -d / 2 + 0.25, -h / 2 + mattress_top + 0.06), (0.7 * w, 0.3, 0.12), color=list(COLORS["white"]), material="fabric"),
    ]
    return parts


def bookshelf(size, rng):
    w, d, h = size
    board = 0.03
    parts = [part("box", (sx * (w / 2 - board / 2), 0, 0), (board, d, h)) for sx in (-1, 1)]
    parts.append(part("box", (0, -d / 2 + 0.01, 0), (w - 2 * board, 0.02, h)))
    shelves = max(2, int(h / 0.35))
    for i in range(shelves + 1):
        z = -h / 2 + board / 2 + i * (h - board) / shelves
        parts.append(part("box", (0, 0.01, z), (w - 2 * board, d - 0.02, board)))
    return parts


def lamp(size, rng, shade_fraction: float = 0.3):
    w, d, h = size
    shade_h = shade_fraction * h
    base_h = 0.03
    return [
        part("cylinder", (0, 0, -h / 2 + base_h / 2), (0.6 * w, 0.6 * d, base_h), material="metal"),
        part("cylinder", (0, 0, -shade_h / 2), (0.05 * w + 0.02, 0.05 * d + 0.02, h - shade_h), material="metal"),
        part("cylinder", (0, 0, h / 2 - shade_h / 2), (w, d, shade_h), taper=0.6, color=list(COLORS["beige"]), material="fabric"),
    ]


def plant(size, rng):
    w, d, h = size
    pot_h = 0.35 * h
    return [
        part("cylinder", (0, 0, -h / 2 + pot_h / 2), (0.6 * w, 0.6 * d, pot_h), taper=1.25),
        part("sphere", (0, 0, -h / 2 + pot_h + (h - pot_h) / 2), (w, d, h - pot_h), color=list(COLORS["green"]), material="fabric"),
    ]


def cylinder(size, rng, taper: float = 1.0):
    return [part("cylinder", (0, 0, 0), size, taper=taper)]


def bottle(size, rng):
    w, d, h = size
    return [part("cylinder", (0, 0, -0.15 * h), (w, d, 0.7 * h)), part("cylinder", (0, 0, 0.35 * h), (0.4 * w, 0.4 * d, 0.3 * h))]


def screen(size, rng, stand: bool = True):
    w, d, h = size
    if not stand:
        return [part("box", (0, 0, 0), size, material="screen")]
    panel_h = 0.8 * h
    return [
        part("box", (0, 0, h / 2 - panel_h / 2), (w, 0.3 * d, panel_h), color=list(COLORS["black"]), material="screen"),
        part("box", (0, 0, -h / 2 + (h - panel_h) / 2), (0.1 * w, 0.3 * d, h - panel_h), material="metal"),
        part("box", (0, 0, -h / 2 + 0.01), (0.4 * w, d, 0.02), material="metal"),
    ]


def laptop(size, rng):
    w, d, h = size
    return [part("box", (0, 0, -h / 2 + 0.01), (w, d, 0.02)), part("box", (0, -d / 2 + 0.01, 0.01), (w, 0.02, h - 0.02), color=list(COLORS["black"]), material="screen")]


def toilet(size, rng):
    w, d, h = size
    return [
        part("cylinder", (0, 0.1 * d, -h / 2 + 0.2), (0.9 * w, 0.8 * d, 0.4), taper=1.15),
        part("box", (0, -d / 2 + 0.1, 0.2), (w, 0.2, h - 0.4)),
    ]


def sink(size, rng):
    w, d, h = size
    return [
        part("box", (0, 0, -0.06), (w, d, h - 0.12), material="wood"),
        part("cylinder", (0, 0.05 * d, h / 2 - 0.06), (0.6 * w, 0.6 * d, 0.12), taper=1.3, color=list(COLORS["white"]), material="metal"),
    ]


def door(size, rng):
    w, d, h = size
    return [part("box", (0, 0, 0), (w, d, h), material="wood"), part("box", (0.38 * w, d / 2 + 0.0, -0.05 * h), (0.12, 0.02, 0.03), material="metal")]


def window(size, rng):
    w, d, h = size
    frame = 0.06
    parts = [part("box", (0, -0.005, 0), (w - 2 * frame, d - 0.01, h - 2 * frame), color=[0.62, 0.78, 0.92], material="screen")]
    for sz in (-1, 1):
        parts.append(part("box", (0, 0, sz * (h / 2 - frame / 2)), (w, d, frame)))
    for sx in (-1, 1):
        parts.append(part("box", (sx * (w / 2 - frame / 2), 0, 0), (frame, d, h - 2 * frame)))
    return parts


def picture(size, rng):
    w, d, h = size
    palette = list(COLORS.values())
    canvas = palette[int(rng.integers(len(palette)))]
    return [part("box", (0, -0.005, 0), (w, d - 0.01, h)), part("box", (0, d / 2 - 0.005, 0), (w - 0.08, 0.01, h - 0.08), color=list(canvas))]


def fridge(size, rng):
    w, d, h = size
    return [part("box", (0, 0, 0), (w, d - 0.03, h), material="metal"), part("box", (0.4 * w, d / 2 - 0.015, 0.1 * h), (0.03, 0.03, 0.3 * h), material="metal")]


CATEGORIES: dict[str, Category] = {}


def _add(category: Category) -> None:
    if category.name in CATEGORIES:
        raise ValueError(f"duplicate category {category.name!r}")
    CATEGORIES[category.name] = category


for _category in [
    # furniture standing on the floor anywhere
    Category("chair", (0.42, 0.45, 0.8), (0.52, 0.55, 1.0), "floor", chair, ("wood", "plain")),
    Category("armchair", (0.7, 0.7, 0.75), (0.95, 0.9, 1.0), "floor", lambda s, r: sofa(s, r), ("fabric",)),
    Category("table", (0.8, 0.7, 0.72), (1.8, 1.0, 0.78), "floor", table, ("wood",), WOOD_COLORS, support=True),
    Category("coffee_table", (0.8, 0.45, 0.35), (1.3, 0.7, 0.48), "floor", table, ("wood",), WOOD_COLORS, support=True),
    Category("stool", (0.3, 0.3, 0.45), (0.4, 0.4, 0.75), "floor", stool, ("wood", "metal")),
    Category("floor_lamp", (0.35, 0.35, 1.4), (0.5, 0.5, 1.8), "floor", lambda s, r: lamp(s, r, 0.2), ("metal",)),
    Category("plant", (0.35, 0.35, 0.6), (0.7, 0.7, 1.5), "floor", plant, ("plain",), ("brown", "white", "gray", "black", "orange")),
    Category("trash_can", (0.25, 0.25, 0.3), (0.4, 0.4, 0.7), "floor", lambda s, r: cylinder(s, r, 1.15), ("plain", "metal")),
    Category("rug", (1.2, 0.8, 0.01), (2.5, 1.8, 0.02), "floor", solid, ("fabric",)),
    Category("box", (0.3, 0.25, 0.2), (0.6, 0.5, 0.5), "floor", solid, ("plain",), ("brown", "beige", "white")),
    Category("ottoman", (0.45, 0.45, 0.35), (0.8, 0.6, 0.45), "floor", solid, ("fabric",)),
    # furniture with its back against a wall
    Category("sofa", (1.6, 0.8, 0.75), (2.4, 1.0, 0.95), "wall", sofa, ("fabric",)),
    Category("bed", (1.0, 1.95, 0.9), (1.9, 2.15, 1.2), "wall", bed, ("fabric",)),
    Category("desk", (1.0, 0.55, 0.72), (1.6, 0.8, 0.78), "wall", desk, ("wood",), WOOD_COLORS, support=True),
    Category("nightstand", (0.4, 0.35, 0.45), (0.55, 0.45, 0.65), "wall", cabinet, ("wood",), WOOD_COLORS, support=True),
    Category("cabinet", (0.6, 0.4, 0.8), (1.2, 0.6, 1.1), "wall", cabinet, ("wood", "plain"), WOOD_COLORS, support=True),
    Category("dresser", (0.9, 0.45, 0.75), (1.5, 0.55, 1.0), "wall", cabinet, ("wood",), WOOD_COLORS, support=True),
    Category("wardrobe", (0.9, 0.55, 1.9), (1.6, 0.65, 2.2), "wall", cabinet, ("wood",), WOOD_COLORS),
    Category("bookshelf", (0.7, 0.3, 1.5), (1.2, 0.4, 2.1), "wall", bookshelf, ("wood",), WOOD_COLORS),
    Category("tv_stand", (1.0, 0.4, 0.4), (1.8, 0.5, 0.6), "wall", cabinet, ("wood",), WOOD_COLORS, support=True),
    Category("fridge", (0.6, 0.65, 1.6), (0.9, 0.75, 1.9), "wall", fridge, ("metal",), ("white", "gray", "black")),
    Category("toilet", (0.38, 0.65, 0.75), (0.45, 0.75, 0.85), "wall", toilet, ("plain",), ("white",)),
    Category("sink", (0.5, 0.45, 0.8), (1.0, 0.55, 0.9), "wall", sink, ("wood",), WOOD_COLORS),
    # small objects standing on a support
    Category("tv", (0.9, 0.2, 0.55), (1.5, 0.3, 0.9), "surface", screen, ("screen",), ("black", "gray"), supported_by=("tv_stand",)),
    Category("monitor", (0.45, 0.18, 0.35), (0.7, 0.25, 0.5), "surface", screen, ("screen",), ("black", "gray", "white"), supported_by=("desk", "table")),
    Category("laptop", (0.3, 0.22, 0.2), (0.38, 0.26, 0.25), "surface", laptop, ("metal",), ("gray", "black", "white"), supported_by=("desk", "table", "coffee_table")),
    Category("table_lamp", (0.2, 0.2, 0.3), (0.35, 0.35, 0.55), "surface", lamp, ("metal",)),
    Category("bottle", (0.06, 0.06, 0.2), (0.1, 0.1, 0.32), "surface", bottle, ("plain",)),
    Category("cup", (0.07, 0.07, 0.08), (0.1, 0.1, 0.12), "surface", cylinder, ("plain",)),
    Category("book", (0.15, 0.2, 0.02), (0.22, 0.3, 0.06), "surface", solid, ("plain",)),
    Category("vase", (0.1, 0.1, 0.2), (0.2, 0.2, 0.4), "surface", lambda s, r: cylinder(s, r, 0.7), ("plain",)),
    Category("bowl", (0.15, 0.15, 0.06), (0.28, 0.28, 0.12), "surface", lambda s, r: cylinder(s, r, 1.5), ("plain",)),
    Category("potted_plant", (0.15, 0.15, 0.25), (0.3, 0.3, 0.5), "surface", plant, ("plain",), ("white", "brown", "orange")),
    # set into or hung on a wall
    Category("door", (0.8, 0.05, 2.0), (0.95, 0.05, 2.1), "in_wall", door, ("wood",), WOOD_COLORS),
    Category("window", (0.8, 0.08, 1.0), (1.6, 0.08, 1.4), "in_wall", window, ("plain",), ("white", "black", "gray")),
    Category("picture", (0.4, 0.03, 0.3), (1.0, 0.03, 0.8), "in_wall", picture, ("plain",), ("black", "brown", "white")),
]:
    _add(_category)


def category(name: str) -> Category:
    if name not in CATEGORIES:
        raise KeyError(f"unknown category {name!r}; known: {', '.join(sorted(CATEGORIES))}")
    return CATEGORIES[name]
