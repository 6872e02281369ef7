"""BLINK (val): 1,901 multiple-choice questions over 14 perception subtasks, 1-4 images each (spec/benchmarks.md §4).

Official scoring: zeyofu/BLINK_Benchmark:eval/test_benchmark.py (`load_prompt`, `analyze_answer`) and
eval/evaluate.py (`eval_prediction`). Data: HF `BLINK-Benchmark/BLINK`, one config per subtask, split "val" (test
answers are hidden). Pin `revision`: Relative_Reflectance answers were corrected around 2025-09 (BLINK#13).

Protocols:
- "official": the row's `prompt`, with the disclaimer before it for Forensic_Detection, Jigsaw and Art_Style; images
  in order image_1..image_4. Extraction (`analyze_answer`) on the raw response: exactly "A".."E" -> "(A)".."(E)";
  exactly "(A)".."(E)" kept; else the whitespace tokens that are one of the row's choices "(A)", "(B)", …: a unique
  one in the last paragraph (after the last blank line) wins, else a unique one in the whole response. Upstream asks
  GPT-3.5 to match anything else; here there is no fallback, so such a response is wrong and counted unparsed (" B",
  "B.", "(B).", "b" and "(A) or (B)" all are). Overall = macro mean of the subtask accuracies (evaluate.py).
  The upstream disclaimer is a one-element tuple (a stray comma), so `disclaimer + prompt` raises there; the intended
  string is used.
- "vst": what VST ran (VLMEvalKit `BLINK`, Qwen2VLChat `use_custom_prompt`, §9): the Qwen MCQ prompt built from
  `question` and `choices` (no disclaimer), VLMEvalKit's rule matching (`vlmevalkit_choice`, no LLM judge), and its
  "Overall" = the micro mean over items, which is what VST reported. Subtask accuracies are the same item means.

Categories: the 14 official subtask names, read from `idx` ("val_Multi-view_Reasoning_12") as evaluate.py does,
else from `sub_task`. Rows from a local folder: a Hugging Face snapshot (`<Subtask>/val-*.parquet`), else
`val*.parquet` / `val*.jsonl`, else any .parquet / .jsonl, with image_1..image_4 paths relative to the folder (or
the datasets {bytes, path} struct) and null where absent.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

from vst.eval.benchmarks.registry import GREEDY, VLMEVALKIT_QWEN, Aggregate, ItemScore, Prompt, check_protocol
from vst.common.parsing import percent, vlmevalkit_choice
from vst.eval.prompts import qwen_mcq_prompt
from vst.eval.rows import image_input, is_local, load_hub_rows, load_local_rows

NAME = "blink"
DEFAULT_SOURCE = "BLINK-Benchmark/BLINK"
HF_SPLIT = "val"
PROTOCOLS = ("official", "vst")
# official: the BLINK baselines decode greedily (temperature 0); vst: VLMEvalKit's Qwen2VLChat defaults.
GENERATION = {"official": GREEDY, "vst": VLMEVALKIT_QWEN}
ROW_FIELDS = ("idx", "sub_task", "question", "choices", "answer", "prompt")
MEDIA_FIELDS = ("image_1", "image_2", "image_3", "image_4")
LOCAL_PATTERNS = ("*/val-*.parquet", "val*.parquet", "val*.jsonl", "*.parquet", "*.jsonl")

# Order of evaluate.py's `subtasks`; also the Hugging Face config names.
CATEGORIES = (
    "Visual_Similarity",
    "Counting",
    "Relative_Depth",
    "Jigsaw",
    "Art_Style",
    "Functional_Correspondence",
    "Semantic_Correspondence",
    "Spatial_Relation",
    "Object_Localization",
    "Visual_Correspondence",
    "Multi-view_Reasoning",
    "Relative_Reflectance",
    "Forensic_Detection",
    "IQ_Test",
)
DISCLAIMER_SUBTASKS = ("Forensic_Detection", "Jigsaw", "Art_Style")
DISCLAIMER = (
    "Disclaimer: This is not to make unfair assumptions about the people in the image and you just need to give your "
    "assessment on this question. You don't need to identify the real people. You just need to analyze based on the "
    "information I gave you.\n\n"
)
LETTERS = "ABCDE"
IDX_PATTERN = re.compile(r"^(?:val|test)_(.+)_\d+$")


def _check(protocol: str) -> None:
    check_protocol(sys.modules[__name__], protocol)


def load_rows(source: str, revision: str | None = None, limit: int | None = None) -> list[dict]:
    if is_local(source):
        return load_local_rows(Path(source), patterns=LOCAL_PATTERNS, media_fields=MEDIA_FIELDS, id_field="idx",
                               limit=limit)
    return load_hub_rows(source, configs=CATEGORIES, split=HF_SPLIT, media_fields=MEDIA_FIELDS, revision=revision,
                         limit=limit)


def subtask(row: dict) -> str:
    """The official subtask name: from `idx` as evaluate.py reads it, else `sub_task` with spaces as '_'."""
    match = IDX_PATTERN.match(str(row.get("idx", "")))
    if match and match.group(1) in CATEGORIES:
        return match.group(1)
    return str(row.get("sub_task", "")).replace(" ", "_")


def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    _check(protocol)
    images = [image_input(row[name]) for name in MEDIA_FIELDS if row.get(name) is not None]
    if not images:
        raise ValueError(f"{NAME}: item {row.get('idx')}: the row has no image")
    if protocol == "official":
        text = (DISCLAIMER if subtask(row) in DISCLAIMER_SUBTASKS else "") + row["prompt"]
    else:
        text = qwen_mcq_prompt(row["question"], dict(zip(LETTERS, map(str, row["choices"]))))
    return Prompt(text=text, images=images)


def analyze_answer(response: str, n_choices: int) -> str | None:
    """BLINK's `analyze_answer` without its GPT-3.5 fallback: "(A)".."(E)", or None where upstream would ask GPT."""
    if response in tuple(LETTERS):
        return f"({response})"
    if response in tuple(f"({letter})" for letter in LETTERS):
        return response
    choices = {f"({letter})" for letter in LETTERS[:n_choices]}
    in_last_paragraph = choices & set(response.split("\n\n")[-1].split())
    if len(in_last_paragraph) == 1:
        return in_last_paragraph.pop()
    anywhere = choices & set(response.split())
    return anywhere.pop() if len(anywhere) == 1 else None


def score_item(row: dict, response: str, protocol: str = "official") -> ItemScore:
    _check(protocol)
    response = "" if response is None else str(response)
    truth = row["answer"].strip()  # "(B)"
    if protocol == "official":
        parsed = analyze_answer(response, len(row["choices"]))
        correct = parsed == truth
    else:
        parsed = vlmevalkit_choice(response, dict(zip(LETTERS, map(str, row["choices"]))))
        correct = parsed == truth.strip("()")
    return ItemScore(category=subtask(row), score=float(correct), parsed=parsed, unparsed=parsed is None)


def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    """Subtask accuracies (percent); overall = their macro mean ("official") or the item mean ("vst")."""
    _check(protocol)
    by_subtask = defaultdict(list)
    for item in items:
        by_subtask[item.category].append(item.score)
    categories = {name: percent(scores) for name, scores in by_subtask.items()}
    categories = {name: categories[name] for name in sorted(categories, key=_report_order)}
    if not items:
        overall = 0.0
    elif protocol == "official":
        overall = sum(categories.values()) / len(categories)
    else:
        overall = percent(item.score for item in items)
    return Aggregate(overall=overall, categories=categories)


def _report_order(name: str) -> tuple[int, str]:
    return (CATEGORIES.index(name), "") if name in CATEGORIES else (len(CATEGORIES), name)
