"""ScanNet v2 importer on a tiny scene written in ScanNet's real layout.

Layout written here (from ScanNet's README, `SensorData.py` in ScanNet/SensReader/python, and the EmbodiedScan /
VLM-3R converters that read it): `scans/<scene>/<scene>.txt` with `axisAlignment = 16 floats`,
`<scene>_vh_clean_2.ply` (binary PLY with vertex colours, raw frame), `<scene>_vh_clean_2.0.010000.segs.json`
(`segIndices`), `<scene>.aggregation.json` (`segGroups`: id, objectId, segments, label), the
`scannetv2-labels.combined.tsv` header, and the SensorData export: `color/<i>.jpg`, `depth/<i>.png` (uint16 mm),
`pose/<i>.txt` (4 x 4 camera-to-world, raw frame, `-inf` for a lost frame), `intrinsic/intrinsic_{color,depth}.txt`
(4 x 4; colour and depth with different K and sizes).
"""

import json

import numpy as np
import pytest
from PIL import Image

from tests.scene import scans
from vst.scene.importers import ImportOptions, import_scenes
from vst.scene.importers.scannet import read_scene
from vst.scene.types import Scene

SCENE = "scene0001_00"
ALIGN = np.eye(4)
ALIGN[:3, :3] = scans.rot_z(np.radians(-25))
ALIGN[:3, 3] = [1.2, -0.7, 0.05]  # raw -> aligned; the raw frame is the world turned and moved
COLOR_K = scans.intrinsics(320, 240)
DEPTH_K = scans.intrinsics(160, 120, hfov_degrees=66.0)  # another lens and size, like the real 640 x 480 depth
LABELS = "id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\teigen13class\n"
LABELS += "1\tfloor\tfloor\t1\t2\t2\tfloor\tfloor\tFloor\n2\tcouch\tcouch\t1\t6\t9\tsofa\tsofa\tSofa\n"
LABELS += "3\toffice chair\toffice chair\t1\t5\t4\tchair\tchair\tChair\n"


def _k4(k) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = k.matrix
    return matrix


def write_scannet(root, poses, views) -> None:
    import trimesh

    folder = root / "scans" / SCENE
    for sub in ("color", "depth", "pose", "intrinsic"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    raw_from_world = np.linalg.inv(ALIGN)
    (folder / f"{SCENE}.txt").write_text(
        "axisAlignment = " + " ".join(f"{v:.9f}" for v in ALIGN.ravel()) + "\ncolorHeight = 240\ncolorWidth = 320\n"
        "depthHeight = 120\ndepthWidth = 160\nnumColorFrames = 14\n")
    world = scans.world_mesh()
    raw_vertices = world.vertices @ raw_from_world[:3, :3].T + raw_from_world[:3, 3]
    mesh = trimesh.Trimesh(raw_vertices, world.faces, vertex_colors=np.c_[world.colors, np.full(len(world.colors), 255)], process=False)
    mesh.export(folder / f"{SCENE}_vh_clean_2.ply", encoding="binary")
    # segments: every vertex its own segment id 100 + (id * 7 + vertex) % 5, groups collect an object's segments
    segments = 100 + world.vertex_ids * 10 + np.arange(len(world.vertex_ids)) % 5
    (folder / f"{SCENE}_vh_clean_2.0.010000.segs.json").write_text(json.dumps(
        {"params": {"kThresh": "0.0001", "segMinVerts": "20"}, "sceneId": SCENE, "segIndices": segments.tolist()}))
    groups = [{"id": i, "objectId": key - 1, "segments": sorted(set(segments[world.vertex_ids == key].tolist())),
               "label": label} for i, (key, label) in enumerate([(1, "floor"), (2, "couch"), (3, "office chair")])]
    (folder / f"{SCENE}.aggregation.json").write_text(json.dumps(
        {"sceneId": f"scannet.{SCENE}", "appId": "Aggregator.v2", "segGroups": groups,
         "segmentsFile": f"scannet.{SCENE}_vh_clean_2.0.010000.segs.json"}))
    (root / "scannetv2-labels.combined.tsv").write_text(LABELS)
    np.savetxt(folder / "intrinsic" / "intrinsic_color.txt", _k4(COLOR_K), fmt="%f")
    np.savetxt(folder / "intrinsic" / "intrinsic_depth.txt", _k4(DEPTH_K), fmt="%f")
    for index, pose in enumerate(poses):
        raw_pose = raw_from_world @ pose
        if index == 3:  # tracking lost: SensorData exports -inf
            raw_pose = np.full((4, 4), -np.inf)
        np.savetxt(folder / "pose" / f"{index * 10}.txt", raw_pose, fmt="%f")
        rgb, _, _ = views(COLOR_K, pose)
        Image.fromarray(rgb).save(folder / "color" / f"{index * 10}.jpg", quality=95)
        _, depth, _ = views(DEPTH_K, pose)
        Image.fromarray(np.rint(depth * 1000).astype(np.uint16)).save(folder / "depth" / f"{index * 10}.png")


@pytest.fixture(scope="module")
def scannet_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("scannet")
    poses = [scans.top_down_pose()] + scans.orbit_poses(13)
    with scans.Views() as views:
        write_scannet(root, poses, views)
    return root, poses


def test_scene_in_world_frame(scannet_root):
    root, poses = scannet_root
    raw = read_scene(root, SCENE, ImportOptions())
    by_id = {o.instance_id: o for o in raw.objects}
    assert {o.category for o in raw.objects} == {"floor", "sofa", "chair"}  # couch -> sofa via the tsv + vst table
    assert by_id[scans.FLOOR_ID].is_structure and by_id[scans.SOFA_ID].raw_label == "couch"
    scans.assert_same_box(by_id[scans.SOFA_ID].box, scans.SOFA)  # AABB of aligned vertices = the axis-aligned sofa
    chair_corners = scans.box_corners(scans.CHAIR)  # the turned chair: its AABB
    lo, hi = chair_corners.min(0), chair_corners.max(0)
    np.testing.assert_allclose(by_id[scans.CHAIR_ID].box.center, (lo + hi) / 2, atol=1e-4)
    np.testing.assert_allclose(by_id[scans.CHAIR_ID].box.size, hi - lo, atol=1e-4)
    assert len(raw.frames) == 14
    for frame, pose in zip(raw.frames, poses):
        if np.isfinite(frame.cam_to_world).all():
            np.testing.assert_allclose(frame.cam_to_world, pose, atol=1e-5)  # world = axisAlignment @ pose
    assert raw.frames[1].timestamp == pytest.approx(10 / 30)


def test_import_writes_planar_depth_masks_and_skips_lost_frames(scannet_root, tmp_path):
    root, poses = scannet_root
    result = import_scenes("scannet", root, tmp_path, options=ImportOptions(max_side=200, fps=10, stills=3, pairs=2))
    assert result.imported == [SCENE] and not result.failed
    scene = Scene.load(tmp_path / SCENE)
    assert scene.source == "scannet" and scene.room is not None
    ids = {f.frame_id.split("-")[0] for f in scene.frames}
    assert "000030" not in ids  # the -inf pose
    top = next(f for f in scene.frames if f.frame_id == "000000-still")
    assert (top.intrinsics.width, top.intrinsics.height) == (200, 150)
    assert top.intrinsics.fx == pytest.approx(COLOR_K.fx * 200 / 320)
    np.testing.assert_allclose(top.pose, poses[0], atol=1e-5)
    depth = np.asarray(Image.open(tmp_path / SCENE / top.depth_path)).astype(float) / 1000
    masks = np.asarray(Image.open(tmp_path / SCENE / top.instance_path))
    # looking straight down from 3 m: planar depth is 3 - 0.8 on the sofa's top, 3.0 on the floor
    centre = (top.intrinsics.height // 2, top.intrinsics.width // 2)
    assert masks[centre] == scans.SOFA_ID
    assert depth[centre] == pytest.approx(3.0 - 0.8, abs=0.002)
    assert masks[30, 30] == scans.FLOOR_ID and depth[30, 30] == pytest.approx(3.0, abs=0.002)
    assert depth[0, 0] == 0  # the depth camera's narrower view: no depth there (not stretched)
    # the sofa's top face spans x in [-0.8, 0.8] at depth 2.2: its mask's width in pixels is 1.6 fx / 2.2
    row = masks[centre[0]]
    assert (row == scans.SOFA_ID).sum() == pytest.approx(1.6 * top.intrinsics.fx / 2.2, abs=2)
    assert top.visibility[scans.SOFA_ID].depth_median == pytest.approx(2.2, abs=0.005)
    sequences = scene.sequences()
    assert len(sequences["video"]) > 1 and len(sequences["pair-00"]) == 2 and "still-02" in sequences
    # re-running skips the finished scene
    again = import_scenes("scannet", root, tmp_path)
    assert again.skipped == [SCENE] and not again.imported
    skills = scans.check_generated(tmp_path, tmp_path / "generated")  # vst data generate: answers true to the world
    assert {"si_depth_comparison", "si_measurement", "si_distance", "si_3d_detection"} <= skills


def test_bad_scene_is_reported_and_skipped(scannet_root, tmp_path):
    root, _ = scannet_root
    broken = root / "scans" / "scene0002_00"
    broken.mkdir()
    (broken / "scene0002_00_vh_clean_2.ply").write_text("not a ply")
    try:
        result = import_scenes("scannet", root, tmp_path, options=ImportOptions(max_side=96, max_frames=4), workers=2)
    finally:
        import shutil

        shutil.rmtree(broken)
    assert result.imported == [SCENE]
    assert "scene0002_00" in result.failed and "scene0002_00_vh_clean_2.ply" in result.failed["scene0002_00"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["scenes"] == [SCENE] and "scene0002_00" in manifest["failed"]


def test_cli_import_then_generate_mixed_sources(scannet_root, rendered_scene, tmp_path):
    """The user's path: `vst scenes import` then `vst data generate` over imported and procedural roots with
    weights; answers checked against the known world."""
    from typer.testing import CliRunner

    from vst.cli import app
    from vst.data.shards import read_samples

    root, poses = scannet_root
    runner = CliRunner()
    result = runner.invoke(app, ["scenes", "import", "scannet", str(root), "--out", str(tmp_path / "scannet"), "--max-side", "240", "--fps", "6"])
    assert result.exit_code == 0, result.output
    procedural = tmp_path / "procedural"
    procedural.mkdir()
    (procedural / "rendered-3").symlink_to(rendered_scene[1])
    result = runner.invoke(app, ["data", "generate", "--scenes", f"{tmp_path / 'scannet'}=0.75", "--scenes", f"{procedural}=0.25",
                                 "--out", str(tmp_path / "data"), "--n", "200", "--recipe", "vst-p"])
    assert result.exit_code == 0, result.output
    samples = list(read_samples(next((tmp_path / "data").glob("*.parquet"))))
    sources = [s.meta_info["source"] for s in samples]
    assert {"scannet", "procedural"} <= set(sources)
    imported = [s for s in samples if s.meta_info["source"] == "scannet"]
    skills = {s.skill for s in imported}
    assert {"si_depth_comparison", "si_measurement", "mi_camera_motion", "mi_correspondence", "si_3d_detection"} <= skills
    sofa = {"height": 0.8, "width": 0.8, "length": 1.6, "longest": 1.6}
    measured = [s for s in imported if s.skill == "si_measurement" and s.meta_info["instance_ids"] == [scans.SOFA_ID]]
    assert measured
    for sample in measured:
        assert sample.meta_info["value_m"] == pytest.approx(sofa[sample.meta_info["dimension"]], abs=0.005)
    pose_of = {f"{10 * i:06d}": pose for i, pose in enumerate(poses)}
    centres = {scans.SOFA_ID: scans.SOFA["center"], scans.CHAIR_ID: scans.CHAIR["center"]}
    compared = [s for s in imported if s.skill == "si_depth_comparison" and s.meta_info.get("form") == "boxes"]
    for sample in compared:  # closer / farther agrees with the boxes' centres seen from the frame's camera
        pose = pose_of[sample.meta_info["frame_ids"][0].split("-")[0]]
        depth = {i: (centres[i] - pose[:3, 3]) @ pose[:3, 2] for i in sample.meta_info["instance_ids"]}
        nearer = min(depth, key=depth.get) if sample.meta_info["relation"] == "closer" else max(depth, key=depth.get)
        answer = sample.answer["value"]
        chosen = next(o.split(". ", 1)[1] for o in sample.answer["options"] if o.startswith(answer + ".")) if sample.answer["type"] == "mc" else answer
        assert chosen == {scans.SOFA_ID: "sofa", scans.CHAIR_ID: "chair"}[nearer]
