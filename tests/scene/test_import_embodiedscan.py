"""EmbodiedScan importer on a tiny info pickle written in EmbodiedScan's real layout.

Layout and conventions written here follow OpenRobotLab/EmbodiedScan:
- `data/README.md`: the data root holds `embodiedscan_infos_{train,val,test}.pkl` next to `scannet/`, `3rscan/`,
  `matterport3d/`, `arkitscenes/`; ScanNet frames are exported by `embodiedscan/converter/generate_image_scannet.py`
  into `scannet/posed_images/<scene>/<%05d>.jpg` (colour), `.png` (uint16 depth), `.txt` (raw pose), `intrinsic.txt`,
  `depth_intrinsic.txt`; 3RScan's `sequence.zip` is unpacked into `3rscan/<id>/sequence/frame-%06d.color.jpg` /
  `.depth.pgm` (`generate_image_3rscan.py`).
- `embodiedscan/explorer.py` and `embodiedscan/datasets/embodiedscan_dataset.py`: the pickle is
  `{"metainfo": {"categories": {name: id}}, "data_list": [...]}`; a scene has `sample_idx`, `axis_align_matrix`,
  `cam2img` (scene wide, or per image for Matterport3D), `depth_cam2img`, `images` [{`img_path`, `depth_path`
  (relative to the data root), `cam2global`, `visible_instance_ids` (indices into `instances`)}] and `instances`
  [{`bbox_3d` (9 numbers), `bbox_label_3d`, `bbox_id`}]; camera-to-world = `axis_align_matrix @ cam2global`
  (`img_drawer.draw_box3d` projects with OpenCV axes); depth_shift 4000 for Matterport3D, else 1000.
- `embodiedscan/structures/bbox_3d/euler_box3d.py` + `utils.rotation_3d_in_euler`: box corners =
  (dims * (unit corner - 0.5)) @ Rᵀ + centre with R = pytorch3d `euler_angles_to_matrix(angles, "ZXY")`
  (pytorch3d `transforms/rotation_conversions.py`: R = Rz(α) @ Rx(β) @ Ry(γ)); both are transcribed below in torch.
- mmscan branch `mmscan/utils/data_io.py`: `bbox_3d` is a list of 9 values, `visible_instance_ids` a numpy array.

The known world (tests/scene/scans.py) is written with a non-identity `axis_align_matrix` (raw `cam2global` differs
from the world pose), the sofa's box given with three non-zero ZXY angles (its extents permuted to match) and the
chair's 30-degree yaw as α.
"""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from tests.scene import scans
from vst.scene.importers import ImportOptions, import_scenes
from vst.scene.importers import embodiedscan
from vst.scene.importers.common import ROT90, ImportError_, euler_zxy, rigid
from vst.scene.importers.embodiedscan import read_scene
from vst.scene.types import Scene

SCANNET = "scannet/scene0001_00"
RSCAN = "3rscan/0cac7578-8d6f-2d13-8c2d-bfa7a04f8af3"
MP3D = "matterport3d/17DRP5sb8fy/region0"
ALIGN = rigid(scans.rot_z(np.radians(40)), [1.2, -0.7, 0.05])  # raw -> axis-aligned world
ALIGN_3RSCAN = rigid(scans.rot_z(np.radians(-110)), [-0.3, 2.0, -0.1])
COLOR_K = scans.intrinsics(200, 150)
DEPTH_K = scans.intrinsics(160, 120, hfov_degrees=66.0)  # ScanNet's depth camera: another lens and size
SIDEWAYS_K = COLOR_K.model_copy(update={"cx": 74.5, "cy": 99.5, "width": 150, "height": 200})  # COLOR_K turned
CATEGORIES = {"adhesive tape": 0, "chair": 48, "couch": 65, "table": 246}
SOFA_ANGLES = (np.pi / 2, np.pi / 2, np.pi / 2)


# -- pytorch3d / EmbodiedScan, transcribed -----------------------------------------------------------------------------
def p3d_axis_angle_rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    flat = {"X": (one, zero, zero, zero, cos, -sin, zero, sin, cos),
            "Y": (cos, zero, sin, zero, one, zero, -sin, zero, cos),
            "Z": (cos, -sin, zero, sin, cos, zero, zero, zero, one)}[axis]
    return torch.stack(flat, -1).reshape(angle.shape + (3, 3))


def p3d_euler_angles_to_matrix(euler_angles: torch.Tensor, convention: str) -> torch.Tensor:
    matrices = [p3d_axis_angle_rotation(c, e) for c, e in zip(convention, torch.unbind(euler_angles, -1))]
    return torch.matmul(torch.matmul(matrices[0], matrices[1]), matrices[2])


def embodiedscan_corners(bbox_3d) -> np.ndarray:
    """`EulerInstance3DBoxes.corners` for one box."""
    tensor = torch.as_tensor(np.asarray(bbox_3d, dtype=np.float64))[None]
    dims = tensor[:, 3:6]
    corners_norm = torch.from_numpy(np.stack(np.unravel_index(np.arange(8), [2] * 3), axis=1)).to(dims.dtype)
    corners_norm = corners_norm[[0, 1, 3, 2, 4, 5, 7, 6]] - dims.new_tensor((0.5, 0.5, 0.5))
    corners = dims.view([-1, 1, 3]) * corners_norm.reshape([1, 8, 3])
    rot_mat_t = p3d_euler_angles_to_matrix(tensor[:, 6:], "ZXY").transpose(-2, -1)
    return (torch.bmm(corners, rot_mat_t) + tensor[:, :3].view(-1, 1, 3))[0].numpy()


def bbox_9dof(box: dict, angles) -> list[float]:
    """A world box as EmbodiedScan's 9 numbers for given ZXY angles: the extents follow the world axis each box axis
    lands on (the angles must turn the box's axes onto the world box's axes)."""
    rotation = p3d_euler_angles_to_matrix(torch.tensor(angles, dtype=torch.float64), "ZXY").numpy()
    world_axes = scans.box_rotation(box)
    sizes = [box["size"][np.argmax(np.abs(world_axes.T @ rotation[:, i]))] for i in range(3)]
    return [float(v) for v in [*box["center"], *sizes, *angles]]


INSTANCES = [  # bbox_id: EmbodiedScan's own object ids, not contiguous
    {"bbox_3d": bbox_9dof(scans.SOFA, SOFA_ANGLES), "bbox_label_3d": CATEGORIES["couch"], "bbox_id": 7},
    {"bbox_3d": bbox_9dof(scans.CHAIR, (scans.CHAIR["yaw"], 0.0, 0.0)), "bbox_label_3d": CATEGORIES["chair"], "bbox_id": 12},
]


# -- the data root ------------------------------------------------------------------------------------------------------
def _k4(k) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = k.matrix
    return matrix


def _visible(ids: np.ndarray) -> np.ndarray:
    """Indices into `instances` of the objects seen in a rendered id map (sofa = 0, chair = 1)."""
    return np.array([i for i, key in enumerate((scans.SOFA_ID, scans.CHAIR_ID)) if (ids == key).any()], dtype=np.int64)


def _scannet_scene(root, poses, views) -> dict:
    folder = root / "scannet" / "posed_images" / SCANNET.split("/")[1]
    folder.mkdir(parents=True)
    np.savetxt(folder / "intrinsic.txt", _k4(COLOR_K), fmt="%f")  # written by generate_image_scannet.py, unused
    np.savetxt(folder / "depth_intrinsic.txt", _k4(DEPTH_K), fmt="%f")
    images = []
    raw_from_world = np.linalg.inv(ALIGN)
    for index, pose in enumerate(poses):
        name = f"{index * 10:05d}"  # EmbodiedScan keeps every 10th ScanNet frame
        rgb, _, ids = views(COLOR_K, pose)
        _, depth, _ = views(DEPTH_K, pose)
        Image.fromarray(rgb).save(folder / f"{name}.jpg", quality=95)
        Image.fromarray(np.rint(depth * 1000).astype(np.uint16)).save(folder / f"{name}.png")
        cam2global = raw_from_world @ pose
        np.savetxt(folder / f"{name}.txt", cam2global, fmt="%f")
        images.append({"img_path": f"scannet/posed_images/{SCANNET.split('/')[1]}/{name}.jpg",
                       "depth_path": f"scannet/posed_images/{SCANNET.split('/')[1]}/{name}.png",
                       "cam2global": cam2global, "visible_instance_ids": _visible(ids)})
    return {"sample_idx": SCANNET, "axis_align_matrix": ALIGN.copy(), "cam2img": _k4(COLOR_K),
            "depth_cam2img": _k4(DEPTH_K), "images": images, "instances": INSTANCES}


def _sideways(pose: np.ndarray) -> np.ndarray:
    """The phone held sideways: the upright camera is this one turned once (np.rot90, k=1)."""
    camera = pose.copy()
    camera[:3, :3] = pose[:3, :3] @ ROT90.T
    return camera


def _3rscan_scene(root, poses, views) -> dict:
    scan = RSCAN.split("/")[1]
    folder = root / "3rscan" / scan / "sequence"
    folder.mkdir(parents=True)
    images = []
    raw_from_world = np.linalg.inv(ALIGN_3RSCAN)
    for index, pose in enumerate(poses):
        camera = _sideways(pose)
        rgb, depth, ids = views(SIDEWAYS_K, camera)
        Image.fromarray(rgb).save(folder / f"frame-{index:06d}.color.jpg", quality=95)
        Image.fromarray(np.rint(depth * 1000).astype(np.uint16)).save(folder / f"frame-{index:06d}.depth.pgm")
        images.append({"img_path": f"3rscan/{scan}/sequence/frame-{index:06d}.color.jpg",
                       "depth_path": f"3rscan/{scan}/sequence/frame-{index:06d}.depth.pgm",
                       "cam2global": raw_from_world @ camera, "cam2img": _k4(SIDEWAYS_K),  # per image, no depth K
                       "visible_instance_ids": _visible(ids)})
    return {"sample_idx": RSCAN, "axis_align_matrix": ALIGN_3RSCAN.copy(), "images": images, "instances": INSTANCES}


def _matterport_scene(root, pose, views) -> dict:
    building = MP3D.split("/")[1]
    for sub in ("matterport_color_images", "matterport_depth_images"):
        (root / "matterport3d" / building / sub).mkdir(parents=True)
    rgb, depth, ids = views(COLOR_K, pose)
    stem = "0f37bd0737e349de9d536263a4bdd60d"
    color = f"matterport3d/{building}/matterport_color_images/{stem}_i1_2.jpg"
    depth_path = f"matterport3d/{building}/matterport_depth_images/{stem}_d1_2.png"
    Image.fromarray(rgb).save(root / color, quality=95)
    Image.fromarray(np.rint(depth * 4000).astype(np.uint16)).save(root / depth_path)  # 0.25 mm units
    return {"sample_idx": MP3D, "axis_align_matrix": np.eye(4),
            "images": [{"img_path": color, "depth_path": depth_path, "cam2global": pose.copy(), "cam2img": _k4(COLOR_K),
                        "visible_instance_ids": _visible(ids)}],
            "instances": INSTANCES[:1]}


@pytest.fixture(scope="module")
def es_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("embodiedscan")
    poses = [scans.top_down_pose()] + scans.orbit_poses(6)
    with scans.Views() as views:
        scenes = [_scannet_scene(root, poses, views), _3rscan_scene(root, poses[2:4], views),
                  _matterport_scene(root, poses[0], views)]
    missing = {"sample_idx": "arkitscenes/Training/40753679", "axis_align_matrix": np.eye(4), "instances": [],
               "images": [{"img_path": "arkitscenes/Training/40753679/40753679_frames/lowres_wide/40753679_6845.803.png",
                           "depth_path": "arkitscenes/Training/40753679/40753679_frames/lowres_depth/40753679_6845.803.png",
                           "cam2global": np.eye(4), "cam2img": _k4(COLOR_K), "visible_instance_ids": np.zeros(0, np.int64)}]}
    metainfo = {"categories": CATEGORIES, "DATASET": "EmbodiedScan"}
    with open(root / "embodiedscan_infos_val.pkl", "wb") as handle:
        pickle.dump({"metainfo": metainfo, "data_list": scenes + [missing]}, handle)
    with open(root / "embodiedscan_infos_train.pkl", "wb") as handle:
        pickle.dump({"metainfo": metainfo, "data_list": []}, handle)
    return root, poses


# -- tests ---------------------------------------------------------------------------------------------------------------
def test_euler_zxy_is_pytorch3d_zxy():
    rng = np.random.default_rng(0)
    for angles in [(0.3, -0.7, 1.9), *rng.uniform(-np.pi, np.pi, (5, 3))]:
        want = p3d_euler_angles_to_matrix(torch.tensor(angles, dtype=torch.float64), "ZXY").numpy()
        np.testing.assert_allclose(euler_zxy(*angles), want, atol=1e-12)


def test_box_from_9dof_matches_embodiedscan_corners():
    from vst.scene.geometry import box_corners

    rng = np.random.default_rng(1)
    for _ in range(5):
        values = [*rng.uniform(-2, 2, 3), *rng.uniform(0.1, 2, 3), *rng.uniform(-np.pi, np.pi, 3)]
        obb = embodiedscan.box_from_9dof(values, "test")
        want = embodiedscan_corners(values)
        got = box_corners((obb.center, obb.size, obb.rotation))
        assert np.linalg.norm(got[:, None] - want[None], axis=2).min(axis=1).max() < 1e-9
    # the pickle's boxes are the known world boxes by EmbodiedScan's own corner code
    for instance, box in zip(INSTANCES, (scans.SOFA, scans.CHAIR)):
        corners = embodiedscan_corners(instance["bbox_3d"])
        assert np.linalg.norm(corners[:, None] - scans.box_corners(box)[None], axis=2).min(axis=1).max() < 1e-9


def test_scenes_listed_from_the_pickles(es_root):
    root, _ = es_root
    assert embodiedscan.list_scenes(root) == sorted([RSCAN, MP3D, SCANNET])  # arkitscenes: images not on disk
    assert embodiedscan.list_scenes(root / "embodiedscan_infos_val.pkl") == sorted([RSCAN, MP3D, SCANNET])
    assert embodiedscan.list_scenes(root, ImportOptions(extra={"split": "train"})) == []
    assert [p.name for p in embodiedscan.info_files(root)] == ["embodiedscan_infos_train.pkl", "embodiedscan_infos_val.pkl"]
    with pytest.raises(ImportError_, match="no scene"):
        read_scene(root, SCANNET, ImportOptions(extra={"split": "train"}))


def test_scannet_scene_in_world_frame(es_root):
    root, poses = es_root
    raw = read_scene(root, SCANNET, ImportOptions())
    assert raw.source == "embodiedscan" and "ScanNet" in raw.license
    by_id = {o.instance_id: o for o in raw.objects}
    assert sorted(by_id) == [1, 2]  # index in `instances` + 1
    sofa, chair = by_id[1], by_id[2]
    assert (sofa.category, sofa.raw_label, sofa.attributes) == ("sofa", "couch", {"bbox_id": 7})  # couch -> sofa
    assert (chair.category, chair.attributes) == ("chair", {"bbox_id": 12})
    scans.assert_same_box(sofa.box, scans.SOFA)  # three 90-degree ZXY angles, extents permuted
    scans.assert_same_box(chair.box, scans.CHAIR)  # the 30-degree yaw as alpha
    np.testing.assert_allclose(chair.box.rotation_matrix, scans.box_rotation(scans.CHAIR), atol=1e-9)
    assert len(raw.frames) == len(poses)
    raw_pose = embodiedscan.load_info(root / "embodiedscan_infos_val.pkl")["data_list"][0]["images"][1]["cam2global"]
    assert isinstance(raw_pose, np.ndarray) and np.abs(raw_pose - poses[1]).max() > 0.5  # raw cam2global is not the pose ...
    for frame, pose in zip(raw.frames, poses):
        np.testing.assert_allclose(frame.cam_to_world, pose, atol=1e-5)  # ... axis_align_matrix @ cam2global is
        assert frame.intrinsics == COLOR_K and frame.depth_intrinsics == DEPTH_K
    assert [f.frame_id for f in raw.frames[:2]] == ["00000", "00010"]
    assert raw.frames[1].timestamp == pytest.approx(10 / 30)
    depth = raw.frames[0].depth()
    assert depth.shape == (120, 160) and depth[60, 80] == pytest.approx(2.2, abs=0.001)


def test_import_writes_planar_depth_and_masks_from_boxes(es_root, tmp_path):
    root, poses = es_root
    result = import_scenes("embodiedscan", root, tmp_path, options=ImportOptions(fps=3, stills=3, pairs=1))
    assert sorted(result.imported) == sorted([RSCAN, MP3D, SCANNET]) and not result.failed, result.failed
    scene = Scene.load(tmp_path / "scannet__scene0001_00")
    assert scene.scene_id == "scannet__scene0001_00" and scene.source == "embodiedscan"  # folder-safe sample_idx
    assert scene.room is not None and scene.room.floor_z == pytest.approx(0.0, abs=0.03)  # from the frames' depth
    top = next(f for f in scene.frames if f.frame_id == "00000-still")
    assert top.intrinsics == COLOR_K
    np.testing.assert_allclose(top.pose, poses[0], atol=1e-5)
    depth = np.asarray(Image.open(tmp_path / "scannet__scene0001_00" / top.depth_path)).astype(float) / 1000
    masks = np.asarray(Image.open(tmp_path / "scannet__scene0001_00" / top.instance_path))
    centre = (75, 100)
    # looking straight down from 3 m: planar depth 3 - 0.8 on the sofa's top, 3.0 on the floor
    assert masks[centre] == 1 and depth[centre] == pytest.approx(3.0 - 0.8, abs=0.002)
    assert masks[20, 20] == 0 and depth[20, 20] == pytest.approx(3.0, abs=0.002)  # the floor: no box, no id
    assert depth[0, 0] == 0  # outside the narrower depth camera: no depth (not stretched)
    row = masks[centre[0]]  # the sofa's top spans x in [-0.8, 0.8] at depth 2.2
    assert (row == 1).sum() == pytest.approx(1.6 * COLOR_K.fx / 2.2, abs=2)
    assert top.visibility[1].depth_median == pytest.approx(2.2, abs=0.005)
    side = next(f for f in scene.frames if f.frame_id == "00030-still")
    assert 2 in side.visibility  # the chair, seen from the side, is masked from depth + its turned box
    # Matterport3D depth is in 0.25 mm units
    mp3d = Scene.load(tmp_path / "matterport3d__17DRP5sb8fy__region0")
    frame = mp3d.frames[0]
    mp_depth = np.asarray(Image.open(tmp_path / "matterport3d__17DRP5sb8fy__region0" / frame.depth_path)) / frame.depth_scale
    assert mp_depth[centre] == pytest.approx(2.2, abs=0.002)
    assert frame.frame_id.startswith("0f37bd0737e349de9d536263a4bdd60d_i1_2")
    skills = scans.check_generated(tmp_path, tmp_path / "generated")  # vst data generate: answers true to the world
    assert {"si_depth_comparison", "si_measurement", "si_distance", "si_3d_detection"} <= skills


def test_3rscan_sideways_frames_turned_upright(es_root):
    root, poses = es_root
    raw = read_scene(root, RSCAN, ImportOptions())
    assert [f.frame_id for f in raw.frames] == ["frame-000000_color", "frame-000001_color"]
    assert raw.frames[1].timestamp == pytest.approx(1 / 3)
    with scans.Views() as views:
        for frame, pose in zip(raw.frames, poses[2:4]):
            np.testing.assert_allclose(frame.cam_to_world, pose, atol=1e-5)
            assert frame.intrinsics == COLOR_K and frame.depth_intrinsics is None
            want_rgb, want_depth, _ = views(COLOR_K, pose)
            assert np.abs(frame.rgb().astype(int) - want_rgb.astype(int)).mean() < 2
            close = np.abs(frame.depth() - want_depth) < 0.001  # all but a few silhouette pixels
            assert close.mean() > 0.98


def test_depth_intrinsics_lookup():
    scene_k, image_k, old_k = np.eye(4), 2 * np.eye(4), 3 * np.eye(4)
    assert embodiedscan.depth_cam2img({"depth_cam2img": image_k}, {"depth_cam2img": scene_k}) is image_k
    assert embodiedscan.depth_cam2img({}, {"depth_cam2img": scene_k, "cam2depth": old_k}) is scene_k
    assert embodiedscan.depth_cam2img({}, {"cam2depth": old_k}) is old_k
    assert embodiedscan.depth_cam2img({}, {}) is None


def test_foreign_pickle_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.getcwd, ())

    path = tmp_path / "embodiedscan_infos_val.pkl"
    path.write_bytes(pickle.dumps({"metainfo": {}, "data_list": [Evil()]}))
    with pytest.raises(ImportError_, match="refusing to load"):
        embodiedscan.load_info(path)
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ImportError_, match="metainfo"):
        embodiedscan.load_info(path)
