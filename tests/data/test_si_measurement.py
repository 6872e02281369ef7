"""Measurement on a hand-built scene with a box of known size, and the fully-seen filter at its boundary."""

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.skills import get_skill
from vst.data.skills.si_measurement import format_measurement, measurable, object_dimensions
from vst.scene.geometry import Box, euler_to_matrix, rotation_z
from vst.scene.types import Visibility

# a 0.8 x 0.4 x 1.1 m cabinet turned 30 degrees: length 80 cm, width 40 cm, height 110 cm, longest 110 cm
EXPECTED_CM = {"height": 110, "length": 80, "width": 40, "longest": 110}
EXPECTED_M = {"height": 1.10, "length": 0.80, "width": 0.40, "longest": 1.10}


def _seen(visible_frac, truncated=False, pixels=1000):
    return Visibility(pixels=pixels, bbox_2d=(0, 0, 10, 10), visible_frac=visible_frac, truncated=truncated, depth_median=2.0)


def test_fully_seen_filter_boundary():
    assert not measurable(_seen(0.49), 400) and measurable(_seen(0.51), 400)
    assert not measurable(_seen(0.9, truncated=True), 400)
    assert not measurable(_seen(0.9, pixels=399), 400)


def test_dimensions_of_upright_and_tilted_boxes():
    upright = Box(np.zeros(3), np.array([0.4, 0.9, 0.5]), rotation_z(np.radians(30)))
    assert object_dimensions(upright) == pytest.approx({"height": 0.5, "length": 0.9, "width": 0.4, "longest": 0.9})
    # lying on its side: the box's y axis (0.2 m) points up, so height is 0.2 and the footprint is 1.0 x 0.5
    lying = Box(np.zeros(3), np.array([0.5, 0.2, 1.0]), euler_to_matrix([90.0, 0.0, 0.0]))
    assert object_dimensions(lying) == pytest.approx({"height": 0.2, "length": 1.0, "width": 0.5, "longest": 1.0})


def test_units_and_rounding():
    assert format_measurement(0.714, "cm") == (71, "71 cm")
    assert format_measurement(0.714, "m") == (0.71, "0.71 m")
    assert format_measurement(1.1, "m") == (1.1, "1.10 m")


@pytest.fixture
def scene(scene_builder):
    # the cabinet is in full view; a wide shelf at the left edge is cut by the image border (truncated)
    objects = [("cabinet", (0, 3, 0.55), (0.8, 0.4, 1.1), 30), ("shelf", (-2.6, 3, 0.5), (1.0, 0.4, 1.0), 0)]
    return scene_builder(objects, [("still-00", "still-00", (0, 0, 1.2), (0, 3, 0.55), 0.0)])


def test_box_of_known_size_measures_right(scene):
    frame = scene.scene.frames[0]
    assert frame.visibility[11].truncated and not frame.visibility[10].truncated
    samples = [s for seed in range(12) for s in get_skill("si_measurement").generate(scene, np.random.default_rng(seed))]
    assert {s.answer["unit"] for s in samples} == {"cm", "m"}
    for sample in samples:
        meta, answer = sample.meta_info, sample.answer
        assert meta["instance_ids"] == [10] and sample.reward == {"fn": "mra"} and answer["type"] == "number"
        expected = (EXPECTED_CM if answer["unit"] == "cm" else EXPECTED_M)[meta["dimension"]]
        assert answer["value"] == pytest.approx(expected)
        assert ("centimeters" if answer["unit"] == "cm" else "meters") in sample.question
        assert sample.response.endswith(" cm" if answer["unit"] == "cm" else " m")
        assert meta["margin_visible_frac"] >= 0 and meta["frame_ids"] == ["still-00"]
        if meta["markers"]:
            assert f"({meta['markers'][0]['color']} point)" in sample.question


def test_rendered_scene_smoke(rendered_scene):
    scene, folder = rendered_scene
    samples = list(get_skill("si_measurement").generate(SceneContext(scene, folder), np.random.default_rng(0)))
    assert samples
    for sample in samples:
        seen = scene.frame(sample.meta_info["frame_ids"][0]).visibility[sample.meta_info["instance_ids"][0]]
        assert seen.visible_frac >= 0.5 and not seen.truncated
