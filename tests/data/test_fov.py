"""FoV unification against hand-computed values, and a byte-for-byte snapshot of VST's 3D-detection prompt."""

import math

import numpy as np
import pytest
from PIL import Image

from vst.data.fov import (
    BASE_FOCAL,
    base_focal,
    camera_prompt,
    detection_prompt,
    rescale_intrinsics,
    resize_image,
    unified_size,
    unify_intrinsics,
    vst_fov,
)
from vst.scene.geometry import project_points
from vst.scene.types import Intrinsics

# spec paper.md §2.4, typed out line by line; line 2 ends with a space after "parameters here."
SNAPSHOT = "\n".join([
    "Here are the detailed camera parameters for the image.",
    "Camera intrinsic parameters: Horizontal fov, hfov=69.16, and vertical fov, vfov=53.17. Image width=960 and height=697."
    " We do not consider distortion parameters here. ",
    "Camera coordinate: X-axis points rightward, Y-axis points downward, and Z-axis points forward."
    " The origin point is the camera location.",
    "We take the camera coordinate system as the world coordinate system.",
    "",
    "3D bounding box format: [x_center, y_center, z_center, x_size, y_size, z_size, pitch, yaw, roll]",
    "* x_center, y_center, z_center: the center of the object in the camera coordinate, in meters."
    " z_center is the depth of the object in space.",
    "* x_size, y_size, z_size: The dimensions of the object along the ( XYZ ) axes, in meters,"
    " when the rotation angles are zero.",
    "* pitch, yaw, roll: Euler angles representing rotations around the X, Y, and Z axes, respectively."
    " Each angle is normalized to the range of (-1, 1) and is multiplied by 180 to convert it into degrees.",
    "",
    'Output a json list where each entry contains the object name in "label" and its 3D bounding box in "bbox_3d"',
    "Detect the 3D bounding boxes of chair",
])

SUN_RGBD = Intrinsics(fx=529.5, fy=529.5, cx=365.0, cy=265.0, width=730, height=530)


def test_virtual_camera_focal():
    # 960 / (2 tan(34.58 deg)) = 960 / (2 * 0.689330) = 696.32 px
    assert BASE_FOCAL == pytest.approx(696.32, abs=0.01)
    assert base_focal(640, 90.0) == pytest.approx(320.0)


def test_fov_of_sun_rgbd_image():
    # hfov = 2 atan(365 / 529.5) = 69.159 deg, vfov = 2 atan(265 / 529.5) = 53.173 deg
    hfov, vfov = vst_fov(529.5, 730, 530)
    assert hfov == pytest.approx(69.159, abs=1e-3) and vfov == pytest.approx(53.173, abs=1e-3)


def test_sun_rgbd_image_becomes_960_by_697():
    # the spec's example: 730 x 529.5 px focal -> 959.99 x 696.98 -> 960 x 697
    assert unified_size(529.5, 730, 530) == (960, 697)


def test_vertical_fov_uses_fx_not_fy():
    # VST assumes square pixels: with fy = 2 fx the vertical fov still comes from fx
    hfov, vfov = vst_fov(100.0, 200, 100)
    assert hfov == pytest.approx(90.0) and vfov == pytest.approx(2 * math.degrees(math.atan(0.5)))
    wide = Intrinsics(fx=100.0, fy=200.0, cx=99.5, cy=49.5, width=200, height=100)
    assert (unify_intrinsics(wide).width, unify_intrinsics(wide).height) == (round(2 * BASE_FOCAL), round(BASE_FOCAL))


def test_unified_intrinsics_share_the_virtual_focal():
    for fx, width, height in [(529.5, 730, 530), (228.5, 320, 240), (94.8, 160, 128), (1400.0, 1920, 1080)]:
        original = Intrinsics(fx=fx, fy=fx, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)
        unified = unify_intrinsics(original)
        assert unified.fx == pytest.approx(BASE_FOCAL, rel=0.5 / unified.width + 1e-12)  # off only by rounding the width
        assert unified.cx == pytest.approx((unified.width - 1) / 2) and unified.cy == pytest.approx((unified.height - 1) / 2)


def test_rescaled_intrinsics_project_to_rescaled_pixels():
    # a camera point projects to (u + 0.5) * s - 0.5 in the image resized by s (pixel centres at integers)
    original = Intrinsics(fx=300.0, fy=310.0, cx=150.0, cy=110.0, width=320, height=240)
    resized = rescale_intrinsics(original, 960, 600)
    points = np.array([[0.3, -0.2, 2.0], [-1.0, 0.5, 4.0], [0.0, 0.0, 1.0]])
    before = project_points(points, original.matrix, 320, 240).uv
    after = project_points(points, resized.matrix, 960, 600).uv
    np.testing.assert_allclose(after, (before + 0.5) * [3.0, 2.5] - 0.5, atol=1e-9)


def test_resize_image_size():
    image = Image.new("RGB", (730, 530), (10, 20, 30))
    assert resize_image(image, 960, 697).size == (960, 697)


def test_prompt_snapshot():
    hfov, vfov = vst_fov(529.5, 730, 530)
    assert detection_prompt(hfov, vfov, 960, 697, "Detect the 3D bounding boxes of chair") == SNAPSHOT


def test_camera_prompt_states_original_fov_and_shown_size():
    prompt = camera_prompt(SUN_RGBD, unify_intrinsics(SUN_RGBD), "Detect the 3D bounding boxes of chair")
    assert prompt == SNAPSHOT
    untouched = camera_prompt(SUN_RGBD, SUN_RGBD, "q")
    assert "Image width=730 and height=530." in untouched and untouched.endswith('"bbox_3d"\nq')


def test_rejects_non_positive_focal():
    with pytest.raises(ValueError, match="positive"):
        vst_fov(0.0, 640, 480)
