"""Rule-checked rewards for RL (and for scoring our own data): pure functions that never raise on any text.

Every reward is `fn(response: str, answer: dict, **kwargs) -> float in [0, 1]`, looked up by a sample's
`reward.fn` in `REWARDS`; `score(fn, response, answer, **kwargs)` is the one entry point. The answer part of a
response is the text after the last `</think>` (VST's `<think>…</think> answer` format, spec paper.md §3.3-3.4).
`total` combines accuracy and format as VST does: `(1 - w) * accuracy + w * format`, w = 0.5.

Parsers are shared with evaluation (`vst.common.parsing`), so "correct" means the same thing in both.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

import numpy as np
from scipy.optimize import linear_sum_assignment

from vst.common.parsing import first_number, mean_relative_accuracy, parse_float, strip_think

FORMAT_WEIGHT = 0.5  # VST's vlm3d reward: overall = (1 - w) * accuracy + w * format
NUMERIC_TOLERANCE = 0.05  # VST's relaxed_score: 5 % relative error
BOX_TP_IOU = 0.25  # VST's 3D-box reward: a true positive needs IoU >= 0.25
MAP_GRID_DIAGONAL = 10 * math.sqrt(2)  # SpaceR's map score normaliser on a 10 x 10 grid
MAX_RESPONSE_CHARS = 100_000  # ~25k tokens, above any rollout length: longer text scores 0 at once (input cap)
MAX_REWARD_BOXES = 64  # a 3D-box answer listing more boxes than this is babble: reward 0 (IoU costs ~ms per pair)
MAX_MATH_CHARS = 2000  # math-verify reads the last 2,000 characters of an answer (16 s on 1 MB otherwise)
MAX_MAP_POINTS = 100  # guesses read per category: a 10 x 10 map holds no more, and a babbling policy can't stall GRPO
VST_LETTER = re.compile(r"\b[A-F]\b(?!\s[a-zA-Z])")  # VST multi_choices_score: an isolated letter not starting a phrase

Reward = Callable[..., float]
REWARDS: dict[str, Reward] = {}


def reward(name: str) -> Callable[[Reward], Reward]:
    def register(function: Reward) -> Reward:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is registered twice")
        REWARDS[name] = function
        return function

    return register


def answer_text(response: str) -> str:
    return strip_think(response if isinstance(response, str) else "")


@reward("format")
def format_reward(response: str, answer: dict | None = None, **kwargs: Any) -> float:
    """1 if there is exactly one `<think>…</think>` block, before a non-empty answer.

    >>> format_reward("<think>the chair is nearer</think> B")
    1.0
    >>> format_reward("B")
    0.0
    """
    # str.count / str.find, not a regex: `<think>.*?</think>` rescans the rest of the text from every unclosed
    # `<think>`, quadratic on a babbling policy (9 s for 8,000 of them), and GRPO calls this on every rollout.
    if not isinstance(response, str) or len(response) > MAX_RESPONSE_CHARS or response.count("<think>") != 1:
        return 0.0
    if response.find("</think>", response.find("<think>")) < 0:
        return 0.0
    return 1.0 if response.split("</think>", 1)[1].strip() else 0.0


def _letter(text: str) -> str | None:
    text = text.replace("`", "")
    found = VST_LETTER.findall(text)
    return found[0] if found else None


@reward("multiple_choice")
def multiple_choice(response: str, answer: dict, **kwargs: Any) -> float:
    """VST's multi_choices_score: exact match ignoring case, else the first isolated letter A-F on both sides.

    >>> multiple_choice("<think>…</think> B. lamp", {"value": "B"})
    1.0
    """
    predicted, truth = answer_text(response), str(answer.get("value", ""))
    if predicted.lower() == truth.lower():
        return 1.0
    letter, truth_letter = _letter(predicted), _letter(truth) or truth.strip().upper()
    return 1.0 if letter is not None and letter == truth_letter else 0.0


@reward("yes_no")
def yes_no(response: str, answer: dict, **kwargs: Any) -> float:
    """The first word of the answer is yes/no and matches."""
    words = re.findall(r"[a-z]+", answer_text(response).lower())
    truth = str(answer.get("value", "")).strip().lower()
    return 1.0 if words and words[0] in ("yes", "no") and words[0] == truth else 0.0


@reward("numeric")
def numeric(response: str, answer: dict, tolerance: float = NUMERIC_TOLERANCE, **kwargs: Any) -> float:
    """1 if the first number of the answer is within `tolerance` relative error (absolute when the truth is 0)."""
    predicted, truth = first_number(answer_text(response)), parse_float(answer.get("value"))
    if predicted is None or truth is None:
        return 0.0
    error = abs(predicted - truth) / abs(truth) if truth else abs(predicted)
    return 1.0 if error <= tolerance + 1e-12 else 0.0


@reward("mra")
def mra(response: str, answer: dict, **kwargs: Any) -> float:
    """VSI-Bench mean relative accuracy of the first number in the answer (evaluation's thresholds and `<=`)."""
    truth = parse_float(answer.get("value"))
    return 0.0 if truth is None else mean_relative_accuracy(first_number(answer_text(response)), truth)


@reward("math")
def math_reward(response: str, answer: dict, **kwargs: Any) -> float:
    """Symbolic equivalence with math-verify (VST's math_score); `\\boxed{}` answers are handled by its parser."""
    try:
        from math_verify import parse, verify

        text = answer_text(response)[-MAX_MATH_CHARS:]  # the final answer is at the end; math-verify is superlinear
        return 1.0 if verify(parse(str(answer.get("value", ""))), parse(text)) else 0.0
    except Exception:  # math-verify raises on some inputs (and times out on pathological ones): no reward
        return 0.0


@reward("order")
def order(response: str, answer: dict, **kwargs: Any) -> float:
    """The letter sequence in the answer equals the truth (e.g. "D, C, A" for ["D", "C", "A"])."""
    truth = [str(v).upper() for v in answer.get("value", [])]
    predicted = re.findall(r"(?<![A-Za-z])([A-Ha-h])(?![A-Za-z])", answer_text(response))
    return 1.0 if [p.upper() for p in predicted] == truth and truth else 0.0


@reward("option_text")
def option_text(response: str, answer: dict, **kwargs: Any) -> float:
    """The answer names exactly one of `answer.options`, and it is the right one."""
    text = answer_text(response).lower()
    options = [str(o).lower() for o in answer.get("options", [])]
    named = [o for o in options if re.search(rf"(?<![a-z]){re.escape(o)}(?![a-z])", text)]
    named = [o for o in named if not any(o != other and o in other for other in named)]  # "chair" inside "armchair"
    return 1.0 if len(named) == 1 and named[0] == str(answer.get("value", "")).lower() else 0.0


@reward("exact")
def exact(response: str, answer: dict, **kwargs: Any) -> float:
    """Case- and whitespace-insensitive equality, trailing full stop ignored."""
    def normalise(text: str) -> str:
        return " ".join(str(text).lower().split()).rstrip(".")

    return 1.0 if normalise(answer_text(response)) == normalise(answer.get("value", "")) else 0.0


def parse_boxes(text: str) -> list[dict] | None:
    """VST's 3D-box answer (a ```json fence or a bare JSON list of {"bbox_3d": 9 numbers, "label"}) or None."""
    body = answer_text(text)
    fence = re.search(r"```(?:json)?\s*(.*?)```", body, re.DOTALL)
    body = fence.group(1) if fence else body
    start, end = body.find("["), body.rfind("]")
    if start < 0 or end < start:
        return None
    try:
        entries = json.loads(body[start : end + 1])
    except (json.JSONDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(entries, list):
        return None
    boxes = []
    for entry in entries:
        values = entry.get("bbox_3d") if isinstance(entry, dict) else None
        if not isinstance(values, list) or len(values) != 9 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return None
        boxes.append({"bbox_3d": [float(v) for v in values], "label": str(entry.get("label", ""))})
    return boxes


def _may_overlap(a: list[float], b: list[float]) -> bool:
    """False when the boxes' bounding spheres are apart (IoU is 0 without clipping polygons)."""
    reach = (math.dist((0, 0, 0), a[3:6]) + math.dist((0, 0, 0), b[3:6])) / 2
    return math.dist(a[:3], b[:3]) <= reach


def _iou_matrix(predicted: list[dict], truth: list[dict]) -> np.ndarray:
    from vst.scene.geometry import box_iou_3d, vst9_to_box

    matrix = np.zeros((len(predicted), len(truth)))
    for i, p in enumerate(predicted):
        if min(p["bbox_3d"][3:6]) <= 0:
            continue  # zero-volume prediction: IoU 0, as pytorch3d's box3d_overlap gives
        for j, t in enumerate(truth):
            if p["label"].lower() == t["label"].lower() and _may_overlap(p["bbox_3d"], t["bbox_3d"]):
                matrix[i, j] = box_iou_3d(vst9_to_box(p["bbox_3d"]), vst9_to_box(t["bbox_3d"]))
    return matrix


@reward("boxes3d")
def boxes3d(response: str, answer: dict, **kwargs: Any) -> float:
    """VST's 3D-box accuracy: Hungarian matching on 3D IoU, 0.5 * (sum of matched IoU / #truth) + 0.5 * F1 at IoU 0.25."""
    predicted, truth = parse_boxes(response), answer.get("value") or []
    if predicted is None or not truth or len(predicted) > MAX_REWARD_BOXES:
        return 0.0
    if not predicted:
        return 0.0
    iou = _iou_matrix(predicted, truth)
    rows, cols = linear_sum_assignment(-iou)
    matched = iou[rows, cols]
    positives = int(np.sum(matched >= BOX_TP_IOU))
    precision, recall = positives / len(predicted), positives / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if positives else 0.0
    return float(0.5 * matched.sum() / len(truth) + 0.5 * f1)


@reward("map")
def map_score(response: str, answer: dict, **kwargs: Any) -> float:
    """SpaceR's cognitive-map score: per category, greedy closest pairs score 1 - d / (10 sqrt 2), summed and divided
    by max(#predicted, #truth); categories weighted by their number of true points."""
    truth = answer.get("value") or {}
    text = answer_text(response)
    start, end = text.find("{"), text.rfind("}")
    try:
        predicted = json.loads(text[start : end + 1]) if 0 <= start < end else None
    except (json.JSONDecodeError, ValueError, RecursionError):
        predicted = None
    if not isinstance(predicted, dict) or not truth:
        return 0.0
    total, weight = 0.0, 0
    for category, points in truth.items():
        truth_points = [np.asarray(p, dtype=float) for p in points]
        guesses = [np.asarray(p, dtype=float) for p in _points(predicted.get(category))[:MAX_MAP_POINTS]]
        weight += len(truth_points)
        pairs, used_guesses, used = [], set(), set()
        for distance, i, j in sorted((float(np.linalg.norm(g - t)), i, j) for i, g in enumerate(guesses) for j, t in enumerate(truth_points)):
            if i not in used_guesses and j not in used:
                pairs.append((i, j, distance))
                used_guesses.add(i)
                used.add(j)
        if pairs:
            score = sum(max(0.0, 1.0 - d / MAP_GRID_DIAGONAL) for _, _, d in pairs) / max(len(guesses), len(truth_points))
            total += score * len(truth_points)
    return total / weight if weight else 0.0


def _points(value: Any) -> list[list[float]]:
    if not isinstance(value, list):
        return []
    return [p for p in value if isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)]


def score(fn: str, response: str, answer: dict, **kwargs: Any) -> float:
    """Accuracy reward `fn` for one response; an unknown name is an error listing the known ones."""
    if fn not in REWARDS:
        raise KeyError(f"unknown reward {fn!r}; known rewards: {', '.join(sorted(REWARDS))}")
    if isinstance(response, str) and len(response) > MAX_RESPONSE_CHARS:
        return 0.0
    try:
        value = REWARDS[fn](response, answer, **kwargs)
    except Exception:  # rewards may swallow bad text (STYLE.md): any failure on a response is a zero reward
        return 0.0
    return float(min(1.0, max(0.0, value)))


def total(fn: str, response: str, answer: dict, format_weight: float = FORMAT_WEIGHT, **kwargs: Any) -> float:
    """VST's overall reward: (1 - w) * accuracy + w * format (w = 0.5)."""
    return (1.0 - format_weight) * score(fn, response, answer, **kwargs) + format_weight * format_reward(response)


def batched(fn: str, format_weight: float = FORMAT_WEIGHT) -> Callable[..., list[float]]:
    """TRL's reward signature `(completions, answer, **columns) -> list[float]` over `total` (one adapter for all)."""
    def reward_function(completions: list, answer: list, **kwargs: Any) -> list[float]:
        texts = [c if isinstance(c, str) else (c[-1].get("content", "") if c else "") for c in completions]
        answers = [json.loads(a) if isinstance(a, str) else a for a in answer]
        return [total(fn, text, ans, format_weight) for text, ans in zip(texts, answers)]

    reward_function.__name__ = f"vst_{fn}"
    return reward_function
