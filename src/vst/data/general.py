"""General reasoning data for the VST-R mixture (spec paper.md §3.1: math, OCR, knowledge): readers for the user's own
JSON / JSONL / parquet files, turned into Samples with a reward spec; a bad item is reported by file, row and field."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from vst.data.sample import Media, Sample, Turn
from vst.scene.types import confined_path

GENERAL_CATEGORIES = ("gr_math", "gr_ocr", "gr_knowledge")
QUESTION_KEYS = ("question", "problem", "prompt", "query")
ANSWER_KEYS = ("answer", "answer_gt", "gt", "ground_truth", "solution")
THOUGHT_KEYS = ("thought", "reasoning", "rationale", "cot", "think")
MODE_REWARDS = {"multi_choices_score": "multiple_choice", "math_score": "math", "relaxed_score": "numeric",
                "vqa_score": "exact", "anls_score": "exact"}  # VST's meta_info.mode -> our reward function
DEFAULT_REWARDS = {"gr_math": "math", "gr_ocr": "exact", "gr_knowledge": "multiple_choice"}


def _records(path: Path) -> Iterator[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
    elif path.suffix == ".jsonl":
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}: line {number}: not valid JSON ({error.msg})") from None
    elif path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error.msg})") from None
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of items")
        yield from data
    else:
        raise ValueError(f"{path}: unsupported file type (expected .json, .jsonl or .parquet)")


def _first(record: dict, keys: tuple[str, ...]) -> Any:
    return next((record[k] for k in keys if record.get(k) not in (None, "")), None)


def _media(value: Any, folder: Path, where: str) -> list[Media]:
    items = value if isinstance(value, list) else [value] if value else []
    media = []
    for item in items:
        if isinstance(item, dict) and item.get("bytes"):
            media.append(Media(item["bytes"], item.get("path") or ""))
            continue
        name = item.get("path") if isinstance(item, dict) else item
        try:
            path = folder / confined_path(str(name))
        except ValueError as error:
            raise ValueError(f"{where}: images: {error}") from None
        if not path.is_file():
            raise ValueError(f"{where}: images: file not found: {path}")
        media.append(Media(path.read_bytes(), str(name)))
    return media


def general_sample(record: dict, category: str, split: str, where: str, folder: Path) -> Sample:
    """One user-provided general reasoning item as a Sample (our rows and released VST rows load unchanged)."""
    if "conversations" in record:
        sample = Sample.from_row(record, where)
        return replace(sample, skill=category, data_source=sample.data_source or category)
    question, answer = _first(record, QUESTION_KEYS), _first(record, ANSWER_KEYS)
    if question is None or answer is None:
        missing = "question" if question is None else "answer"
        raise ValueError(f"{where}: {missing}: missing (accepted keys: {', '.join(QUESTION_KEYS if question is None else ANSWER_KEYS)})")
    media = _media(record.get("images", record.get("image")), folder, where)
    meta = record.get("meta_info") or {}
    if isinstance(meta, str):
        meta = json.loads(meta or "{}")
    modes = meta.get("mode") or []
    fn = next((MODE_REWARDS[m] for m in modes if m in MODE_REWARDS), DEFAULT_REWARDS[category])
    answer = str(answer)
    thought = _first(record, THOUGHT_KEYS)
    if split == "cot":
        if thought is None and "<think>" not in answer:
            raise ValueError(f"{where}: thought: missing (a CoT item needs a reasoning trace; accepted keys: {', '.join(THOUGHT_KEYS)})")
        response = answer if "<think>" in answer else f"<think>{str(thought).strip()}</think>{answer.strip()}"
        final = response.split("</think>")[-1].strip()
    else:
        response = final = answer.strip()
    placeholders = "<|image_pad|>" * len(media) if media and "<image>" not in str(question) and "<|image_pad|>" not in str(question) else ""
    sample = Sample(id=str(record.get("id", "")), conversations=[Turn("human", placeholders + str(question)), Turn("gpt", response)],
                    images=media, type=f"{category}_thought" if split == "cot" else category, data_source=str(record.get("data_source") or category),
                    meta_info={**meta, "source_file": where.split(":")[0]}, skill=category,
                    modality="text" if not media else "single" if len(media) == 1 else "multi",
                    answer={"type": "mc" if fn == "multiple_choice" else "text", "value": final}, reward={"fn": fn})
    return Sample.from_row(sample.to_row(), where)  # normalises <image> placeholders


def read_general(path: str | Path, category: str, split: str) -> tuple[list[Sample], list[str]]:
    """(samples, problems) from a user's JSON / JSONL / parquet file of general reasoning items; a bad item is
    reported by file, row and field and skipped."""
    path = Path(path)
    if category not in GENERAL_CATEGORIES:
        raise ValueError(f"{category}: unknown general category; known: {', '.join(GENERAL_CATEGORIES)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: general reasoning file not found")
    samples, problems = [], []
    for index, record in enumerate(_records(path)):
        where = f"{path}: row {index}"
        try:
            sample = general_sample(record, category, split, where, path.parent)
            samples.append(replace(sample, id=sample.id or f"{category}-{path.stem}-{index:06d}"))
        except (ValueError, KeyError, TypeError) as error:
            problems.append(str(error))
    return samples, problems
