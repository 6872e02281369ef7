"""Pure geometry on numpy arrays: frames, projection, boxes, Euler angles, 3D IoU, distances, polygons.

Conventions (DESIGN.md): world frame gravity-aligned, z up, metres; camera frame OpenCV (x right, y down,
z forward); `cam_to_world` is a (4, 4) rigid transform; an oriented box is `(center (3,), size (3,),
rotation (3, 3))` with rotation mapping box axes to the parent frame (columns = box axes) and size the full
extents along those axes. Pixel (i, j) has its centre at (i, j). Every function takes float arrays, checks
shapes and raises `ValueError` naming the expected shape.
"""

from __future__ import annotations

import itertools
import warnings
from typing import NamedTuple, Sequence

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.transform import Rotation

# Box axes of VST's 3D-box answers (Omni3D): x = width, y = height (down for an upright object seen by a level
# camera), z = depth. vst boxes in the world are x = width, y = depth (front), z = up. This matrix maps VST-box
# axes to vst-box axes (columns): VST x -> x, VST y -> -z, VST z -> y. It is a proper rotation (det +1).
VST_AXES_TO_BOX = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# Half turns about a box's own axes map the box onto itself.
BOX_HALF_TURNS = (np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0]))

# Corner k of a box has sign (-1 or +1) per axis given by this table; edges join corners that differ in one sign.
CORNER_SIGNS = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))
BOX_EDGES = np.array([(i, j) for i in range(8) for j in range(i + 1, 8) if np.abs(CORNER_SIGNS[i] - CORNER_SIGNS[j]).sum() == 2])


class Box(NamedTuple):
    """An oriented box: center (3,), size (3,) full extents, rotation (3, 3) box->parent."""

    center: np.ndarray
    size: np.ndarray
    rotation: np.ndarray


class Projection(NamedTuple):
    uv: np.ndarray  # (n, 2) float pixel coordinates
    depth: np.ndarray  # (n,) camera z, metres
    in_front: np.ndarray  # (n,) bool, depth > 0
    in_image: np.ndarray  # (n,) bool, in front and inside the pixel area [-0.5, W-0.5) x [-0.5, H-0.5)


def _array(values, shape: tuple, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    expected = tuple(array.shape[i] if s is None else s for i, s in enumerate(shape)) if array.ndim == len(shape) else None
    if expected != array.shape:
        pretty = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {pretty}, got {array.shape}")
    return array


def as_box(box: Box | Sequence) -> Box:
    """Coerce `(center, size, rotation)` (any sequences) into a float64 `Box`, checking shapes."""
    center, size, rotation = box
    return Box(_array(center, (3,), "center"), _array(size, (3,), "size"), _array(rotation, (3, 3), "rotation"))


# ---------------------------------------------------------------------------------------------------------------
# frames and projection
# ---------------------------------------------------------------------------------------------------------------
def transform_points(matrix, points) -> np.ndarray:
    """Apply a (4, 4) transform to points (n, 3) -> (n, 3)."""
    matrix = _array(matrix, (4, 4), "matrix")
    points = _array(points, (None, 3), "points")
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def invert_rigid(matrix) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform, without a general matrix inverse."""
    matrix = _array(matrix, (4, 4), "matrix")
    inverse = np.eye(4)
    inverse[:3, :3] = matrix[:3, :3].T
    inverse[:3, 3] = -matrix[:3, :3].T @ matrix[:3, 3]
    return inverse


def world_to_camera(points_world, cam_to_world) -> np.ndarray:
    """World points (n, 3) -> OpenCV camera points (n, 3) for a camera with pose `cam_to_world` (4, 4)."""
    return transform_points(invert_rigid(cam_to_world), points_world)


def camera_to_world(points_camera, cam_to_world) -> np.ndarray:
    """OpenCV camera points (n, 3) -> world points (n, 3)."""
    return transform_points(cam_to_world, points_camera)


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def project_points(points_camera, intrinsics, width: int, height: int) -> Projection:
    """Project camera points (n, 3) with K (3, 3); points behind the camera get NaN pixel coordinates."""
    points = _array(points_camera, (None, 3), "points_camera")
    intrinsics = _array(intrinsics, (3, 3), "intrinsics")
    depth = points[:, 2]
    in_front = depth > 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (points @ intrinsics.T)[:, :2] / depth[:, None]
    uv[~in_front] = np.nan
    inside = (uv[:, 0] >= -0.5) & (uv[:, 0] < width - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] < height - 0.5)
    return Projection(uv, depth, in_front, in_front & inside)


def unproject_points(uv, depth, intrinsics) -> np.ndarray:
    """Pixels (n, 2) with planar depth (n,) metres -> camera points (n, 3)."""
    uv = _array(uv, (None, 2), "uv")
    depth = _array(depth, (uv.shape[0],), "depth")
    intrinsics = _array(intrinsics, (3, 3), "intrinsics")
    homogeneous = np.column_stack([uv, np.ones(len(uv))])
    return (homogeneous @ np.linalg.inv(intrinsics).T) * depth[:, None]


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """cam_to_world (4, 4) of an OpenCV camera at `eye` looking at `target`, image 'down' along -up."""
    eye, target, up = (_array(v, (3,), name) for v, name in ((eye, "eye"), (target, "target"), (up, "up")))
    forward = target - eye
    if np.linalg.norm(forward) < 1e-12:
        raise ValueError("eye and target coincide")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("viewing direction is parallel to up")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([right, down, forward])
    pose[:3, 3] = eye
    return pose


def focal_from_fov(fov_degrees: float, size_pixels: float) -> float:
    """Focal length in pixels for a field of view across `size_pixels` (hfov with width, vfov with height)."""
    return size_pixels / (2.0 * np.tan(np.radians(fov_degrees) / 2.0))


def fov_from_focal(focal_pixels: float, size_pixels: float) -> float:
    """Field of view in degrees across `size_pixels` for a focal length in pixels."""
    return float(np.degrees(2.0 * np.arctan(size_pixels / (2.0 * focal_pixels))))


# ---------------------------------------------------------------------------------------------------------------
# rotations and boxes
# ---------------------------------------------------------------------------------------------------------------
def rotation_z(yaw_radians: float) -> np.ndarray:
    """(3, 3) rotation about +z (counter-clockwise seen from above)."""
    c, s = np.cos(yaw_radians), np.sin(yaw_radians)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def euler_to_matrix(angles, seq: str = "xyz", degrees: bool = True) -> np.ndarray:
    """Euler angles (3,) -> rotation (3, 3), scipy semantics (lowercase seq = extrinsic axes)."""
    return Rotation.from_euler(seq, _array(angles, (3,), "angles"), degrees=degrees).as_matrix()


def matrix_to_euler(rotation, seq: str = "xyz", degrees: bool = True) -> np.ndarray:
    """Rotation (3, 3) -> Euler angles (3,), the inverse of `euler_to_matrix`."""
    return Rotation.from_matrix(_array(rotation, (3, 3), "rotation")).as_euler(seq, degrees=degrees)


def box_corners(box: Box | Sequence) -> np.ndarray:
    """The 8 corners (8, 3) of a box, in the order of `CORNER_SIGNS`."""
    center, size, rotation = as_box(box)
    return center + (CORNER_SIGNS * size / 2.0) @ rotation.T


def box_volume(box: Box | Sequence) -> float:
    return float(np.prod(as_box(box).size))


def box_in_camera(box: Box | Sequence, cam_to_world) -> Box:
    """A world box expressed in the camera frame of `cam_to_world`."""
    center, size, rotation = as_box(box)
    world_to_cam = invert_rigid(cam_to_world)
    return Box(world_to_cam[:3, :3] @ center + world_to_cam[:3, 3], size, world_to_cam[:3, :3] @ rotation)


def box_to_vst9(box_camera: Box | Sequence, canonical: bool = True) -> np.ndarray:
    """A camera-frame vst box -> VST's answer `[x, y, z, sx, sy, sz, pitch, yaw, roll]` (9,).

    VST (paper.md §2.4) uses Omni3D box axes (x width, y height, z depth) and
    `Rotation.from_matrix(R_box->cam).as_euler('xyz', degrees=True) / 180`. scipy keeps the middle (yaw) angle in
    [-90, 90] degrees, so an upright object turned away by more than 90 degrees comes out with pitch and roll near
    +-1. A box is the same solid after a half turn about any of its axes, so with `canonical` the equivalent
    rotation with the smallest angles is used: upright furniture always gets pitch = roll = 0. The box (its
    corners, and any IoU) is unchanged. Rounding is left to the caller.
    """
    center, size, rotation = as_box(box_camera)
    vst_rotation = rotation @ VST_AXES_TO_BOX
    vst_size = np.abs(VST_AXES_TO_BOX.T @ size)
    candidates = np.stack([vst_rotation @ symmetry for symmetry in (BOX_HALF_TURNS if canonical else BOX_HALF_TURNS[:1])])
    with warnings.catch_warnings():  # scipy warns about gimbal lock at yaw = +-90 degrees; the angles are still valid
        warnings.simplefilter("ignore", UserWarning)
        angles = Rotation.from_matrix(candidates).as_euler("xyz", degrees=True)  # all candidates in one call
    best = min(range(len(angles)), key=lambda i: (np.round(np.abs(angles[i]).max(), 9), i))
    return np.concatenate([center, vst_size, angles[best] / 180.0])


def vst9_to_box(values) -> Box:
    """VST's 9 numbers -> a camera-frame vst box (inverse of `box_to_vst9`)."""
    values = _array(values, (9,), "vst box")
    vst_rotation = euler_to_matrix(values[6:] * 180.0)
    return Box(values[:3].copy(), np.abs(VST_AXES_TO_BOX @ values[3:6]), vst_rotation @ VST_AXES_TO_BOX.T)


# ---------------------------------------------------------------------------------------------------------------
# box overlap, IoU and distance
# ---------------------------------------------------------------------------------------------------------------
def points_in_box(points, box: Box | Sequence, tolerance: float = 0.0) -> np.ndarray:
    """(n,) bool: which points (n, 3) lie inside the box (grown by `tolerance` metres)."""
    center, size, rotation = as_box(box)
    local = (_array(points, (None, 3), "points") - center) @ rotation
    return np.all(np.abs(local) <= size / 2.0 + tolerance, axis=1)


def point_box_distance(points, box: Box | Sequence) -> np.ndarray:
    """(n,) Euclidean distance from points (n, 3) to a solid box (0 inside)."""
    center, size, rotation = as_box(box)
    local = (_array(points, (None, 3), "points") - center) @ rotation
    excess = np.maximum(np.abs(local) - size / 2.0, 0.0)
    return np.linalg.norm(excess, axis=1)


def boxes_overlap(box_a: Box | Sequence, box_b: Box | Sequence, tolerance: float = 1e-9) -> bool:
    """Separating-axis test for two solid oriented boxes (touching counts as overlapping)."""
    a, b = as_box(box_a), as_box(box_b)
    # the 15 candidate axes at once: both boxes' axes, then a_i x b_j (i outer, j inner)
    crosses = np.cross(a.rotation.T[:, None, :], b.rotation.T[None, :, :]).reshape(9, 3)
    axes = np.concatenate([a.rotation.T, b.rotation.T, crosses])
    norms = np.linalg.norm(axes, axis=1)
    axes = axes[norms >= 1e-9] / norms[norms >= 1e-9, None]
    radius_a = (np.abs(axes @ a.rotation) * (a.size / 2.0)).sum(axis=1)
    radius_b = (np.abs(axes @ b.rotation) * (b.size / 2.0)).sum(axis=1)
    return bool(np.all(np.abs(axes @ (b.center - a.center)) <= radius_a + radius_b + tolerance))


def _edge_plane_points(box_edges: Box, box_planes: Box) -> np.ndarray:
    """Points where the 12 edges of one box cross the 6 face planes of the other, (k, 3)."""
    corners = box_corners(box_edges)
    start, end = corners[BOX_EDGES[:, 0]], corners[BOX_EDGES[:, 1]]
    local_start = (start - box_planes.center) @ box_planes.rotation  # (12, 3)
    local_end = (end - box_planes.center) @ box_planes.rotation
    points = []
    for sign in (-1.0, 1.0):
        plane = sign * box_planes.size / 2.0  # (3,)
        delta = local_end - local_start
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (plane - local_start) / delta  # (12, 3): edge i against plane of axis k
        valid = np.isfinite(t) & (t >= 0.0) & (t <= 1.0)
        edge_index, _ = np.nonzero(valid)
        t_valid = t[valid]
        points.append(start[edge_index] + t_valid[:, None] * (end[edge_index] - start[edge_index]))
    return np.concatenate(points)


def box_intersection_volume(box_a: Box | Sequence, box_b: Box | Sequence) -> float:
    """Exact volume (m^3) of the intersection of two arbitrarily rotated boxes.

    The intersection is a convex polyhedron whose vertices are corners of one box inside the other, or
    points where an edge of one box crosses a face of the other; its volume is their convex hull's.
    """
    a, b = as_box(box_a), as_box(box_b)
    if min(a.size.min(), b.size.min()) <= 0.0 or not boxes_overlap(a, b):
        return 0.0
    scale = max(a.size.max(), b.size.max(), 1.0)
    tolerance = 1e-9 * scale
    candidates = np.concatenate(
        [box_corners(a), box_corners(b), _edge_plane_points(a, b), _edge_plane_points(b, a)]
    )
    inside = points_in_box(candidates, a, tolerance) & points_in_box(candidates, b, tolerance)
    points = candidates[inside]
    if len(points) < 4:
        return 0.0
    try:
        return float(ConvexHull(points).volume)
    except QhullError:  # flat intersection (touching faces): zero volume
        return 0.0


def box_iou_3d(box_a: Box | Sequence, box_b: Box | Sequence) -> float:
    """Exact 3D intersection-over-union of two oriented boxes, in [0, 1]."""
    a, b = as_box(box_a), as_box(box_b)
    intersection = box_intersection_volume(a, b)
    union = box_volume(a) + box_volume(b) - intersection
    return float(np.clip(intersection / union, 0.0, 1.0)) if union > 0 else 0.0


def _segment_distances(start_a, end_a, start_b, end_b) -> np.ndarray:
    """Closest distance between segment pairs, all arrays (n, 3) -> (n,)."""
    d1, d2, r = end_a - start_a, end_b - start_b, start_a - start_b
    a = np.maximum(np.einsum("ij,ij->i", d1, d1), 1e-18)
    e = np.maximum(np.einsum("ij,ij->i", d2, d2), 1e-18)
    b = np.einsum("ij,ij->i", d1, d2)
    c = np.einsum("ij,ij->i", d1, r)
    f = np.einsum("ij,ij->i", d2, r)
    denominator = a * e - b * b
    s = np.where(denominator > 1e-12 * a * e, np.clip((b * f - c * e) / np.maximum(denominator, 1e-300), 0.0, 1.0), 0.0)
    t = (b * s + f) / e
    s = np.where(t < 0.0, np.clip(-c / a, 0.0, 1.0), np.where(t > 1.0, np.clip((b - c) / a, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    return np.linalg.norm(start_a + d1 * s[:, None] - (start_b + d2 * t[:, None]), axis=1)


def _edge_pairs() -> tuple[np.ndarray, np.ndarray]:
    pairs = np.array(list(itertools.product(range(len(BOX_EDGES)), repeat=2)))
    return BOX_EDGES[pairs[:, 0]], BOX_EDGES[pairs[:, 1]]


_EDGE_PAIRS = _edge_pairs()  # every (edge of a, edge of b), 144 pairs


def box_distance(box_a: Box | Sequence, box_b: Box | Sequence) -> float:
    """Closest-point distance (m) between two solid oriented boxes; 0 when they touch or overlap.

    For disjoint convex polyhedra the closest pair involves a vertex of one (vertex-to-solid distance) or
    an edge of each (segment-segment distance), so the minimum over those features is exact.
    """
    a, b = as_box(box_a), as_box(box_b)
    if boxes_overlap(a, b):
        return 0.0
    corners_a, corners_b = box_corners(a), box_corners(b)
    best = min(point_box_distance(corners_a, b).min(), point_box_distance(corners_b, a).min())
    edges_a, edges_b = _EDGE_PAIRS
    segment = _segment_distances(corners_a[edges_a[:, 0]], corners_a[edges_a[:, 1]], corners_b[edges_b[:, 0]], corners_b[edges_b[:, 1]])
    return float(min(best, segment.min()))


# ---------------------------------------------------------------------------------------------------------------
# polygons (floor plans, xy in metres)
# ---------------------------------------------------------------------------------------------------------------
def polygon_area(polygon) -> float:
    """Area (m^2) of a simple polygon (n, 2), either winding (shoelace formula)."""
    polygon = _array(polygon, (None, 2), "polygon")
    x, y = polygon[:, 0], polygon[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def points_in_polygon(points, polygon) -> np.ndarray:
    """(n,) bool: which 2D points (n, 2) are inside a simple polygon (m, 2) (even-odd rule)."""
    points = _array(points, (None, 2), "points")
    polygon = _array(polygon, (None, 2), "polygon")
    x, y = points[:, :1], points[:, 1:]
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return np.count_nonzero(straddles & (x < crossing_x), axis=1) % 2 == 1


def convex_polygon_intersection(polygon_a, polygon_b) -> np.ndarray:
    """The intersection (k, 2) of two convex polygons (n, 2), (m, 2), either winding (Sutherland-Hodgman: `a` clipped
    by each edge of `b`); an empty (0, 2) array when they do not overlap."""
    subject = [tuple(p) for p in _array(polygon_a, (None, 2), "polygon_a")]
    clip = _array(polygon_b, (None, 2), "polygon_b")
    if len(clip) < 3 or len(subject) < 3:
        return np.zeros((0, 2))
    x, y = clip[:, 0], clip[:, 1]
    if np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) < 0:  # make the clip polygon counter-clockwise
        clip = clip[::-1]

    def inside(point, start, end) -> bool:
        return (end[0] - start[0]) * (point[1] - start[1]) - (end[1] - start[1]) * (point[0] - start[0]) >= 0

    def crossing(p, q, start, end):
        d1, d2 = (q[0] - p[0], q[1] - p[1]), (end[0] - start[0], end[1] - start[1])
        denominator = d1[0] * d2[1] - d1[1] * d2[0]
        t = ((start[0] - p[0]) * d2[1] - (start[1] - p[1]) * d2[0]) / denominator
        return (p[0] + t * d1[0], p[1] + t * d1[1])

    for start, end in zip(clip, np.roll(clip, -1, axis=0)):
        points, subject = subject, []
        for index, current in enumerate(points):
            previous = points[index - 1]
            if inside(current, start, end):
                if not inside(previous, start, end):
                    subject.append(crossing(previous, current, start, end))
                subject.append(current)
            elif inside(previous, start, end):
                subject.append(crossing(previous, current, start, end))
        if not subject:
            return np.zeros((0, 2))
    return np.asarray(subject, dtype=np.float64)
