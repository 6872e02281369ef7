"""Shared pieces of the video skills (VSI-Bench style; spec benchmarks.md §2.2, data.md §1.6).

A video question is asked about the scene's walk-through video (frames of sequence "video", ordered by timestamp)
sent as one mp4 at the scene's fps. Prompts follow VSI-Bench's official wording so training matches evaluation:
"These are frames of a video.\\n{question}\\n" and then either the numeric instruction below or the multiple-choice
Options block of `choices.Choice.prompt`, whose instruction line is VSI's own.

An object is *seen in the video* when it covers at least `ctx.min_pixels(frame)` pixels in at least one video
frame. Video questions refer to objects by category name only, so a referent must also be the only one of its
category in the scene (`ctx.unique_in_scene`, spec data.md §1.9).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vst.data.choices import Choice
from vst.data.context import SceneContext
from vst.data.sample import Media, Sample
from vst.scene.geometry import Box, as_box
from vst.scene.types import Frame, ObjectInstance
from vst.scene.video import VIDEO_SEQUENCE, sequence_fps

PRE_PROMPT = "These are frames of a video."
NUMERIC_POST_PROMPT = "Please answer the question using a single word or phrase."
VIDEO_TYPE = "video"  # VST's `type` for every video sample
MRA_REWARD = {"fn": "mra"}


def video_frames(ctx: SceneContext) -> list[Frame]:
    """The frames of sequence exactly "video" that have images, by timestamp (empty when the scene has no video)."""
    return [frame for frame in ctx.scene.sequences().get(VIDEO_SEQUENCE, []) if frame.image_path]


def video_fps(ctx: SceneContext, frames: list[Frame]) -> float:
    """Frames per second of the video: `Scene.fps` when set, else the median timestamp step's inverse."""
    return sequence_fps(ctx.scene, frames)


def video_media(ctx: SceneContext, frames: list[Frame]) -> Media:
    """The video as one mp4 (cached by the context, so every question of a scene shares the same bytes)."""
    return ctx.video_media(frames, video_fps(ctx, frames))


def seen_margin_px(ctx: SceneContext, frames: list[Frame], obj: ObjectInstance) -> int:
    """Pixels `obj` covers above the frame's `ctx.min_pixels` in its best frame: >= 0 seen, < 0 never seen enough."""
    margins = [_pixels(frame, obj) - ctx.min_pixels(frame) for frame in frames]
    return max(margins, default=-1)


def _pixels(frame: Frame, obj: ObjectInstance) -> int:
    seen = frame.visibility.get(obj.instance_id)
    return 0 if seen is None else seen.pixels


def seen_in_video(ctx: SceneContext, frames: list[Frame], obj: ObjectInstance) -> bool:
    """Whether `obj` covers at least `ctx.min_pixels(frame)` pixels in at least one of `frames`."""
    return seen_margin_px(ctx, frames, obj) >= 0


def video_referents(ctx: SceneContext, frames: list[Frame]) -> list[ObjectInstance]:
    """Objects a video question may name: unique in the scene and seen in the video, in scene order."""
    return [obj for obj in ctx.objects if ctx.unique_in_scene(obj) and seen_in_video(ctx, frames, obj)]


def object_name(obj: ObjectInstance) -> str:
    return category_name(obj.category)


def category_name(category: str) -> str:
    return category.replace("_", " ")


def world_box(obj: ObjectInstance) -> Box:
    """The object's oriented box as a geometry `Box` (world frame, metres)."""
    return as_box((obj.box.center, obj.box.size, obj.box.rotation))


def interleave(streams: list[Iterator[Sample]], rng: np.random.Generator) -> Iterator[Sample]:
    """Samples from randomly chosen streams until all run dry, so every question form shows up early."""
    live = list(streams)
    while live:
        index = int(rng.integers(len(live)))
        sample = next(live[index], None)
        if sample is None:
            live.pop(index)
        else:
            yield sample


def numeric_prompt(question: str) -> str:
    """VSI-Bench's prompt for a numeric question (the video placeholder is added by `ctx.sample`)."""
    return f"{PRE_PROMPT}\n{question}\n{NUMERIC_POST_PROMPT}"


def choice_prompt(question: str, choice: Choice) -> str:
    """VSI-Bench's prompt for a multiple-choice question: pre-prompt, question, Options block, instruction."""
    return f"{PRE_PROMPT}\n{choice.prompt(question)}"


def video_sample(ctx: SceneContext, skill: str, frames: list[Frame], prompt: str, answer_text: str, answer: dict, reward: dict,
                 meta: dict) -> Sample:
    """A video Sample: the mp4 as the only medium, modality and type "video", the frame ids and fps in meta."""
    meta = {"frame_ids": [frame.frame_id for frame in frames], "video_fps": video_fps(ctx, frames), **meta}
    return ctx.sample(skill, prompt, answer_text, answer, reward, [video_media(ctx, frames)], meta, "video", VIDEO_TYPE)


def numeric_sample(ctx: SceneContext, skill: str, frames: list[Frame], question: str, value: float | int, unit: str | None,
                   meta: dict) -> Sample:
    """A numeric video question scored by VSI's mean relative accuracy; `value` is already rounded for the answer."""
    answer = {"type": "number", "value": value, **({"unit": unit} if unit else {})}
    return video_sample(ctx, skill, frames, numeric_prompt(question), str(value), answer, MRA_REWARD, meta)


def choice_sample(ctx: SceneContext, skill: str, frames: list[Frame], question: str, choice: Choice, meta: dict) -> Sample:
    """A multiple-choice video question answered by the bare letter."""
    return video_sample(ctx, skill, frames, choice_prompt(question, choice), choice.letter, choice.answer,
                        {"fn": "multiple_choice"}, meta)
