"""VST's 3D-detection benchmarks (det3d-sunrgbd, det3d-arkitscenes): rows, FoV-unified prompt, per-item F1, dataset AP."""

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from vst.eval.benchmarks import det3d, det3d_arkitscenes, det3d_sunrgbd
from vst.eval.benchmarks.registry import BENCHMARKS, register_benchmark
from vst.eval.predictions import score_file, write_predictions

# a SUN RGB-D-like camera at 1/5 scale: 730x530 with f = 529.5 becomes 146x106 with f = 105.9 (same fields of view)
INTRINSICS = {"fx": 105.9, "fy": 105.9, "cx": 72.5, "cy": 52.5, "width": 146, "height": 106}
CHAIR_1 = [0.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
CHAIR_2 = [2.0, 0.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
CHAIR_2_SHIFTED = [2.5, 0.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # IoU with CHAIR_2 = 0.5 / 1.5 = 1/3
TABLE_1 = [-1.0, 0.5, 4.0, 1.5, 0.8, 1.0, 0.0, 0.25, 0.0]
TABLE_2 = [1.0, 0.5, 6.0, 1.5, 0.8, 1.0, 0.0, 0.0, 0.0]
FAR = [-3.0, 0.0, 9.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0]
AP_ONE_OF_TWO = 51 / 101  # recall 0.5 at precision 1: recall points 0.00..0.50 read 1, the other 50 read 0

PROMPT = (
    "Here are the detailed camera parameters for the image.\n"
    "Camera intrinsic parameters: Horizontal fov, hfov=69.16, and vertical fov, vfov=53.17. Image width=960 and "
    "height=697. We do not consider distortion parameters here. \n"
    "Camera coordinate: X-axis points rightward, Y-axis points downward, and Z-axis points forward. The origin point is "
    "the camera location.\n"
    "We take the camera coordinate system as the world coordinate system.\n"
    "\n"
    "3D bounding box format: [x_center, y_center, z_center, x_size, y_size, z_size, pitch, yaw, roll]\n"
    "* x_center, y_center, z_center: the center of the object in the camera coordinate, in meters. z_center is the "
    "depth of the object in space.\n"
    "* x_size, y_size, z_size: The dimensions of the object along the ( XYZ ) axes, in meters, when the rotation "
    "angles are zero.\n"
    "* pitch, yaw, roll: Euler angles representing rotations around the X, Y, and Z axes, respectively. Each angle is "
    "normalized to the range of (-1, 1) and is multiplied by 180 to convert it into degrees.\n"
    "\n"
    'Output a json list where each entry contains the object name in "label" and its 3D bounding box in "bbox_3d"\n'
    "Detect the 3D bounding boxes of chair"
)


def row(id, category, boxes, image="images/0.png"):
    return {"id": id, "image": image, "category": category, "question": f"Detect the 3D bounding boxes of {category}",
            "intrinsics": INTRINSICS, "boxes": boxes}


def answer(*boxes, label="chair"):
    body = ",\n".join("\t" + json.dumps({"bbox_3d": box, "label": label}) for box in boxes)
    return f"```json\n[\n{body}\n]\n```"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (146, 106), (120, 90, 60)).save(tmp_path / "images" / "0.png")
    rows = [row("0", "chair", [CHAIR_1, CHAIR_2]), row("1", "table", [TABLE_1])]
    (tmp_path / det3d_sunrgbd.DATA_FILE).write_text(json.dumps(rows))
    return tmp_path


def test_local_rows_and_prompt_snapshot(folder):
    rows = det3d_sunrgbd.load_rows(str(folder))
    assert [r["id"] for r in rows] == ["0", "1"] and rows[0]["image"] == str(folder / "images" / "0.png")
    for protocol in det3d_sunrgbd.PROTOCOLS:  # "official" and "vst" are the same: VST wrote the benchmark
        prompt = det3d_sunrgbd.build_prompt(rows[0], protocol)
        assert prompt.text == PROMPT
        # FoV unification: rescaled by 696.3 / 105.9 to VST's virtual camera, 960x697 (paper.md §2.4's example)
        assert Image.open(io.BytesIO(prompt.images[0])).size == (960, 697)
    assert det3d_sunrgbd.load_rows(str(folder), limit=1) == rows[:1]


def test_missing_image_names_the_item_and_path(folder):
    (folder / "images" / "0.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"row 0 \(id 0\): image not found: .*images/0.png"):
        det3d_arkitscenes.load_rows(str(folder / det3d_sunrgbd.DATA_FILE))


def test_vst_conversation_rows_are_read():
    # VST's LLaVA-style prompt file [unverified]: raw pixel intrinsics in the prompt, the boxes as the answer
    prompt = ("<image>Here are the detailed camera parameters for the image.\nCamera intrinsic parameters: image "
              "width=730, height=530, Focal length f_x=529.50, f_y=529.50, c_x=365.00, c_y=265.00.\n"
              "Detect the 3D bounding boxes of night stand")
    raw = {"id": 7, "image": "sunrgbd/7.jpg",
           "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer(CHAIR_1, label="night stand")}]}
    assert det3d.normalise_row(raw, "rows.json: row 0") == {
        "id": "7", "image": "sunrgbd/7.jpg", "category": "night stand", "question": "Detect the 3D bounding boxes of night stand",
        "intrinsics": {"fx": 529.5, "fy": 529.5, "cx": 365.0, "cy": 265.0, "width": 730, "height": 530},
        "boxes": [CHAIR_1]}
    with pytest.raises(ValueError, match="rows.json: row 3: missing field"):
        det3d.normalise_row({"id": 1, "image": "a.png"}, "rows.json: row 3")


CHAIRS = row("0", "chair", [CHAIR_1, CHAIR_2])


@pytest.mark.parametrize(
    "response, score, unparsed",
    [
        (answer(CHAIR_1, CHAIR_2), 1.0, False),  # both boxes exact: F1 = 1
        (answer(CHAIR_1), 2 * 1 / (1 + 2), False),  # one of two found
        (answer(CHAIR_1, CHAIR_2_SHIFTED), 1.0, False),  # IoU 1/3 still counts at 0.25
        (answer(CHAIR_1, label="armchair"), 2 / 3, False),  # one category per question: the label does not matter
        (answer(CHAIR_1, CHAIR_1), 2 * 1 / (2 + 2), False),  # a duplicate is a false positive
        ("<think>two chairs</think>" + answer(CHAIR_1, CHAIR_2), 1.0, False),  # thinking stripped
        ("[]", 0.0, False),  # an empty list is an answer: nothing found
        ("There are two chairs.", 0.0, True),  # prose: unparsed
        ("", 0.0, True),  # empty
        ('[{"bbox_3d": [0, 0, 2]}]', 0.0, True),  # 3 numbers: no valid box
    ],
)
def test_score_item(response, score, unparsed):
    item = det3d_sunrgbd.score_item(CHAIRS, response, "official")
    assert (item.score, item.unparsed, item.category) == (pytest.approx(score), unparsed, "chair")


def test_aggregate_is_dataset_level_ap():
    rows_and_responses = [
        (row("0", "chair", [CHAIR_1]), answer(CHAIR_1)),  # TP at every threshold
        (row("1", "chair", [CHAIR_2]), answer(CHAIR_2_SHIFTED)),  # IoU 1/3: TP up to 0.30, FP from 0.35
        (row("2", "table", [TABLE_1, TABLE_2]), answer(TABLE_1, FAR, label="table")),  # TP then FP, one table missed
        (row("3", "table", [TABLE_2]), "no idea"),  # unparsed: its table is missed too
    ]
    items = [det3d_sunrgbd.score_item(r, response, "official") for r, response in rows_and_responses]
    result = det3d_sunrgbd.aggregate(items, "official")
    # chair: recall 1/2, 1 at precision 1, 1 -> AP 1 (IoU <= 1/3); at 0.5: TP, FP -> 51/101
    # table: 3 truths, TP then FP -> recall 1/3, 1/3 -> recall points 0.00..0.33 (34 of 101) read 1
    chair_50, table = AP_ONE_OF_TWO, 34 / 101
    # AP@[.05:.50]: chair is 1 at 0.05..0.30 (6 thresholds) and 51/101 at 0.35..0.50 (4); table is 34/101 at all
    omni3d = ((6 + 4 * chair_50) / 10 + table) / 2
    expected = {"AP@15": (1 + table) / 2, "AP@25": (1 + table) / 2, "AP@50": (chair_50 + table) / 2,
                "AP@[.05:.50]": omni3d, "AP@15/chair": 1.0, "AP@15/table": table}
    assert result.categories == pytest.approx({name: 100 * value for name, value in expected.items()})
    assert result.overall == pytest.approx(100 * (1 + table) / 2)


@pytest.mark.parametrize("module", [det3d_sunrgbd, det3d_arkitscenes])
def test_score_file_contract(module, tmp_path, capsys):
    if module.NAME not in BENCHMARKS:
        register_benchmark(module)
    lines = [{**row("0", "chair", [CHAIR_1, CHAIR_2]), "response": answer(CHAIR_1, FAR)},
             {**row("1", "chair", [CHAIR_1]), "response": "I cannot tell."}]
    write_predictions(tmp_path / "predictions.jsonl", lines)
    result = score_file(module.NAME, tmp_path / "predictions.jsonl")
    print(json.dumps(result))
    # chair, 3 truths: TP, FP -> recall 1/3 at precision 1 -> 34 of 101 recall points
    assert result == {"benchmark": module.NAME, "protocol": "official", "overall": round(100 * 34 / 101, 2),
                      "categories": {"AP@15": 33.66, "AP@25": 33.66, "AP@50": 33.66, "AP@[.05:.50]": 33.66,
                                     "AP@15/chair": 33.66}, "n": 2, "n_unparsed": 1}
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 2


def write_released_set(root, archive=True, module=det3d_sunrgbd, truth_name="sunrgbd_total3d_val_metaqa_20250321.json"):
    """rayruiyang/vst_3d_grounding_benchmark's SUN RGB-D set as VST's benchmark/det3d reads it (Yangr116/VST
    benchmark/det3d; spec paper.md §5.1): `sunrgbd/annotations/sunrgbd_val_total3d-prompt_v4_norm.json` (uid,
    image_path, the raw camera prompt), the ground truth `sunrgbd_total3d_val_metaqa_20250321.json` (uid, image_path,
    height, width, category, camera_intrinsics, answer with angles in degrees) and the images in a .tar.gz."""
    import tarfile

    annotations = root / truth_name.split("_")[0] / "annotations"
    annotations.mkdir(parents=True)
    prompt = "Image width=146 and height=106. f_x=105.9, f_y=105.9, c_x=72.5, cy=52.5.\nDetect the 3D bounding boxes of chair"
    (annotations / module.DATA_FILE).write_text(json.dumps([
        {"uid": "7", "image_path": "images/0007.png", "question": prompt}]))
    truth = [{"uid": "7", "image_path": "images/0007.png", "height": 106, "width": 146, "category": "chair",
              "camera_intrinsics": {"fx": 105.9, "fy": 105.9, "cx": 72.5, "cy": 52.5},
              "answer": [{"bbox_3d": [0.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 45.0, 0.0], "label": "chair"}]}]
    (annotations / truth_name).write_text(json.dumps(truth))
    images = root / "staging" / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (146, 106), (120, 90, 60)).save(images / "0007.png")
    if archive:
        with tarfile.open(annotations.parent / "images.tar.gz", "w:gz") as tar:
            tar.add(images, arcname="images")
    return root


def test_the_released_layout_joins_prompts_truth_and_archived_images(tmp_path):
    root = write_released_set(tmp_path)
    (row,) = det3d_sunrgbd.load_rows(str(root))
    assert row["id"] == "7" and row["category"] == "chair" and row["question"].endswith("boxes of chair")
    assert row["intrinsics"] == {"fx": 105.9, "fy": 105.9, "cx": 72.5, "cy": 52.5, "width": 146, "height": 106}
    assert row["boxes"] == [[0.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.25, 0.0]]  # 45 degrees -> 0.25 (x 180)
    assert Path(row["image"]).is_file() and ".extracted" in row["image"]
    assert det3d_sunrgbd.load_rows(str(root)) == [row]  # the archive is unpacked once and reused
    item = det3d_sunrgbd.score_item(row, answer([0.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.25, 0.0]))
    assert item.score == 1.0


def test_the_released_layout_names_a_missing_uid(tmp_path):
    root = write_released_set(tmp_path)
    truth = root / "sunrgbd" / "annotations" / "sunrgbd_total3d_val_metaqa_20250321.json"
    truth.write_text(json.dumps([{**json.loads(truth.read_text())[0], "uid": "8"}]))
    with pytest.raises(ValueError, match=r"row 0: uid 7: not in sunrgbd_total3d_val_metaqa_20250321.json"):
        det3d_sunrgbd.load_rows(str(root))
