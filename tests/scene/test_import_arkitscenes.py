"""ARKitScenes 3DOD importer on a tiny video written in ARKitScenes' real layout.

Layout and conventions written here follow apple/ARKitScenes: `threedod/README.md` (folder tree, annotation
fields), `threedod/benchmark_scripts/utils/tenFpsDataLoader.py` (`<vid>_frames/lowres_wide/<vid>_<ts>.png`,
`lowres_depth` uint16 mm, `lowres_wide_intrinsics/<vid>_<ts>.pincam` = `w h fx fy cx cy`, `lowres_wide.traj` lines
`ts rx ry rz tx ty tz` = world -> camera, inverted by `TrajStringToMatrix`), `box_utils.compute_box_3d`
(corners = reshape(normalizedAxes, 3, 3)ᵀ · local + centroid) and `rectify_im.py` (frames recorded sideways).
"""

import json

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from tests.scene import scans
from vst.scene.importers import ImportOptions, import_scenes
from vst.scene.importers.arkitscenes import read_scene
from vst.scene.importers.common import ROT90
from vst.scene.types import Scene

VIDEO = "41069021"
K = scans.intrinsics(256, 192, hfov_degrees=60)


def _annotation(key: int, label: str) -> dict:
    box = scans.BOXES[key]
    rotation = scans.box_rotation(box)
    return {"uid": f"uid-{key}", "label": label, "modelId": "", "attributes": {},
            "segments": {"obbAligned": {"centroid": box["center"].tolist(), "axesLengths": box["size"].tolist(),
                                        "normalizedAxes": rotation.T.ravel().tolist()},  # the box axes as rows
                         "obb": {}}}


def write_arkitscenes(root, poses, views) -> list[str]:
    import trimesh

    folder = root / "3dod" / "Training" / VIDEO
    frames = folder / f"{VIDEO}_frames"
    for sub in ("lowres_wide", "lowres_depth", "lowres_wide_intrinsics"):
        (frames / sub).mkdir(parents=True, exist_ok=True)
    (folder / f"{VIDEO}_3dod_annotation.json").write_text(json.dumps(
        {"data": [_annotation(scans.SOFA_ID, "sofa"), _annotation(scans.CHAIR_ID, "chair")], "stats": {},
         "comment": "", "confirm": True, "skipped": False}))
    world = scans.world_mesh()
    trimesh.Trimesh(world.vertices, world.faces, vertex_colors=world.colors, process=False).export(
        folder / f"{VIDEO}_3dod_mesh.ply", encoding="binary")
    lines, stamps = [], []
    for index, pose in enumerate(poses):
        t = 305.244 + index * 0.1
        stamp = f"{t:.3f}"
        stamps.append(stamp)
        k, camera = K, pose
        if index % 2:  # recorded sideways: the phone's image is the upright one turned a quarter
            k = scans.intrinsics(192, 256, hfov_degrees=60 * 192 / 256)
            k = k.model_copy(update={"fx": K.fx, "fy": K.fx})
            camera = pose.copy()
            camera[:3, :3] = pose[:3, :3] @ ROT90.T  # the upright camera is this one turned once (np.rot90, k=1)
        rgb, depth, _ = views(k, camera)
        Image.fromarray(rgb).save(frames / "lowres_wide" / f"{VIDEO}_{stamp}.png")
        Image.fromarray(np.rint(depth * 1000).astype(np.uint16)).save(frames / "lowres_depth" / f"{VIDEO}_{stamp}.png")
        (frames / "lowres_wide_intrinsics" / f"{VIDEO}_{stamp}.pincam").write_text(
            f"{k.width} {k.height} {k.fx} {k.fy} {k.cx} {k.cy}\n")
        world_to_camera = np.linalg.inv(camera)
        rotvec = Rotation.from_matrix(world_to_camera[:3, :3]).as_rotvec()
        traj_time = t + 0.0004  # poses and frames disagree in the 4th decimal in the real data
        lines.append(" ".join(f"{v:.8f}" for v in [traj_time, *rotvec, *world_to_camera[:3, 3]]))
    (frames / "lowres_wide.traj").write_text("\n".join(lines) + "\n")
    return stamps


@pytest.fixture(scope="module")
def arkit_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("arkitscenes")
    poses = [scans.top_down_pose()] + scans.orbit_poses(9)
    with scans.Views() as views:
        stamps = write_arkitscenes(root, poses, views)
    return root, poses, stamps


def test_boxes_poses_and_upright_frames(arkit_root):
    root, poses, stamps = arkit_root
    raw = read_scene(root, VIDEO, ImportOptions())
    by_label = {o.raw_label: o for o in raw.objects}
    scans.assert_same_box(by_label["sofa"].box, scans.SOFA)
    scans.assert_same_box(by_label["chair"].box, scans.CHAIR)  # the 30-degree yaw survives normalizedAxes
    assert len(raw.frames) == len(poses)
    for frame, pose in zip(raw.frames, poses):
        np.testing.assert_allclose(frame.cam_to_world, pose, atol=1e-5)  # inverse of the traj's world -> camera
        assert (frame.intrinsics.width, frame.intrinsics.height) == (256, 192)  # sideways frames turned upright
    # a turned frame's pixels equal the upright render
    with scans.Views() as views:
        want, _, _ = views(K, poses[1])
    got = raw.frames[1].rgb()
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 2
    # mesh vertices are labelled by the boxes that contain them
    labels = raw.mesh.vertex_ids
    assert set(np.unique(labels)) == {0, by_label["sofa"].instance_id, by_label["chair"].instance_id}


def test_import_top_down_depth_and_mask(arkit_root, tmp_path):
    root, poses, _ = arkit_root
    result = import_scenes("arkitscenes", root, tmp_path, options=ImportOptions(fps=5, stills=2, pairs=1))
    assert result.imported == [VIDEO], result.failed
    scene = Scene.load(tmp_path / VIDEO)
    sofa = next(o.instance_id for o in scene.objects if o.category == "sofa")
    top = scene.frames[0]
    np.testing.assert_allclose(top.pose, poses[0], atol=1e-5)
    depth = np.asarray(Image.open(tmp_path / VIDEO / top.depth_path)).astype(float) / 1000
    masks = np.asarray(Image.open(tmp_path / VIDEO / top.instance_path))
    centre = (96, 128)
    assert masks[centre] == sofa and depth[centre] == pytest.approx(2.2, abs=0.002)
    assert masks[5, 5] == 0 and depth[5, 5] == pytest.approx(3.0, abs=0.002)  # the floor: no box, no id
    assert top.visibility[sofa].visible_frac == pytest.approx(1.0, abs=0.02)
    assert scene.fps == 5 and len(scene.sequences()["video"]) >= 5
    skills = scans.check_generated(tmp_path, tmp_path / "generated")  # vst data generate: answers true to the world
    assert {"si_depth_comparison", "si_measurement", "si_distance", "si_3d_detection"} <= skills
