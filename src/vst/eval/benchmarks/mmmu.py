"""MMMU (validation), VST's general-ability column "MMMU" (paper.md §5.2), from VLMEvalKit's `MMMU_DEV_VAL.tsv`
(open-compass/VLMEvalKit @e8e78f0 vlmeval/dataset/image_mcq.py `MMMUDataset`).

Rows: `index, question (with "<image k>" marks), A, B, …, answer, category (subject), split (dev / validation),
image` (one base64 picture, or a list literal of them), from `--source vlmevalkit` or a local file / folder. The
overall and per-subject scores use the validation split only; dev rows are scored but left out of the means.

Protocols (every image goes before the text in both: vst's prompts cannot place a picture at its "<image k>" mark):
- "official": MMMU's own evaluation (MMMU-Benchmark/MMMU mmmu/utils/{data_utils,eval_utils}.py): the prompt
  "{question}\n\n(A) x\n(B) y\n\n\nAnswer with the option's letter from the given choices directly." (open questions:
  "{question}\n\nAnswer the question using a single word or phrase."), greedy; `parse_multi_choice_response`
  ("(A)" marks, then " A " tokens, then, for responses over five words, option texts; the last one mentioned wins;
  nothing found: a random letter, seeded here per item so a re-score gives the same number, where MMMU draws from
  one global generator in file order) and `parse_open_response` + `eval_open` (key phrases after "is", "so",
  "therefore", …, the numbers in them, normalised; right when a gold answer is among them).
- "vst": what VST ran, VLMEvalKit with Qwen2VLChat's MMMU prompt (images first, the ImageMCQ text) and VLMEvalKit's
  rule matcher; an open question is right when its answer, lower-cased, appears in the response (VLMEvalKit leaves
  those to its LLM judge).
"""

from __future__ import annotations

import random
import re
import sys
from collections import defaultdict

from vst.common.parsing import percent
from vst.eval.benchmarks import image_mcq
from vst.eval.benchmarks.image_mcq import VLMEVALKIT_QWEN
from vst.eval.benchmarks.registry import Aggregate, ItemScore, Prompt, check_protocol
from vst.eval.prompts import row_options

NAME = "mmmu"
DEFAULT_SOURCE = "vlmevalkit"
FILE = "MMMU_DEV_VAL.tsv"
URL = "https://opencompass.openxlab.space/utils/VLMEval/MMMU_DEV_VAL.tsv"
MD5 = "585e8ad75e73f75dcad265dfd0417d64"
ROW_FIELDS = ("index", "question", "answer", "category")  # and `split` where the TSV has it (DEV_VAL does)
CATEGORIES = ()  # the subjects, from the data
PROTOCOLS = ("official", "vst")
GENERATION = {"official": {"max_new_tokens": 128, "temperature": 0.0}, "vst": VLMEVALKIT_QWEN}  # official: greedy as
# MMMU's configs; the token limit is ours (a letter or a short phrase)
MC_FORMAT = "{}\n\n{}\n\nAnswer with the option's letter from the given choices directly."
OPEN_FORMAT = "{}\n\nAnswer the question using a single word or phrase."
KEY_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
MEDIA_FIELDS = ("image",)

__all__ = ["NAME", "DEFAULT_SOURCE", "GENERATION", "PROTOCOLS", "ROW_FIELDS", "CATEGORIES", "load_rows",
           "build_prompt", "score_item", "aggregate"]


def load_rows(source: str = DEFAULT_SOURCE, revision: str | None = None, limit: int | None = None) -> list[dict]:
    return image_mcq.load_rows(source, FILE, URL, MD5, limit, required=ROW_FIELDS)


def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    check_protocol(sys.modules[__name__], protocol)
    if protocol == "vst":
        return image_mcq.build_prompt(row, "vst")  # images first, the ImageMCQ text right-stripped
    options = row_options(row)
    listed = "".join(f"({letter}) {text}\n" for letter, text in options.items())
    text = MC_FORMAT.format(row["question"], listed) if options else OPEN_FORMAT.format(row["question"])
    images = row["image"] if isinstance(row.get("image"), list) else [row["image"]]
    return Prompt(text=text, images=images)


# -- MMMU's answer extraction (official protocol) -------------------------------------------------------------
def parse_choice(response: str, options: dict[str, str], seed: str) -> tuple[str, bool]:
    """(letter, found): MMMU's `parse_multi_choice_response`; `found` is False when the letter is the random pick."""
    text = str(response)
    for char in ",.!?;:'":
        text = text.strip(char)
    text = f" {text} "
    candidates = [letter for letter in options if f"({letter})" in text]
    bracketed, by_letter = bool(candidates), True
    if not candidates:
        candidates = [letter for letter in options if f" {letter} " in text]
    if not candidates and len(text.split()) > 5:
        candidates = [letter for letter, option in options.items() if option.lower() in text.lower()]
        by_letter = False
    if not candidates:
        return random.Random(seed).choice(sorted(options)), False
    if len(candidates) == 1:
        return candidates[0], True

    def last(letter: str) -> int:
        if not by_letter:
            return text.lower().rfind(options[letter].lower())
        return text.rfind(f"({letter})") if bracketed else text.rfind(f" {letter} ")

    return max(candidates, key=lambda letter: (last(letter), -candidates.index(letter))), True


def _numbers(text: str) -> list[str]:
    with_commas = re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", text)
    scientific = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", text)
    simple = re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", text)
    return with_commas + scientific + simple


def _normalise(value: str) -> list:
    value = value.strip()
    try:
        return [round(float(value.replace(",", "")), 2)]
    except ValueError:
        value = value.lower()
        return [" " + value, value + " "] if len(value) == 1 else [value]


def parse_open(response: str) -> list:
    """MMMU's `parse_open_response`: the shortest tail after a key phrase in each sentence (the last sentence also
    after "="), plus the numbers in them, normalised (floats to 2 decimals, strings lower-cased)."""
    text = str(response).strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", text)
    keys = []
    for index, sentence in enumerate(sentences):
        indicators = KEY_INDICATORS + (("=",) if index == len(sentences) - 1 else ())
        tails = [sentence.split(indicator)[-1].strip() for indicator in indicators if indicator in sentence]
        shortest = min(tails, key=len) if tails else None
        if shortest and shortest not in (":", ",", ".", "!", "?", ";", "'"):
            keys.append(shortest)
    keys = keys or [text]
    predictions = [value for item in keys + [n for key in keys for n in _numbers(key)] for value in _normalise(item)]
    return list(dict.fromkeys(predictions))


def open_is_right(answer, predictions: list) -> bool:
    """MMMU's `eval_open`: a string gold answer inside a string prediction, or a numeric one equal to a number."""
    golds = [g for a in (answer if isinstance(answer, list) else [answer]) for g in _normalise(str(a))]
    for prediction in predictions:
        if isinstance(prediction, str):
            if any(isinstance(g, str) and g in prediction for g in golds):
                return True
        elif prediction in golds:
            return True
    return False


def score_item(row: dict, response: str, protocol: str = "official") -> ItemScore:
    split = str(row.get("split") or "validation")
    category = f"{split}|{row['category']}"
    options = row_options(row)
    if protocol == "official":
        if options:
            letter, found = parse_choice(response, options, seed=str(row["index"]))
            return ItemScore(category=category, score=float(letter == str(row["answer"]).strip()), parsed=letter,
                             unparsed=not found)
        predictions = parse_open(response)
        return ItemScore(category=category, score=float(open_is_right(row["answer"], predictions)),
                         parsed=[str(p) for p in predictions], unparsed=not str(response).strip())
    if options:
        item = image_mcq.score_item(row, response, protocol, circular=False)
        return ItemScore(category=category, score=item.score, parsed=item.parsed, unparsed=item.unparsed)
    answer = str(row["answer"]).strip().lower()
    said = str(response).lower()
    return ItemScore(category=category, score=float(bool(answer) and answer in said),
                     parsed=said.strip() or None, unparsed=not said.strip())


def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    by_subject = defaultdict(list)
    scored = []
    for item in items:
        split, subject = item.category.split("|", 1)
        if split == "validation":
            by_subject[subject].append(item.score)
            scored.append(item.score)
    return Aggregate(overall=percent(scored) if scored else 0.0,
                     categories={subject: percent(scores) for subject, scores in sorted(by_subject.items())})
