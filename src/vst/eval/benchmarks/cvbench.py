"""CV-Bench: 2,638 single-image multiple-choice questions, 2D (Count, Relation on ADE20K and COCO) and 3D (Depth,
Distance on Omni3D) (spec/benchmarks.md §3).

Official scoring: the Cambrian-1 scripts cambrian-mllm/cambrian:eval/eval/{ade,coco,omni}/*_test.py
(`extract_mcq_answer`, `compute_metrics`); the combination into 2D/3D/overall is the dataset card's formula, confirmed
by the Cambrian maintainers (cambrian#81). Data: HF `nyu-visionx/CV-Bench`, config "default", split "test".

Protocols:
- "official": the row's `prompt` + "\\n" + the Cambrian post-prompt, image first. Extraction: lower-case the response;
  for "answer is", "answer is:", "answer:" in turn keep the text after its last occurrence; strip, strip trailing
  '.' (Omni3D: any of '.:,'), strip one leading '(' run and trailing ')' run; keep the first character if longer. It
  is right when it equals the letter of `answer` ("(C)" -> "c"), or, for Omni3D items only, the correct option's text.
  So "The answer is: (B)" gives ":" and "There are 3" gives "t": both wrong, and counted unparsed (the extracted
  character is no option letter and no Omni3D option text).
- "vst": what VST ran (VLMEvalKit `CV-Bench-2D`/`CV-Bench-3D` with Qwen2VLChat `use_custom_prompt`, §9): the Qwen MCQ
  prompt "Question: …\\nOptions:\\nA. …\\nPlease select the correct answer from the options above." and VLMEvalKit's
  rule matching (`vlmevalkit_choice`, no LLM judge). VLMEvalKit itself never combines 2D and 3D; the same official
  formula is used here (VST's "CV" number is most likely (2D + 3D)/2, §9).

Aggregation (both protocols): acc per source; 2D = (acc_ADE20K + acc_COCO) / 2, 3D = acc_Omni3D, overall =
(2D + 3D) / 2. Categories: the four official task names (item means) plus "2D" and "3D". On a partial run (`limit`)
a part with no items is left out of the means.

Rows from a local folder: `test.parquet` / `test.jsonl` (else any .parquet / .jsonl) in the native schema, with
`image` a path relative to the folder (or the datasets {bytes, path} struct), or, as in the official repo's
`test.jsonl`, no `image` and the path in `filename`.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from vst.eval.benchmarks.registry import GREEDY, VLMEVALKIT_QWEN, Aggregate, ItemScore, Prompt, check_protocol
from vst.common.parsing import percent, vlmevalkit_choice
from vst.eval.prompts import qwen_mcq_prompt
from vst.eval.rows import image_input, is_local, load_hub_rows, load_local_rows

NAME = "cvbench"
DEFAULT_SOURCE = "nyu-visionx/CV-Bench"
HF_CONFIG = "default"
HF_SPLIT = "test"
PROTOCOLS = ("official", "vst")
# official: Cambrian's eval scripts decode greedily (temperature 0); vst: VLMEvalKit's Qwen2VLChat defaults.
GENERATION = {"official": GREEDY, "vst": VLMEVALKIT_QWEN}
ROW_FIELDS = ("idx", "type", "task", "source", "question", "choices", "answer", "prompt")
MEDIA_FIELDS = ("image",)
LOCAL_PATTERNS = ("test.parquet", "test.jsonl", "*.parquet", "*.jsonl")

TASKS = ("Count", "Relation", "Depth", "Distance")
SOURCES_2D = ("ADE20K", "COCO")
SOURCE_3D = "Omni3D"
CATEGORIES = (*TASKS, "2D", "3D", *SOURCES_2D, SOURCE_3D)  # the official script prints the per-source accuracies too

POST_PROMPT = "Answer with the option's letter from the given choices directly."
ANSWER_KEYWORDS = ("answer is", "answer is:", "answer:")
TRAILING = {"ADE20K": ".", "COCO": ".", SOURCE_3D: ".:,"}  # the omni script also strips ':' and ','


@dataclass
class CVBenchItemScore(ItemScore):
    source: str = ""  # ADE20K, COCO or Omni3D: the official means are per source


def _check(protocol: str) -> None:
    check_protocol(sys.modules[__name__], protocol)


def load_rows(source: str, revision: str | None = None, limit: int | None = None) -> list[dict]:
    if is_local(source):
        # The official repo's test.jsonl names each image in `filename` ("img/2D/count/ade20k_10.png") and has no
        # `image` column; the HF parquet has `image`. Either is read.
        rows = load_local_rows(Path(source), patterns=LOCAL_PATTERNS, media_fields=(*MEDIA_FIELDS, "filename"),
                               id_field="idx", limit=limit)
        for row in rows:
            if row.get("image") is None and row.get("filename"):
                row["image"] = row["filename"]
        return rows
    return load_hub_rows(source, configs=(HF_CONFIG,), split=HF_SPLIT, media_fields=MEDIA_FIELDS, revision=revision,
                         limit=limit)


def options(row: dict) -> dict[str, str]:
    """{"A": first choice, …}: the option letters of the row's `choices`."""
    return {letter: str(choice) for letter, choice in zip("ABCDEFGH", row["choices"])}


def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    _check(protocol)
    if protocol == "official":
        text = row["prompt"] + "\n" + POST_PROMPT
    else:
        text = qwen_mcq_prompt(row["question"], options(row))
    if row.get("image") is None:
        raise ValueError(f"{NAME}: item {row.get('idx')}: the row has no image")
    return Prompt(text=text, images=[image_input(row["image"])])


def extract_answer(response: str, source: str) -> str:
    """Cambrian's `extract_mcq_answer`: at most one lower-case character (possibly "")."""
    text = (response or "").lower().strip()
    for keyword in ANSWER_KEYWORDS:
        if keyword in text:
            text = text.split(keyword)[-1]
    text = text.strip().rstrip(TRAILING.get(source, ".")).lstrip("(").rstrip(")")
    return text[0] if len(text) > 1 else text


def score_item(row: dict, response: str, protocol: str = "official") -> CVBenchItemScore:
    _check(protocol)
    response = "" if response is None else str(response)
    letters = "".join(options(row))
    truth = row["answer"].strip().strip("()")  # "(C)" -> "C"
    if protocol == "official":
        extracted = extract_answer(response, row["source"])
        correct_text = str(row["choices"][letters.index(truth)])
        correct = extracted == truth.lower() or (row["source"] == SOURCE_3D and extracted == correct_text)
        parsed = extracted.upper() if extracted and extracted in letters.lower() else (truth if correct else None)
    else:
        parsed = vlmevalkit_choice(response, options(row))
        correct = parsed == truth
    return CVBenchItemScore(
        category=row["task"], score=float(correct), parsed=parsed, unparsed=parsed is None, source=row["source"]
    )



def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    _check(protocol)
    by_task, by_source = defaultdict(list), defaultdict(list)
    for item in items:
        by_task[item.category].append(item.score)
        by_source[getattr(item, "source", "")].append(item.score)
    parts = {}
    sources_2d = [percent(by_source[name]) for name in SOURCES_2D if by_source[name]]
    if sources_2d:
        parts["2D"] = sum(sources_2d) / len(sources_2d)
    if by_source[SOURCE_3D]:
        parts["3D"] = percent(by_source[SOURCE_3D])
    categories = {name: percent(by_task[name]) for name in TASKS if by_task[name]}
    sources = {name: percent(by_source[name]) for name in (*SOURCES_2D, SOURCE_3D) if by_source[name]}
    overall = sum(parts.values()) / len(parts) if parts else 0.0
    return Aggregate(overall=overall, categories={**categories, **parts, **sources})
