"""MMSI-Bench: 1,000 multi-image spatial-reasoning MCQs (4 options, written inline in `question`) over real scenes
(spec/benchmarks.md §5).

Official scoring: the MMSI repo's VLMEvalKit dataset InternRobotics/MMSI-Bench:vlmeval/dataset/mmsi_bench.py
(`MMSIBenchDataset.build_prompt`, `.evaluate`, `.extract_single_choice_with_word_boundary`), the class VST also ran.
Data: HF `RunsenXu/MMSI-Bench`, split "test": `id, images (list of encoded images), question_type, question, answer,
thought`. The README's licence is CC BY-NC 4.0 (a mirror card says CC-BY-4.0): ship no real rows.

Protocols:
- "official" (the paper's number): all images, then "{question}\\nAnswer with the option's letter from the given
  choices directly. Enclose the option's letter within ``.". Extraction on the raw response: the content of the first
  ``…`` if any, then of the first `…` within it if any, then the first case-sensitive capital A-D standing alone and
  not followed by whitespace + a letter (`\\b[A-D]\\b(?!\\s[a-zA-Z])`): "A bike" is not an answer, nor is "B is
  correct" or "B\\nbecause" (\\s matches the newline); "b" is not a letter. No match scores 0. The README's extra
  `{…}` step is not in the repo code and is not applied; `<think>` blocks are not stripped. Overall and categories
  are item means.
- "vst": VST's VLMEvalKit run (§9): Qwen2VLChat `use_custom_prompt` replaces the dataset prompt with the Qwen MCQ
  prompt, which adds "Options:" and its instruction only for option columns A-D; MMSI rows have none, so the model
  sees "Question: {question}" and no post-prompt. Scored as "official" (the fork's `evaluate`).
- "circular": CircularEval as on the OpenCompass spatial leaderboard: each item asked 4 times with its options rotated
  (ABCD, BCDA, CDAB, DABC; `expand_rows`), the official prompt and extraction, and an item right only if all its
  rotations are. Rotations are rebuilt from the inline "Options: A: …, B: …" text; VLMEvalKit's `MMSIBench_circular`
  TSV ships its own rotations with option columns and its generic matcher, so numbers may differ.

Categories: the 11 official `question_type` names (en dash, as in the data; a hyphen is read as an en dash).
Rows from a local folder: *.parquet / *.jsonl in the HF schema with `images` a list of paths relative to the folder.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

from vst.eval.benchmarks.registry import VLMEVALKIT_QWEN, Aggregate, ItemScore, Prompt, check_protocol
from vst.eval.circular import merge_groups
from vst.common.parsing import percent
from vst.eval.prompts import qwen_mcq_prompt, row_options
from vst.eval.rows import image_input, is_local, load_hub_rows, load_local_rows

NAME = "mmsi"
DEFAULT_SOURCE = "RunsenXu/MMSI-Bench"
HF_SPLIT = "test"
PROTOCOLS = ("official", "vst", "circular")
# official: greedy with room for reasoning before the backticked answer (lmms-eval's 2,048 tokens; the paper states
# no limit); vst and circular: VLMEvalKit's Qwen2VLChat defaults.
GENERATION = {"official": {"max_new_tokens": 2048, "temperature": 0.0}, "vst": VLMEVALKIT_QWEN, "circular": VLMEVALKIT_QWEN}
ROW_FIELDS = ("id", "question_type", "question", "answer")
MEDIA_FIELDS = ("images",)
LOCAL_PATTERNS = ("*.parquet", "*.jsonl")

POST_PROMPT = "Answer with the option's letter from the given choices directly. Enclose the option's letter within ``."
DOUBLE_BACKTICKS = re.compile(r"``([^`]*)``")
BACKTICKS = re.compile(r"`([^`]*)`")
LETTER = re.compile(r"\b[A-D]\b(?!\s[a-zA-Z])")
OPTION_LABEL = re.compile(r"(?:^|,\s*)([A-D]):\s*")
OPTIONS_HEADER = "Options:"

CATEGORIES = (
    "Positional Relationship (Cam.–Cam.)",
    "Positional Relationship (Obj.–Obj.)",
    "Positional Relationship (Reg.–Reg.)",
    "Positional Relationship (Cam.–Obj.)",
    "Positional Relationship (Obj.–Reg.)",
    "Positional Relationship (Cam.–Reg.)",
    "Attribute (Meas.)",
    "Attribute (Appr.)",
    "Motion (Cam.)",
    "Motion (Obj.)",
    "MSR",
)


def _check(protocol: str) -> None:
    check_protocol(sys.modules[__name__], protocol)


def load_rows(source: str, revision: str | None = None, limit: int | None = None) -> list[dict]:
    if is_local(source):
        folder = Path(source)
        return load_local_rows(folder, patterns=LOCAL_PATTERNS, media_fields=MEDIA_FIELDS, id_field="id", limit=limit)
    rows = load_hub_rows(source, configs=(None,), split=HF_SPLIT, media_fields=(), revision=revision, limit=limit)
    return [{**row, "images": [image_input(image) for image in row.get("images") or []]} for row in rows]


def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    _check(protocol)
    images = [image_input(image) for image in row.get("images") or []]
    if not images:
        raise ValueError(f"mmsi: item {row.get('id')}: the row has no images (rows need `images`: paths or bytes)")
    if protocol == "vst":
        return Prompt(text=qwen_mcq_prompt(row["question"], row_options(row)), images=images)
    return Prompt(text=f"{row['question']}\n{POST_PROMPT}", images=images)


def extract_letter(response: str) -> str | None:
    """The official extraction: backtick contents, then the first standalone A-D not followed by " word"."""
    text = str(response or "")
    for pattern in (DOUBLE_BACKTICKS, BACKTICKS):
        match = pattern.search(text)
        if match:
            text = match.group(1)
    match = LETTER.search(text)
    return match.group() if match else None


def category_of(row: dict) -> str:
    return str(row["question_type"]).replace(".-", ".–")


def score_item(row: dict, response: str, protocol: str = "official") -> ItemScore:
    _check(protocol)
    letter = extract_letter(response)
    truth = str(row["answer"]).replace("\n", " ").strip().lower()
    return ItemScore(
        category=category_of(row),
        score=float(letter is not None and letter.lower() == truth),
        parsed=letter,
        unparsed=letter is None,
        group=str(row["id"]) if protocol == "circular" else None,
    )



def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    """Item means ("circular": means over items whose rotations are all right), overall and per question_type."""
    _check(protocol)
    questions = merge_groups(items)
    by_category = defaultdict(list)
    for question in questions:
        by_category[question.category].append(question.score)
    order = [*CATEGORIES, *sorted(set(by_category) - set(CATEGORIES))]
    categories = {name: percent(by_category[name]) for name in order if by_category.get(name)}
    overall = percent([question.score for question in questions]) if questions else 0.0
    return Aggregate(overall=overall, categories=categories)


def split_options(question: str) -> tuple[str, list[str]]:
    """(text up to and including "Options:", [option texts in A-D order]) of an inline-options question."""
    head, header, tail = question.rpartition(OPTIONS_HEADER)
    parts = OPTION_LABEL.split(tail.strip()) if header else []
    letters, texts = parts[1::2], parts[2::2]
    if not header or parts[0] or letters != list("ABCD"[: len(letters)]) or len(letters) < 2:
        raise ValueError(f"cannot read the options of {question!r}: expected '{OPTIONS_HEADER} A: …, B: …'")
    return head + header, [text.strip() for text in texts]


def rotate(row: dict, shift: int) -> dict:
    """The row with its options rotated by `shift` (1: BCDA): new option i = old option i + shift, answer relabelled."""
    head, texts = split_options(row["question"])
    count = len(texts)
    rotated = [texts[(index + shift) % count] for index in range(count)]
    options = ", ".join(f"{'ABCD'[index]}: {text}" for index, text in enumerate(rotated))
    answer = "ABCD"[("ABCD".index(str(row["answer"]).strip().upper()) - shift) % count]
    return {**row, "question": f"{head} {options}", "answer": answer, "circular_shift": shift}


def expand_rows(rows: list[dict], protocol: str = "official") -> list[dict]:
    """The rows a protocol asks: for "circular" every row's rotations (4 per item; errors name the item), else the
    rows themselves. `load_rows` gives base rows; whoever builds prompts for "circular" expands them first."""
    _check(protocol)
    if protocol != "circular":
        return rows
    expanded = []
    for row in rows:
        try:
            expanded.extend(rotate(row, shift) for shift in range(len(split_options(row["question"])[1])))
        except ValueError as error:
            raise ValueError(f"mmsi: item {row.get('id')}: {error}") from None
    return expanded
