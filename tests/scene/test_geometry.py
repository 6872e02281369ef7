"""Geometry against analytic answers and invariants (trimesh-style), plus hypothesis for rotated boxes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from vst.scene import geometry as g

IDENTITY = np.eye(3)


def random_box(rng, spread=0.6):
    return g.Box(rng.uniform(-spread, spread, 3), rng.uniform(0.2, 1.5, 3), Rotation.random(random_state=rng).as_matrix())


boxes = st.integers(0, 2**32 - 1).map(lambda seed: random_box(np.random.default_rng(seed)))


# -- frames and projection ----------------------------------------------------------------------------------
def test_world_camera_round_trip():
    rng = np.random.default_rng(0)
    pose = np.eye(4)
    pose[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    pose[:3, 3] = [1.0, -2.0, 1.5]
    points = rng.normal(size=(50, 3))
    assert np.allclose(g.camera_to_world(g.world_to_camera(points, pose), pose), points)
    assert np.allclose(g.invert_rigid(pose), np.linalg.inv(pose))


def test_look_at_points_optical_axis_at_target():
    pose = g.look_at([0, 0, 1.5], [2, 3, 0.5])
    target_cam = g.world_to_camera([[2, 3, 0.5]], pose)[0]
    assert np.allclose(target_cam[:2], 0) and target_cam[2] > 0
    # up in the world is up in the image (negative camera y) for a level camera
    assert g.world_to_camera([[0, 1, 2.5]], g.look_at([0, 0, 1.5], [0, 1, 1.5]))[0, 1] < 0
    assert np.isclose(np.linalg.det(pose[:3, :3]), 1.0)


def test_project_unproject_identity_and_flags():
    K = g.intrinsics_matrix(300.0, 310.0, 223.5, 200.0)
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.uniform(-1, 1, 20), rng.uniform(-1, 1, 20), rng.uniform(0.5, 5, 20)])
    projection = g.project_points(points, K, 448, 400)
    assert np.allclose(g.unproject_points(projection.uv, projection.depth, K), points)
    behind = g.project_points([[0, 0, -1.0], [0, 0, 1.0]], K, 448, 400)
    assert behind.in_front.tolist() == [False, True] and behind.in_image.tolist() == [False, True]
    assert np.allclose(behind.uv[1], [223.5, 200.0])
    edge = g.project_points([[(447.5 - 223.5) / 300.0, 0, 1.0], [(447.4 - 223.5) / 300.0, 0, 1.0]], K, 448, 400)
    assert edge.in_image.tolist() == [False, True]


def test_fov_focal_round_trip():
    assert np.isclose(g.focal_from_fov(90.0, 448), 224.0)
    assert np.isclose(g.fov_from_focal(g.focal_from_fov(69.16, 960), 960), 69.16)
    # VST's virtual camera: base_width 960, base_fov 69.16 -> f ~ 696.3 px (paper.md §2.4)
    assert abs(g.focal_from_fov(69.16, 960) - 696.3) < 0.1


def test_shape_errors_name_the_shape():
    with pytest.raises(ValueError, match=r"points must have shape \(n, 3\)"):
        g.transform_points(np.eye(4), np.zeros((4, 2)))


# -- rotations and VST boxes --------------------------------------------------------------------------------
@given(st.integers(0, 2**32 - 1))
def test_euler_matrix_round_trip(seed):
    rotation = Rotation.random(random_state=seed).as_matrix()
    assert np.allclose(g.euler_to_matrix(g.matrix_to_euler(rotation)), rotation, atol=1e-9)
    assert np.isclose(np.linalg.det(rotation), 1.0) and np.allclose(rotation.T @ rotation, IDENTITY)


def test_euler_convention_is_extrinsic_xyz_degrees():
    # 90 degrees about x maps y to z
    assert np.allclose(g.euler_to_matrix([90, 0, 0]) @ [0, 1, 0], [0, 0, 1])
    assert np.allclose(g.matrix_to_euler(g.euler_to_matrix([10, 20, 30])), [10, 20, 30])


def test_upright_box_seen_by_level_camera_has_zero_vst_angles():
    camera = g.look_at([0, -3, 1.0], [0, 0, 1.0])  # level camera looking along +y
    box = g.Box(np.array([0.5, 0.0, 0.4]), np.array([0.6, 0.5, 0.8]), IDENTITY)
    vst = g.box_to_vst9(g.box_in_camera(box, camera))
    # x = 0.5 right, y = (1.0 - 0.4) below the optical axis, z = 3 m deep; sizes (width, height, depth)
    assert np.allclose(vst, [0.5, 0.6, 3.0, 0.6, 0.8, 0.5, 0, 0, 0], atol=1e-12)
    yawed = g.Box(box.center, box.size, g.rotation_z(np.radians(30)))
    pitch, yaw, roll = g.box_to_vst9(g.box_in_camera(yawed, camera))[6:]
    assert np.isclose(abs(yaw), 30 / 180) and np.isclose(pitch, 0) and np.isclose(roll, 0)


def test_vst9_canonical_angles_for_an_object_facing_the_camera():
    camera = g.look_at([0, -3, 1.0], [0, 0, 1.0])
    facing = g.Box(np.array([0.0, 0.0, 0.45]), np.array([0.5, 0.4, 0.9]), g.rotation_z(np.radians(180 + 20)))
    canonical = g.box_to_vst9(g.box_in_camera(facing, camera))
    raw = g.box_to_vst9(g.box_in_camera(facing, camera), canonical=False)
    assert np.isclose(canonical[6], 0) and np.isclose(canonical[8], 0) and np.isclose(abs(canonical[7]), 20 / 180)
    assert np.isclose(abs(raw[6]), 1) and np.isclose(abs(raw[8]), 1)  # scipy's xyz split without the symmetry
    for values in (canonical, raw):  # both describe the same solid
        corners = g.box_corners(g.vst9_to_box(values))
        assert np.allclose(np.sort(corners, axis=0), np.sort(g.box_corners(g.box_in_camera(facing, camera)), axis=0))


@given(boxes)
def test_vst9_round_trip_through_corners(box):
    back = g.vst9_to_box(g.box_to_vst9(box))
    assert np.allclose(np.sort(g.box_corners(back), axis=0), np.sort(g.box_corners(box), axis=0), atol=1e-9)


# -- IoU and distance ---------------------------------------------------------------------------------------
def test_iou_axis_aligned_analytic():
    a = g.Box(np.zeros(3), np.ones(3), IDENTITY)
    b = g.Box(np.array([0.5, 0.0, 0.0]), np.ones(3), IDENTITY)
    assert np.isclose(g.box_iou_3d(a, b), 0.5 / 1.5)
    assert np.isclose(g.box_iou_3d(a, a), 1.0)
    far = g.Box(np.array([3.0, 0, 0]), np.ones(3), IDENTITY)
    assert g.box_iou_3d(a, far) == 0.0
    touching = g.Box(np.array([1.0, 0, 0]), np.ones(3), IDENTITY)
    assert g.box_iou_3d(a, touching) == 0.0
    inner = g.Box(np.zeros(3), np.full(3, 0.5), IDENTITY)
    assert np.isclose(g.box_iou_3d(a, inner), 0.125)


def test_iou_rotated_square_analytic():
    # a unit cube against itself rotated 45 degrees about z: intersection is a regular octagon prism
    a = g.Box(np.zeros(3), np.ones(3), IDENTITY)
    b = g.Box(np.zeros(3), np.ones(3), g.rotation_z(np.pi / 4))
    octagon = 2 * (np.sqrt(2) - 1)  # area of the octagon inscribed in the unit square and its 45-degree twin
    assert np.isclose(g.box_intersection_volume(a, b), octagon)
    assert np.isclose(g.box_iou_3d(a, b), octagon / (2 - octagon))


@settings(max_examples=40, deadline=None)
@given(boxes, boxes)
def test_iou_symmetric_self_one_and_monte_carlo(box_a, box_b):
    iou = g.box_iou_3d(box_a, box_b)
    assert 0.0 <= iou <= 1.0
    assert np.isclose(iou, g.box_iou_3d(box_b, box_a), atol=1e-9)
    assert np.isclose(g.box_iou_3d(box_a, box_a), 1.0)
    rng = np.random.default_rng(0)
    n = 200_000
    samples = box_a.center + (rng.uniform(-0.5, 0.5, (n, 3)) * box_a.size) @ box_a.rotation.T
    intersection = g.points_in_box(samples, box_b).mean() * g.box_volume(box_a)
    estimate = intersection / (g.box_volume(box_a) + g.box_volume(box_b) - intersection)
    assert abs(iou - estimate) < 0.01


def test_box_distance_analytic():
    a = g.Box(np.zeros(3), np.ones(3), IDENTITY)
    assert np.isclose(g.box_distance(a, g.Box(np.array([3.0, 0, 0]), np.ones(3), IDENTITY)), 2.0)
    # corner to corner along the diagonal
    b = g.Box(np.array([2.0, 2.0, 2.0]), np.ones(3), IDENTITY)
    assert np.isclose(g.box_distance(a, b), np.sqrt(3))
    # edge-edge: a box rotated 45 degrees about x whose lower edge runs along x, above a's top face edge
    c = g.Box(np.array([0.0, 0.0, 1.5 + np.sqrt(0.5)]), np.ones(3), g.euler_to_matrix([45, 0, 0]))
    assert np.isclose(g.box_distance(a, c), 1.0)
    assert g.box_distance(a, g.Box(np.array([0.9, 0, 0]), np.ones(3), g.rotation_z(0.3))) == 0.0


@settings(max_examples=30, deadline=None)
@given(boxes, boxes)
def test_box_distance_matches_sampled_surfaces(box_a, box_b):
    from scipy.optimize import minimize

    shifted = g.Box(box_b.center + np.array([2.5, 0, 0]), box_b.size, box_b.rotation)
    distance = g.box_distance(box_a, shifted)
    rng = np.random.default_rng(0)
    samples = box_a.center + (rng.uniform(-0.5, 0.5, (20000, 3)) * box_a.size) @ box_a.rotation.T
    sampled = g.point_box_distance(samples, shifted).min()
    assert distance <= sampled + 1e-9  # the exact minimum is never above a sampled one
    # the minimum itself, independently: the squared distance between a point of each solid is convex in their
    # box coordinates u, v in [-1/2, 1/2]^3, so a bounded quasi-Newton search finds its global minimum (volume
    # sampling alone can miss an edge-to-edge minimum by several centimetres)
    def gap(x):
        delta = box_a.center + box_a.rotation @ (x[:3] * box_a.size) - shifted.center - shifted.rotation @ (x[3:] * shifted.size)
        return float(delta @ delta)

    best = minimize(gap, np.zeros(6), method="L-BFGS-B", bounds=[(-0.5, 0.5)] * 6, options={"ftol": 1e-15, "gtol": 1e-12})
    assert np.isclose(distance, np.sqrt(best.fun), atol=1e-4)
    assert np.isclose(distance, g.box_distance(shifted, box_a))


def test_polygon_area_and_containment():
    l_shape = [[0, 0], [4, 0], [4, 2], [2, 2], [2, 3], [0, 3]]
    assert np.isclose(g.polygon_area(l_shape), 4 * 2 + 2 * 1)
    assert np.isclose(g.polygon_area(l_shape[::-1]), 10.0)
    inside = g.points_in_polygon([[1, 1], [3, 2.5], [1, 2.5], [5, 1]], l_shape)
    assert inside.tolist() == [True, False, True, False]


def test_convex_polygon_intersection_against_analytic_areas():
    import math

    from vst.scene.geometry import convex_polygon_intersection, polygon_area

    square = [[0, 0], [1, 0], [1, 1], [0, 1]]
    shifted = [[0.5, 0.5], [1.5, 0.5], [1.5, 1.5], [0.5, 1.5]]
    assert polygon_area(convex_polygon_intersection(square, shifted)) == pytest.approx(0.25)
    assert polygon_area(convex_polygon_intersection(square, shifted[::-1])) == pytest.approx(0.25)  # either winding
    assert len(convex_polygon_intersection(square, [[2, 2], [3, 2], [3, 3]])) == 0  # apart
    # a unit square and the same square turned 45 degrees about its centre: a regular octagon of area 2(sqrt2 - 1)
    c, h = 0.5, math.sqrt(0.5)
    diamond = [[c, c - h], [c + h, c], [c, c + h], [c - h, c]]
    assert polygon_area(convex_polygon_intersection(square, diamond)) == pytest.approx(2 * (math.sqrt(2) - 1))
    inner = [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]]
    assert polygon_area(convex_polygon_intersection(square, inner)) == pytest.approx(0.25)  # containment
