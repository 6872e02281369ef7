"""Videos are the same bytes whatever a process encoded before: x264's AVX-512 code reads uninitialised row padding
(chroma rows not a multiple of 64 bytes), so with it the same frames gave different mp4s in a worker and in the main
process (found by `benchmarks/data_engine.py --workers 2`: shards not byte-identical). vst leaves that path out;
with `context._x264_params` replaced by `lambda: {}` this test fails on an AVX-512 machine (checked by hand: the
2-core CI VM has AVX-512)."""

import numpy as np
import pytest
from PIL import Image

from vst.data import context
from vst.scene.generate import generate_scenes
from vst.scene.types import Scene


def _video(folder) -> list[np.ndarray]:
    scene = Scene.load(folder)
    return [np.asarray(Image.open(folder / f.image_path).convert("RGB")) for f in scene.sequences()["video"]]


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory, small_config):
    folder = tmp_path_factory.mktemp("videos")
    generate_scenes(folder, 2, seed=0, config=small_config)
    return [_video(p) for p in sorted(folder.iterdir()) if (p / "scene.json").is_file()]


def test_the_same_frames_give_the_same_mp4_whatever_came_before(two_videos):
    first, other = two_videos
    before = context.encode_mp4(first, 4)
    context.encode_mp4(other, 4)
    assert context.encode_mp4(first, 4) == before
