"""ScanNet++ importer on tiny scenes written in ScanNet++'s real layout.

Layout from scannetpp/scannetpp: `common/scene_release.py` (`data/<scene>/scans/mesh_aligned_0.05.ply`,
`segments.json`, `segments_anno.json`, `iphone/rgb.mkv`, `iphone/depth.bin`, `iphone/pose_intrinsic_imu.json`),
`iphone/prepare_iphone_data.py` (depth.bin: one raw-deflate stream of float32 metres at 256 x 192, or per-frame
`[uint32 LE size][lz4 block of uint16 mm]` records; frames `frame_%06d`), `semantic/prep/semantics_2d.py`
(obb: R = reshape(normalizedAxes, 3, 3).T). `aligned_pose` is used as an OpenCV camera-to-world in the mesh frame,
as the public consumers of the file do; the reprojection check below is what the spec asks for.
"""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.scene import scans
from vst.scene.importers import ImportOptions, import_scenes
from vst.scene.importers.common import backproject, scaled_intrinsics
from vst.scene.importers.scannetpp import depth_bin_frames, read_scene
from vst.scene.types import Scene

RGB_K = scans.intrinsics(320, 240, hfov_degrees=70)
DEPTH_K = scaled_intrinsics(RGB_K, 256, 192)


def _write_depth_bin(path, depths, encoding: str) -> None:
    if encoding == "deflate":
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        path.write_bytes(packer.compress(np.stack(depths).astype(np.float32).tobytes()) + packer.flush())
        return
    import lz4.block

    with open(path, "wb") as handle:
        for depth in depths:
            payload = lz4.block.compress(np.rint(depth * 1000).astype(np.uint16).tobytes(), store_size=False)
            handle.write(struct.pack("<I", len(payload)) + payload)


def write_scannetpp(root, scene_id: str, poses, views, encoding: str) -> None:
    import av
    import trimesh

    folder = root / "data" / scene_id
    (folder / "scans").mkdir(parents=True)
    (folder / "iphone").mkdir()
    world = scans.world_mesh()
    trimesh.Trimesh(world.vertices, world.faces, vertex_colors=world.colors, process=False).export(
        folder / "scans" / "mesh_aligned_0.05.ply", encoding="binary")
    segments = world.vertex_ids * 100 + np.arange(len(world.vertex_ids)) % 3
    (folder / "scans" / "segments.json").write_text(json.dumps({"sceneId": scene_id, "segIndices": segments.tolist()}))
    groups = []
    for key, label in ((scans.FLOOR_ID, "floor"), (scans.SOFA_ID, "sofa"), (scans.CHAIR_ID, "office chair")):
        box = scans.BOXES.get(key)
        obb = {"centroid": [0, 0, 0], "axesLengths": [6, 6, 0.01], "normalizedAxes": np.eye(3).ravel().tolist()}
        if box is not None:
            obb = {"centroid": box["center"].tolist(), "axesLengths": box["size"].tolist(),
                   "normalizedAxes": scans.box_rotation(box).T.ravel().tolist(), "dominantNormal": [0, 0, 1]}
        groups.append({"id": key - 1, "objectId": key - 1, "label": label, "obb": obb,
                       "segments": sorted(set(segments[world.vertex_ids == key].tolist()))})
    (folder / "scans" / "segments_anno.json").write_text(json.dumps({"sceneId": scene_id, "segGroups": groups}))
    meta, depths = {}, []
    with av.open(str(folder / "iphone" / "rgb.mkv"), "w", format="matroska") as container:
        stream = container.add_stream("mpeg4", rate=60)
        stream.width, stream.height, stream.pix_fmt = RGB_K.width, RGB_K.height, "yuv420p"
        stream.options = {"qscale": "2"}
        for index, pose in enumerate(poses):
            rgb, _, _ = views(RGB_K, pose)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            depths.append(views(DEPTH_K, pose)[1])
            meta[f"frame_{index:06d}"] = {"timestamp": 1000.0 + index / 60, "intrinsic": RGB_K.matrix.tolist(),
                                          "pose": np.eye(4).tolist(), "aligned_pose": pose.tolist(),
                                          "imu": {"gravity": [0, 0, -9.81]}}
        container.mux(stream.encode(None))
    (folder / "iphone" / "pose_intrinsic_imu.json").write_text(json.dumps(meta))
    _write_depth_bin(folder / "iphone" / "depth.bin", depths, encoding)


@pytest.fixture(scope="module")
def scannetpp_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("scannetpp")
    poses = [scans.top_down_pose()] + scans.orbit_poses(11)
    with scans.Views() as views:
        write_scannetpp(root, "0a5c013435", poses, views, "deflate")
        write_scannetpp(root, "0b031f3119", poses, views, "lz4")
    return root, poses


@pytest.mark.parametrize("encoding", ["deflate", "lz4"])
def test_depth_bin_both_encodings(tmp_path, encoding):
    rng = np.random.default_rng(0)
    depths = [np.round(rng.uniform(0.2, 5.0, (192, 256)), 3).astype(np.float32) for _ in range(5)]
    _write_depth_bin(tmp_path / "depth.bin", depths, encoding)
    got = depth_bin_frames(tmp_path / "depth.bin", {1, 4})
    assert sorted(got) == [1, 4]
    np.testing.assert_allclose(got[4], depths[4], atol=0.0006)  # lz4 stores whole millimetres


def test_scene_boxes_poses_and_reprojection(scannetpp_root):
    root, poses = scannetpp_root
    raw = read_scene(root, "0a5c013435", ImportOptions())
    by_label = {o.raw_label: o for o in raw.objects}
    scans.assert_same_box(by_label["sofa"].box, scans.SOFA)
    scans.assert_same_box(by_label["office chair"].box, scans.CHAIR)
    assert by_label["office chair"].category == "chair" and by_label["floor"].is_structure
    frame = raw.frames[3]
    np.testing.assert_allclose(frame.cam_to_world, poses[3], atol=1e-6)
    # reprojection: depth back-projected with aligned_pose lands on the mesh's own ids (sofa points inside its box)
    depth = frame.depth()
    points = backproject(depth, frame.depth_intrinsics, frame.cam_to_world)
    _, _, ids = scans.render(frame.depth_intrinsics, poses[3])
    on_sofa = points[ids == scans.SOFA_ID]
    local = (on_sofa - scans.SOFA["center"]) @ scans.box_rotation(scans.SOFA)
    assert np.all(np.abs(local) <= scans.SOFA["size"] / 2 + 0.01)
    rgb = frame.rgb()
    assert rgb.shape == (240, 320, 3)


def test_import_both_depth_encodings(scannetpp_root, tmp_path):
    root, poses = scannetpp_root
    result = import_scenes("scannetpp", root, tmp_path, options=ImportOptions(max_frames=8, fps=20, stills=2, pairs=1))
    assert sorted(result.imported) == ["0a5c013435", "0b031f3119"], result.failed
    for scene_id in result.imported:
        scene = Scene.load(tmp_path / scene_id)
        top = next(f for f in scene.frames if f.frame_id == "000000-still")
        depth = np.asarray(Image.open(tmp_path / scene_id / top.depth_path)).astype(float) / 1000
        masks = np.asarray(Image.open(tmp_path / scene_id / top.instance_path))
        centre = (120, 160)
        assert masks[centre] == scans.SOFA_ID and depth[centre] == pytest.approx(2.2, abs=0.003)
        assert masks[60, 60] == scans.FLOOR_ID and depth[60, 60] == pytest.approx(3.0, abs=0.003)
        assert {f.sequence for f in scene.frames} >= {"video", "still-00", "pair-00"}
    skills = scans.check_generated(tmp_path, tmp_path / "generated")  # vst data generate: answers true to the world
    assert {"si_depth_comparison", "si_measurement", "si_distance", "si_3d_detection"} <= skills
