"""The one place where a Sample or chat messages become model inputs; train, eval and infer all call this module.

Flow: `sample_to_messages` (Sample -> Qwen chat messages, media inline) -> `encode_for_training` (right padding,
labels on assistant turns only) or `encode_for_generation` (left padding, generation prompt). Media are resized here,
by `Budgets`, and handed to the Hugging Face processor with its own resizing and frame sampling switched off, so the
token count of every image and video is decided in one place.

Follows VST's `vst/preprocess.py:convert_llava2qwen` (Yangr116/VST) and spec paper.md §2.5, §3.3:
- the system prompt is the thinking prompt for samples whose `type` contains "thought", else the default;
- text between placeholders is stripped and empty pieces dropped, so `<|image_pad|>\\nQ` renders as
  `<|vision_start|><|image_pad|><|vision_end|>Q`, as in VST;
- images and video frames are resized with qwen-vl-utils' `smart_resize` (bicubic); videos are decoded with PyAV
  (`vst.common.media`) and sampled at `Budgets.video_fps`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image

from vst.common.media import (frame_indices, open_image, read_frames, read_video_header, read_video_info,
                              smart_resize)
from vst.data.sample import (DEFAULT_SYSTEM_PROMPT, IMAGE_PLACEHOLDER, THINKING_SYSTEM_PROMPT, VIDEO_PLACEHOLDER,
                             Sample)

IGNORE_INDEX = -100
ROLES = {"human": "user", "gpt": "assistant"}
FRAME_FACTOR = 2  # Qwen2.5-VL's temporal patch: two frames share one grid of tokens
VIDEO_MAX_FRAME_PIXELS = 768 * 28 * 28  # qwen-vl-utils' per-frame cap
_PLACEHOLDER_SPLIT = re.compile(f"({re.escape(IMAGE_PLACEHOLDER)}|{re.escape(VIDEO_PLACEHOLDER)})")


@dataclass(frozen=True)
class Budgets:
    """How many pixels (hence visual tokens) each image and video may cost; defaults are VST's SFT settings.

    One visual token is 28 x 28 pixels (patch 14, merge 2). Rules (spec paper.md §2.5):
    - one image: resized into [image_min_pixels, image_max_pixels];
    - n > 1 images: each gets max_pixels = max(total_pixels / n, 1.05 * video_min_pixels). As in VST this replaces
      image_max_pixels, it does not clamp to it;
    - video: sampled at video_fps (at least 4 frames, an even count); when that exceeds max_frames =
      total_pixels * 2 // int(1.05 * video_min_pixels), exactly max_frames frames are spread over the video. All
      frames share one size with max_pixels = max(min(768 * 28², total_pixels / frames * 2), 1.05 * video_min_pixels).
    total_pixels defaults to int(max_seq_len * 28² * 0.8), VST's video budget.
    """

    image_min_pixels: int = 56 * 56
    image_max_pixels: int = 4096 * 28 * 28
    max_seq_len: int = 16384
    total_pixels: int | None = None
    video_min_pixels: int = 128 * 28 * 28
    video_fps: float = 2.0
    video_max_frames: int | None = None

    @property
    def pixel_budget(self) -> int:
        return self.total_pixels if self.total_pixels is not None else int(self.max_seq_len * 28 * 28 * 0.8)

    def image_max_pixels_for(self, n_images: int) -> int:
        """Per-image max pixels in a sample that holds `n_images` images."""
        if n_images <= 1:
            return self.image_max_pixels
        return int(max(self.pixel_budget / n_images, int(self.video_min_pixels * 1.05)))

    @property
    def max_frames(self) -> int:
        if self.video_max_frames is not None:
            return self.video_max_frames
        return self.pixel_budget * FRAME_FACTOR // int(self.video_min_pixels * 1.05)


# -- Sample -> messages ----------------------------------------------------------------------------------------------
def system_prompt_for(sample: Sample) -> str:
    return THINKING_SYSTEM_PROMPT if "thought" in sample.type else DEFAULT_SYSTEM_PROMPT


def sample_to_messages(sample: Sample, system_prompt: str | None = None) -> list[dict]:
    """Qwen chat messages of a Sample: system, then its turns; media (bytes) inline in placeholder order.

    Content is always a list of items: `{"type": "text", "text"}`, `{"type": "image", "image": bytes}` or
    `{"type": "video", "video": mp4 bytes}`. A first human turn with media but no placeholder gets one placeholder per
    medium in front (VST does the same for legacy rows).
    """
    media = [m.bytes if m.bytes is not None else m.path for m in sample.images]
    turns = [(ROLES.get(t.role), t.value) for t in sample.conversations]
    if sample.modality == "text":
        media = []
    placeholders = sum(value.count(IMAGE_PLACEHOLDER) + value.count(VIDEO_PLACEHOLDER) for _, value in turns)
    if media and placeholders == 0 and turns and turns[0][0] == "user":
        flag = VIDEO_PLACEHOLDER if sample.modality == "video" or "video" in sample.type else IMAGE_PLACEHOLDER
        turns[0] = ("user", flag * len(media) + turns[0][1])
        placeholders = len(media)
    if placeholders != len(media):
        raise ValueError(f"sample {sample.id}: {placeholders} media placeholders but {len(media)} images/videos")
    messages = [{"role": "system", "content": [{"type": "text", "text": system_prompt or system_prompt_for(sample)}]}]
    remaining = iter(media)
    for role, value in turns:
        if role is None:
            raise ValueError(f"sample {sample.id}: conversation role must be 'human' or 'gpt'")
        if role == "assistant":
            messages.append({"role": role, "content": [{"type": "text", "text": value}]})
            continue
        content = []
        for piece in _PLACEHOLDER_SPLIT.split(value):
            if piece == IMAGE_PLACEHOLDER:
                content.append({"type": "image", "image": next(remaining)})
            elif piece == VIDEO_PLACEHOLDER:
                content.append({"type": "video", "video": next(remaining)})
            elif piece.strip():
                content.append({"type": "text", "text": piece.strip()})
        messages.append({"role": role, "content": content})
    return messages


def prompt_messages(sample: Sample, system_prompt: str | None = None) -> list[dict]:
    """The messages of a Sample up to (not including) its last assistant turn: what a model is asked to continue."""
    messages = sample_to_messages(sample, system_prompt)
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()
    return messages


# -- media -----------------------------------------------------------------------------------------------------------
def _is_image(item: dict) -> bool:
    """Same test as Qwen's chat template, so media and rendered placeholders always line up."""
    return item.get("type") == "image" or "image" in item or "image_url" in item


def _is_video(item: dict) -> bool:
    return not _is_image(item) and (item.get("type") == "video" or "video" in item)


def _media_items(messages: list[dict]) -> list[dict]:
    return [item for message in messages if not isinstance(message["content"], str) for item in message["content"]
            if _is_image(item) or _is_video(item)]


def load_image(image: Any, min_pixels: int, max_pixels: int, factor: int = 28) -> Image.Image:
    """RGB image (bytes, path, PIL or `{bytes, path}`) resized bicubic to sides that are multiples of `factor`."""
    image = open_image(image)
    height, width = smart_resize(image.height, image.width, factor=factor, min_pixels=min_pixels,
                                 max_pixels=max_pixels)
    return image if image.size == (width, height) else image.resize((width, height), Image.Resampling.BICUBIC)


def _media_source(item: dict, kind: str) -> Any:
    source = item.get(kind, item.get("image_url")) if kind == "image" else item.get("video")
    if isinstance(source, dict) and "url" in source:
        source = source["url"]
    if source is None:
        raise ValueError(f"a {kind} content item carries no {kind} (expected bytes, a path or a PIL image): {item}")
    return source


def _frame_image(frame: Any) -> Image.Image:
    """One frame of a frame-list video (PIL, array, bytes or path) as a PIL image."""
    return Image.fromarray(frame) if isinstance(frame, np.ndarray) else open_image(frame)


def sampled_frames(total: int, fps: float, budgets: Budgets) -> np.ndarray:
    """Indices of the frames `load_video` keeps from a `total`-frame video at `fps`: sampled at `budgets.video_fps`,
    or `max_frames` spread evenly when that is more (or the rate is unknown)."""
    indices = frame_indices(total, fps=budgets.video_fps, video_fps=fps) if fps > 0 else None
    if indices is None or indices.size > budgets.max_frames:
        count = max(FRAME_FACTOR, budgets.max_frames // FRAME_FACTOR * FRAME_FACTOR)
        indices = np.round(np.linspace(0, total - 1, count)).astype(int)
    return indices


def video_frame_size(height: int, width: int, frames: int, budgets: Budgets, factor: int = 28) -> tuple[int, int]:
    """(height, width) every frame of a `frames`-frame video is resized to (class docstring of `Budgets`)."""
    max_pixels = max(min(VIDEO_MAX_FRAME_PIXELS, budgets.pixel_budget / frames * FRAME_FACTOR),
                     int(budgets.video_min_pixels * 1.05))
    return smart_resize(height, width, factor=factor, min_pixels=budgets.video_min_pixels, max_pixels=max_pixels)


def load_video(video: Any, budgets: Budgets, factor: int = 28) -> tuple[list[Image.Image], dict]:
    """(frames, metadata) of a video sampled and resized by `budgets` (class docstring).

    video: mp4 bytes or a path, decoded with PyAV; or a list of already sampled frames (PIL, arrays, bytes), kept
    whole and timed at `budgets.video_fps`. metadata: `{total_num_frames, fps, frames_indices}` of the source, from
    which the processor derives the sampled fps and `second_per_grid_ts` (Qwen2.5-VL's absolute time positions).
    """
    if isinstance(video, (list, tuple)):
        frames = [_frame_image(frame) for frame in video]
        if not frames:
            raise ValueError("the video frame list is empty")
        total, fps, indices = len(frames), budgets.video_fps, np.arange(len(frames))
    else:
        total, fps = read_video_info(video)
        indices = sampled_frames(total, fps, budgets)
        frames = read_frames(video, indices)
    height, width = video_frame_size(frames[0].height, frames[0].width, len(frames), budgets, factor)
    frames = [f if f.size == (width, height) else f.resize((width, height), Image.Resampling.BICUBIC) for f in frames]
    metadata = {"total_num_frames": total, "fps": fps or budgets.video_fps, "frames_indices": indices.tolist()}
    return frames, metadata


# -- messages -> tensors ---------------------------------------------------------------------------------------------
def _as_messages(item: Sample | list[dict], for_generation: bool) -> list[dict]:
    if isinstance(item, Sample):
        return prompt_messages(item) if for_generation else sample_to_messages(item)
    return item


def load_media(messages: list[dict], budgets: Budgets, factor: int = 28):
    """(images, videos, video metadata) of one conversation, in order, resized by `budgets`: what the processor and
    vLLM are handed. images: PIL; videos: lists of PIL frames; metadata: `load_video`'s, one per video."""
    images, videos, metadata = [], [], []
    items = _media_items(messages)
    max_pixels = budgets.image_max_pixels_for(sum(_is_image(item) for item in items))
    for item in items:
        if _is_image(item):
            images.append(load_image(_media_source(item, "image"), budgets.image_min_pixels, max_pixels, factor))
        else:
            frames, meta = load_video(_media_source(item, "video"), budgets, factor)
            videos.append(frames)
            metadata.append(meta)
    return images, videos, metadata


def media_factor(processor) -> int:
    """Pixels per visual token side: patch size x merge size (28 for Qwen2.5-VL)."""
    return processor.image_processor.patch_size * processor.image_processor.merge_size


def vllm_media(messages: list[dict], budgets: Budgets, factor: int = 28) -> dict[str, Any]:
    """The vLLM prompt fields of one conversation's media, prepared exactly as `encode_for_generation` prepares them:
    `multi_modal_data` (images as PIL, videos as (T, H, W, 3) uint8 arrays) and `mm_processor_kwargs` (`do_resize`
    off; the sampled `fps`, qwen-vl-utils' frames kept / source frames x source fps). Empty for a text-only prompt."""
    images, videos, metadata = load_media(messages, budgets, factor)
    data: dict[str, Any] = {}
    if images:
        data["image"] = images
    if videos:
        data["video"] = [np.stack([np.asarray(frame) for frame in frames]) for frames in videos]
    if not data:
        return {}
    kwargs: dict[str, Any] = {"do_resize": False}
    if metadata:  # vLLM's processor takes one fps per prompt: the first video's
        meta = metadata[0]
        kwargs["fps"] = len(meta["frames_indices"]) / meta["total_num_frames"] * meta["fps"]
    return {"multi_modal_data": data, "mm_processor_kwargs": kwargs}


def collapse_placeholders(ids: Sequence[int], placeholder_ids: Sequence[int]) -> list[int]:
    """`ids` with every run of one placeholder token (`<|image_pad|>`, `<|video_pad|>`) cut to a single token: the
    prompt form vLLM expects next to `multi_modal_data`, which it expands itself (expanded ids would be expanded a
    second time: huggingface/trl#6294)."""
    placeholders = set(placeholder_ids)
    return [token for index, token in enumerate(ids)
            if not (token in placeholders and index > 0 and ids[index - 1] == token)]


def _encode(conversations: list[list[dict]], processor, budgets: Budgets, *, generation: bool):
    factor = media_factor(processor)
    texts, images, videos, metadata = [], [], [], []
    for messages in conversations:
        texts.append(processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation))
        conversation_media = load_media(messages, budgets, factor)
        for collected, part in zip((images, videos, metadata), conversation_media):
            collected.extend(part)
    kwargs: dict[str, Any] = {}
    if images:
        kwargs.update(images=images, images_kwargs={"do_resize": False})
    if videos:
        kwargs.update(videos=videos, videos_kwargs={
            "do_sample_frames": False, "do_resize": False, "video_metadata": metadata, "cap_pixels_per_frame": False,
        })
    padding_side = "left" if generation else "right"
    return processor(text=texts, padding=True, padding_side=padding_side, return_tensors="pt", **kwargs)


def estimate_tokens(sample: Sample, processor, budgets: Budgets = Budgets()) -> int:
    """The token count `encode_for_training` gives `sample`, from image and video headers and the tokenizer, with no
    pixel decoded (about 100x cheaper): the chat text with one placeholder per medium, plus each medium's visual tokens
    at the size `load_image` / `load_video` would pick. For length-grouped sampling (`group_by_length`)."""
    factor = media_factor(processor)
    messages = sample_to_messages(sample)
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    tokens = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
    items = _media_items(messages)
    max_pixels = budgets.image_max_pixels_for(sum(_is_image(item) for item in items))
    for item in items:
        if _is_image(item):
            source = _media_source(item, "image")
            if isinstance(source, (bytes, bytearray)):
                source = io.BytesIO(source)
            image = source if isinstance(source, Image.Image) else Image.open(source)  # reads the header only
            height, width = smart_resize(image.height, image.width, factor=factor,
                                         min_pixels=budgets.image_min_pixels, max_pixels=max_pixels)
            grids = 1
        else:
            source = _media_source(item, "video")
            if isinstance(source, (list, tuple)):
                first = _frame_image(source[0])
                count, height, width = len(source), first.height, first.width
            else:
                total, fps, width, height = read_video_header(source)
                count = sampled_frames(total, fps, budgets).size
            height, width = video_frame_size(height, width, count, budgets, factor)
            grids = -(-count // FRAME_FACTOR)  # two frames share one grid of tokens
        tokens += grids * height * width // (factor * factor) - 1  # the text already counts one placeholder
    return tokens


class SequenceTooLong(ValueError):
    """Some samples of a batch exceed `max_seq_len`; `ids` names them."""

    def __init__(self, ids: list[str], max_seq_len: int):
        super().__init__(f"samples {ids} are longer than max_seq_len={max_seq_len} tokens")
        self.ids = ids


def encode_for_training(samples: Sequence[Sample | list[dict]], processor, budgets: Budgets = Budgets(),
                        loss_on: str = "assistant"):
    """One right-padded batch (a `BatchFeature`: `.to(device)`) of whole conversations, labels on assistant turns
    (`loss_on="assistant"`, SFT) or on every text token (`"all"`, pretraining: `all_token_labels`).

    Returns input_ids, attention_mask, labels (B, L) int64 and, when present, pixel_values (N, 1176) + image_grid_thw
    (images, 3), pixel_values_videos + video_grid_thw (videos, 3) + second_per_grid_ts (videos,), mm_token_type_ids.
    Single images, image sets and videos may share a batch. Rows longer than `budgets.max_seq_len` raise ValueError
    (VST skips such samples; truncation would cut into image tokens).
    """
    batch = _encode([_as_messages(s, for_generation=False) for s in samples], processor, budgets, generation=False)
    lengths = batch["attention_mask"].sum(dim=1)
    if int(lengths.max()) > budgets.max_seq_len:
        too_long = [getattr(sample, "id", str(index)) for index, (sample, length) in enumerate(zip(samples, lengths))
                    if length > budgets.max_seq_len]
        raise SequenceTooLong(too_long, budgets.max_seq_len)
    if loss_on == "assistant":
        batch["labels"] = assistant_labels(batch["input_ids"], batch["attention_mask"], processor.tokenizer)
    elif loss_on == "all":
        batch["labels"] = all_token_labels(batch["input_ids"], batch["attention_mask"], processor.tokenizer)
    else:
        raise ValueError(f"loss_on: expected 'assistant' or 'all', got {loss_on!r}")
    return batch


def encode_for_generation(prompts: Sequence[Sample | list[dict]], processor, budgets: Budgets = Budgets()):
    """One left-padded batch (`BatchFeature`) of prompts ending in `<|im_start|>assistant\\n`, for `model.generate`.

    A Sample contributes its messages up to its last assistant turn; a message list is used as given.
    """
    return _encode([_as_messages(p, for_generation=True) for p in prompts], processor, budgets, generation=True)


def assistant_labels(input_ids, attention_mask, tokenizer):
    """Labels (B, L): -100 everywhere except assistant replies, from after `<|im_start|>assistant\\n` through the
    closing `<|im_end|>` inclusive, so the model learns to stop; the header stays masked (spec training.md §7.4).
    """
    import torch

    start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    role = tokenizer.encode("assistant", add_special_tokens=False)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for row, (ids, mask) in enumerate(zip(input_ids.tolist(), attention_mask.tolist())):
        last = max((i for i, m in enumerate(mask) if m), default=-1)
        for position in (i for i, token in enumerate(ids) if token == start and mask[i]):
            header_end = position + 1 + len(role)
            if ids[position + 1:header_end] != role:
                continue
            begin = header_end + 1  # the newline after the role is one token in byte-level BPE tokenizers
            stop = next((i for i in range(begin, last + 1) if ids[i] == end), last)
            labels[row, begin:stop + 1] = input_ids[row, begin:stop + 1]
    return labels


def all_token_labels(input_ids, attention_mask, tokenizer):
    """Labels (B, L) for next-token loss over the whole conversation, as in pretraining: every real token except the
    visual placeholders (`<|image_pad|>`, `<|video_pad|>`, whose embeddings are the vision tower's output) and padding.
    """
    media = [tokenizer.convert_tokens_to_ids(token) for token in ("<|image_pad|>", "<|video_pad|>")]
    labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
    for token in media:
        labels = labels.masked_fill(input_ids == token, IGNORE_INDEX)
    return labels


def pack_batch(batch: dict, rope_positions) -> dict:
    """The padding-free form of a right-padded training batch: its rows concatenated into one (1, N) row, N = real
    tokens, with no attention mask. Sequence boundaries travel in `position_ids` (4, 1, N): row 0 holds text positions
    that restart at 0 for every sample, from which transformers builds a block-diagonal mask (sdpa, eager) or
    flash-attention's `cu_seqlens`; rows 1-3 hold `rope_positions` (3, B, L), the model's 3D RoPE positions of the
    padded batch (`get_rope_index`), taken at the real tokens. Media tensors pass through unchanged; each sample's first
    label is -100 so no token predicts across a boundary.
    """
    import torch

    mask = batch["attention_mask"].bool()
    packed = {key: value for key, value in batch.items() if key != "attention_mask"}
    for key in ("input_ids", "labels", "mm_token_type_ids"):
        if key in batch:
            packed[key] = batch[key][mask].unsqueeze(0)
    lengths = mask.sum(dim=1).tolist()
    text_positions = torch.cat([torch.arange(n, device=mask.device) for n in lengths])
    starts = torch.tensor([0, *lengths[:-1]], device=mask.device).cumsum(0)
    if "labels" in packed:
        packed["labels"][0, starts] = IGNORE_INDEX
    rope = rope_positions.to(mask.device)[:, mask]
    packed["position_ids"] = torch.cat([text_positions.unsqueeze(0), rope]).unsqueeze(1)
    return packed
