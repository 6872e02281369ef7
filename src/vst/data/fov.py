"""FoV unification for 3D-box samples: VST's virtual camera and its camera-parameter prompt (spec paper.md §2.4).

VST rescales (never crops) every 3D-detection image so that all images share one focal length in pixels, the
focal length of a virtual camera 960 px wide with a 69.16 degree horizontal field of view (about 696.3 px). The
prompt then states the fields of view and the new image size instead of focal lengths, so a model learns one
metric scale per pixel. Two VST conventions kept on purpose:
- both fields of view come from f_x (`vfov = 2 atan(H / 2 f_x)`), i.e. square pixels are assumed;
- the fields of view are those of the original image, which the rescale preserves.
One deliberate difference: VST truncates the new size with `int()`; vst rounds to the nearest pixel, which keeps
the resized focal length closest to the virtual one (a 730x530 SUN RGB-D image with f_x = 529.5 becomes 960x697,
where truncation gives 959x696).
"""

from __future__ import annotations

import math

from PIL import Image

from vst.scene.types import Intrinsics

BASE_WIDTH = 960  # pixels, width of VST's virtual camera
BASE_FOV_DEGREES = 69.16  # horizontal field of view of VST's virtual camera

# The exact text VST trains with (cookbook/object_detection_3d.ipynb, spec paper.md §2.4). Line 2 ends with a space
# after "parameters here." and a blank line separates the camera part from the box format; the question is last.
DETECTION_PROMPT = (
    "Here are the detailed camera parameters for the image.\n"
    "Camera intrinsic parameters: Horizontal fov, hfov={hfov:.2f}, and vertical fov, vfov={vfov:.2f}. "
    "Image width={W} and height={H}. We do not consider distortion parameters here. \n"
    "Camera coordinate: X-axis points rightward, Y-axis points downward, and Z-axis points forward. "
    "The origin point is the camera location.\n"
    "We take the camera coordinate system as the world coordinate system.\n"
    "\n"
    "3D bounding box format: [x_center, y_center, z_center, x_size, y_size, z_size, pitch, yaw, roll]\n"
    "* x_center, y_center, z_center: the center of the object in the camera coordinate, in meters. "
    "z_center is the depth of the object in space.\n"
    "* x_size, y_size, z_size: The dimensions of the object along the ( XYZ ) axes, in meters, "
    "when the rotation angles are zero.\n"
    "* pitch, yaw, roll: Euler angles representing rotations around the X, Y, and Z axes, respectively. "
    "Each angle is normalized to the range of (-1, 1) and is multiplied by 180 to convert it into degrees.\n"
    "\n"
    'Output a json list where each entry contains the object name in "label" and its 3D bounding box in "bbox_3d"\n'
    "{question}"
)


def base_focal(base_width: float = BASE_WIDTH, base_fov_degrees: float = BASE_FOV_DEGREES) -> float:
    """Focal length (pixels) of the virtual camera: `base_width / (2 tan(base_fov / 2))`, about 696.3 px."""
    return base_width / (2.0 * math.tan(math.radians(base_fov_degrees) / 2.0))


BASE_FOCAL = base_focal()


def vst_fov(fx: float, width: float, height: float) -> tuple[float, float]:
    """(hfov, vfov) in degrees of an image `width` x `height` pixels, both from the horizontal focal `fx` (pixels)."""
    if fx <= 0 or width <= 0 or height <= 0:
        raise ValueError(f"fx, width and height must be positive, got {fx}, {width}, {height}")
    hfov = math.degrees(2.0 * math.atan(width / (2.0 * fx)))
    vfov = math.degrees(2.0 * math.atan(height / (2.0 * fx)))
    return hfov, vfov


def unified_size(fx: float, width: float, height: float, focal: float = BASE_FOCAL) -> tuple[int, int]:
    """(new_width, new_height) pixels after rescaling by `focal / fx`, i.e. `2 focal tan(fov / 2)` per axis, rounded."""
    hfov, vfov = vst_fov(fx, width, height)
    new_width = 2.0 * focal * math.tan(math.radians(hfov) / 2.0)
    new_height = 2.0 * focal * math.tan(math.radians(vfov) / 2.0)
    return max(1, round(new_width)), max(1, round(new_height))


def rescale_intrinsics(intrinsics: Intrinsics, width: int, height: int) -> Intrinsics:
    """Intrinsics of the image resized (whole image, no crop) to `width` x `height` pixels.

    Pixel (i, j) has its centre at (i, j), so the image spans [-0.5, W - 0.5]; a resize scales `u + 0.5`.
    """
    scale_x, scale_y = width / intrinsics.width, height / intrinsics.height
    return Intrinsics(
        fx=intrinsics.fx * scale_x,
        fy=intrinsics.fy * scale_y,
        cx=(intrinsics.cx + 0.5) * scale_x - 0.5,
        cy=(intrinsics.cy + 0.5) * scale_y - 0.5,
        width=width,
        height=height,
    )


def unify_intrinsics(intrinsics: Intrinsics, focal: float = BASE_FOCAL) -> Intrinsics:
    """Intrinsics after VST's FoV unification: the image rescaled so its focal length becomes `focal` pixels."""
    width, height = unified_size(intrinsics.fx, intrinsics.width, intrinsics.height, focal)
    return rescale_intrinsics(intrinsics, width, height)


def resize_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """The whole image resized (bicubic, as VST resizes frames) to `width` x `height` pixels."""
    return image.resize((width, height), Image.Resampling.BICUBIC)


def detection_prompt(hfov: float, vfov: float, width: int, height: int, question: str) -> str:
    """VST's 3D-detection prompt: camera fields of view (degrees, 2 decimals), image size (pixels), then `question`."""
    return DETECTION_PROMPT.format(hfov=hfov, vfov=vfov, W=width, H=height, question=question)


def camera_prompt(original: Intrinsics, shown: Intrinsics, question: str) -> str:
    """The prompt for an image with `original` intrinsics shown at the size of `shown` (itself when not unified).

    The fields of view come from the original image (VST's convention, see the module docstring); the size is
    the one the model sees.
    """
    hfov, vfov = vst_fov(original.fx, original.width, original.height)
    return detection_prompt(hfov, vfov, shown.width, shown.height, question)
