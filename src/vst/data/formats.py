"""Other layouts, each a to/from pair: LLaVA-style JSON (+ image files) and the verl / EasyR1 RL parquet.

LLaVA: a JSON list of `{"id", "image": path | [paths] | "video": path, "conversations": [{"from", "value"}]}` with
`<image>` / `<video>` placeholders, media written beside it under `media/`.
verl / EasyR1: one row per prompt with `data_source`, `prompt` (chat messages), `images` ([{bytes}]),
`ability`, `reward_model` {"style": "rule", "ground_truth"}, `extra_info`; EasyR1's default keys `problem`,
`answer` and `images` are filled too, so either trainer reads the file without a key mapping.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pyarrow as pa

from vst.data.sample import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, Media, Sample, Turn, normalise_placeholders
from vst.data.shards import write_table
from vst.scene.types import atomic_write_text, confined_path


def to_llava(samples: Iterable[Sample], out: str | Path) -> Path:
    """Write `out/data.json` and `out/media/*`; returns the JSON path."""
    out = Path(out)
    (out / "media").mkdir(parents=True, exist_ok=True)
    records = []
    for sample in samples:
        paths = []
        for index, media in enumerate(sample.images):
            suffix = ".mp4" if sample.modality == "video" else ".jpg"
            relative = f"media/{sample.id}-{index}{suffix}"
            (out / relative).write_bytes(media.bytes)
            paths.append(relative)
        record = {"id": sample.id, "conversations": [{"from": t.role, "value": t.value.replace(IMAGE_PLACEHOLDER, "<image>").replace(VIDEO_PLACEHOLDER, "<video>")} for t in sample.conversations]}
        if sample.modality == "video":
            record["video"] = paths[0]
        elif paths:
            record["image"] = paths[0] if len(paths) == 1 else paths
        record.update({"type": sample.type, "skill": sample.skill, "answer": sample.answer, "reward": sample.reward, "meta_info": sample.meta_info})
        records.append(record)
    path = out / "data.json"
    atomic_write_text(path, json.dumps(records, indent=1) + "\n")
    return path


def from_llava(path: str | Path) -> list[Sample]:
    """Read LLaVA-style JSON (media paths relative to the JSON file); errors name the record and field."""
    path = Path(path)
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from None
    samples = []
    for index, record in enumerate(records):
        where = f"{path}: [{index}]"
        if "conversations" not in record:
            raise ValueError(f"{where}.conversations: missing field")
        media_paths = record.get("video") or record.get("image") or []
        media_paths = [media_paths] if isinstance(media_paths, str) else media_paths
        images = []
        for media_path in media_paths:
            try:
                file = path.parent / confined_path(str(media_path))
            except ValueError as error:
                raise ValueError(f"{where}.image: {error}") from None
            if not file.is_file():
                raise FileNotFoundError(f"{where}.image: file not found: {file}")
            images.append(Media(file.read_bytes(), media_path))
        modality = "video" if "video" in record else ("multi" if len(images) > 1 else ("single" if images else "text"))
        samples.append(Sample(
            id=str(record.get("id", index)), conversations=[Turn(t["from"], normalise_placeholders(t["value"])) for t in record["conversations"]],
            images=images, type=record.get("type", "video" if modality == "video" else "image"), data_source=record.get("data_source", path.stem),
            meta_info=record.get("meta_info", {}), skill=record.get("skill", ""), modality=modality,
            answer=record.get("answer", {}), reward=record.get("reward", {}),
        ))
    return samples


def to_verl(samples: Iterable[Sample], path: str | Path) -> int:
    """Rule-checkable samples (those with a reward function) as a verl / EasyR1 RL parquet; returns rows written."""
    rows = []
    for index, sample in enumerate(samples):
        if not sample.reward.get("fn"):
            continue
        prompt = sample.question.replace(IMAGE_PLACEHOLDER, "<image>").replace(VIDEO_PLACEHOLDER, "<video>")
        ground_truth = json.dumps(sample.answer, sort_keys=True)
        rows.append({
            "data_source": sample.data_source, "prompt": [{"role": "user", "content": prompt}],
            "images": [{"bytes": m.bytes} for m in sample.images], "ability": sample.skill,
            "reward_model": {"style": "rule", "ground_truth": ground_truth},
            "extra_info": {"index": index, "id": sample.id, "reward": json.dumps(sample.reward, sort_keys=True), "modality": sample.modality},
            "problem": prompt, "answer": ground_truth,
        })
    return write_table(path, pa.Table.from_pylist(rows))


def from_verl(path: str | Path) -> list[Sample]:
    """Read a file written by `to_verl` back into Samples (answer and reward restored; no gpt turn)."""
    import pyarrow.parquet as pq

    samples = []
    for row in pq.read_table(path).to_pylist():
        info = row["extra_info"]
        images = [Media(m["bytes"], "") for m in row["images"]]
        modality = info.get("modality", "single")
        samples.append(Sample(
            id=info["id"], conversations=[Turn("human", normalise_placeholders(row["prompt"][0]["content"]))], images=images,
            data_source=row["data_source"], skill=row["ability"], modality=modality,
            answer=json.loads(row["reward_model"]["ground_truth"]), reward=json.loads(info["reward"]),
        ))
    return samples
