"""Direction words from angles: 8-way cardinal, 12-hour clock and 4-way sectors, with margins to sector boundaries.

Angles here are **clockwise, in degrees, seen from above** (world z up): that is how compass bearings and clock
faces run, so "east" is 90 degrees clockwise from "north" and 3 o'clock is 90 degrees clockwise from 12. World
xy angles (counter-clockwise from +x, right-handed) are turned into clockwise ones by `clockwise_angle`.

A direction is the sector whose centre is nearest; its margin is the distance (degrees) from the angle to the
nearer edge of that sector, so margin = width / 2 at the sector centre and 0 on a boundary. Filters compare the
margin symmetrically against a threshold (spec data.md §1.9 "Angular margin"; VLM-3R's check was one-sided,
§1.10). Sector widths: cardinal 45 degrees, clock 30 degrees, four-way 90 degrees.
"""

from __future__ import annotations

import numpy as np

CARDINAL_DIRECTIONS = ("north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest")
FOUR_WAY_DIRECTIONS = ("front", "right", "back", "left")
CARDINAL_WIDTH_DEG = 45.0
CLOCK_WIDTH_DEG = 30.0
FOUR_WAY_WIDTH_DEG = 90.0
LEVEL_MIN_NORM = 0.1  # a camera looking within ~6 degrees of straight up/down has no usable heading


def wrap_degrees(angle: float) -> float:
    """An angle (degrees) wrapped into [-180, 180)."""
    return float((angle + 180.0) % 360.0 - 180.0)


def clockwise_angle(reference_xy, target_xy) -> float:
    """Clockwise angle (degrees, [0, 360)) from the 2D vector `reference_xy` (2,) to `target_xy` (2,), seen from above.

    Both are world xy vectors (z up, so counter-clockwise runs from +x to +y); the result runs the other way.
    """
    reference = np.asarray(reference_xy, dtype=np.float64)
    target = np.asarray(target_xy, dtype=np.float64)
    if reference.shape != (2,) or target.shape != (2,):
        raise ValueError(f"expected two (2,) vectors, got {reference.shape} and {target.shape}")
    if np.linalg.norm(reference) < 1e-12 or np.linalg.norm(target) < 1e-12:
        raise ValueError("clockwise_angle needs non-zero vectors")
    counter_clockwise = np.degrees(np.arctan2(target[1], target[0]) - np.arctan2(reference[1], reference[0]))
    return float((-counter_clockwise) % 360.0)


def sector(angle_deg: float, width_deg: float) -> tuple[int, float]:
    """(index, margin_deg) of the sector of `width_deg` containing a clockwise angle; sector 0 is centred on 0.

    margin_deg is the distance to the nearer sector boundary, in [0, width_deg / 2].
    """
    count = round(360.0 / width_deg)
    if not np.isclose(count * width_deg, 360.0):
        raise ValueError(f"sector width {width_deg} does not divide 360 degrees")
    index = int(np.round((angle_deg % 360.0) / width_deg)) % count
    offset = abs(wrap_degrees(angle_deg - index * width_deg))
    return index, float(width_deg / 2.0 - offset)


def cardinal_direction(angle_deg: float) -> tuple[str, float]:
    """("northeast", margin_deg) for a clockwise angle from north."""
    index, margin = sector(angle_deg, CARDINAL_WIDTH_DEG)
    return CARDINAL_DIRECTIONS[index], margin


def cardinal_angle(direction: str) -> float:
    """Clockwise angle (degrees) of a cardinal direction from north."""
    if direction not in CARDINAL_DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; expected one of {', '.join(CARDINAL_DIRECTIONS)}")
    return CARDINAL_DIRECTIONS.index(direction) * CARDINAL_WIDTH_DEG


def clock_direction(angle_deg: float) -> tuple[int, float]:
    """(hour 1..12, margin_deg) for a clockwise angle from 12 o'clock (straight ahead)."""
    index, margin = sector(angle_deg, CLOCK_WIDTH_DEG)
    return (index or 12), margin


def four_way_direction(angle_deg: float) -> tuple[str, float]:
    """("front" | "right" | "back" | "left", margin_deg) for a clockwise angle from straight ahead."""
    index, margin = sector(angle_deg, FOUR_WAY_WIDTH_DEG)
    return FOUR_WAY_DIRECTIONS[index], margin


def level_heading(cam_to_world) -> np.ndarray | None:
    """Unit world xy vector (2,) of a camera's viewing direction projected onto the floor; None if it looks straight
    up or down. With it, `right = (heading[1], -heading[0])` is the camera's right on the floor plane."""
    pose = np.asarray(cam_to_world, dtype=np.float64)
    if pose.shape != (4, 4):
        raise ValueError(f"cam_to_world must have shape (4, 4), got {pose.shape}")
    forward = pose[:2, 2]
    norm = np.linalg.norm(forward)
    return forward / norm if norm >= LEVEL_MIN_NORM else None


def in_level_frame(offset_world, heading_xy) -> np.ndarray:
    """A world offset (3,) as (right, forward, up) metres in the levelled frame of a camera with `heading_xy` (2,)."""
    offset = np.asarray(offset_world, dtype=np.float64)
    heading = np.asarray(heading_xy, dtype=np.float64)
    right = np.array([heading[1], -heading[0]])
    return np.array([offset[:2] @ right, offset[:2] @ heading, offset[2]])
