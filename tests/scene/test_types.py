"""The Scene contract: JSON round trip and one-line errors naming the file and field."""

import copy
import json

import pytest

from vst.scene.types import Scene, SceneError

MINIMAL = {
    "scene_id": "hand-made",
    "source": "manual",
    "objects": [{"instance_id": 1, "category": "chair", "box": {"center": [0, 0, 0.45], "size": [0.5, 0.5, 0.9], "rotation": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}}],
    "frames": [
        {
            "frame_id": "f0",
            "intrinsics": {"fx": 200, "fy": 200, "cx": 99.5, "cy": 99.5, "width": 200, "height": 200},
            "cam_to_world": [[1, 0, 0, 0], [0, 0, 1, -1.8], [0, -1, 0, 1.2], [0, 0, 0, 1]],
            "image_path": "frames/f0.jpg",
            "visibility": {"1": {"pixels": 10, "bbox_2d": [1, 2, 3, 4], "visible_frac": 1.0, "truncated": False, "depth_median": 3.0}},
        }
    ],
    "room": {"floor_polygon": [[-2, -2], [2, -2], [2, 2], [-2, 2]], "ceiling_z": 2.6, "area_m2": 16.0},
}


def mutated(change):
    data = copy.deepcopy(MINIMAL)
    change(data)
    return data


def test_round_trip(rendered_scene):
    scene, _ = rendered_scene
    again = Scene.from_json(scene.to_json())
    assert again == scene
    assert again.to_json() == scene.to_json()
    assert Scene.from_dict(MINIMAL).frames[0].visibility[1].pixels == 10


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d["objects"][0].pop("category"), "scene.json: objects[0].category: missing required field"),
        (lambda d: d["frames"][0]["cam_to_world"][0].__setitem__(3, float("nan")), "scene.json: frames[0].cam_to_world[0][3]: must be a finite number, got nan"),
        (lambda d: d["frames"][0]["cam_to_world"][1].__setitem__(3, float("inf")), "scene.json: frames[0].cam_to_world[1][3]: must be a finite number, got inf"),
        (lambda d: d["objects"][0]["box"].__setitem__("rotation", [[1, 0.2, 0], [0, 1, 0], [0, 0, 1]]), "scene.json: objects[0].box.rotation: rotation is not orthonormal"),
        (lambda d: d["objects"][0]["box"].__setitem__("rotation", [[-1, 0, 0], [0, 1, 0], [0, 0, 1]]), "scene.json: objects[0].box.rotation: rotation has determinant -1"),
        (lambda d: d["frames"][0]["cam_to_world"][0].__setitem__(0, 2.0), "scene.json: frames[0].cam_to_world: rotation is not orthonormal"),
        (lambda d: d["objects"][0]["box"].__setitem__("size", [0.5, -0.1, 0.9]), "scene.json: objects[0].box.size: sizes must be >= 0"),
        (lambda d: d["frames"][0]["visibility"].__setitem__("7", d["frames"][0]["visibility"]["1"]), "scene.json: frames[0].visibility: unknown instance id 7"),
        (lambda d: d["objects"].append(copy.deepcopy(d["objects"][0])), "scene.json: objects[1].instance_id: duplicate instance_id 1"),
        (lambda d: d["frames"].append(copy.deepcopy(d["frames"][0])), "scene.json: frames[1].frame_id: duplicate frame_id"),
        (lambda d: d["room"].__setitem__("ceiling_z", -1), "scene.json: room: ceiling_z (-1.0) must be above floor_z (0.0)"),
        (lambda d: d["objects"][0].__setitem__("colour", "red"), "scene.json: objects[0].colour: Extra inputs are not permitted"),
        (lambda d: d["frames"][0]["intrinsics"].__setitem__("fx", 0), "scene.json: frames[0].intrinsics.fx: Input should be greater than 0"),
        # frame files stay inside the scene folder (a shared scene must not read /etc/passwd into a shard)
        (lambda d: d["frames"][0].__setitem__("image_path", "/etc/passwd"), "scene.json: frames[0].image_path: must be a relative path inside the scene folder"),
        (lambda d: d["frames"][0].__setitem__("depth_path", "frames/../../secret.png"), "scene.json: frames[0].depth_path: must be a relative path inside the scene folder"),
        (lambda d: d["frames"][0].__setitem__("instance_path", "C:\\ids.png"), "scene.json: frames[0].instance_path: must be a relative path inside the scene folder"),
        (lambda d: d["frames"][0].__setitem__("depth_scale", 1e-300), "scene.json: frames[0].depth_scale: Input should be greater than or equal to 0.001"),
    ],
)
def test_malformed_scene_gives_one_line_error(change, expected):
    with pytest.raises(SceneError) as error:
        Scene.from_json(json.dumps(mutated(change)))
    message = str(error.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_missing_frame_file_named(tmp_path):
    (tmp_path / "scene.json").write_text(json.dumps(MINIMAL))
    with pytest.raises(SceneError, match=r"scene.json: frames\[0\].image_path: file not found: .*frames/f0.jpg"):
        Scene.load(tmp_path)
    assert Scene.load(tmp_path, check_files=False).scene_id == "hand-made"


def test_non_utf8_scene_json_names_the_file(tmp_path):
    (tmp_path / "scene.json").write_bytes(b'{"scene_id": "\xff\xfe"}')
    with pytest.raises(SceneError, match=r"scene.json: not UTF-8 text"):
        Scene.load(tmp_path)


def test_invalid_json_names_line(tmp_path):
    (tmp_path / "scene.json").write_text('{"scene_id": "x",\n "source": }')
    with pytest.raises(SceneError, match=r"scene.json: invalid JSON at line 2"):
        Scene.load(tmp_path)
