"""Images and sampled video frames resized to a pixel budget, as Qwen2.5-VL's qwen-vl-utils prepares them.

The rules follow QwenLM/Qwen2.5-VL:qwen-vl-utils/src/qwen_vl_utils/vision_process.py (written here from its documented
behaviour, benchmarks.md §2.2, §2.4, §9):

- `smart_resize`: keep the aspect ratio, round each side to a multiple of 28, then scale the area into
  [min_pixels, max_pixels] (flooring to 28 when shrinking, ceiling when growing).
- Video by fps (qwen-vl-utils, what VST used for VSI-Bench at fps 4): `n = frames / video_fps * fps`, clamped to
  [4, min(768, frames)] and floored to an even count, then `round(linspace(0, frames - 1, n))`.
- Video by count (VLMEvalKit's `VSI-Bench_32frame` style): `linspace(0, frames - 1, count)` truncated to int over the
  raw frames; no second subsampling stage (the lmms-eval Qwen wrapper's two-stage sampling is a known source of gaps).
- Frame size: one `smart_resize` for all frames with max_pixels = max(min(768·28², total_pixels / n · 2),
  1.05 · min_pixels) unless max_pixels is given. The factor 2 is Qwen2.5-VL's temporal patch: two frames share one
  grid of tokens, so a total budget counts frame pairs.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import av
import numpy as np
from PIL import Image

IMAGE_FACTOR = 28  # ViT patch 14 x spatial merge 2
MAX_ASPECT_RATIO = 200
IMAGE_MIN_PIXELS = 4 * 28 * 28
IMAGE_MAX_PIXELS = 16384 * 28 * 28
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28
VIDEO_TOTAL_PIXELS = int(128000 * 28 * 28 * 0.9)  # qwen-vl-utils >= 0.0.11 default; older releases used 24576·28²
FRAME_FACTOR = 2  # Qwen2.5-VL temporal patch size
VIDEO_FPS = 2.0
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768


@dataclass(frozen=True)
class MediaBudget:
    """How media become model inputs. Defaults are qwen-vl-utils' own; `VST_VSI` is what VST used for VSI-Bench.

    video_frames, when set, samples that many frames uniformly and ignores video_fps. video_max_pixels, when set,
    caps each frame and replaces the share of video_total_pixels.
    """

    image_min_pixels: int = IMAGE_MIN_PIXELS
    image_max_pixels: int = IMAGE_MAX_PIXELS
    video_fps: float = VIDEO_FPS
    video_frames: int | None = None
    video_min_pixels: int = VIDEO_MIN_PIXELS
    video_max_pixels: int | None = None
    video_total_pixels: int = VIDEO_TOTAL_PIXELS


# VST benchmark/eval_vsibench.py: fps 4, total_pixels 8192·28², min_pixels 16·28² (benchmarks.md §2.4).
VST_VSI = MediaBudget(video_fps=4.0, video_min_pixels=16 * 28 * 28, video_total_pixels=8192 * 28 * 28)


def smart_resize(
    height: int,
    width: int,
    factor: int = IMAGE_FACTOR,
    min_pixels: int = IMAGE_MIN_PIXELS,
    max_pixels: int = IMAGE_MAX_PIXELS,
) -> tuple[int, int]:
    """(height, width) with both sides multiples of `factor`, the aspect ratio kept and the area in [min, max] pixels.

    Rounding uses Python's `round` (half to even) as qwen-vl-utils does, so a 42-pixel side becomes 56 and a 70-pixel
    side becomes 56: sizes match Qwen's processor exactly.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"image {width}x{height}: aspect ratio above {MAX_ASPECT_RATIO} is not supported")
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels ({min_pixels}) is larger than max_pixels ({max_pixels})")
    new_height = max(factor, round(height / factor) * factor)
    new_width = max(factor, round(width / factor) * factor)
    if new_height * new_width > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        new_height = max(factor, math.floor(height / beta / factor) * factor)
        new_width = max(factor, math.floor(width / beta / factor) * factor)
    elif new_height * new_width < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        new_height = math.ceil(height * beta / factor) * factor
        new_width = math.ceil(width * beta / factor) * factor
    return new_height, new_width


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB; transparent pixels become white, as qwen-vl-utils composites RGBA onto a white background."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def open_image(image: Any) -> Image.Image:
    """An RGB PIL image from a path, bytes, a PIL image or a Hugging Face image dict `{bytes, path}`."""
    if isinstance(image, dict):
        image = image.get("bytes") or image.get("path")
        if image is None:
            raise ValueError("image dict has neither 'bytes' nor 'path'")
    if isinstance(image, Image.Image):
        return _to_rgb(image)
    if isinstance(image, (bytes, bytearray)):
        with Image.open(io.BytesIO(image)) as opened:
            opened.load()
            return _to_rgb(opened)
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image file not found")
        with Image.open(path) as opened:
            opened.load()
            return _to_rgb(opened)
    raise TypeError(f"cannot read an image from {type(image).__name__}")


def resize_to_budget(image: Image.Image, min_pixels: int, max_pixels: int) -> Image.Image:
    height, width = smart_resize(image.height, image.width, min_pixels=min_pixels, max_pixels=max_pixels)
    if (width, height) == image.size:
        return image
    return image.resize((width, height), Image.Resampling.BICUBIC)


def load_image(image: Any, min_pixels: int = IMAGE_MIN_PIXELS, max_pixels: int = IMAGE_MAX_PIXELS) -> Image.Image:
    """An RGB image (path, bytes, PIL or `{bytes, path}`) resized by `smart_resize` into [min_pixels, max_pixels]."""
    return resize_to_budget(open_image(image), min_pixels, max_pixels)


def frame_indices(
    total_frames: int, *, num_frames: int | None = None, fps: float | None = None, video_fps: float | None = None
) -> np.ndarray:
    """Indices (n,) int of the frames to keep from a video of `total_frames` raw frames.

    num_frames: `linspace(0, total - 1, num_frames)` truncated to int (VLMEvalKit; repeats frames of short videos).
    fps (with the video's own `video_fps`): qwen-vl-utils' count rule (module docstring), rounded linspace.
    """
    if total_frames < 1:
        raise ValueError("the video has no frames")
    if (num_frames is None) == (fps is None):
        raise ValueError("give exactly one of num_frames and fps")
    if num_frames is not None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        return np.linspace(0, total_frames - 1, num_frames).astype(int)
    if fps <= 0 or not video_fps or video_fps <= 0:
        raise ValueError(f"fps sampling needs positive fps and video fps, got {fps} and {video_fps}")
    min_frames = math.ceil(FPS_MIN_FRAMES / FRAME_FACTOR) * FRAME_FACTOR
    max_frames = math.floor(min(FPS_MAX_FRAMES, total_frames) / FRAME_FACTOR) * FRAME_FACTOR
    count = min(max(total_frames / video_fps * fps, min_frames), max_frames)
    count = math.floor(count / FRAME_FACTOR) * FRAME_FACTOR
    if count < FRAME_FACTOR:
        raise ValueError(f"fps sampling needs at least {FRAME_FACTOR} frames, the video has {total_frames}")
    return np.round(np.linspace(0, total_frames - 1, count)).astype(int)


def video_frame_size(
    height: int,
    width: int,
    num_frames: int,
    min_pixels: int = VIDEO_MIN_PIXELS,
    max_pixels: int | None = None,
    total_pixels: int = VIDEO_TOTAL_PIXELS,
) -> tuple[int, int]:
    """(height, width) of every sampled frame: a per-frame cap, or the total budget shared by `num_frames` frames."""
    if max_pixels is None:
        max_pixels = max(min(VIDEO_MAX_PIXELS, total_pixels / num_frames * FRAME_FACTOR), int(min_pixels * 1.05))
    return smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)


def _video_name(video: Any) -> str:
    return str(video) if isinstance(video, (str, Path)) else f"<{len(video)} bytes of video>"


def _open_video(video: Any) -> av.container.InputContainer:
    if isinstance(video, (bytes, bytearray)):
        return av.open(io.BytesIO(video))
    path = Path(video)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video file not found")
    return av.open(str(path))


def _video_stream(container: av.container.InputContainer, video: Any) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise ValueError(f"{_video_name(video)}: no video stream")
    return container.streams.video[0]


def read_video_header(video: Any) -> tuple[int, float, int, int]:
    """(frame count, frames per second, width, height) of a video path or bytes, with no frame decoded; counts
    packets when the container has no frame count."""
    try:
        with _open_video(video) as container:
            stream = _video_stream(container, video)
            rate = stream.average_rate or stream.guessed_rate
            total = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            width, height = stream.codec_context.width, stream.codec_context.height
    except av.error.FFmpegError as error:
        raise ValueError(f"{_video_name(video)}: cannot read video ({error})") from None
    return int(total), float(rate) if rate else 0.0, int(width), int(height)


def read_video_info(video: Any) -> tuple[int, float]:
    """(frame count, frames per second) of a video path or bytes; counts packets when the container has no count."""
    return read_video_header(video)[:2]


def read_frames(video: Any, indices: Sequence[int]) -> list[Image.Image]:
    """RGB frames at `indices` (repeats allowed), decoding once from the start.

    When the stream ends before an index (frame counts in headers can be off by a few), the last decoded frame is used.
    """
    wanted: dict[int, list[int]] = {}
    for position, index in enumerate(indices):
        wanted.setdefault(int(index), []).append(position)
    if not wanted:
        return []
    last_index = max(wanted)
    frames: list[Image.Image | None] = [None] * len(indices)
    last_frame = None
    try:
        with _open_video(video) as container:
            stream = _video_stream(container, video)
            stream.thread_type = "AUTO"
            for number, last_frame in enumerate(container.decode(stream)):
                if number in wanted:
                    image = last_frame.to_image()
                    for position in wanted[number]:
                        frames[position] = image
                if number >= last_index:
                    break
            if last_frame is None:
                raise ValueError(f"{_video_name(video)}: no frame could be decoded")
            fallback = last_frame.to_image() if any(frame is None for frame in frames) else None
    except av.error.FFmpegError as error:
        raise ValueError(f"{_video_name(video)}: cannot decode video ({error})") from None
    return [frame if frame is not None else fallback for frame in frames]


def sample_video(
    video: Any,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    min_pixels: int = VIDEO_MIN_PIXELS,
    max_pixels: int | None = None,
    total_pixels: int = VIDEO_TOTAL_PIXELS,
) -> list[Image.Image]:
    """Sampled RGB frames of a video (path, bytes, or a list of frame images), all resized to one budgeted size.

    With neither fps nor num_frames, samples at qwen-vl-utils' default 2 fps. A list of frames has no timing: it is
    subsampled only by num_frames and kept whole otherwise.
    """
    if fps is not None and num_frames is not None:
        raise ValueError("give at most one of fps and num_frames")
    if isinstance(video, (list, tuple)):
        images = [open_image(frame) for frame in video]
        if not images:
            raise ValueError("the frame list is empty")
        if num_frames is not None:
            images = [images[index] for index in frame_indices(len(images), num_frames=num_frames)]
    else:
        total, video_fps = read_video_info(video)
        if num_frames is None:
            indices = frame_indices(total, fps=fps or VIDEO_FPS, video_fps=video_fps)
        else:
            indices = frame_indices(total, num_frames=num_frames)
        images = read_frames(video, indices)
    height, width = video_frame_size(
        images[0].height, images[0].width, len(images), min_pixels=min_pixels, max_pixels=max_pixels,
        total_pixels=total_pixels,
    )
    return [frame if frame.size == (width, height) else frame.resize((width, height), Image.Resampling.BICUBIC)
            for frame in images]


def load_video(video: Any, budget: MediaBudget = MediaBudget()) -> list[Image.Image]:
    """`sample_video` with the video settings of a `MediaBudget`."""
    return sample_video(
        video,
        fps=None if budget.video_frames else budget.video_fps,
        num_frames=budget.video_frames,
        min_pixels=budget.video_min_pixels,
        max_pixels=budget.video_max_pixels,
        total_pixels=budget.video_total_pixels,
    )
