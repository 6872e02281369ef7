"""Correspondence: the true point lands where the hand-computed reprojection says, filters at their boundaries."""

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.skills import get_skill
from vst.data.skills.mi_correspondence import (
    DEPTH_TOLERANCE_REL, DISTRACTOR_SEPARATION_FRAC, MAX_VIDEO_GAP_S, MIN_VIDEO_GAP_S, depth_consistent, landing_pixels,
    pick_distractors, view_pairs,
)
from vst.scene.geometry import Projection, focal_from_fov

WIDTH, HEIGHT, HFOV = 320, 240, 70.0
# a cabinet whose front face is a plane 2.8 m in front of both cameras; camera 2 = camera 1 moved +0.5 m along x
OBJECTS = [("cabinet", (0.0, 3.0, 0.6), (1.2, 0.4, 1.2), 0.0)]
CAMERAS = [("pair-00-a", "pair-00", (0.0, 0.0, 1.0), (0.0, 3.0, 1.0), 0.0),
           ("pair-00-b", "pair-00", (0.5, 0.0, 1.0), (0.5, 3.0, 1.0), 1.0)]


@pytest.fixture
def facade_pair(scene_builder):
    return scene_builder(OBJECTS, CAMERAS, size=(WIDTH, HEIGHT), hfov=HFOV)


def test_true_point_lands_where_expected(facade_pair):
    # a point at depth 2.8 m moves by fx * 0.5 / 2.8 pixels (about 40.8) to the left in camera 2, and right going back
    shift = focal_from_fov(HFOV, WIDTH) * 0.5 / 2.8
    samples = [s for seed in range(3) for s in get_skill("mi_correspondence").generate(facade_pair, np.random.default_rng(seed))]
    assert samples
    for sample in samples:
        meta = sample.meta_info
        circle = next(m for m in meta["markers"] if m["image"] == 0)
        points = {m["label"]: m for m in meta["markers"] if m["image"] == 1}
        truth = points[meta["truth_label"]]["xy"]
        direction = -1.0 if meta["frame_ids"] == ["pair-00-a", "pair-00-b"] else 1.0
        assert circle["kind"] == "circle" and meta["instance_ids"] == [10]
        assert truth[0] == pytest.approx(circle["xy"][0] + direction * shift, abs=1.0)
        assert truth[1] == circle["xy"][1]
        assert meta["depth_first_m"] == pytest.approx(2.8, abs=0.002)
        assert meta["projected_depth_m"] == pytest.approx(2.8, abs=0.002)
        assert sample.response in (f"point-{meta['truth_label']}", sample.answer["value"])
        if sample.answer["type"] == "mc":
            assert any(o == f"{sample.answer['value']}. point-{meta['truth_label']}" for o in sample.answer["options"])
        else:
            assert sample.answer["value"] == f"point-{meta['truth_label']}" and sample.reward == {"fn": "option_text"}
        xys = np.array([m["xy"] for m in points.values()], dtype=float)
        spacing = np.linalg.norm(xys[:, None] - xys[None], axis=2)[np.triu_indices(4, 1)]
        assert spacing.min() >= DISTRACTOR_SEPARATION_FRAC * WIDTH and meta["margin_px"] >= 0
        assert (xys >= 20).all() and (xys[:, 0] < WIDTH - 20).all() and (xys[:, 1] < HEIGHT - 20).all()


def test_depth_consistency_boundary():
    projected = np.array([2.0, 2.0, 2.0, 2.0])
    rendered = projected * np.array([1.0199, 0.9801, 1.0201, 0.9799])
    assert depth_consistent(rendered, projected, DEPTH_TOLERANCE_REL).tolist() == [True, True, False, False]
    assert not depth_consistent([0.0], [2.0]).any()  # no surface rendered there


def test_landing_border_and_occlusion():
    depth_map = np.full((100, 100), 2.0)
    depth_map[50, 50] = 1.5  # something in front of the point that projects to (50, 50)
    uv = np.array([[19.0, 50.0], [20.0, 50.0], [50.0, 50.0], [79.0, 50.0], [80.0, 50.0]])
    projection = Projection(uv, np.full(5, 2.0), np.ones(5, bool), np.ones(5, bool))
    visible, pixels = landing_pixels(projection, depth_map, border=20)
    assert visible.tolist() == [False, True, False, True, False]
    assert pixels[1].tolist() == [20, 50]


def test_distractors_keep_their_distance():
    surface = np.ones((120, 160), bool)
    rng = np.random.default_rng(0)
    for _ in range(20):
        points = pick_distractors(surface, (80, 60), rng, separation=12.8, border=20)
        xys = np.array([(80, 60), *points], dtype=float)
        spacing = np.linalg.norm(xys[:, None] - xys[None], axis=2)[np.triu_indices(4, 1)]
        assert spacing.min() >= 12.8
    tiny = np.zeros((120, 160), bool)
    tiny[55:66, 75:86] = True  # an 11-px patch cannot hold three points 12.8 px apart from its centre and each other
    assert pick_distractors(tiny, (80, 60), rng, separation=12.8, border=20) is None


def test_rendered_scene_smoke(rendered_scene):
    scene, folder = rendered_scene
    ctx = SceneContext(scene, folder)
    for first, second, origin in view_pairs(ctx, np.random.default_rng(0)):
        if origin == "video":
            assert MIN_VIDEO_GAP_S <= second.timestamp - first.timestamp <= MAX_VIDEO_GAP_S
    samples = list(get_skill("mi_correspondence").generate(ctx, np.random.default_rng(0)))
    assert samples
    for sample in samples:
        meta = sample.meta_info
        assert sample.modality == "multi" and sample.type == "mi_correspondence" and len(sample.images) == 2
        assert abs(meta["rendered_depth_m"] - meta["projected_depth_m"]) <= DEPTH_TOLERANCE_REL * meta["projected_depth_m"]
        assert meta["overlap"] >= 0.1


def test_pick_distractors_from_precomputed_pixels_matches_the_reference_rule():
    """The mask path, the precomputed-pixels path (`surface_pixels`, shared per image) and the rule written out with
    hypot (the implementation before integer squared distances) pick the same pixels from the same rng state."""
    from vst.data.skills.mi_correspondence import surface_pixels

    def reference(surface, truth, rng, count, separation, border):
        height, width = surface.shape
        ys, xs = np.nonzero(surface)
        keep = (xs >= border) & (xs < width - border) & (ys >= border) & (ys < height - border)
        xs, ys = xs[keep], ys[keep]
        far = np.hypot(xs - truth[0], ys - truth[1]) >= separation
        xs, ys = xs[far], ys[far]
        chosen = []
        for _ in range(count):
            if not len(xs):
                return None
            index = int(rng.integers(len(xs)))
            chosen.append((int(xs[index]), int(ys[index])))
            far = np.hypot(xs - xs[index], ys - ys[index]) >= separation
            xs, ys = xs[far], ys[far]
        return chosen

    masks = np.random.default_rng(0)
    for trial in range(40):
        surface = masks.random((96, 128)) < masks.uniform(0.05, 0.9)
        truth = (int(masks.integers(20, 108)), int(masks.integers(20, 76)))
        separation = float(masks.uniform(2.0, 60.0))
        expected = reference(surface, truth, np.random.default_rng(trial), 3, separation, 20)
        assert pick_distractors(surface, truth, np.random.default_rng(trial), separation=separation, border=20) == expected
        pixels = surface_pixels(surface, 20)
        assert pick_distractors(pixels, truth, np.random.default_rng(trial), separation=separation, border=20) == expected
