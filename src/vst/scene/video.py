"""Scene videos as mp4: one reproducible H.264 encoder, and each scene's walk-through video encoded once.

VST stores a video sample's media as mp4 bytes. Every video question of a scene shows the same video (its "video"
sequence at the scene's fps), so `write_scene_video` encodes it when the scene is written (`vst scenes generate`,
`vst scenes import`) into `videos/<key>.mp4`, and the data engine (`cached_mp4`) reads those bytes instead of
encoding again on every run over the scene (VST-P, held-out, VST-R, each shard). The key hashes what the bytes
depend on: the frame files' names and contents, the fps, the encoder settings and versions; anything else misses
the cache and is encoded as before, so shards are the same bytes with or without it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from vst.scene.types import Frame, Scene

VIDEO_CRF = 23
VIDEO_PRESET = "veryfast"
VIDEO_SEQUENCE = "video"
VIDEOS_DIR = "videos"

# x264's CPU features on machines with AVX-512, that path left out. Its AVX-512 code reads uninitialised row padding
# of frames whose chroma rows are not a multiple of 64 bytes (448-px frames: 224-byte rows): the same frames gave
# different mp4 bytes depending on what the process had encoded before (measured; x264's C path and its AVX2 path
# agree with each other). Every CPU with AVX-512 has this set; x264 output is bit-exact across these levels.
X264_WITHOUT_AVX512 = "MMX2,SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2,LZCNT,AVX,FMA3,BMI1,BMI2,AVX2"


@functools.cache
def _x264_params() -> dict:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            avx512 = " avx512f" in handle.read()
    except OSError:  # not Linux: Apple silicon and most others have no AVX-512
        avx512 = False
    return {"x264-params": f"asm={X264_WITHOUT_AVX512}"} if avx512 else {}


def encode_mp4(frames: list[np.ndarray], fps: float) -> bytes:
    """H.264 (yuv420p) mp4 of RGB frames (H, W, 3) uint8, in memory, single-threaded and without x264's AVX-512
    path (`X264_WITHOUT_AVX512`), so the output is reproducible."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        height, width = frames[0].shape[:2]
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(VIDEO_CRF), "preset": VIDEO_PRESET, "threads": "1", **_x264_params()}
        stream.codec_context.thread_count = 1
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array[: stream.height, : stream.width]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def sequence_fps(scene: Scene, frames: Sequence[Frame]) -> float:
    """Frames per second of a video: `Scene.fps` when set, else the inverse of the median timestamp step."""
    if scene.fps:
        return float(scene.fps)
    steps = np.diff([frame.timestamp for frame in frames])
    steps = steps[steps > 0]
    if steps.size == 0:
        raise ValueError(f"scene {scene.scene_id}: video has no fps and no increasing timestamps")
    return float(1.0 / np.median(steps))


@functools.cache
def _encoder_versions() -> list[str]:
    import av

    return [av.__version__, str(av.library_versions.get("libavcodec", ""))]


def video_cache_path(folder: str | Path, frames: Sequence[Frame], fps: float) -> Path:
    """Where the scene keeps the mp4 of `frames` at `fps`: `videos/<key>.mp4`, the key a hash of the frame files'
    names and bytes, the fps, the encoder settings and the PyAV / libavcodec versions (a different encoder build may
    write different bytes, so its videos are encoded again rather than taken from another machine's store)."""
    folder = Path(folder)
    files = [[frame.image_path, hashlib.sha256((folder / frame.image_path).read_bytes()).hexdigest()] for frame in frames]
    settings = [VIDEO_CRF, VIDEO_PRESET, _x264_params().get("x264-params", ""), round(float(fps), 6), *_encoder_versions()]
    key = hashlib.sha256(json.dumps([files, settings]).encode()).hexdigest()[:16]
    return folder / VIDEOS_DIR / f"{key}.mp4"


def cached_mp4(folder: str | Path, frames: Sequence[Frame], fps: float, rgb: Callable[[], list[np.ndarray]]) -> bytes:
    """The scene's stored mp4 of `frames` when it has one, else `encode_mp4(rgb(), fps)` (not stored)."""
    try:
        path = video_cache_path(folder, frames, fps)
        if path.is_file():
            return path.read_bytes()
    except OSError:  # a frame file that cannot be read: the decode below reports it by name
        pass
    return encode_mp4(rgb(), fps)


def write_scene_video(scene: Scene, folder: str | Path) -> Path | None:
    """Encode the scene's "video" sequence (frames read back from their files, as the engine reads them) into its
    cache file, atomically; None when the scene has no video."""
    folder = Path(folder)
    frames = [frame for frame in scene.sequences().get(VIDEO_SEQUENCE, []) if frame.image_path]
    if not frames:
        return None
    fps = sequence_fps(scene, frames)
    path = video_cache_path(folder, frames, fps)
    if path.is_file():
        return path
    arrays = []
    for frame in frames:
        with Image.open(folder / frame.image_path) as image:
            arrays.append(np.asarray(image.convert("RGB")))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temporary.write_bytes(encode_mp4(arrays, fps))
    os.replace(temporary, path)
    return path
