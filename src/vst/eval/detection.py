"""3D-box answers: parsing VST's JSON boxes, 3D IoU, and Omni3D-style average precision (shared by det3d-* and vst-synth).

VST's 3D detection eval (spec paper.md §5.1 "3D detection", `benchmark/det3d` in Yangr116/VST) feeds the model's
boxes to Omni3D's COCO-style evaluator (facebookresearch/omni3d:cubercnn/evaluation/omni3d_evaluation.py, itself
after cocodataset/cocoapi:PythonAPI/pycocotools/cocoeval.py) with every box scored 1.0. What that means here:
- a box answer is a ```json fence (or a bare list) of `{"bbox_3d": [x, y, z, sx, sy, sz, pitch, yaw, roll],
  "label": ...}` in the OpenCV camera frame, metres, angles in degrees / 180 (`geometry.vst9_to_box`);
- per category and IoU threshold, each image's predictions (in the order given, at most `MAX_DETECTIONS`) are matched
  greedily, each to the unmatched ground-truth box of highest IoU with IoU >= threshold (cocoeval's `evaluateImg`);
- all predictions score 1.0, so the dataset ranking is a stable sort on equal scores: item order, then answer order;
- precision is made monotone and read at 101 recall points (cocoeval's `accumulate`); AP = their mean; categories
  without ground truth are left out; the reported AP is the mean over categories.
Not reproduced: Omni3D's ground-truth filters (truncation, `max_height_thres`) and its near/medium/far split, which
need per-box annotations the rows do not carry.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

from vst.common.parsing import strip_think
from vst.scene.geometry import box_iou_3d, vst9_to_box

IOU_THRESHOLDS = (0.15, 0.25, 0.50)  # VST reports AP@15 (headline), AP@25, AP@50
OMNI3D_THRESHOLDS = tuple(float(t) for t in np.linspace(0.05, 0.50, 10))  # Omni3D's AP3D = AP@[.05:.50]
RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCO's 101-point interpolation
MAX_DETECTIONS = 100  # cocoeval's maxDets per image and category
F1_THRESHOLD = 0.25  # per-item score only; benchmark numbers are dataset-level AP

_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)
_OBJECT = re.compile(r"\{[^{}]*\}")
_BOX_FIELD = re.compile(r"""["']?bbox_3d["']?\s*:\s*\[([^\[\]]*)\]""")
_LABEL_FIELD = re.compile(r"""["']?label["']?\s*:\s*["']([^"']*)["']""")


# -- parsing ----------------------------------------------------------------------------------------------------
def normalise_label(label) -> str:
    return str(label or "").strip().lower().replace("_", " ")


def _box_values(values) -> list[float] | None:
    """9 finite numbers as floats, else None (bools and strings are not numbers here)."""
    if not isinstance(values, (list, tuple)) or len(values) != 9:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def _entries(data) -> list[dict]:
    """Valid `{label, bbox_3d}` entries of decoded JSON (a list of such objects, or one)."""
    items = [data] if isinstance(data, dict) else data if isinstance(data, list) else []
    entries = []
    for item in items:
        values = _box_values(item.get("bbox_3d")) if isinstance(item, dict) else None
        if values is not None:
            label = item.get("label", "")
            entries.append({"label": label if isinstance(label, str) else str(label), "bbox_3d": values})
    return entries


def _salvage(text: str) -> list[dict]:
    """Entries from text JSON cannot decode (cut off by max_new_tokens, single quotes): one `{...}` at a time."""
    entries = []
    for chunk in _OBJECT.findall(text):
        box = _BOX_FIELD.search(chunk)
        if box is None:
            continue
        try:
            values = _box_values([float(v) for v in box.group(1).split(",")])
        except ValueError:
            continue
        if values is not None:
            label = _LABEL_FIELD.search(chunk)
            entries.append({"label": label.group(1) if label else "", "bbox_3d": values})
    return entries


def parse_boxes(text: str) -> list[dict] | None:
    """VST's box answer -> `[{"label": str, "bbox_3d": [9 floats]}, ...]`; None when the text holds no box answer.

    Reads the answer after `</think>`, inside a ```json fence when there is one; an empty JSON list is a valid
    answer (no boxes). Entries without 9 finite numbers are dropped; never raises.
    """
    answer = strip_think(text)
    fence = _FENCE.search(answer)
    body = (fence.group(1) if fence else answer).strip()
    candidates = [body]
    if "[" in body and "]" in body:
        candidates.append(body[body.index("[") : body.rindex("]") + 1])
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        entries = _entries(data)
        if entries or data == []:
            return entries
    return _salvage(body) or None


# -- IoU and matching -------------------------------------------------------------------------------------------
def box_iou_matrix(predicted: list[list[float]], truth: list[list[float]]) -> np.ndarray:
    """(P, G) exact 3D IoU between VST 9-number boxes (camera frame); a degenerate box has IoU 0."""
    ious = np.zeros((len(predicted), len(truth)))
    truth_boxes = [vst9_to_box(values) for values in truth]
    for i, values in enumerate(predicted):
        box = vst9_to_box(values)
        for j, other in enumerate(truth_boxes):
            with np.errstate(all="ignore"):
                iou = box_iou_3d(box, other)
            ious[i, j] = iou if math.isfinite(iou) else 0.0
    return ious


def detection_record(predictions: list[dict], truth: list[dict], category: str | None = None) -> dict[str, dict]:
    """Per label: `{"ious": (P, G) nested list, "n_truth": G}` for one item, predictions in the order given.

    With `category`, every box (predicted or true) counts as that category: VST asks one category per question, so
    whatever label the model writes, its boxes answer that question. Without it, an item whose ground truth has
    one label is treated the same way; otherwise boxes are matched within equal labels (case-insensitive).
    """
    truth_labels = {normalise_label(t["label"]) for t in truth}
    if category is None and len(truth_labels) == 1:
        category = truth_labels.pop()

    def label_of(entry: dict) -> str:
        return normalise_label(category) if category is not None else normalise_label(entry["label"])

    record = {}
    for label in dict.fromkeys([label_of(t) for t in truth] + [label_of(p) for p in predictions]):
        mine = [p["bbox_3d"] for p in predictions if label_of(p) == label]
        theirs = [t["bbox_3d"] for t in truth if label_of(t) == label]
        record[label] = {"ious": box_iou_matrix(mine, theirs).tolist(), "n_truth": len(theirs)}
    return record


def _ious(entry: dict) -> np.ndarray:
    ious = entry["ious"]
    return np.asarray(ious, dtype=np.float64).reshape(len(ious), entry["n_truth"])


def greedy_matches(ious: np.ndarray, threshold: float) -> np.ndarray:
    """(P,) bool: which predictions (rows, in ranking order) are true positives, cocoeval's greedy rule.

    Each prediction takes the still-unmatched truth box of highest IoU, provided IoU >= threshold (cocoeval starts
    from `min(threshold, 1 - 1e-10)` and skips IoUs strictly below it, so IoU == threshold matches).
    """
    matched = np.zeros(ious.shape[1], dtype=bool)
    positive = np.zeros(ious.shape[0], dtype=bool)
    for row in range(ious.shape[0]):
        best, best_iou = -1, min(threshold, 1.0 - 1e-10)
        for column in range(ious.shape[1]):
            if matched[column] or ious[row, column] < best_iou:
                continue
            best, best_iou = column, ious[row, column]
        if best >= 0:
            matched[best], positive[row] = True, True
    return positive


def f1_score(record: dict[str, dict], threshold: float = F1_THRESHOLD) -> float:
    """One item's F1 over all its labels at an IoU threshold; 1.0 when nothing was expected and nothing given."""
    predicted = sum(len(entry["ious"]) for entry in record.values())
    expected = sum(entry["n_truth"] for entry in record.values())
    hits = sum(int(greedy_matches(_ious(entry), threshold).sum()) for entry in record.values())
    return 1.0 if predicted + expected == 0 else 2.0 * hits / (predicted + expected)


# -- average precision ------------------------------------------------------------------------------------------
def average_precision(images: list[np.ndarray], threshold: float) -> float | None:
    """COCO 101-point AP of one category over images, each a (P, G) IoU matrix with rows in ranking order.

    All scores are equal, so the dataset ranking is the images' order, then each image's row order (cocoeval's
    stable mergesort). None when the category has no ground truth.
    """
    n_truth = sum(ious.shape[1] for ious in images)
    if n_truth == 0:
        return None
    positive = np.concatenate([greedy_matches(ious[:MAX_DETECTIONS], threshold) for ious in images] + [np.zeros(0, bool)])
    true_positives = np.cumsum(positive)
    false_positives = np.cumsum(~positive)
    recall = true_positives / n_truth
    precision = true_positives / (true_positives + false_positives + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # cocoeval: precision[i] = max(precision[i:])
    indices = np.searchsorted(recall, RECALL_POINTS, side="left")
    interpolated = np.array([precision[i] if i < len(precision) else 0.0 for i in indices])
    return float(interpolated.mean())


def category_average_precision(records: list[dict[str, dict]], threshold: float) -> dict[str, float]:
    """AP per label over items' `detection_record`s (in item order); labels without ground truth are left out."""
    per_label: dict[str, list[np.ndarray]] = {}
    for record in records:
        for label, entry in record.items():
            per_label.setdefault(label, []).append(_ious(entry))
    scores = {label: average_precision(images, threshold) for label, images in per_label.items()}
    return {label: score for label, score in sorted(scores.items()) if score is not None}


def mean_average_precision(records: list[dict[str, dict]], threshold: float) -> float:
    """Mean over categories of `category_average_precision` (0.0 when no category has ground truth), in [0, 1]."""
    scores = category_average_precision(records, threshold)
    return float(np.mean(list(scores.values()))) if scores else 0.0
