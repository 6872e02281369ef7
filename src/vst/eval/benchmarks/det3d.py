"""VST's 3D-detection grounding benchmark: rows, prompt, scoring and AP shared by `det3d_sunrgbd` and `det3d_arkitscenes`.

Spec paper.md §5.1 "3D detection" and §2.4; benchmarks.md §9. Data: HF `rayruiyang/vst_3d_grounding_benchmark`, one
JSON file per dataset; one category per question. Official scoring = VST's `benchmark/det3d` (Yangr116/VST), which
runs Omni3D's evaluator (facebookresearch/omni3d:cubercnn/evaluation/omni3d_evaluation.py) with every box scored
1.0: see `vst.eval.detection`. Protocols "official" and "vst" are the same thing (VST wrote the benchmark).

Rows (vst's schema; the released file's schema is [unverified], see `normalise_row`):
`{id, image (path relative to the row file), category, question, intrinsics {fx, fy, cx, cy, width, height} (pixels,
of the image on disk), boxes [[x, y, z, sx, sy, sz, pitch, yaw, roll], ...]}` (camera frame, metres, degrees / 180).
Prompt: VST's camera prompt with FoV unification (`vst.data.fov`): the image is rescaled to the virtual camera's
focal length and the prompt states the original fields of view and the new size (`--enable_fov`).
Aggregate: AP@15 overall (the paper's number), AP@25, AP@50, Omni3D's AP@[.05:.50] and AP@15 per class, all from
the whole dataset; an item's own `score` is its F1 at IoU 0.25, for browsing only.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from vst.data.fov import camera_prompt, rescale_intrinsics, resize_image, unify_intrinsics
from vst.eval.benchmarks.registry import Aggregate, ItemScore, Prompt
from vst.eval.detection import (
    IOU_THRESHOLDS,
    OMNI3D_THRESHOLDS,
    category_average_precision,
    detection_record,
    f1_score,
    mean_average_precision,
    parse_boxes,
)
from vst.scene.types import Intrinsics

HF_DATASET = "rayruiyang/vst_3d_grounding_benchmark"
DEFAULT_SOURCE = HF_DATASET  # what `vst eval run` loads without --source
PROTOCOLS = ("official", "vst")
# VST's 3D-detection evaluation samples (temperature 0.2, top_p 0.95) with 1,024 new tokens: a scene's JSON list
# of boxes is long, and 64 tokens cut it after the first box.
GENERATION = {"official": {"max_new_tokens": 1024, "temperature": 0.2, "top_p": 0.95},
              "vst": {"max_new_tokens": 1024, "temperature": 0.2, "top_p": 0.95}}
ROW_FIELDS = ("id", "category", "boxes")  # what scoring needs; prompts also need image, question and intrinsics
HEADLINE = "AP@15"
CATEGORIES = ("AP@15", "AP@25", "AP@50", "AP@[.05:.50]")  # then "AP@15/<class>" per class present
QUESTION = "Detect the 3D bounding boxes of {category}"  # VST's wording

# VST's raw prompt states pixel intrinsics (paper.md §2.4 "Raw data before conversion"); a converted one states fovs.
_PIXELS = {name: re.compile(pattern) for name, pattern in {
    "width": r"width=(\d+)", "height": r"height=(\d+)", "fx": r"f_x=(\d+(?:\.\d+)?)", "fy": r"f_y=(\d+(?:\.\d+)?)",
    "cx": r"c_x=(\d+(?:\.\d+)?)", "cy": r"c_?y=(\d+(?:\.\d+)?)", "hfov": r"hfov=(\d+(?:\.\d+)?)"}.items()}
_CATEGORY = re.compile(r"bounding box(?:es)? of (?:the |all |every )?(.+?)[.?]?\s*$", re.IGNORECASE)


# -- rows -------------------------------------------------------------------------------------------------------
def _intrinsics_from_prompt(prompt: str, name: str) -> dict:
    found = {key: float(m.group(1)) for key, pattern in _PIXELS.items() if (m := pattern.search(prompt))}
    if "width" not in found or "height" not in found or not ({"fx"} <= found.keys() or {"hfov"} <= found.keys()):
        raise ValueError(f"{name}: conversations: no camera parameters (image width/height and f_x or hfov) in the prompt")
    width, height = int(found["width"]), int(found["height"])
    fx = found.get("fx") or width / (2.0 * math.tan(math.radians(found["hfov"]) / 2.0))
    return {"fx": fx, "fy": found.get("fy", fx), "cx": found.get("cx", width / 2.0), "cy": found.get("cy", height / 2.0),
            "width": width, "height": height}


def normalise_row(raw: dict, name: str) -> dict:
    """One row in vst's schema, from vst's schema or from VST's LLaVA-style prompt file [unverified]: `image`,
    `conversations` with the raw camera prompt (last line = the question) and the answer boxes as the gpt turn."""
    if "conversations" in raw and "boxes" not in raw:
        turns = {turn.get("from"): turn.get("value", "") for turn in raw["conversations"]}
        prompt = turns.get("human", "")
        question = prompt.strip().splitlines()[-1].replace("<image>", "").strip() if prompt.strip() else ""
        category = raw.get("category") or (m.group(1) if (m := _CATEGORY.search(question)) else "")
        truth = parse_boxes(turns.get("gpt", ""))
        raw = {"id": raw.get("id"), "image": raw.get("image"), "category": category, "question": question,
               "intrinsics": _intrinsics_from_prompt(prompt, name), "boxes": [b["bbox_3d"] for b in truth or []]}
    missing = [field for field in ("image", "category", "intrinsics", "boxes") if not raw.get(field) and raw.get(field) != []]
    if missing:
        raise ValueError(f"{name}: missing field(s) {', '.join(missing)}")
    image = raw["image"][0] if isinstance(raw["image"], list) else raw["image"]
    boxes = [box["bbox_3d"] if isinstance(box, dict) else box for box in raw["boxes"]]
    if any(not isinstance(box, list) or len(box) != 9 for box in boxes):
        raise ValueError(f"{name}: boxes: expected lists of 9 numbers (VST's bbox_3d)")
    category = str(raw["category"])
    return {"id": str(raw.get("id") if raw.get("id") is not None else name), "image": str(image), "category": category,
            "question": raw.get("question") or QUESTION.format(category=category),
            "intrinsics": dict(raw["intrinsics"]), "boxes": boxes}


def _read_file(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: invalid JSON ({error})") from None
    return data if isinstance(data, list) else data.get("data", [])


def load_rows(source: str = HF_DATASET, revision: str | None = None, limit: int | None = None,
              data_file: str | None = None) -> list[dict]:
    """Rows from a local folder or file (.json/.jsonl/.parquet; `data_file` picks one in a folder) or a HF dataset
    repo (downloaded whole with huggingface_hub: the images sit beside the row files). Image paths become absolute."""
    path = Path(source)
    if not path.exists():
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(source, repo_type="dataset", revision=revision))
    if path.is_dir():
        files = [path / data_file] if data_file and (path / data_file).is_file() else sorted(
            p for p in path.iterdir() if p.suffix in (".json", ".jsonl", ".parquet"))
    else:
        files = [path]
    if not files:
        raise FileNotFoundError(f"{path}: no .json, .jsonl or .parquet rows")
    rows = []
    for file in files:
        for index, raw in enumerate(_read_file(file)):
            row = normalise_row(raw, f"{file}: row {index}")
            image = file.parent / row["image"]
            if not image.is_file():
                raise FileNotFoundError(f"{file}: row {index} (id {row['id']}): image not found: {image}")
            rows.append({**row, "image": str(image)})
            if limit is not None and len(rows) >= limit:
                return rows
    return rows


# -- prompt and scoring -----------------------------------------------------------------------------------------
def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    """VST's camera prompt; the image is rescaled (PNG bytes) to the virtual camera's focal length unless it already is."""
    path = Path(row["image"])
    if not path.is_file():
        raise FileNotFoundError(f"item {row.get('id')}: image not found: {path}")
    try:
        original = Intrinsics(**row["intrinsics"])
    except ValueError as error:
        raise ValueError(f"item {row.get('id')}: intrinsics: {error}") from None
    with Image.open(path) as image:
        if image.size != (original.width, original.height):  # intrinsics stated for another resolution
            original = rescale_intrinsics(original, *image.size)
        shown = unify_intrinsics(original)
        media: str | bytes = str(path)
        if (shown.width, shown.height) != image.size:
            buffer = io.BytesIO()
            resize_image(image.convert("RGB"), shown.width, shown.height).save(buffer, format="PNG")
            media = buffer.getvalue()
    return Prompt(text=camera_prompt(original, shown, row["question"]), images=[media])


def score_item(row: dict, response: str, protocol: str = "official") -> ItemScore:
    """Parsed boxes and their IoUs against the row's boxes (kept for `aggregate`); score = F1 at IoU 0.25."""
    predicted = parse_boxes(response)
    for index, box in enumerate(row["boxes"]):
        if not isinstance(box, (list, tuple)) or len(box) != 9 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
            raise ValueError(f"boxes[{index}]: expected 9 finite numbers, got {box!r}")
    truth = [{"label": row["category"], "bbox_3d": box} for box in row["boxes"]]
    record = detection_record(predicted or [], truth, category=row["category"])
    return ItemScore(category=row["category"], score=f1_score(record), parsed={"boxes": predicted, "record": record},
                     unparsed=predicted is None)


def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    """Dataset-level AP (percent) over all items: AP@15 overall, AP@25, AP@50, AP@[.05:.50], AP@15 per class."""
    records = [item.parsed["record"] for item in items]
    categories = {f"AP@{round(t * 100)}": 100.0 * mean_average_precision(records, t) for t in IOU_THRESHOLDS}
    categories["AP@[.05:.50]"] = 100.0 * sum(mean_average_precision(records, t) for t in OMNI3D_THRESHOLDS) / len(OMNI3D_THRESHOLDS)
    per_class = category_average_precision(records, IOU_THRESHOLDS[0])
    categories.update({f"{HEADLINE}/{label}": 100.0 * score for label, score in per_class.items()})
    return Aggregate(overall=categories[HEADLINE], categories=categories)
