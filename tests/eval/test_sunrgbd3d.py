"""lmms-eval's SUN RGB-D 3D detection (EvolvingLMMs-Lab/lmms-eval @75571cf lmms_eval/tasks/sunrgbd/utils.py): its
parser, its ground-plane x vertical IoU, its mAP, on rows in kcz358/SUNRGBD-3D's schema."""

import io
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vst.eval.benchmarks import sunrgbd3d

CUBE = [0.0, 0.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_iou_against_hand_computed_values():
    assert sunrgbd3d.iou(CUBE, CUBE) == pytest.approx(1.0)
    half = [0.5, 0.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # half the volume shared: 0.5 / 1.5
    assert sunrgbd3d.iou(CUBE, half) == pytest.approx(1 / 3)
    quarter_turn = CUBE[:8] + [math.pi / 2]  # yaw in radians: a cube turned a quarter is the same cube
    assert sunrgbd3d.iou(CUBE, quarter_turn) == pytest.approx(1.0)
    lifted = [0.0, 0.5, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # half the height shared
    assert sunrgbd3d.iou(CUBE, lifted) == pytest.approx(1 / 3)
    turned = CUBE[:8] + [math.pi / 4]  # ground overlap: a square and itself turned 45 degrees, 2(sqrt2 - 1)
    assert sunrgbd3d.iou(CUBE, turned) == pytest.approx(2 * (math.sqrt(2) - 1) / (2 - 2 * (math.sqrt(2) - 1)))
    assert sunrgbd3d.iou(CUBE, [5, 0, 3, 1, 1, 1, 0, 0, 0]) == 0.0


@pytest.mark.parametrize("response, count", [
    (json.dumps([{"bbox_3d": CUBE, "label": "chair"}]), 1),  # the whole response is JSON
    ("Here:\n```json\n" + json.dumps([{"bbox_3d": CUBE, "label": "chair"}] * 2) + "\n```", 2),  # a fence
    ('I see {"bbox3d": [0, 0, 3, 1, 1, 1, 0.5], "class": "chair"} and {"bbox_3d": [1, 2], "label": "x"}.', 1),  # 7-DoF
    ('{"objects": [{"box_3d": ' + json.dumps(CUBE) + ', "name": "table"}]}', 1),  # nested
    ("no boxes", 0),
])
def test_parser_follows_lmms_eval(response, count):
    predictions = sunrgbd3d.parse_predictions(response)
    assert len(predictions) == count and all(len(p["bbox"]) == 9 for p in predictions)


def test_seven_numbers_are_yaw_only():
    (prediction,) = sunrgbd3d.parse_predictions('{"bbox3d": [0, 0, 3, 1, 1, 1, 0.5], "label": "chair"}')
    assert prediction["bbox"] == [0, 0, 3, 1, 1, 1, 0.0, 0.0, 0.5]


def write_rows(folder):
    """kcz358/SUNRGBD-3D's test split as a parquet file: image (datasets Image struct), categories, bboxes_3d, labels."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6)).save(buffer, format="PNG")
    picture = {"bytes": buffer.getvalue(), "path": None}
    rows = [{"image": picture, "categories": ["chair", "table"], "bboxes_3d": [CUBE, [2, 0, 4, 1, 1, 1, 0, 0, 0]],
             "labels": ["chair", "table"]},
            {"image": picture, "categories": ["chair"], "bboxes_3d": [CUBE], "labels": ["chair"]}]
    pq.write_table(pa.Table.from_pylist(rows), folder / "test-00000-of-00001.parquet")


def test_rows_prompt_and_map_on_the_published_schema(tmp_path):
    write_rows(tmp_path)
    loaded = sunrgbd3d.load_rows(str(tmp_path))
    assert [row["image_id"] for row in loaded] == [0, 1]
    assert sunrgbd3d.build_prompt(loaded[0]).text.startswith("Locate the chair, table in the provided image")
    answers = [json.dumps([{"bbox_3d": CUBE, "label": "Chair"}, {"bbox_3d": [2, 0, 4, 1, 1, 1, 0, 0, 0], "label": "table"}]),
               "I cannot see any."]
    items = [sunrgbd3d.score_item(row, answer) for row, answer in zip(loaded, answers)]
    assert items[0].score == 1.0 and items[1].score == 0.0 and items[1].unparsed
    result = sunrgbd3d.aggregate(items)
    # chair: 1 of 2 truths found with precision 1 -> AP = 51/101; table: AP 1 -> mAP = (51/101 + 1) / 2 at every IoU
    expected = 100 * (51 / 101 + 1) / 2
    assert result.overall == pytest.approx(expected)
    assert result.categories == pytest.approx({"mAP": expected, "mAP25": expected, "mAP50": expected})
