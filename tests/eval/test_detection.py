"""Shared 3D-box scoring: VST's JSON box parsing, 3D IoU with VST's angle convention, COCO/Omni3D-style AP by hand."""

import json

import numpy as np
import pytest

from vst.eval.detection import (
    average_precision,
    box_iou_matrix,
    category_average_precision,
    detection_record,
    f1_score,
    greedy_matches,
    mean_average_precision,
    parse_boxes,
)

CUBE_A = [0.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # unit cube 2 m in front of the camera
CUBE_B = [2.0, 0.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # another, far from A
FAR = [-3.0, 0.0, 5.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0]  # overlaps nothing
HALF_SHIFTED_A = [0.5, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # IoU with A = 0.5 / 1.5 = 1/3
AP_ONE_OF_TWO = 51 / 101  # recall 0.5 at precision 1: the 51 recall points 0.00..0.50 read 1, the other 50 read 0


def entries(*boxes, label="chair"):
    return [{"label": label, "bbox_3d": box} for box in boxes]


# -- parsing ----------------------------------------------------------------------------------------------------
FENCED = '```json\n[\n\t{"bbox_3d": [0.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0], "label": "chair"}\n]\n```'


@pytest.mark.parametrize(
    "response, expected",
    [
        (FENCED, entries(CUBE_A)),  # VST's own answer format
        (json.dumps(entries(CUBE_A, CUBE_B)), entries(CUBE_A, CUBE_B)),  # a bare list, no fence
        ('Here you go: [{"bbox_3d":[0,0,2,1,1,1,0,0,0],"label":"chair"}] done', entries(CUBE_A)),  # prose around
        ('{"bbox_3d": [0,0,2,1,1,1,0,0,0], "label": "chair"}', entries(CUBE_A)),  # one object, not in a list
        ("```json\n[\n\t{\"bbox_3d\": [0,0,2,1,1,1,0,0,0], \"label\": \"chair\"},\n\t{\"bbox_3d\": [2.0, 0.", entries(CUBE_A)),  # cut off by max_new_tokens: whole objects kept
        ("[{'bbox_3d': [0,0,2,1,1,1,0,0,0], 'label': 'chair'}]", entries(CUBE_A)),  # Python quotes, read by the salvage pass
        ("<think>maybe [{\"bbox_3d\": [9,9,9,1,1,1,0,0,0]}]</think>" + FENCED, entries(CUBE_A)),  # only after </think>
        ('[{"bbox_3d": [0,0,2,1,1,1,0,0,0]}]', [{"label": "", "bbox_3d": CUBE_A}]),  # no label: still a box
        ("[]", []),  # an empty list is a valid answer: no boxes (parsed, not unparsed)
        ("```json\n[]\n```", []),  # the same in a fence
        ('[{"bbox_3d": [1, 2, 3], "label": "chair"}]', None),  # 3 numbers, not 9: dropped, nothing left
        ('[{"bbox_3d": [NaN, 0, 2, 1, 1, 1, 0, 0, 0]}]', None),  # non-finite numbers are not a box
        ('[{"bbox_3d": [true, 0, 2, 1, 1, 1, 0, 0, 0]}]', None),  # booleans are not numbers
        ('[{"bbox_3d": ["0", 0, 2, 1, 1, 1, 0, 0, 0]}]', None),  # nor strings, in JSON
        ("[1, 2]", None),  # a list that holds no box
        ("", None),  # empty
        ("There is no chair in the image.", None),  # prose
        ("<think>the chair is near</think>", None),  # only thinking
        ("[" * 5000, None),  # deep junk never raises
    ],
)
def test_parse_boxes(response, expected):
    assert parse_boxes(response) == expected


# -- IoU --------------------------------------------------------------------------------------------------------
def test_iou_of_shifted_cubes_and_vst_angle_convention():
    ious = box_iou_matrix([CUBE_A, HALF_SHIFTED_A, FAR], [CUBE_A])
    assert ious[:, 0] == pytest.approx([1.0, 1 / 3, 0.0])
    # yaw 0.5 = 90 degrees about the camera y axis swaps the x and z extents: the same solid
    flat = [0.0, 0.0, 3.0, 2.0, 1.0, 0.5, 0.0, 0.0, 0.0]
    turned = [0.0, 0.0, 3.0, 0.5, 1.0, 2.0, 0.0, 0.5, 0.0]
    assert box_iou_matrix([turned], [flat])[0, 0] == pytest.approx(1.0)
    # degenerate and absurd predictions give IoU 0, never an error
    junk = [[0, 0, 2, 0, 1, 1, 0, 0, 0], [1e308, 1e308, 1, 1e308, 1e308, 1e308, 0, 0, 0]]
    assert box_iou_matrix(junk, [CUBE_A]).tolist() == [[0.0], [0.0]]


# -- matching ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "iou, threshold, positive",
    [
        (0.25, 0.25, True),  # cocoeval skips IoU strictly below the threshold: equal matches
        (0.2499999, 0.25, False),  # just below
        (0.15, 0.15, True),
        (0.5, 0.5, True),
        (0.4999999, 0.5, False),
        (1.0, 1.0, True),  # cocoeval caps the threshold at 1 - 1e-10
    ],
)
def test_threshold_boundary(iou, threshold, positive):
    assert greedy_matches(np.array([[iou]]), threshold).tolist() == [positive]


def test_greedy_matching_takes_the_best_unmatched_truth():
    ious = np.array([[0.4, 0.9], [0.5, 0.8], [0.6, 0.0]])
    # row 0 takes column 1 (0.9); row 1 then takes column 0 (0.5); row 2 finds both taken
    assert greedy_matches(ious, 0.25).tolist() == [True, True, False]
    assert greedy_matches(ious, 0.55).tolist() == [True, False, True]  # row 1's 0.5 is below; row 2 takes column 0


# -- AP by hand -------------------------------------------------------------------------------------------------
def test_ap_one_hit_one_false_positive_one_duplicate():
    # 2 truth boxes, 3 predictions in this order: A (IoU 1.0, TP), FAR (FP), A again (duplicate of a matched box: FP)
    record = detection_record(entries(CUBE_A, FAR, CUBE_A), entries(CUBE_A, CUBE_B))
    # cumulative TP 1,1,1 and FP 0,1,2: recall 0.5,0.5,0.5, precision 1, 1/2, 1/3 -> AP = 51/101 at any threshold
    for threshold in (0.15, 0.25, 0.5):
        assert mean_average_precision([record], threshold) == pytest.approx(AP_ONE_OF_TWO)
    assert f1_score(record) == pytest.approx(2 * 1 / (3 + 2))  # 1 hit, 3 predictions, 2 truths


def test_ap_ranks_by_answer_order_since_all_scores_are_equal():
    # the false positive first: precision 0, then 1/2 -> monotone 1/2, 1/2, 1/3; recall 0 reads 1/2, 0.01..0.50 too
    record = detection_record(entries(FAR, CUBE_A, CUBE_A), entries(CUBE_A, CUBE_B))
    assert mean_average_precision([record], 0.25) == pytest.approx(0.5 * AP_ONE_OF_TWO)


def test_ap_over_items_and_thresholds():
    hit = detection_record(entries(CUBE_A), entries(CUBE_A))
    loose = detection_record(entries(HALF_SHIFTED_A), entries(CUBE_A))  # IoU 1/3
    missed = detection_record([], entries(CUBE_B))
    assert mean_average_precision([hit, loose], 0.25) == pytest.approx(1.0)  # both hits: recall 1 at precision 1
    # at 0.5 the loose box is a FP: TP, FP -> recall 0.5, 0.5; precision 1, 1/2
    assert mean_average_precision([hit, loose], 0.5) == pytest.approx(AP_ONE_OF_TWO)
    assert mean_average_precision([hit, missed], 0.25) == pytest.approx(AP_ONE_OF_TWO)  # a missed box halves recall
    assert mean_average_precision([missed], 0.25) == 0.0  # truth but no predictions
    assert average_precision([np.zeros((2, 0))], 0.25) is None  # predictions but no truth: category left out


def test_ap_is_a_mean_over_categories_and_labels_match_within_an_item():
    truth = entries(CUBE_A) + entries(CUBE_B, label="Table")
    # the table box is labelled as a chair: it matches no chair, and the table is missed. Chair: TP then FP, recall
    # 1, 1 at precision 1, 1/2; every recall point reads the first (1.0): a false positive after full recall is free
    record = detection_record(entries(CUBE_A) + entries(CUBE_B, label="chair"), truth)
    assert category_average_precision([record], 0.25) == pytest.approx({"chair": 1.0, "table": 0.0})
    assert mean_average_precision([record], 0.25) == pytest.approx(0.5)
    # with one category per question, every box counts as that category whatever its label
    single = detection_record(entries(CUBE_A, label="armchair"), entries(CUBE_A), category="chair")
    assert category_average_precision([single], 0.25) == pytest.approx({"chair": 1.0})
    # a false positive of a category with no truth anywhere is left out of the mean
    stray = detection_record(entries(FAR, label="lamp"), entries(CUBE_A) + entries(CUBE_B, label="table"))
    assert "lamp" not in category_average_precision([record, stray], 0.25)
