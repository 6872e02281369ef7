"""Fixtures for model tests: one offline tiny Qwen2.5-VL folder per session, and Samples of every modality."""

import io

import numpy as np
import pytest
from PIL import Image

from vst.scene.video import encode_mp4
from vst.data.sample import Media, Sample, Turn


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def jpeg(seed: int, width: int, height: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def mp4_bytes() -> bytes:
    """Eight 56 x 56 frames at 4 fps (2 s)."""
    rng = np.random.default_rng(7)
    return encode_mp4([rng.integers(0, 255, (56, 56, 3), dtype=np.uint8) for _ in range(8)], fps=4)


@pytest.fixture(scope="session")
def mixed_samples(mp4_bytes) -> list[Sample]:
    """A single-image, a two-image (CoT) and a video sample, as the data engine writes them."""
    single = Sample(
        "single-0",
        [Turn("human", "<|image_pad|>\nWhat is left of the chair?"), Turn("gpt", "The table.")],
        [Media(jpeg(0, 80, 60))],
        type="si_relation",
    )
    multi = Sample(
        "multi-0",
        [Turn("human", "<|image_pad|><|image_pad|>\nHow did the camera move?"),
         Turn("gpt", "<think>The sofa shifts left.</think>Forward.")],
        [Media(jpeg(1, 64, 64)), Media(jpeg(2, 90, 50))],
        type="mi_camera_thought",
        modality="multi",
    )
    video = Sample(
        "video-0",
        [Turn("human", "<|video_pad|>\nThese are frames of a video.\nHow many chairs are there?"), Turn("gpt", "3")],
        [Media(mp4_bytes)],
        type="video",
        modality="video",
    )
    return [single, multi, video]
