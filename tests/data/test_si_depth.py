"""Depth comparison on a hand-built scene with known depths, and its gap filter at the boundary."""

import numpy as np
import pytest

from vst.data.skills import get_skill
from vst.data.skills.si_depth import OBJECT_GAP_M, OBJECT_GAP_REL, gap_margin


def test_gap_filter_boundary():
    # at 1.0 m vs 1.149 m the required gap is max(0.15, 0.1149) = 0.15 m
    assert gap_margin(1.0, 1.149, OBJECT_GAP_M, OBJECT_GAP_REL) < 0
    assert gap_margin(1.0, 1.151, OBJECT_GAP_M, OBJECT_GAP_REL) > 0
    # far away the relative part dominates: 4.0 vs 4.43 needs 0.443 m
    assert gap_margin(4.0, 4.43, OBJECT_GAP_M, OBJECT_GAP_REL) < 0 < gap_margin(4.0, 4.46, OBJECT_GAP_M, OBJECT_GAP_REL)


@pytest.fixture
def two_boxes(scene_builder):
    # camera at the origin looking along +y at 1 m height: the chair's front face is 2.0 m deep, the table's 3.5 m
    objects = [("chair", (-0.6, 2.25, 0.5), (0.5, 0.5, 1.0), 0.0), ("table", (0.7, 3.75, 0.5), (0.6, 0.5, 1.0), 0.0)]
    cameras = [("still-00", "still-00", (0, 0, 1.0), (0, 1, 1.0), 0.0)]
    return scene_builder(objects, cameras)


def test_answers_match_known_depths(two_boxes):
    samples = list(get_skill("si_depth_comparison").generate(two_boxes, np.random.default_rng(0)))
    assert samples
    for sample in samples:
        meta = sample.meta_info
        assert meta["scene_id"] == "hand" and meta["frame_ids"] == ["still-00"]
        if meta["form"] in ("points", "boxes"):
            depths = dict(zip(meta["instance_ids"], meta["depths_m"]))
            # points sit on a visible face: the chair spans depths 2.0-2.5 m, the table 3.5-4.0 m
            assert 1.99 <= depths[10] <= 2.51 and 3.49 <= depths[11] <= 4.01
            closer = "chair" if meta["relation"] == "closer" else "table"
            if sample.answer["type"] == "mc":
                option = next(o for o in sample.answer["options"] if o.startswith(sample.answer["value"] + "."))
                assert option.endswith(closer)
            else:
                assert sample.answer["value"] == closer
            assert meta["margin_m"] > 0
        assert sample.images and sample.images[0].bytes[:2] == b"\xff\xd8"  # JPEG with markers drawn
        assert sample.question.startswith("<|image_pad|>\n")
