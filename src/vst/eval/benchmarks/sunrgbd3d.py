"""SUN RGB-D 3D detection as lmms-eval runs it (task `sunrgbd`, lmms-eval PR #1376; EvolvingLMMs-Lab/lmms-eval
@75571cf lmms_eval/tasks/sunrgbd/{sunrgbd.yaml,utils.py}): a second 3D-detection source beside VST's own
`det3d-sunrgbd`, with lmms-eval's prompt, parser, IoU and mAP.

Rows: HF `kcz358/SUNRGBD-3D`, split `test` (`image`, `categories` (the classes to find), `bboxes_3d` (9 numbers:
x, y, z, sx, sy, sz, roll, pitch, yaw, yaw in radians), `labels`), or a local folder of parquet files in that schema.
Prompt: "Locate the {categories, comma-separated} in the provided image and output their positions and dimensions
using 3D bounding boxes. …" (no camera parameters, unlike VST's). Generation: greedy, 8,192 new tokens (the yaml).
Parsing: the whole response as JSON, else a ```json fence, else every balanced {...}; any dict with a `bbox_3d` /
`bbox3d` / `box_3d` / `bbox` of 7 (x, y, z, sx, sy, sz, yaw) or 9 numbers and a label.
IoU: the boxes' ground-plane rectangles (x, z, turned by yaw) intersected, times the vertical (y) overlap, over the
union of volumes. AP: per label, every box scored 1.0 in item order, greedy matching, COCO 101-point interpolation;
mAP = mean over labels with ground truth. Reported: "mAP" (mean of mAP at IoU 0.25, 0.30, …, 0.50, lmms-eval's
headline), "mAP25", "mAP50". An item's own score is its F1 at IoU 0.25, for browsing.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from vst.eval.benchmarks.registry import Aggregate, ItemScore, Prompt, check_protocol
from vst.eval.detection import f1_score, mean_average_precision
from vst.eval.rows import is_local, load_hub_rows, load_local_rows
from vst.scene.geometry import convex_polygon_intersection, polygon_area

NAME = "sunrgbd-3d"
DEFAULT_SOURCE = "kcz358/SUNRGBD-3D"
HF_SPLIT = "test"
PROTOCOLS = ("official",)
GENERATION = {"official": {"max_new_tokens": 8192, "temperature": 0.0}}
ROW_FIELDS = ("categories", "bboxes_3d", "labels")
MEDIA_FIELDS = ("image",)
CATEGORIES = ("mAP", "mAP25", "mAP50")
THRESHOLDS = (0.25, 0.30, 0.35, 0.40, 0.45, 0.50)
PROMPT = ("Locate the {class_name} in the provided image and output their positions and dimensions using 3D bounding "
          'boxes. The results must be in the JSON format: ["bbox_3d":[x_center, y_center, z_center, x_size, y_size, '
          'z_size, roll, pitch, yaw],"label":"category"].')
BOX_KEYS = ("bbox_3d", "bbox3d", "box_3d", "bbox")
LABEL_KEYS = ("label", "class", "category", "name", "class_name")


def load_rows(source: str = DEFAULT_SOURCE, revision: str | None = None, limit: int | None = None) -> list[dict]:
    if is_local(source):
        rows = load_local_rows(Path(source), patterns=("test*.parquet", "*.parquet", "*.jsonl"),
                               media_fields=MEDIA_FIELDS, id_field="image_id", limit=limit)
    else:
        rows = load_hub_rows(source, configs=(None,), split=HF_SPLIT, media_fields=MEDIA_FIELDS, revision=revision,
                             limit=limit)
    for index, row in enumerate(rows):
        missing = [name for name in ROW_FIELDS if name not in row]
        if missing:
            raise ValueError(f"{source}: row {index}: missing field(s) {', '.join(missing)} (kcz358/SUNRGBD-3D's schema)")
        row["image_id"] = index  # lmms-eval's process_docs: the row's position
    return rows


def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    check_protocol(sys.modules[__name__], protocol)
    return Prompt(text=PROMPT.format(class_name=", ".join(map(str, row["categories"]))), images=[row["image"]])


# -- parsing (lmms-eval's rules) --------------------------------------------------------------------------------
def _balanced_objects(text: str) -> list:
    """Every top-level {...} span that parses as JSON, scanning past strings and escapes."""
    found, i = [], 0
    while i < len(text):
        if text[i] != "{":
            i += 1
            continue
        depth, in_string, escaped, end = 0, False, False, -1
        for j in range(i, len(text)):
            char = text[j]
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = not in_string
            elif not in_string and char == "{":
                depth += 1
            elif not in_string and char == "}":
                depth -= 1
                if depth == 0:
                    end = j + 1
                    break
        if end < 0:
            break
        try:
            found.append(json.loads(text[i:end]))
            i = end
        except json.JSONDecodeError:
            i += 1
    return found


def parse_predictions(text: str) -> list[dict]:
    """[{"bbox": 9 floats (roll, pitch, yaw last), "label": str | None}] from a response; never raises."""
    if not text:
        return []
    blocks = []
    try:
        blocks = [json.loads(text)]
    except (json.JSONDecodeError, RecursionError):
        for fenced in re.findall(r"```(?:json)?\s*(.*?)```", text, flags=re.DOTALL | re.IGNORECASE):
            try:
                blocks = [json.loads(fenced)]
                break
            except (json.JSONDecodeError, RecursionError):
                continue
        else:
            objects = _balanced_objects(text)
            blocks = [objects] if objects else []
    predictions, stack = [], list(blocks)
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            box = next((node[key] for key in BOX_KEYS if key in node), None)
            numbers = isinstance(box, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
            if numbers and len(box) >= 9:
                values = [float(v) for v in box[:9]]
            elif numbers and len(box) == 7:
                values = [float(v) for v in box[:6]] + [0.0, 0.0, float(box[6])]
            else:
                stack.extend(node.values())
                continue
            predictions.append({"bbox": values, "label": next((node[k] for k in LABEL_KEYS if k in node), None)})
    return predictions


# -- IoU and AP ---------------------------------------------------------------------------------------------------
def _ground_rectangle(box: list[float]) -> np.ndarray:
    x, z, sx, sz, yaw = box[0], box[2], box[3], box[5], box[8]
    local = np.array([[-sx / 2, -sz / 2], [sx / 2, -sz / 2], [sx / 2, sz / 2], [-sx / 2, sz / 2]])
    turn = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    return local @ turn.T + [x, z]


def iou(a: list[float], b: list[float]) -> float:
    """lmms-eval's 3D IoU: ground-plane (x, z) overlap of the yaw-turned rectangles times the vertical overlap."""
    if min(*a[3:6], *b[3:6]) <= 0 or not all(math.isfinite(v) for v in (*a, *b)):
        return 0.0
    area = polygon_area(convex_polygon_intersection(_ground_rectangle(a), _ground_rectangle(b)))
    height = max(0.0, min(a[1] + a[4] / 2, b[1] + b[4] / 2) - max(a[1] - a[4] / 2, b[1] - b[4] / 2))
    inter = area * height
    union = a[3] * a[4] * a[5] + b[3] * b[4] * b[5] - inter
    return inter / union if inter > 0 and union > 0 else 0.0


def _label(value) -> str:
    return str(value).strip().lower()


def _record(row: dict, response: str) -> dict[str, dict]:
    """Per label: the (P, G) IoU matrix of this item's predictions against its ground truth, in the record format of
    `vst.eval.detection` (its F1 and mean AP read it); labels as lmms-eval compares them, not `detection_record`'s
    one-category rule."""
    truth = [(_label(label), [float(v) for v in box]) for box, label in zip(row["bboxes_3d"], row["labels"])]
    predicted = [(_label(p["label"]), p["bbox"]) for p in parse_predictions(response)]
    record = {}
    for label in dict.fromkeys([name for name, _ in truth] + [name for name, _ in predicted]):
        mine = [box for name, box in predicted if name == label]
        theirs = [box for name, box in truth if name == label]
        record[label] = {"ious": [[iou(p, t) for t in theirs] for p in mine], "n_truth": len(theirs)}
    return record


def score_item(row: dict, response: str, protocol: str = "official") -> ItemScore:
    record = _record(row, str(response))
    predicted = sum(len(entry["ious"]) for entry in record.values())
    expected = sum(entry["n_truth"] for entry in record.values())
    return ItemScore(category="all", score=f1_score(record, 0.25), parsed={"record": record},
                     unparsed=predicted == 0 and expected > 0)


def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    records = [item.parsed["record"] for item in items if isinstance(item.parsed, dict)]
    at = {t: 100.0 * mean_average_precision(records, t) for t in THRESHOLDS}
    headline = float(np.mean(list(at.values())))
    return Aggregate(overall=headline, categories={"mAP": headline, "mAP25": at[0.25], "mAP50": at[0.50]})
