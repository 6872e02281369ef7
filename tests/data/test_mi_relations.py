"""Object-object relations across two views: hand-computed distances and cardinal directions, the angular filter."""

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.skills import get_skill
from vst.data.skills.mi_relations import MIN_SECTOR_MARGIN_DEG, bearing_answer, corner_agreement

TABLE, CHAIR, SOFA = 10, 11, 12
# seen from above: the chair is 2 m north (+y) of the table, the sofa 2 m east (+x) of it
OBJECTS = [("table", (0.0, 3.0, 0.4), (0.8, 0.8, 0.8), 0.0), ("chair", (0.0, 5.0, 0.45), (0.5, 0.5, 0.9), 0.0),
           ("sofa", (2.0, 3.0, 0.4), (0.8, 0.8, 0.8), 0.0)]
CAMERAS = [("pair-00-a", "pair-00", (-1.5, 0.5, 1.6), (0.0, 4.0, 0.4), 0.0),
           ("pair-00-b", "pair-00", (2.5, 0.5, 1.6), (1.0, 4.0, 0.4), 1.0)]
# closest-point distances between the boxes: table-sofa 2 - 0.8; table-chair 2 - 0.4 - 0.25; chair-sofa hypot(1.35, 1.35)
DISTANCES = {frozenset((TABLE, SOFA)): 1.2, frozenset((TABLE, CHAIR)): 1.35, frozenset((CHAIR, SOFA)): 1.91}
# clockwise angle (degrees) from anchor->ref to anchor->target, keyed (anchor, ref, target)
CLOCKWISE = {(TABLE, CHAIR, SOFA): 90, (TABLE, SOFA, CHAIR): 270, (CHAIR, TABLE, SOFA): 315, (CHAIR, SOFA, TABLE): 45,
             (SOFA, TABLE, CHAIR): 45, (SOFA, CHAIR, TABLE): 315}
COMPASS = ["north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest"]
CAMERA_XYZ = {1: (-1.5, 0.5, 1.6), 2: (2.5, 0.5, 1.6)}


@pytest.fixture
def three_objects(scene_builder):
    return scene_builder(OBJECTS, CAMERAS, room=(-4.0, -2.0, 5.0, 7.0))


def _answer_word(sample) -> str:
    return next(o for o in sample.answer["options"] if o.startswith(sample.answer["value"] + "."))[3:]


def _camera_box_distance(camera, instance_id) -> float:
    _, center, size, _ = OBJECTS[instance_id - TABLE]
    return float(np.linalg.norm(np.maximum(np.abs(np.subtract(camera, center)) - np.divide(size, 2), 0.0)))


def test_bearing_answer_by_hand():
    assert bearing_answer((0, 3), (0, 5), (2, 3), "north") == ("east", 22.5, 90.0)
    assert bearing_answer((0, 3), (0, 5), (2, 3), "south")[0] == "west"  # the VST form with another stated direction
    assert bearing_answer((0, 3), (2, 3), (0, 5), "north")[0] == "west"
    assert bearing_answer((0, 5), (0, 3), (2, 3), "north")[0] == "northwest"


def test_angular_filter_boundary():
    # the target 7.4 / 7.6 degrees clockwise of north sits 15.1 / 14.9 degrees from the north/northeast boundary
    for offset, passes in ((7.4, True), (7.6, False), (-7.4, True), (-7.6, False)):
        target = (np.sin(np.radians(offset)), np.cos(np.radians(offset)))
        direction, margin, _ = bearing_answer((0, 0), (0, 1), target, "north")
        assert direction == "north" and (margin >= MIN_SECTOR_MARGIN_DEG) == passes


def test_corner_agreement():
    square = np.array([[0.0, 0.0], [-0.4, -0.4], [-0.4, 0.4], [0.4, -0.4], [0.4, 0.4]])
    ref, near, far = square + (0, 2), square + (0.6, 0), square + (2, 0)
    assert corner_agreement((0, 0), ref, far, "north", "east") == 1.0
    assert corner_agreement((0, 0), ref, near, "north", "east") < 1.0  # a box close to the anchor spans several sectors


def test_answers_on_hand_scene(three_objects):
    samples = [s for seed in range(6) for s in get_skill("mi_object_object").generate(three_objects, np.random.default_rng(seed))]
    forms = {s.meta_info["form"] for s in samples}
    assert forms == {"distance", "closer", "cardinal"}
    assert any(s.meta_info.get("anchor") == "object" for s in samples)
    for sample in samples:
        meta = sample.meta_info
        if meta["form"] == "distance":
            assert sample.answer["value"] == pytest.approx(DISTANCES[frozenset(meta["instance_ids"])], abs=0.011)
            assert sample.answer["unit"] == "m" and sample.reward == {"fn": "mra"}
        elif meta["form"] == "closer":
            camera = CAMERA_XYZ[meta["camera_image"]]
            nearest = min(meta["instance_ids"], key=lambda i: _camera_box_distance(camera, i))
            assert _answer_word(sample) == OBJECTS[nearest - TABLE][0]
        elif meta["anchor"] == "object":
            anchor, ref, target = meta["instance_ids"]
            angle = COMPASS.index(meta["stated_direction"]) * 45 + CLOCKWISE[anchor, ref, target]
            expected = COMPASS[round(angle % 360 / 45) % 8]
            assert _answer_word(sample) == expected and meta["margin_deg"] >= MIN_SECTOR_MARGIN_DEG
        assert sample.modality == "multi" and len(sample.images) == 2
        assert {m["image"] for m in meta["markers"]} <= {0, 1} and len(meta["markers"]) == len(meta["instance_ids"])


def test_rendered_scene_smoke(rendered_scene):
    scene, folder = rendered_scene
    ctx = SceneContext(scene, folder)
    samples = list(get_skill("mi_object_object").generate(ctx, np.random.default_rng(0)))
    assert samples
    for sample in samples:
        meta = sample.meta_info
        assert all(ctx.unique_in_scene(scene.object(i)) for i in meta["instance_ids"])
        assert any(key.startswith("margin_") and meta[key] >= 0 for key in meta)
