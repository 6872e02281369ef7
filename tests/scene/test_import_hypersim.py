"""Hypersim importer on a tiny scene written in Hypersim's real on-disk layout.

Layout written here (apple/ml-hypersim): `README.md` ("Working with the Hypersim Dataset": the `ai_VVV_NNN/` tree,
coordinate conventions, camera trajectories, 3D bounding boxes, mesh annotations); `_detail/metadata_scene.csv`
(`parameter_name,parameter_value`, read as in public Hypersim loaders); `_detail/cam_XX/camera_keyframe_{positions,
orientations,frame_indices}.hdf5` (key `dataset`; positions in asset units, orientations camera -> world with the
camera looking along -z, frame lookup as in `code/python/tools/scene_generate_images_bounding_box.py`);
`images/scene_cam_XX_final_preview/frame.IIII.tonemap.jpg` and `images/scene_cam_XX_final_hdf5/frame.IIII.color.hdf5`
(tone-mapped by `code/python/tools/scene_generate_images_tonemap.py`, valid pixels from `render_entity_id`);
`images/scene_cam_XX_geometry_hdf5/frame.IIII.{depth_meters,semantic,semantic_instance,render_entity_id}.hdf5`
(float16 distance along the ray, as the real `contrib/mikeroberts3000/jupyter/ai_037_002/...depth_meters.hdf5`;
-1 = no instance); `_detail/mesh/metadata_semantic_instance_bounding_box_object_aligned_2d_*.hdf5` (row = semantic
instance id, inf rows unused; corners t + R diag(extents) (c - 0.5), `scene_generate_bounding_boxes.py` and
`scene_generate_images_bounding_box.py`); `mesh_objects_si.hdf5` / `mesh_objects_sii.hdf5` ((N, 1) int64, as in
`evermotion_dataset/scenes/ai_001_001/_detail/mesh/`); and `contrib/mikeroberts3000/metadata_camera_parameters.csv`
(`M_cam_from_uv_ij` maps pixel-centre uv to camera rays, notebook `01_casting_rays_that_match_hypersim_images`).

The scene's camera is a tilt-shift one, like 288 of Hypersim's 482 scenes: the true OpenCV camera (K_TRUE, the
rendered pose) is the stored camera orientation turned by TILT, with an off-centre principal point. Distances are
written in inches (meters_per_asset_unit = 0.0254).
"""

import csv

import numpy as np
import pytest
from PIL import Image

from tests.scene import scans
from vst.scene.importers import ImportOptions, import_scenes
from vst.scene.importers import hypersim
from vst.scene.importers.common import GL_TO_CV, ImportError_
from vst.scene.types import Intrinsics, Scene

SCENE = "ai_001_001"
MPAU = 0.0254  # inches
K_TRUE = Intrinsics(fx=110.0, fy=110.0, cx=86.3, cy=52.7, width=160, height=120)
TILT_DEG = 4.0
M_SCALE = 1.7  # M_cam_from_uv is defined up to scale (the CSV's is normalised to look like OpenGL's)
LAMP_ID = 4  # a box that no frame sees: labelled only by the mesh annotation
NYU = {scans.FLOOR_ID: 2, scans.SOFA_ID: 6, scans.CHAIR_ID: 5, LAMP_ID: 35}
CAM01_FRAMES = (0, 2, 3)  # of 4 keyframes: the released subset


def rot_x(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


TILT = rot_x(TILT_DEG)


def pixel_to_uv(width: int, height: int) -> np.ndarray:
    return np.array([[2.0 / width, 0, 1.0 / width - 1], [0, -2.0 / height, 1 - 1.0 / height], [0, 0, 1.0]])


def tilt_shift_cam_from_uv() -> np.ndarray:
    """The M_cam_from_uv whose rays, in the stored (OpenGL) camera frame, are those of K_TRUE turned by TILT."""
    return M_SCALE * GL_TO_CV @ TILT @ np.linalg.inv(K_TRUE.matrix) @ np.linalg.inv(pixel_to_uv(160, 120))


def stored_orientation(pose: np.ndarray) -> np.ndarray:
    """Hypersim's camera -> world rotation (OpenGL axes, before the tilt) of a true OpenCV pose."""
    return pose[:3, :3] @ TILT.T @ GL_TO_CV


def write_h5(path, array) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("dataset", data=array)


def ray_norm(k: Intrinsics) -> np.ndarray:
    u, v = np.meshgrid(np.arange(k.width), np.arange(k.height))
    return np.sqrt(1 + ((u - k.cx) / k.fx) ** 2 + ((v - k.cy) / k.fy) ** 2)


def write_camera_csv(root) -> None:
    columns = ["scene_name", "settings_output_img_height", "settings_output_img_width",
               "settings_units_info_meters_scale", "use_camera_physical"]
    columns += [f"M_cam_from_uv_{i}{j}" for i in range(3) for j in range(3)]
    columns += [f"M_proj_{i}{j}" for i in range(4) for j in range(4)]
    rows = []
    for name, matrix, physical in (("ai_001_000", hypersim.nominal_cam_from_uv(1024, 768), False),
                                   (SCENE, tilt_shift_cam_from_uv(), True)):
        rows.append([name, 120.0, 160.0, MPAU, physical] + matrix.ravel().tolist() + [0.0] * 16)
    with open(root / "metadata_camera_parameters.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def write_boxes(mesh) -> None:
    count = 6  # rows 0 and 5 are unused (inf), as in the real files
    positions, orientations, extents = np.full((count, 3), np.inf), np.full((count, 3, 3), np.inf), np.full((count, 3), np.inf)
    positions[scans.FLOOR_ID], orientations[scans.FLOOR_ID], extents[scans.FLOOR_ID] = [0, 0, 0], np.eye(3), [6, 6, 0]
    positions[scans.SOFA_ID], orientations[scans.SOFA_ID], extents[scans.SOFA_ID] = scans.SOFA["center"], np.eye(3), scans.SOFA["size"]
    # the chair as Hypersim might orient it: its x axis along the chair's local +y (a quarter turn further), lengths swapped
    quarter = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    positions[scans.CHAIR_ID] = scans.CHAIR["center"]
    orientations[scans.CHAIR_ID] = scans.box_rotation(scans.CHAIR) @ quarter
    extents[scans.CHAIR_ID] = scans.CHAIR["size"][[1, 0, 2]]
    positions[LAMP_ID], orientations[LAMP_ID], extents[LAMP_ID] = [-2.0, 2.0, 0.3], np.eye(3), [0.3, 0.3, 0.6]
    for name, array in (("positions", positions / MPAU), ("orientations", orientations), ("extents", extents / MPAU)):
        write_h5(mesh / f"metadata_semantic_instance_bounding_box_object_aligned_2d_{name}.hdf5", array)


def write_frame(images, camera, index, views, pose, hdr: bool) -> None:
    rgb, depth, ids = views(K_TRUE, pose)
    name = f"frame.{index:04d}"
    if hdr:  # linear HDR colour (float16 like the real files), tone-mapped by the importer
        write_h5(images / f"scene_{camera}_final_hdf5" / f"{name}.color.hdf5", ((rgb / 255.0) ** 2.2 * 3.0).astype(np.float16))
    else:
        path = images / f"scene_{camera}_final_preview" / f"{name}.tonemap.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(path, quality=95)
    geometry = images / f"scene_{camera}_geometry_hdf5"
    distance = np.where(depth > 0, depth * ray_norm(K_TRUE), np.nan)  # Euclidean distance to the optical centre
    write_h5(geometry / f"{name}.depth_meters.hdf5", distance.astype(np.float16))
    write_h5(geometry / f"{name}.semantic_instance.hdf5", np.where(ids > 0, ids, -1).astype(np.int16))
    nyu = np.vectorize(lambda i: NYU.get(int(i), -1))(ids)
    write_h5(geometry / f"{name}.semantic.hdf5", nyu.astype(np.int16))
    write_h5(geometry / f"{name}.render_entity_id.hdf5", np.where(ids > 0, 100 + ids, -1).astype(np.int32))


def write_hypersim(root, views) -> dict:
    """Writes SCENE; returns the true OpenCV poses per frame id."""
    scene = root / SCENE
    detail, images = scene / "_detail", scene / "images"
    detail.mkdir(parents=True)
    (detail / "metadata_scene.csv").write_text(f"parameter_name,parameter_value\nmeters_per_asset_unit,{MPAU}\n")
    (detail / "metadata_cameras.csv").write_text("camera_name\ncam_00\ncam_01\n")
    write_camera_csv(root)
    write_boxes(detail / "mesh")
    truth = {}
    trajectories = {"cam_00": [scans.top_down_pose()] + scans.orbit_poses(6),
                    "cam_01": scans.orbit_poses(4, radius=3.6)}
    for camera, poses in trajectories.items():
        write_h5(detail / camera / "camera_keyframe_positions.hdf5", np.array([p[:3, 3] / MPAU for p in poses]))
        write_h5(detail / camera / "camera_keyframe_orientations.hdf5", np.array([stored_orientation(p) for p in poses]))
        if camera == "cam_01":
            write_h5(detail / camera / "camera_keyframe_frame_indices.hdf5", np.arange(len(poses)))
        for index, pose in enumerate(poses):
            if camera == "cam_01" and index not in CAM01_FRAMES:
                continue
            write_frame(images, camera, index, views, pose, hdr=camera == "cam_01")
            truth[f"{camera}-{index:04d}"] = pose
    (root / "downloads").mkdir()  # not a scene
    return truth


@pytest.fixture(scope="module")
def hypersim_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hypersim")
    with scans.Views() as views:
        truth = write_hypersim(root, views)
        rendered = {frame_id: views(K_TRUE, pose) for frame_id, pose in truth.items()}
    return root, truth, rendered


def test_camera_model_on_real_rows():
    """Rows of the real metadata_camera_parameters.csv: ai_001_001 (plain camera), ai_037_002 (the notebooks'
    tilt-shift example), ai_019_007 (tilt-shift with skew)."""
    plain = np.array([[0.5773502886169104, 0, 0], [0, 0.4330127164626828, 0], [0, 0, -1.0]])
    k, body_from_cv = hypersim.camera_model(plain, 1024, 768)
    assert (k.fx, k.fy, k.cx, k.cy) == pytest.approx((886.81, 886.81, 511.5, 383.5), abs=0.01)
    np.testing.assert_allclose(body_from_cv, GL_TO_CV, atol=1e-9)
    np.testing.assert_allclose(hypersim.nominal_cam_from_uv(1024, 768), plain, atol=1e-9)

    shifted = np.array([[0.579607251426182, 0.0, -0.06955286861651404], [0.0, 0.4346865334657201, 0.09273312506660672],
                        [-0.0, 0.004054126980668954, -1.003909173803896]])
    k, body_from_cv = hypersim.camera_model(shifted, 1024, 768)
    assert (k.fx, k.fy, k.cx, k.cy) == pytest.approx((887.535, 887.535, 572.94, 457.142), abs=0.01)
    u, v = np.meshgrid(np.arange(1024), np.arange(768))
    pixels = np.stack([u, v, np.ones_like(u)], axis=-1).reshape(-1, 3).astype(float)
    want = pixels @ (shifted @ pixel_to_uv(1024, 768)).T  # the notebook's rays, stored camera frame
    got = ((pixels - [k.cx, k.cy, 0]) / [k.fx, k.fy, 1]) @ body_from_cv.T  # vst's rays, same frame
    cosine = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
    assert np.degrees(np.arccos(np.clip(cosine, -1, 1))).max() < 1e-5

    skewed = np.array([[0.5816325918420933, 0, 0], [0, 0.4521482462309275, 0],
                       [0.16414578812081862, -0.031774812884525834, -1.0334879501698204]])
    with pytest.raises(ImportError_, match="ai_019_007.*skew"):
        hypersim.camera_model(skewed, 1024, 768, "ai_019_007")


def test_tonemap_matches_the_official_operator():
    rng = np.random.default_rng(0)
    color = rng.uniform(0, 4, (12, 16, 3)).astype(np.float32)
    valid = np.ones((12, 16), dtype=bool)
    valid[:3] = False
    out = hypersim.tonemap(color, valid)
    brightness = 0.3 * color[..., 0] + 0.59 * color[..., 1] + 0.11 * color[..., 2]
    scale = 0.8 ** 2.2 / np.percentile(brightness[valid], 90)
    np.testing.assert_array_equal(out, (np.clip((scale * color) ** (1 / 2.2), 0, 1) * 255).astype(np.uint8))


def test_scene_in_world_frame(hypersim_root):
    root, truth, rendered = hypersim_root
    assert hypersim.list_scenes(root) == [SCENE]
    raw = hypersim.read_scene(root, SCENE, ImportOptions())
    by_id = {o.instance_id: o for o in raw.objects}
    # labels voted from the frames' semantic images; the lamp is seen by no frame and has no annotation: left out
    assert {o.category: o.instance_id for o in raw.objects} == {"floor": 1, "sofa": 2, "chair": 3}
    assert by_id[scans.FLOOR_ID].is_structure and by_id[scans.SOFA_ID].raw_label == "sofa"
    scans.assert_same_box(by_id[scans.SOFA_ID].box, scans.SOFA)
    scans.assert_same_box(by_id[scans.CHAIR_ID].box, scans.CHAIR)  # turned 30 degrees, axes as columns
    assert [f.frame_id for f in raw.frames] == list(truth)
    for frame in raw.frames:
        np.testing.assert_allclose(frame.cam_to_world, truth[frame.frame_id], atol=1e-5)
        assert frame.intrinsics.model_dump() == pytest.approx(K_TRUE.model_dump(), abs=1e-6)
    times = {f.frame_id: f.timestamp for f in raw.frames}
    assert times["cam_00-0006"] == pytest.approx(6 / hypersim.FPS)
    start = 6 / hypersim.FPS + hypersim.CAMERA_GAP_S
    assert times["cam_01-0000"] == pytest.approx(start) and times["cam_01-0003"] == pytest.approx(start + 3 / hypersim.FPS)
    for frame in raw.frames:  # planar depth and masks over whole frames (depth_meters is float16: 2^-11 relative)
        _, depth, ids = rendered[frame.frame_id]
        plane = frame.depth()
        assert (np.abs(plane - depth) <= depth * 2.0 ** -11 + 1e-5)[depth > 0].all() and (plane[depth == 0] == 0).all()
        np.testing.assert_array_equal(frame.instance_ids(), ids)
    top = raw.frames[0]
    principal = (round(K_TRUE.cy), round(K_TRUE.cx))
    assert top.instance_ids()[principal] == scans.SOFA_ID
    assert top.depth()[principal] == pytest.approx(3.0 - 0.8, abs=0.002)
    # cam_01's colour is HDR tone-mapped here: (k x^2.2)^(1/2.2) keeps the rendered colours' proportions
    rgb, _, _ = rendered["cam_01-0002"]
    image = raw.frames[-2].rgb().astype(float)
    lit = (rgb > 40) & (image < 250)
    ratio = image[lit] / rgb[lit]
    assert raw.frames[-2].frame_id == "cam_01-0002" and ratio.std() / ratio.mean() < 0.03


def test_import_writes_planar_depth_and_masks(hypersim_root, tmp_path):
    root, truth, _ = hypersim_root
    options = ImportOptions(max_side=160, fps=1.0, stills=3, pairs=2)
    result = import_scenes("hypersim", root, tmp_path, options=options)
    assert result.imported == [SCENE] and not result.failed
    scene = Scene.load(tmp_path / SCENE)
    assert scene.source == "hypersim" and "CC BY-SA 3.0" in scene.license
    top = next(f for f in scene.frames if f.frame_id == "cam_00-0000-still")
    assert top.intrinsics.model_dump() == pytest.approx(K_TRUE.model_dump(), abs=1e-6)
    np.testing.assert_allclose(top.pose, truth["cam_00-0000"], atol=1e-5)
    depth = np.asarray(Image.open(tmp_path / SCENE / top.depth_path)).astype(float) / 1000
    masks = np.asarray(Image.open(tmp_path / SCENE / top.instance_path))
    # looking straight down from 3 m: planar depth 3 - 0.8 on the sofa's top, 3.0 on the floor
    principal = (round(K_TRUE.cy), round(K_TRUE.cx))
    assert masks[principal] == scans.SOFA_ID and depth[principal] == pytest.approx(2.2, abs=0.002)
    assert masks[5, 5] == scans.FLOOR_ID and depth[5, 5] == pytest.approx(3.0, abs=0.002)
    # the sofa's top spans x in [-0.8, 0.8] at depth 2.2: fx 1.6 / 2.2 pixels across
    assert (masks[principal[0]] == scans.SOFA_ID).sum() == pytest.approx(1.6 * K_TRUE.fx / 2.2, abs=2)
    assert top.visibility[scans.SOFA_ID].depth_median == pytest.approx(2.2, abs=0.005)
    assert {f.sequence for f in scene.frames} >= {"video", "still-00", "pair-00"}
    skills = scans.check_generated(tmp_path, tmp_path / "generated")  # vst data generate: answers true to the world
    assert {"si_depth_comparison", "si_measurement", "si_distance", "si_3d_detection"} <= skills


def test_mesh_annotation_labels_unseen_instances(hypersim_root, tmp_path):
    root, _, _ = hypersim_root
    mesh = tmp_path / "evermotion_dataset" / "scenes" / SCENE / "_detail" / "mesh"
    objects_sii = np.array([[-1], [scans.FLOOR_ID], [scans.SOFA_ID], [scans.SOFA_ID], [scans.CHAIR_ID], [LAMP_ID], [-1]])
    objects_si = np.array([[1], [NYU[scans.FLOOR_ID]], [6], [6], [5], [35], [22]])  # walls and ceiling: no instance
    write_h5(mesh / "mesh_objects_sii.hdf5", objects_sii.astype(np.int64))
    write_h5(mesh / "mesh_objects_si.hdf5", objects_si.astype(np.int64))
    raw = hypersim.read_scene(root, SCENE, ImportOptions(extra={"annotations": str(tmp_path), "cameras": "cam_01"}))
    assert {o.instance_id: o.category for o in raw.objects} == {1: "floor", 2: "sofa", 3: "chair", 4: "lamp"}
    assert [o.box.center for o in raw.objects if o.instance_id == LAMP_ID][0] == pytest.approx((-2.0, 2.0, 0.3), abs=1e-6)
    assert {f.frame_id for f in raw.frames} == {f"cam_01-{i:04d}" for i in CAM01_FRAMES}
    assert raw.frames[0].timestamp == 0.0


def test_camera_parameters_are_required_unless_nominal(hypersim_root, tmp_path):
    root, truth, _ = hypersim_root
    with pytest.raises(ImportError_, match="metadata_camera_parameters.csv"):
        hypersim.read_scene(root, SCENE, ImportOptions(extra={"camera_parameters": str(tmp_path / "missing.csv")}))
    raw = hypersim.read_scene(root, SCENE, ImportOptions(extra={"camera_parameters": "nominal"}))
    k = raw.frames[0].intrinsics
    assert (k.fx, k.cx, k.cy) == pytest.approx((80 / np.tan(np.radians(30)), 79.5, 59.5))
    # the stored orientation alone: the OpenCV camera without the tilt-shift rotation
    np.testing.assert_allclose(raw.frames[0].cam_to_world[:3, :3], stored_orientation(truth["cam_00-0000"]) @ GL_TO_CV, atol=1e-9)


def test_bad_scene_is_reported_and_skipped(hypersim_root, tmp_path):
    root, _, _ = hypersim_root
    broken = root / "ai_001_002"
    (broken / "_detail").mkdir(parents=True)
    try:
        result = import_scenes("hypersim", root, tmp_path, options=ImportOptions(max_side=96, max_frames=3))
    finally:
        import shutil

        shutil.rmtree(broken)
    assert result.imported == [SCENE]
    assert "metadata_scene.csv" in result.failed["ai_001_002"]
