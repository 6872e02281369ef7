"""Answer extraction and metrics shared by benchmarks (and by RL rewards): written once, never per benchmark.

Official extraction rules differ per benchmark and are kept in each benchmark module; the helpers here are the
pieces several of them use. None of them raises on any text: a response that cannot be parsed gives None.
"""

from __future__ import annotations

import math
import re

import numpy as np

# VSI-Bench's thresholds exactly as the official code builds them: int((0.95 - 0.5) / 0.05 + 2) == 10 values.
MRA_THRESHOLDS = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))
THINK_END = "</think>"


def percent(scores) -> float:
    """Mean of item scores in [0, 1], as a percentage (the unit every aggregate reports)."""
    scores = list(scores)
    return 100.0 * sum(scores) / len(scores)


def strip_think(text: str) -> str:
    """The answer part of a `<think>…</think> answer` response (text after the last `</think>`), stripped."""
    text = text or ""
    return text.rsplit(THINK_END, 1)[1].strip() if THINK_END in text else text.strip()


def vsi_first_token(text: str) -> str:
    """VSI-Bench's official fuzzy token: the first ' '-separated token, trailing '.' removed, stripped."""
    return (text or "").split(" ")[0].rstrip(".").strip()


def parse_float(token) -> float | None:
    """float(token) for finite numbers, else None (no unit stripping, no comma decimals: official behaviour); any
    value float() refuses (None, a list) gives None too."""
    try:
        value = float(token)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def first_number(text: str) -> float | None:
    """The first number in free text ("about 3.5 meters" -> 3.5), or None. For lenient protocols only."""
    match = re.search(r"-?\d+(?:\.\d+)?", text or "")
    return float(match.group()) if match else None


def mean_relative_accuracy(prediction: float | None, truth: float) -> float:
    """VSI-Bench MRA: mean over thresholds t of [|p - g| / g <= 1 - t]; None, negative or non-finite -> 0.

    Computed in float64 with `<=` as the official code does (so 2.7 vs 2 scores 0.3, not 0.4: 0.7/2 is
    0.35000000000000003 in float64).
    """
    if prediction is None or not math.isfinite(prediction) or prediction < 0 or truth <= 0:
        return 0.0
    relative_error = abs(prediction - truth) / truth
    return float(np.mean(relative_error <= 1 - MRA_THRESHOLDS))


def letter_in(text: str, letters: str = "ABCD") -> str | None:
    """A lenient letter extraction for non-official protocols: '(B)', 'B.', ' B', 'b', 'The answer is B', 'B because…'.

    Order: a bare letter (optionally in brackets or followed by '.', ':' or ')') at the start; then 'answer is X' /
    'answer: X'; then a single isolated capital letter among `letters` anywhere. Returns an upper-case letter or None.
    """
    text = strip_think(text)
    pattern = f"[{letters}{letters.lower()}]"
    start = re.match(rf"^\s*[\(\[]?({pattern})(?:[\)\]\.:,]|\s|$)", text)
    if start:
        return start.group(1).upper()
    stated = re.search(rf"answer\s*(?:is|:)?\s*[\(\[]?({pattern})\b", text, flags=re.IGNORECASE)
    if stated:
        return stated.group(1).upper()
    isolated = set(re.findall(rf"(?<![A-Za-z])([{letters}])(?![A-Za-z])", text))
    return isolated.pop() if len(isolated) == 1 else None


# VLMEvalKit can_infer_option: these messages mean "no answer" (its 'Z'); these characters split like spaces.
VLMEVALKIT_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
VLMEVALKIT_SEPARATORS = ".()[],:;!*#{}"


# VLMEvalKit's rule matcher (vlmeval/utils/matching_util.py, `can_infer`) changed twice; results depend on the version:
#   "2024"     as of c6bdffd3 (2024-03) until c3371551: one option letter anywhere among the tokens; else the one
#              option text found in the response. What scored 3DSRBench v1 (released 2025-01) and its circular TSV.
#   "2025-08"  c3371551 (2025-08-04, PR #1175): the letter must be among the last 5 tokens ("A because the lamp is
#              higher" no longer reads A), and no text match when the response is over twice the options' length.
#   "2026-06"  a67ace50 (2026-06-17, PR #1552): as 2025-08, then "(correct) answer is X" anywhere ("A and B both seem
#              possible, but the correct answer is B" reads B).
VLMEVALKIT_VERSIONS = ("2024", "2025-08", "2026-06")
_VLMEVALKIT_ANSWER_IS = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")


def vlmevalkit_choice(text: str, options: dict[str, str], version: str = "2024") -> str | None:
    """VLMEvalKit's rule-based MCQ matching (`can_infer` in vlmeval/utils/matching_util.py, the `exact_matching`
    judge: no LLM), as of `version` (VLMEVALKIT_VERSIONS above). `options` maps letters to option texts, e.g.
    {"A": "left", "B": "right"}.

    1. A refusal message -> no answer. 2. Replace `.()[],:;!*#{}` by spaces and split: exactly one option letter
    among the (case-sensitive) tokens -> that letter ("(B)", "B.", "The answer is B"; but "A chair, B" has two
    letters, and "b" none); no letter but a "Z" token -> no answer. 3. Otherwise the option whose lower-cased text
    is a substring of the lower-cased response, when exactly one is. Returns the letter, or None (VLMEvalKit's 'Z').
    """
    if version not in VLMEVALKIT_VERSIONS:
        raise ValueError(f"VLMEvalKit matcher version {version!r}: known {', '.join(VLMEVALKIT_VERSIONS)}")
    text = str(text or "")
    if any(message in text for message in VLMEVALKIT_REFUSALS):
        return None
    tokens = text.translate(str.maketrans(VLMEVALKIT_SEPARATORS, " " * len(VLMEVALKIT_SEPARATORS))).split()
    letters = [letter for letter in options if letter in tokens]
    if len(letters) == 1:
        if version == "2024" or tokens.index(letters[0]) > len(tokens) - 5:
            return letters[0]
    elif not letters and "Z" in tokens:
        return None
    if version == "2026-06" and (said := _VLMEVALKIT_ANSWER_IS.search(text)) and said.group(1).upper() in options:
        return said.group(1).upper()
    lowered = text.lower()
    if version != "2024" and len(lowered) > 2 * sum(len(str(option)) for option in options.values()):
        return None
    matches = [letter for letter, option in options.items() if str(option).lower() in lowered]
    return matches[0] if len(matches) == 1 else None
