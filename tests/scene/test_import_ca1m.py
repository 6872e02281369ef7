"""CA-1M importer on tiny tars written in CA-1M's real layout.

Layout and conventions written here, from apple/ml-cubifyanything: README ("Understanding the CA-1M data": member
names, uint16 mm depth, row-major `gt/RT.json`, `world.gt/instances.json` with structure), `cubifyanything/
dataset.py` (members grouped by `split_into_prefix_suffix` with lower-cased keys: `wide/image/k`, `_wide/image/size`
as "[w, h]", `gt/rt`, `wide/t_gravity`, `gt/depth/k`; per-frame data "in camera coordinates"; integer timestamps
in ns), `tools/demo.py` (`gt/RT` is the OpenCV camera -> laser-world transform; `unproject` = planar depth with
pixel centres at integer coordinates; video id = last `-` field of the tar name), `cubifyanything/boxes.py`
(`GeneralInstance3DBoxes.corners`: centre `position`, full extents `scale` along the columns of `R`) and
`cubifyanything/cubify_transformer.py` (box rotation in the camera = `T_gravity @ Ry(yaw)`: T_gravity takes the
gravity-aligned camera frame, y = down, to the camera). JSON matrices are nested lists, as third-party readers of
the real tars index them (`K[0, 0]`, `RT[:3, :3]`); instance ids are strings.

Tar A (z-up laser world = the known world of tests/scene/scans.py): world boxes (floor and ceiling structure,
sofa, chair) whose box y axis is vertical, as CA-1M's gravity-aligned boxes; frame 1 has an all-zero (unregistered)
laser depth, frame 2 half of one; the last frame has no gt/RT.json. Tar B: a y-up laser world and no
world.gt/instances.json (objects from the camera-frame per-frame boxes).
"""

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from tests.scene import scans
from vst.scene.importers import ImportOptions, import_scenes
from vst.scene.importers.ca1m import TO_Z_UP, list_scenes, read_scene, split_key
from vst.scene.importers.common import ImportError_, scaled_intrinsics
from vst.scene.types import Scene

VIDEO_A, VIDEO_B, VIDEO_TILTED = "42898570", "42898571", "42898572"
IMAGE_K = scans.intrinsics(200, 152)  # the real 1024 x 768, shrunk
GT_K = scaled_intrinsics(IMAGE_K, 100, 76)  # laser depth: half the image (real 512 x 384)
WIDE_K = scaled_intrinsics(IMAGE_K, 50, 38)  # ARKit depth: a quarter (real 256 x 192)
T0, STEP = 273954896831666, 100_000_000  # ns, 10 Hz
N_FRAMES = 9  # the last one without gt/RT.json
BOX_FROM_GRAVITY_AXES = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # box x, y, z -> world x, -z (down), y
IDS = {scans.SOFA_ID: "6f1c2a9e0b7d4e11", scans.CHAIR_ID: "0a7d33c5e9f24b60"}
LABELS = {scans.SOFA_ID: "sofa", scans.CHAIR_ID: "chair"}


def ca1m_box(box: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A known world box as CA-1M writes it: (position, scale, R) with the box's y axis pointing down."""
    size = np.asarray(box["size"])
    return np.asarray(box["center"]), size[[0, 2, 1]], scans.box_rotation(box) @ BOX_FROM_GRAVITY_AXES


def structure_row(row_id: str, category: str, center, size) -> dict:
    return {"id": row_id, "category": category, "position": list(center), "scale": list(size),
            "R": np.eye(3).tolist(), "box_2d_rend": [0, 0, 0, 0], "box_2d_proj": [0, 0, 0, 0]}


def world_rows(world_from_vst: np.ndarray) -> list[dict]:
    rows = [structure_row("f100", "floor", [0, 0, -0.01], [6, 6, 0.02])]
    for key in (scans.SOFA_ID, scans.CHAIR_ID):
        position, scale, rotation = ca1m_box(scans.BOXES[key])
        rows.append({"id": IDS[key], "category": LABELS[key], "position": (world_from_vst @ position).tolist(),
                     "scale": scale.tolist(), "R": (world_from_vst @ rotation).tolist(),
                     "caption": f"a {LABELS[key]}", "box_2d_rend": [0, 0, 0, 0], "box_2d_proj": [0, 0, 0, 0]})
    rows.append(structure_row("c200", "ceiling", [0, 0, 3.51], [6, 6, 0.02]))
    return rows


def frame_rows(pose: np.ndarray, ids: np.ndarray) -> list[dict]:
    """wide/instances.json: the boxes seen in this frame, in its OpenCV camera frame."""
    rows = []
    cam_from_world = np.linalg.inv(pose)
    for key in (scans.SOFA_ID, scans.CHAIR_ID):
        ys, xs = np.nonzero(ids == key)
        if not len(xs):
            continue
        position, scale, rotation = ca1m_box(scans.BOXES[key])
        corners = scans.box_corners(scans.BOXES[key]) @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
        uv = corners @ IMAGE_K.matrix.T
        uv = uv[:, :2] / uv[:, 2:]
        rows.append({"id": IDS[key], "category": LABELS[key],
                     "position": (cam_from_world[:3, :3] @ position + cam_from_world[:3, 3]).tolist(),
                     "scale": scale.tolist(), "R": (cam_from_world[:3, :3] @ rotation).tolist(),
                     "box_2d_rend": [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)],
                     "box_2d_proj": [*uv.min(0).tolist(), *uv.max(0).tolist()]})
    return rows


def t_gravity(pose: np.ndarray) -> np.ndarray:
    """Gravity-aligned camera frame -> camera: column 1 is "down" in camera coordinates, no yaw."""
    down = pose[:3, :3].T @ np.array([0.0, 0.0, -1.0])
    x = np.array([1.0, 0, 0]) - down[0] * down
    x /= np.linalg.norm(x)
    return np.stack([x, down, np.cross(x, down)], axis=1)


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def depth_png(depth: np.ndarray) -> bytes:
    return png(np.rint(depth * 1000).astype(np.uint16))


def k_json(k) -> bytes:
    return json.dumps(k.matrix.tolist()).encode()


def write_ca1m(path, video: str, poses, views, world_from_vst: np.ndarray, with_world: bool) -> None:
    """One capture as `ca1m-<split>-<video>.tar`: `world_from_vst` (3 x 3) places the known world in the laser
    world. `views` None writes blank pixels (for tests that never read them)."""
    world4 = np.eye(4)
    world4[:3, :3] = world_from_vst
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{video}/{name}")
            info.size, info.mtime = len(data), 1700000000
            tar.addfile(info, io.BytesIO(data))

        for index, pose in enumerate(poses):
            ts = T0 + index * STEP
            if views is not None:
                rgb, _, ids = views(IMAGE_K, pose)
                _, gt, _ = views(GT_K, pose)
                _, wide, _ = views(WIDE_K, pose)
            else:
                rgb, ids = np.zeros((IMAGE_K.height, IMAGE_K.width, 3), np.uint8), np.zeros((IMAGE_K.height, IMAGE_K.width))
                gt, wide = np.zeros((GT_K.height, GT_K.width)), np.zeros((WIDE_K.height, WIDE_K.width))
            if index == 1:
                gt = np.zeros_like(gt)  # laser registration failed for the whole frame
            if index == 2:
                gt = gt.copy()
                gt[:, : GT_K.width // 2] = 0  # and for half of this one
            add(f"{ts}.wide/image.png", png(rgb))
            add(f"{ts}._wide/image/size", f"[{IMAGE_K.width}, {IMAGE_K.height}]".encode())
            add(f"{ts}.wide/image/K.json", k_json(IMAGE_K))
            add(f"{ts}.wide/depth.png", depth_png(wide))
            add(f"{ts}._wide/depth/size", f"[{WIDE_K.width}, {WIDE_K.height}]".encode())
            add(f"{ts}.wide/depth/K.json", k_json(WIDE_K))
            confidence = io.BytesIO()
            Image.fromarray(np.ones((WIDE_K.height, WIDE_K.width), np.float32), mode="F").save(confidence, format="TIFF")
            add(f"{ts}.wide/depth/confidence.tiff", confidence.getvalue())
            add(f"{ts}.wide/instances.json", json.dumps(frame_rows(pose, ids)).encode())
            add(f"{ts}.wide/T_gravity.json", json.dumps(t_gravity(pose).tolist()).encode())
            if index < N_FRAMES - 1:
                add(f"{ts}.gt/RT.json", json.dumps((world4 @ pose).tolist()).encode())
            add(f"{ts}.gt/depth.png", depth_png(gt))
            add(f"{ts}._gt/depth/size", f"[{GT_K.width}, {GT_K.height}]".encode())
            add(f"{ts}.gt/depth/K.json", k_json(GT_K))
        if with_world:
            add("world.gt/instances.json", json.dumps(world_rows(world_from_vst)).encode())


def camera_poses() -> list[np.ndarray]:
    return [scans.top_down_pose(), scans.top_down_pose()] + scans.orbit_poses(N_FRAMES - 2)


@pytest.fixture(scope="module")
def ca1m_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ca1m")
    poses = camera_poses()
    with scans.Views() as views:
        write_ca1m(root / "val" / f"ca1m-val-{VIDEO_A}.tar", VIDEO_A, poses, views, np.eye(3), with_world=True)
        write_ca1m(root / "train" / f"ca1m-train-{VIDEO_B}.tar", VIDEO_B, poses, views, TO_Z_UP["+y"].T, with_world=False)
    return root, poses


def test_member_keys_follow_upstream_grouping():
    assert split_key("42898570/273954896831666.wide/image/K.json") == ("42898570/273954896831666", "wide/image/k")
    assert split_key("./42898570/1._gt/depth/size") == ("42898570/1", "_gt/depth/size")
    assert split_key("42898570/world.gt/instances.json") == ("42898570/world", "gt/instances")
    assert split_key("42898570/README") is None


def test_world_boxes_poses_and_depth_sources(ca1m_root):
    root, poses = ca1m_root
    assert list_scenes(root) == [VIDEO_A, VIDEO_B]
    raw = read_scene(root, VIDEO_A, ImportOptions())
    by_id = {o.instance_id: o for o in raw.objects}
    assert [o.category for o in raw.objects] == ["floor", "sofa", "chair", "ceiling"]  # world file order
    assert by_id[scans.FLOOR_ID].is_structure and raw.objects[3].is_structure
    assert not by_id[scans.SOFA_ID].is_structure and by_id[scans.SOFA_ID].description == "a sofa"
    assert by_id[scans.CHAIR_ID].attributes["ca1m_id"] == IDS[scans.CHAIR_ID]
    scans.assert_same_box(by_id[scans.SOFA_ID].box, scans.SOFA)
    scans.assert_same_box(by_id[scans.CHAIR_ID].box, scans.CHAIR)  # turned 30 degrees, box y axis vertical
    assert raw.room is not None and raw.room.area_m2 == pytest.approx(36.0, abs=1e-3)
    assert (raw.room.floor_z, raw.room.ceiling_z) == pytest.approx((0.0, 3.5), abs=1e-4)
    assert len(raw.frames) == N_FRAMES - 1  # the frame without gt/RT.json cannot be placed
    for index, (frame, pose) in enumerate(zip(raw.frames, poses)):
        assert frame.frame_id == str(T0 + index * STEP) and frame.timestamp == pytest.approx((T0 + index * STEP) / 1e9)
        np.testing.assert_allclose(frame.cam_to_world, pose, atol=1e-5)
        assert frame.intrinsics == IMAGE_K and frame.depth_intrinsics == GT_K
    assert raw.frames[0].rgb().shape == (IMAGE_K.height, IMAGE_K.width, 3)
    _, truth, _ = scans.render(GT_K, poses[1])
    unregistered = raw.frames[1].depth()  # all-zero laser depth: the ARKit depth, resampled onto the laser grid
    assert unregistered.shape == (GT_K.height, GT_K.width)
    assert unregistered[GT_K.height // 2, GT_K.width // 2] == pytest.approx(2.2, abs=0.002)
    assert np.median(np.abs(unregistered - truth)[truth > 0]) < 0.01
    laser_only = read_scene(root, VIDEO_A, ImportOptions(extra={"depth": "gt"}))
    assert not laser_only.frames[1].depth().any()
    arkit = read_scene(root, VIDEO_A, ImportOptions(extra={"depth": "arkit"})).frames[0]
    assert arkit.depth_intrinsics == WIDE_K and arkit.depth().shape == (WIDE_K.height, WIDE_K.width)


def test_per_frame_boxes_in_a_y_up_world(ca1m_root):
    """No world.gt: camera-frame boxes moved by RT; the y-up laser world (measured from T_gravity) turned z-up."""
    root, poses = ca1m_root
    raw = read_scene(root, VIDEO_B, ImportOptions())
    assert {o.category for o in raw.objects} == {"sofa", "chair"} and raw.room is None
    by_label = {o.category: o for o in raw.objects}
    scans.assert_same_box(by_label["sofa"].box, scans.SOFA)
    scans.assert_same_box(by_label["chair"].box, scans.CHAIR)
    for frame, pose in zip(raw.frames, poses):
        np.testing.assert_allclose(frame.cam_to_world, pose, atol=1e-5)


def test_a_tilted_world_is_refused(tmp_path):
    tilt = np.array([[1.0, 0, 0], [0, np.cos(0.5), -np.sin(0.5)], [0, np.sin(0.5), np.cos(0.5)]])  # ~29 degrees
    write_ca1m(tmp_path / f"ca1m-val-{VIDEO_TILTED}.tar", VIDEO_TILTED, camera_poses(), None, tilt, with_world=True)
    with pytest.raises(ImportError_, match="up direction"):
        read_scene(tmp_path, VIDEO_TILTED, ImportOptions())
    forced = read_scene(tmp_path, VIDEO_TILTED, ImportOptions(extra={"up": "+z"}))  # taken as it is
    np.testing.assert_allclose(np.asarray(forced.frames[0].cam_to_world)[:3, :3], tilt @ camera_poses()[0][:3, :3], atol=1e-6)


def test_import_writes_planar_depth_and_masks(ca1m_root, tmp_path):
    root, poses = ca1m_root
    (root / "val" / "ca1m-val-00000001.tar").write_bytes(b"not a tar" * 100)
    try:
        result = import_scenes("ca1m", root, tmp_path, options=ImportOptions(max_side=200, fps=10, stills=3, pairs=2))
    finally:
        (root / "val" / "ca1m-val-00000001.tar").unlink()
    assert result.imported == [VIDEO_A, VIDEO_B] and list(result.failed) == ["00000001"]
    assert "not a readable tar" in result.failed["00000001"]
    scene = Scene.load(tmp_path / VIDEO_A)
    assert scene.source == "ca1m" and scene.room is not None and scene.license.startswith("CC BY-NC-ND")
    frames = {f.frame_id: f for f in scene.frames}
    centre = (IMAGE_K.height // 2, IMAGE_K.width // 2)
    for index in (0, 1):  # laser depth, then the unregistered frame's ARKit depth
        frame = frames[str(T0 + index * STEP)]
        assert (frame.intrinsics.width, frame.intrinsics.height) == (200, 152) and frame.intrinsics.fx == pytest.approx(IMAGE_K.fx)
        np.testing.assert_allclose(frame.pose, poses[index], atol=1e-5)
        depth = np.asarray(Image.open(tmp_path / VIDEO_A / frame.depth_path)).astype(float) / frame.depth_scale
        masks = np.asarray(Image.open(tmp_path / VIDEO_A / frame.instance_path))
        # looking straight down from 3 m: planar depth 3 - 0.8 on the sofa's top, 3.0 on the floor
        assert masks[centre] == scans.SOFA_ID and depth[centre] == pytest.approx(3.0 - 0.8, abs=0.002)
        assert depth[30, 30] == pytest.approx(3.0, abs=0.002)
        floor = next(o.instance_id for o in scene.objects if o.category == "floor")
        assert masks[30, 30] == floor  # structure boxes label what no object box claims
        # the sofa's top spans x in [-0.8, 0.8] at depth 2.2: 1.6 fx / 2.2 pixels (nearest-resampled from a coarser grid)
        assert (masks[centre[0]] == scans.SOFA_ID).sum() == pytest.approx(1.6 * IMAGE_K.fx / 2.2, abs=4)
        assert frame.visibility[scans.SOFA_ID].depth_median == pytest.approx(2.2, abs=0.005)
    # the half-registered frame: the unregistered half filled from the ARKit depth
    half = frames[str(T0 + 2 * STEP)]
    depth = np.asarray(Image.open(tmp_path / VIDEO_A / half.depth_path)).astype(float) / half.depth_scale
    _, truth, _ = scans.render(IMAGE_K, poses[2])
    left = slice(0, IMAGE_K.width // 2 - 4)
    assert (depth[:, left] > 0).mean() == pytest.approx((truth[:, left] > 0).mean(), abs=0.05)
    both = (depth > 0) & (truth > 0)
    assert np.median(np.abs(depth - truth)[both]) < 0.02
    assert str(T0 + 8 * STEP) not in {f.frame_id.split("-")[0] for f in scene.frames}  # no gt/RT.json
    sequences = scene.sequences()
    assert len(sequences["video"]) == N_FRAMES - 1 and len(sequences["pair-00"]) == 2 and "still-02" in sequences
    other = Scene.load(tmp_path / VIDEO_B)
    scans.assert_same_box(next(o for o in other.objects if o.category == "sofa").box, scans.SOFA)
    skills = scans.check_generated(tmp_path, tmp_path / "generated")  # vst data generate: answers true to the world
    assert {"si_depth_comparison", "si_measurement", "si_distance", "si_3d_detection"} <= skills
