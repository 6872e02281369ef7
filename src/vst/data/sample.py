"""The Sample contract: one training/eval record = one parquet row in VST's schema plus vst's columns.

VST columns (spec paper.md §8): `id`, `data_source`, `type`, `conversations[{from, value}]`,
`images[{bytes, path}]` (a video is the mp4's bytes in `images[0]`), `meta_info` (a JSON string).
vst adds `skill`, `modality` (single | multi | video), `answer` and `reward` (JSON strings).
Released VST rows (no vst columns) load through the same `from_row`. Placeholders in text: `<|image_pad|>`
/ `<|video_pad|>` (VST); `<image>` / `<video>` (LLaVA) are accepted and normalised on read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

IMAGE_PLACEHOLDER = "<|image_pad|>"
VIDEO_PLACEHOLDER = "<|video_pad|>"
LEGACY_PLACEHOLDERS = {"<image>": IMAGE_PLACEHOLDER, "<video>": VIDEO_PLACEHOLDER}
MODALITIES = ("single", "multi", "video", "text")
# The system prompts of the two answer formats (VST's, spec paper.md §3.3): direct answers and `<think>` traces.
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
THINKING_SYSTEM_PROMPT = (
    "You are a helpful assistant. You should first think about the reasoning process in the mind and then provide "
    "the user with the answer. The reasoning process is enclosed within <think> </think> tags, i.e. <think> "
    "reasoning process here </think> answer here."
)
ANSWER_TYPES = ("mc", "yesno", "number", "boxes3d", "order", "text", "map", "points")


@dataclass
class Turn:
    role: str  # "human" | "gpt" (VST's `from`)
    value: str


@dataclass
class Media:
    bytes: bytes | None
    path: str = ""


@dataclass
class Sample:
    id: str
    conversations: list[Turn]
    images: list[Media] = field(default_factory=list)
    type: str = "image"
    data_source: str = ""
    meta_info: dict[str, Any] = field(default_factory=dict)
    skill: str = ""
    modality: str = "single"
    answer: dict[str, Any] = field(default_factory=dict)  # {type, value, options?, unit?}
    reward: dict[str, Any] = field(default_factory=dict)  # {fn, kwargs?}

    @property
    def question(self) -> str:
        return next(t.value for t in self.conversations if t.role == "human")

    @property
    def response(self) -> str:
        return next(t.value for t in self.conversations if t.role == "gpt")

    def to_row(self) -> dict[str, Any]:
        """The parquet row: VST's columns, JSON strings for the structured vst columns."""
        return {
            "id": self.id,
            "data_source": self.data_source,
            "type": self.type,
            "conversations": [{"from": t.role, "value": t.value} for t in self.conversations],
            "images": [{"bytes": m.bytes, "path": m.path} for m in self.images],
            "meta_info": json.dumps(self.meta_info, sort_keys=True),
            "skill": self.skill,
            "modality": self.modality,
            "answer": json.dumps(self.answer, sort_keys=True),
            "reward": json.dumps(self.reward, sort_keys=True),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any], source_name: str = "row") -> Sample:
        """Read one of our rows or a released VST row (`vst_500k` parquet); errors name the field."""
        try:
            turns = [Turn(t["from"], normalise_placeholders(t["value"])) for t in row["conversations"]]
        except (KeyError, TypeError) as error:
            raise ValueError(f"{source_name}: conversations: expected a list of {{from, value}} ({error})") from None
        images = [Media(m.get("bytes"), m.get("path") or "") for m in (row.get("images") or [])]
        meta = _json_field(row.get("meta_info"), source_name, "meta_info", default={})
        sample_type = row.get("type") or "image"
        modality = row.get("modality") or _guess_modality(sample_type, turns, images)
        return cls(
            id=str(row.get("id", "")),
            conversations=turns,
            images=images,
            type=sample_type,
            data_source=row.get("data_source") or "",
            meta_info=meta if isinstance(meta, dict) else {"meta_info": meta},
            skill=row.get("skill") or sample_type,
            modality=modality,
            answer=_json_field(row.get("answer"), source_name, "answer", default={}),
            reward=_json_field(row.get("reward"), source_name, "reward", default={}),
        )


def normalise_placeholders(text: str) -> str:
    for legacy, placeholder in LEGACY_PLACEHOLDERS.items():
        text = text.replace(legacy, placeholder)
    return text


def _json_field(value: Any, source_name: str, name: str, default: Any) -> Any:
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source_name}: {name}: not valid JSON ({error.msg})") from None


def _guess_modality(sample_type: str, turns: list[Turn], images: list[Media]) -> str:
    text = " ".join(t.value for t in turns)
    if sample_type == "video" or VIDEO_PLACEHOLDER in text:
        return "video"
    if sample_type == "text" or not images:
        return "text"
    return "multi" if len(images) > 1 else "single"
