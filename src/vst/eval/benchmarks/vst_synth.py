"""vst-synth: vst's held-out benchmark over parquet shards written by `vst data generate` (one row = one Sample).

No upstream code to cite: the rules are vst's own, reusing the shared parsers (`vst.common.parsing`, lenient forms, as
VST's RL rewards read answers after `</think>`) and the detection AP of `vst.eval.detection`. Per answer type:
- mc: the option letter (`letter_in`; an answer that names exactly one option's text also counts as that letter);
- yesno: a leading "yes"/"no", else the only one of the two words in the answer;
- number: the first number in the answer, scored by VSI-Bench's mean relative accuracy;
- order: the answer's items (those of the truth, in the order written) must equal the truth exactly;
- text with options: the answer must name the correct option (exactly, or as the only option it mentions);
- map: the fraction of objects whose grid cells match exactly;
- boxes3d: dataset-level Omni3D-style AP at IoU 0.25 over the skill's items (each item's own score is its F1);
- text without options (scene captions) and unknown types: not scored, left out of every number.
Categories are the skill names present (so `CATEGORIES` is empty); a skill scores the mean of its items, with its
box items counted at the skill's AP; overall = mean over scored skills, unweighted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from vst.data.sample import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER
from vst.data.shards import read_samples
from vst.eval.benchmarks.registry import Aggregate, ItemScore, Prompt
from vst.eval.detection import detection_record, f1_score, mean_average_precision, parse_boxes
from vst.common.parsing import first_number, letter_in, mean_relative_accuracy, strip_think

NAME = "vst-synth"
PROTOCOLS = ("official",)
ROW_FIELDS = ("id", "skill", "answer")
CATEGORIES: tuple[str, ...] = ()  # the skill names found in the rows, sorted
LETTERS = "ABCDEFGH"
BOX_IOU_THRESHOLD = 0.25
_PUNCTUATION = " \t\n.,;:!?\"'`*()[]"


# -- rows and prompt --------------------------------------------------------------------------------------------
def load_rows(source: str, revision: str | None = None, limit: int | None = None) -> list[dict]:
    """Rows from a parquet shard or a folder of shards (sorted by name); `revision` is unused (local data only)."""
    path = Path(source)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{path}: no .parquet shards")
    rows = []
    for sample in read_samples(files):
        rows.append({"id": sample.id, "skill": sample.skill, "answer": sample.answer, "type": sample.type,
                     "modality": sample.modality, "question": sample.question,
                     "images": [media.bytes if media.bytes is not None else media.path for media in sample.images]})
        if limit is not None and len(rows) >= limit:
            break
    return rows


def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    """The sample's question with its placeholders removed (the processor adds them); a video is `images[0]`."""
    text = row["question"].replace(IMAGE_PLACEHOLDER, "").replace(VIDEO_PLACEHOLDER, "").strip()
    media = row.get("images") or []
    if row.get("modality") == "video":
        return Prompt(text=text, video=media[0] if media else None)
    return Prompt(text=text, images=list(media))


# -- parsers: each (answer text after </think>, answer dict) -> (parsed or None, score) ---------------------------
def _named_option(text: str, options: list[str]) -> str | None:
    """The option the text names: equal to it (ignoring case and punctuation), else the only one mentioned."""
    lowered = text.lower().strip(_PUNCTUATION)
    for option in options:
        if lowered == option.lower():
            return option
    named = [o for o in options if re.search(rf"(?<![\w-]){re.escape(o.lower())}(?![\w-])", text.lower())]
    return named[0] if len(named) == 1 else None


def _score_mc(text: str, answer: dict):
    options = answer.get("options") or []
    letters = LETTERS[: len(options)] or "ABCD"
    letter = letter_in(text, letters)
    if letter is None and options:  # "chair" for "B. chair"
        texts = [re.sub(r"^[A-H]\.\s*", "", option) for option in options]
        named = _named_option(text, texts)
        letter = letters[texts.index(named)] if named is not None else None
    return letter, float(letter == str(answer["value"]).strip().upper())


def _score_yesno(text: str, answer: dict):
    lowered = text.lower()
    start = re.match(r"^\W*(yes|no)\b", lowered)
    words = set(re.findall(r"\b(yes|no)\b", lowered))
    parsed = start.group(1) if start else words.pop() if len(words) == 1 else None
    truth = answer["value"] if isinstance(answer["value"], str) else ("yes" if answer["value"] else "no")
    return parsed, float(parsed == truth.strip().lower())


def _score_number(text: str, answer: dict):
    parsed = first_number(text)
    return parsed, mean_relative_accuracy(parsed, float(answer["value"]))


def _score_order(text: str, answer: dict):
    truth = [str(item) for item in answer["value"]]
    words = re.findall(r"[\w-]+", text)
    parsed = [w for w in words if w in truth] or [w.upper() for w in words if w.upper() in truth]
    return parsed or None, float(parsed == truth)


def _score_option_text(text: str, answer: dict):
    parsed = _named_option(text, [str(option) for option in answer["options"]])
    return parsed, float(parsed is not None and parsed.lower() == str(answer["value"]).lower())


def _score_map(text: str, answer: dict):
    try:
        parsed = json.loads(text[text.index("{") : text.rindex("}") + 1])
    except (ValueError, RecursionError):
        return None, 0.0
    if not isinstance(parsed, dict):
        return None, 0.0
    cells = {str(name).lower(): value for name, value in parsed.items()}
    hits = [cells.get(name.lower()) == value for name, value in answer["value"].items()]
    return parsed, float(np.mean(hits)) if hits else 0.0


SCORERS = {"mc": _score_mc, "yesno": _score_yesno, "number": _score_number, "order": _score_order,
           "text": _score_option_text, "map": _score_map}


def score_item(row: dict, response: str, protocol: str = "official") -> ItemScore:
    """Score by answer type; `parsed` is `{"type", "value"}` (+ `record` for boxes, `excluded` for unscored types)."""
    answer = row["answer"] if isinstance(row["answer"], dict) else json.loads(row["answer"] or "{}")
    kind, skill = answer.get("type"), row["skill"]
    if kind == "boxes3d":
        predicted = parse_boxes(response)
        record = detection_record(predicted or [], answer["value"])
        return ItemScore(skill, f1_score(record), {"type": kind, "value": predicted, "record": record}, predicted is None)
    if kind not in SCORERS or (kind == "text" and not answer.get("options")):
        return ItemScore(skill, 0.0, {"type": kind, "value": None, "excluded": True}, unparsed=False)
    parsed, score = SCORERS[kind](strip_think(response), answer)
    return ItemScore(skill, score, {"type": kind, "value": parsed}, parsed is None)


def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    """Percent per skill (mean item score; box items count at the skill's AP@25) and their unweighted mean."""
    categories = {}
    for skill in sorted({item.category for item in items}):
        scored = [item for item in items if item.category == skill and not item.parsed.get("excluded")]
        boxes = [item.parsed["record"] for item in scored if "record" in item.parsed]
        if not scored:
            continue
        box_ap = mean_average_precision(boxes, BOX_IOU_THRESHOLD) if boxes else 0.0
        total = sum(item.score for item in scored if "record" not in item.parsed) + box_ap * len(boxes)
        categories[skill] = 100.0 * total / len(scored)
    overall = float(np.mean(list(categories.values()))) if categories else 0.0
    return Aggregate(overall=overall, categories=categories)
