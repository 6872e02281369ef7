"""What skills see of a scene: the Scene, its folder, cached frame buffers, visibility filters, media encoding.

Visibility rule (spec data.md §1.9): an object is referable in a frame when its visible pixels are at least
max(0.1 % of the image, 400 px at 448x448, scaled by area) and at least `MIN_VISIBLE_FRAC` of it is unoccluded.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from vst.data.markers import Marker, draw_markers
from vst.data.sample import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, Media, Sample, Turn
from vst.scene.capture import encode_jpeg, read_depth, read_instance_ids
from vst.scene.types import Frame, ObjectInstance, Scene, SceneError
from vst.scene.video import cached_mp4

MIN_VISIBLE_FRAC = 0.3
MIN_PIXELS_448 = 400


class SceneContext:
    """One scene prepared for skill generators; caches decoded frames for the scene's lifetime."""

    def __init__(self, scene: Scene, folder: str | Path, options: dict | None = None):
        self.scene = scene
        self.folder = Path(folder)
        self.options = dict(options or {})  # engine switches skills read, e.g. {"fov_unify": True}
        self._images: dict[str, Image.Image] = {}
        self._ids: dict[str, np.ndarray] = {}
        self._depth: dict[str, np.ndarray] = {}
        self._videos: dict[tuple[str, ...], bytes] = {}
        self._counters: Counter = Counter()
        self._memo: dict[tuple, Any] = {}

    # -- buffers -------------------------------------------------------------------------------------------
    # Decoded planes are cached per file, not per frame: imported scans list one picture as a video frame, a still and
    # a view-pair frame (three frame ids, one file).
    def image(self, frame: Frame) -> Image.Image:
        path = self.folder / frame.image_path
        if path not in self._images:
            try:
                with Image.open(path) as image:
                    self._images[path] = image.convert("RGB")
            except (OSError, SyntaxError, ValueError) as error:  # PIL: unidentified, truncated or corrupt
                raise SceneError(f"{path}: frame {frame.frame_id}: not a readable image ({error})") from None
        rgb = self._images[path]
        declared = (frame.intrinsics.width, frame.intrinsics.height)
        if rgb.size != declared:  # markers and projections would land off the picture
            raise SceneError(f"{path}: frame {frame.frame_id}: image is {rgb.size[0]}x{rgb.size[1]}, its "
                             f"intrinsics say {declared[0]}x{declared[1]}")
        return rgb

    def instance_ids(self, frame: Frame) -> np.ndarray:
        path = self.folder / frame.instance_path
        if path not in self._ids:
            self._ids[path] = read_instance_ids(path)
        return self._ids[path]

    def depth(self, frame: Frame) -> np.ndarray:
        key = (self.folder / frame.depth_path, frame.depth_scale)
        if key not in self._depth:
            self._depth[key] = read_depth(*key)
        return self._depth[key]

    # -- objects -------------------------------------------------------------------------------------------
    @cached_property
    def objects(self) -> list[ObjectInstance]:
        """Non-structure objects with boxes."""
        return [o for o in self.scene.objects if not o.is_structure and o.box is not None]

    @cached_property
    def category_counts(self) -> Counter:
        return Counter(o.category for o in self.objects)

    def unique_in_scene(self, obj: ObjectInstance) -> bool:
        return self.category_counts[obj.category] == 1

    @staticmethod
    def min_pixels(frame: Frame) -> int:
        area = frame.intrinsics.width * frame.intrinsics.height
        return int(max(0.001 * area, MIN_PIXELS_448 * area / 448**2))

    def referable(self, frame: Frame, min_frac: float = MIN_VISIBLE_FRAC, allow_truncated: bool = True) -> list[ObjectInstance]:
        """Objects visible enough in `frame` to ask about."""
        threshold = self.min_pixels(frame)
        chosen = []
        for obj in self.objects:
            seen = frame.visibility.get(obj.instance_id)
            if seen is None or seen.pixels < threshold or seen.visible_frac < min_frac:
                continue
            if seen.truncated and not allow_truncated:
                continue
            chosen.append(obj)
        return chosen

    def frames(self, prefix: str) -> list[Frame]:
        return [f for f in self.scene.frames if f.sequence.startswith(prefix) and f.image_path]

    # -- media ---------------------------------------------------------------------------------------------
    def memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """A value derived from this scene, computed once (e.g. a resized frame's JPEG shared by several samples)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def image_media(self, frame: Frame, markers: list[Marker] | None = None) -> Media:
        """The frame as JPEG bytes: the file itself when unmarked, else a marked copy re-encoded."""
        path = f"{self.scene.scene_id}/{frame.image_path}"
        if not markers:
            self.image(frame)  # decodes the whole file once: a truncated or foreign file raises here, not in a shard
            return Media(self.memo(("file", frame.image_path), lambda: (self.folder / frame.image_path).read_bytes()), path)
        return Media(encode_jpeg(np.asarray(draw_markers(self.image(frame), markers))), path)

    def video_media(self, frames: list[Frame], fps: float) -> Media:
        """The frames as one H.264 mp4 (VST stores videos as mp4 bytes in images[0]); cached per frame list."""
        key = tuple(f.frame_id for f in frames)
        if key not in self._videos:  # the scene's own copy when `vst scenes generate|import` wrote one (same bytes)
            self._videos[key] = cached_mp4(self.folder, frames, fps, lambda: [np.asarray(self.image(f)) for f in frames])
        return Media(self._videos[key], f"{self.scene.scene_id}/video-{key[0]}-{key[-1]}.mp4")

    # -- samples -------------------------------------------------------------------------------------------
    def sample(self, skill: str, question: str, answer_text: str, answer: dict, reward: dict, media: list[Media], meta: dict, modality: str, sample_type: str) -> Sample:
        """Assemble a Sample: placeholders first, provenance (scene, source, licence) added to `meta`."""
        placeholder = VIDEO_PLACEHOLDER if modality == "video" else IMAGE_PLACEHOLDER
        prompt = placeholder * len(media) + "\n" + question
        index = self._counters[skill]
        self._counters[skill] += 1
        provenance = {"scene_id": self.scene.scene_id, "source": self.scene.source, "license": self.scene.license}
        return Sample(
            id=f"{self.scene.scene_id}-{skill}-{index:04d}",
            conversations=[Turn("human", prompt), Turn("gpt", answer_text)],
            images=media,
            type=sample_type,
            data_source=f"vst-{self.scene.source}",
            meta_info={**provenance, **meta},
            skill=skill,
            modality=modality,
            answer=answer,
            reward=reward,
        )
