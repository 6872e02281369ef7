"""VST's 3D-detection grounding benchmark: rows, prompt, scoring and AP shared by `det3d_sunrgbd` and `det3d_arkitscenes`.

Spec paper.md §5.1 "3D detection" and §2.4; benchmarks.md §9. Data: HF `rayruiyang/vst_3d_grounding_benchmark`, one
JSON file per dataset; one category per question. Official scoring = VST's `benchmark/det3d` (Yangr116/VST), which
runs Omni3D's evaluator (facebookresearch/omni3d:cubercnn/evaluation/omni3d_evaluation.py) with every box scored
1.0: see `vst.eval.detection`. Protocols "official" and "vst" are the same thing (VST wrote the benchmark).

The released layout (`_published_rows`): per set, `annotations/<name>prompt_v4_norm.json` (uid, image_path, the
raw camera prompt), the ground truth `*metaqa*.json` (uid, image_path, height, width, category, camera_intrinsics,
answer with angles in degrees, converted here to VST's angles / 180) and the images in a .tar.gz, unpacked once
beside it. Its field names come from the issue that asked for it (read from Yangr116/VST benchmark/det3d); no copy
of the dataset was available to check them.

Rows in vst's own schema (a folder without a metaqa file; also VST's LLaVA-style prompt file, see `normalise_row`):
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
from vst.scene.types import Intrinsics, confined_path

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
    published = _published_files(path, data_file) if path.is_dir() and data_file else None
    if published:
        return _published_rows(*published, limit=limit)
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


# -- the released layout ------------------------------------------------------------------------------------------
# rayruiyang/vst_3d_grounding_benchmark as VST's benchmark/det3d reads it: per set, a prompt file
# `<set>/annotations/<name>prompt_v4_norm.json` (rows {uid or id, image_path, question}: the raw camera prompt) and a
# ground-truth file `*metaqa*.json` (rows {uid, image_path, height, width, category, camera_intrinsics {fx, fy, cx,
# cy}, answer}: boxes with angles in DEGREES; predictions are in [-1, 1] x 180), the images in a .tar.gz beside them.
def _published_files(folder: Path, data_file: str) -> tuple[Path, Path] | None:
    """(prompt file, ground-truth file) of the released layout, if `folder` holds it."""
    prompts = sorted(folder.rglob(data_file))
    if not prompts:
        return None
    prefix = data_file.split("_")[0]  # "sunrgbd" / "arkit"
    near = [prompts[0].parent, prompts[0].parent.parent] if prompts[0].parent != folder else [folder]
    truths = sorted(p for d in near for p in d.glob(f"{prefix}*metaqa*.json")) or \
        sorted(folder.rglob(f"{prefix}*metaqa*.json"))
    return (prompts[0], truths[0]) if truths else None  # no ground truth beside it: rows in vst's own schema


def _degrees_to_vst(box: list) -> list[float]:
    """A metaqa box (x, y, z, sx, sy, sz in metres, pitch, yaw, roll in degrees) in VST's bbox_3d (angles / 180)."""
    return [float(v) for v in box[:6]] + [float(v) / 180.0 for v in box[6:9]]


def _truth_boxes(answer, name: str) -> list[list[float]]:
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except json.JSONDecodeError:
            parsed = parse_boxes(answer)
            if parsed is None:
                raise ValueError(f"{name}: answer: neither JSON nor VST's box answer") from None
            answer = parsed
    boxes = []
    for index, entry in enumerate(answer if isinstance(answer, list) else [answer]):
        values = entry.get("bbox_3d") if isinstance(entry, dict) else entry
        if not isinstance(values, list) or len(values) != 9:
            raise ValueError(f"{name}: answer[{index}]: expected a bbox_3d of 9 numbers, got {values!r}")
        boxes.append(_degrees_to_vst(values))
    return boxes


def _extract_images(root: Path) -> Path | None:
    """Unpack the set's image archive once (beside it, under `<archive>.extracted`, renamed into place whole)."""
    import shutil
    import tarfile

    archives = sorted(root.glob("*.tar.gz")) + sorted(root.glob("*.tgz")) + sorted(root.glob("*.tar"))
    if not archives:
        return None
    target = archives[0].with_name(archives[0].name + ".extracted")
    if not target.is_dir():
        staging = target.with_name(target.name + ".incomplete")
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(archives[0]) as archive:
            archive.extractall(staging, filter="data")  # no absolute paths, no "..", no links out
        staging.rename(target)
    return target


def _published_rows(prompts: Path, truths: Path, limit: int | None = None) -> list[dict]:
    truth_rows = _read_file(truths)
    by_uid = {str(r.get("uid", r.get("id"))): r for r in truth_rows}
    root, image_roots = prompts.parent.parent, None
    rows = []
    for index, raw in enumerate(_read_file(prompts)):
        name = f"{prompts}: row {index}"
        uid = str(raw.get("uid", raw.get("id")))
        truth = by_uid.get(uid)
        if truth is None:
            raise ValueError(f"{name}: uid {uid}: not in {truths.name}")
        intrinsics = truth.get("camera_intrinsics") or {}
        missing = [k for k in ("fx", "fy", "cx", "cy") if k not in intrinsics] + \
            [k for k in ("width", "height", "category", "answer") if truth.get(k) is None]
        if missing:
            raise ValueError(f"{truths}: uid {uid}: missing field(s) {', '.join(missing)}")
        relative = confined_path(str(raw.get("image_path") or truth.get("image_path")))
        candidates = [root / relative, prompts.parent / relative, truths.parent / relative]
        image = next((c for c in candidates if c.is_file()), None)
        if image is None:
            image_roots = image_roots or _extract_images(root)
            image = next((c for c in ([image_roots / relative] if image_roots else []) if c.is_file()), None)
        if image is None:
            raise FileNotFoundError(f"{name} (uid {uid}): image not found: {relative} (under {root} or its archive)")
        rows.append({"id": uid, "image": str(image), "category": str(truth["category"]),
                     "question": str(raw.get("question") or QUESTION.format(category=truth["category"])),
                     "intrinsics": {**{k: float(intrinsics[k]) for k in ("fx", "fy", "cx", "cy")},
                                    "width": int(truth["width"]), "height": int(truth["height"])},
                     "boxes": _truth_boxes(truth["answer"], f"{truths}: uid {uid}")})
        if limit is not None and len(rows) >= limit:
            break
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
