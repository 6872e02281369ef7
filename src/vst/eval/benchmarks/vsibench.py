"""VSI-Bench: video spatial QA over ScanNet, ScanNet++ and ARKitScenes walkthroughs (spec/benchmarks.md §2).

Official scoring: vision-x-nyu/thinking-in-space:lmms_eval/tasks/vsibench/utils.py (prompt in `vsibench_doc_to_text`,
scoring in `vsibench_process_results`, report in `vsibench_aggregate_results`). Data: HF `nyu-visionx/VSI-Bench`,
config "full", split "test"; videos `<dataset>/<scene_name>.mp4` come from the dataset's zip files and may not be
redistributed.

Protocols (all share the prompt text):
- "official": the first ' '-separated token of the raw response, trailing '.' removed; MCQ = case-insensitive letter
  match, NA = float(token) scored by MRA over 10 thresholds with `<=`; any parse failure scores 0. Per question_type
  means; rel_direction = mean of easy/medium/hard; overall = mean of the 8 task numbers. No `<think>` stripping.
- "vst": VST's benchmark/eval_vsibench.py (Yangr116/VST): official scoring, system prompt "You are a helpful
  assistant.", video through qwen-vl-utils at fps 4 within total_pixels 8192·28·28, sampled generation (§2.4, §9).
- "lmms_eval": upstream lmms-eval `vsibench`: NA value = the first number anywhere in the text (so "The answer is 3"
  scores). Upstream also reads English number words ("twenty-one"); `first_number` does not.

Where a run holds only part of the benchmark (`limit`), a category is reported only when it has items, and
object_rel_direction averages the difficulty levels present; on the full set this is exactly the official report.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from vst.eval.benchmarks.registry import Aggregate, ItemScore, Prompt
from vst.common.media import VST_VSI, MediaBudget
from vst.common.parsing import first_number, mean_relative_accuracy, parse_float, vsi_first_token
from vst.eval.rows import is_local, load_hub_rows, load_local_rows

NAME = "vsibench"
DEFAULT_SOURCE = "nyu-visionx/VSI-Bench"
HF_CONFIG = "full"
HF_SPLIT = "test"
LOCAL_PATTERNS = ("test.parquet", "test.jsonl", "*.parquet", "*.jsonl")
PROTOCOLS = ("official", "vst", "lmms_eval")
ROW_FIELDS = ("id", "dataset", "scene_name", "question_type", "question", "ground_truth", "options")

MCQ_QUESTION_TYPES = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
    "object_rel_distance",
    "route_planning",
    "obj_appearance_order",
)
NA_QUESTION_TYPES = ("object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation")
REL_DIRECTION = "object_rel_direction"
# Report order of the paper's table: the 4 numeric tasks (MRA), then the 4 multiple-choice tasks (accuracy).
CATEGORIES = (
    "object_counting",
    "object_abs_distance",
    "object_size_estimation",
    "room_size_estimation",
    "object_rel_distance",
    REL_DIRECTION,
    "route_planning",
    "obj_appearance_order",
)

# The official yaml sets pre_prompt "" and the code falls back with `or`, so this sentence is always there.
PRE_PROMPT = "These are frames of a video."
NA_POST_PROMPT = "Please answer the question using a single word or phrase."
MCQ_POST_PROMPT = "Answer with the option's letter from the given choices directly."
SYSTEM_PROMPT = {"official": None, "vst": "You are a helpful assistant.", "lmms_eval": "You are a helpful assistant."}

# How the video becomes frames, per protocol (vst.common.media.MediaBudget; the backend applies it).
# official: the thinking-in-space Qwen2-VL wrapper leaves qwen-vl-utils at its defaults (fps 2).
# vst: eval_vsibench.py, fps 4 within total_pixels 8192·28², min_pixels 16·28².
# lmms_eval: its qwen2_5_vl wrapper keeps 32 frames (linspace over fps-2 frames, not over the raw ones as here) at
# min_pixels 256·28², max_pixels 1,605,632 per frame.
MEDIA_BUDGET = {
    "official": MediaBudget(),
    "vst": VST_VSI,
    "lmms_eval": MediaBudget(video_frames=32, video_min_pixels=256 * 28 * 28, video_max_pixels=1605632),
}
# Sampling: official = the task yaml (greedy, 16 tokens); vst = eval_vsibench.py's vLLM SamplingParams.
GENERATION = {
    "official": {"max_new_tokens": 16, "temperature": 0.0},
    "vst": {"max_new_tokens": 256, "temperature": 0.1, "top_p": 0.001, "repetition_penalty": 1.05},
    "lmms_eval": {"max_new_tokens": 16, "temperature": 0.0},
}

HF_VIDEO_CACHE = "vsibench"
MEDIA_ROOT = "_media_root"  # added by load_rows: the folder video paths are relative to (not a native field)


def load_rows(
    source: str, revision: str | None = None, limit: int | None = None, config: str = HF_CONFIG,
    patterns: tuple[str, ...] = LOCAL_PATTERNS,
) -> list[dict]:
    """Rows from a local folder (*.jsonl / *.parquet beside `<dataset>/<scene_name>.mp4`; `patterns` pick the file)
    or a Hugging Face id (videos then unzipped under $HF_HOME/vsibench, where lmms-eval and VST's script look)."""
    if is_local(source):
        root = Path(source)
        rows = load_local_rows(root, patterns=patterns, media_fields=(), id_field="id", limit=limit)
    else:
        root = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / HF_VIDEO_CACHE
        rows = load_hub_rows(source, configs=(config,), split=HF_SPLIT, media_fields=(), revision=revision, limit=limit)
    for number, row in enumerate(rows):
        missing = [name for name in ROW_FIELDS if name not in row]
        if missing:
            raise ValueError(f"{source}: row {number}: missing field(s) {', '.join(missing)}")
        _question_kind(row)
        row[MEDIA_ROOT] = str(root)
    return rows


def _question_kind(row: dict) -> str:
    question_type = row["question_type"]
    if question_type in MCQ_QUESTION_TYPES:
        return "mcq"
    if question_type in NA_QUESTION_TYPES:
        return "na"
    raise ValueError(f"{NAME} item {row.get('id')}: question_type: unknown {question_type!r}")


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"VSI-Bench: unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")


def video_path(row: dict) -> Path:
    """The item's video, `<media root>/<dataset>/<scene_name>.mp4`; an error names the item and the path."""
    path = Path(row.get(MEDIA_ROOT, ".")) / row["dataset"] / f"{row['scene_name']}.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"{NAME} item {row['id']}: video not found: {path}")
    return path


def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    """The official prompt (same text for every protocol), the item's video path and the protocol's system prompt."""
    _check_protocol(protocol)
    if _question_kind(row) == "na":
        text = PRE_PROMPT + "\n" + row["question"] + "\n" + NA_POST_PROMPT
    else:
        options = "Options:\n" + "\n".join(row["options"])
        text = "\n".join([PRE_PROMPT, row["question"], options, MCQ_POST_PROMPT])
    return Prompt(text=text, video=str(video_path(row)), system=SYSTEM_PROMPT[protocol])


def score_item(row: dict, response: str, protocol: str = "official") -> ItemScore:
    """Score one response; ItemScore.category is the row's question_type (`aggregate` merges the rel_direction
    levels). MCQ `parsed` is the token's letter when it names an option, else None (unparsed)."""
    _check_protocol(protocol)
    response = response or ""
    if _question_kind(row) == "mcq":
        token = vsi_first_token(response)
        letters = {option.split(".", 1)[0].strip().upper() for option in row.get("options") or []}
        known = token.upper() in letters if letters else len(token) == 1 and token.isalpha()
        parsed = token.upper() if known else None
        score = 1.0 if token.lower() == str(row["ground_truth"]).lower() else 0.0
        return ItemScore(category=row["question_type"], score=score, parsed=parsed, unparsed=parsed is None)
    value = first_number(response) if protocol == "lmms_eval" else parse_float(vsi_first_token(response))
    score = mean_relative_accuracy(value, float(row["ground_truth"]))
    return ItemScore(category=row["question_type"], score=score, parsed=value, unparsed=value is None)


def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    """Per question_type means; object_rel_direction = mean over its difficulty levels; overall = mean of tasks."""
    _check_protocol(protocol)
    by_type: dict[str, list[float]] = defaultdict(list)
    for item in items:
        if item.category not in MCQ_QUESTION_TYPES + NA_QUESTION_TYPES:
            raise ValueError(f"{NAME}: unknown question_type {item.category!r}")
        by_type[item.category].append(item.score)
    task = {name: float(np.mean(scores)) for name, scores in by_type.items()}
    levels = [task.pop(name) for name in MCQ_QUESTION_TYPES[:3] if name in task]
    if levels:
        task[REL_DIRECTION] = sum(levels) / len(levels)
    categories = {name: 100.0 * task[name] for name in CATEGORIES if name in task}
    if not categories:
        raise ValueError(f"{NAME}: no items to aggregate")
    return Aggregate(overall=sum(categories.values()) / len(categories), categories=categories)
