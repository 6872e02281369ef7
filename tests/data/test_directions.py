"""Direction sectors and margins: hand-checked angles and the margin boundaries the skills filter on."""

import numpy as np
import pytest

from vst.data.directions import (
    cardinal_angle, cardinal_direction, clock_direction, clockwise_angle, four_way_direction, in_level_frame, level_heading,
    sector, wrap_degrees,
)
from vst.scene.geometry import look_at


def test_clockwise_angle_runs_like_a_compass():
    north, east, south, west = (0, 1), (1, 0), (0, -1), (-1, 0)
    assert clockwise_angle(north, east) == pytest.approx(90.0)
    assert clockwise_angle(north, south) == pytest.approx(180.0)
    assert clockwise_angle(north, west) == pytest.approx(270.0)
    assert clockwise_angle(east, north) == pytest.approx(270.0)
    assert clockwise_angle(north, (1, 1)) == pytest.approx(45.0)
    with pytest.raises(ValueError):
        clockwise_angle((0, 0), north)


def test_cardinal_sectors_and_margins():
    assert cardinal_direction(0.0) == ("north", 22.5)
    assert cardinal_direction(90.0) == ("east", 22.5)
    assert cardinal_direction(225.0) == ("southwest", 22.5)
    assert cardinal_direction(359.0)[0] == "north"
    assert cardinal_angle("southeast") == 135.0
    # 7.4 / 7.6 degrees off a direction leave 15.1 / 14.9 degrees to the sector boundary at 22.5, on both sides
    for centre in (0.0, 45.0, 270.0):
        for sign in (-1.0, 1.0):
            assert cardinal_direction(centre + sign * 7.4)[1] == pytest.approx(15.1)
            assert cardinal_direction(centre + sign * 7.6)[1] == pytest.approx(14.9)
    with pytest.raises(ValueError):
        cardinal_angle("up")


def test_clock_and_four_way():
    assert clock_direction(90.0) == (3, 15.0)
    assert clock_direction(0.0) == (12, 15.0)
    assert clock_direction(270.0)[0] == 9 and clock_direction(345.1)[0] == 12 and clock_direction(344.9)[0] == 11
    assert clock_direction(97.4)[1] == pytest.approx(7.6) and clock_direction(97.6)[1] == pytest.approx(7.4)
    assert four_way_direction(90.0) == ("right", 45.0)
    assert four_way_direction(180.0)[0] == "back" and four_way_direction(280.0)[0] == "left"
    assert four_way_direction(120.1)[1] == pytest.approx(14.9) and four_way_direction(119.9)[1] == pytest.approx(15.1)
    with pytest.raises(ValueError):
        sector(10.0, 7.0)


def test_wrap_degrees():
    assert wrap_degrees(190.0) == pytest.approx(-170.0) and wrap_degrees(-190.0) == pytest.approx(170.0)
    assert wrap_degrees(180.0) == pytest.approx(-180.0)


def test_level_frame_of_a_tilted_camera():
    # a camera looking along +y and 30 degrees down still heads +y; its right is +x
    pose = look_at((0, 0, 1.5), (0, 1.0, 1.5 - np.tan(np.radians(30))))
    heading = level_heading(pose)
    assert heading == pytest.approx([0.0, 1.0])
    assert in_level_frame((0.5, 2.0, -0.1), heading) == pytest.approx([0.5, 2.0, -0.1])
    assert level_heading(look_at((0, 0, 2), (0, 1e-4, 0), up=(0, 1, 0))) is None  # looking straight down
