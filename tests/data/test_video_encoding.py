"""Videos are the same bytes whatever a process encoded before: x264's AVX-512 code reads uninitialised row padding
(chroma rows not a multiple of 64 bytes), so with it the same frames gave different mp4s in a worker and in the main
process (found by `benchmarks/data_engine.py --workers 2`: shards not byte-identical). vst leaves that path out;
with `vst.scene.video._x264_params` replaced by `lambda: {}` this test fails on an AVX-512 machine (checked by hand: the
2-core CI VM has AVX-512). Scenes store their video once (`videos/`), and the engine's shards are the same bytes
with or without it."""

import numpy as np
import pytest
from PIL import Image

from vst.scene import video
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
    before = video.encode_mp4(first, 4)
    video.encode_mp4(other, 4)
    assert video.encode_mp4(first, 4) == before


def test_scenes_store_their_video_and_the_engine_gives_the_same_bytes_with_or_without_it(tmp_path, small_config, monkeypatch):
    """`vst scenes generate` writes videos/<key>.mp4; the engine reads it instead of encoding (encode_mp4 is made to
    fail), and a copy of the scenes without it gives the same shard bytes. A frame changed in place changes the key."""
    import shutil

    from vst.data.engine import EngineConfig, run
    from vst.data.recipes import Recipe
    from vst.scene.video import VIDEOS_DIR, sequence_fps, video_cache_path

    generate_scenes(tmp_path / "scenes", 1, seed=4, config=small_config)
    folder = next(p for p in (tmp_path / "scenes").iterdir() if (p / "scene.json").is_file())
    scene = Scene.load(folder)
    frames = scene.sequences()["video"]
    stored = video_cache_path(folder, frames, sequence_fps(scene, frames))
    assert [p.name for p in (folder / VIDEOS_DIR).iterdir()] == [stored.name]
    assert stored.read_bytes() == video.encode_mp4(_video(folder), sequence_fps(scene, frames))
    shutil.copytree(tmp_path / "scenes", tmp_path / "bare", ignore=shutil.ignore_patterns(VIDEOS_DIR))
    recipe = Recipe("video", {"video_counting": 1.0, "video_object_object": 1.0, "video_scene_caption": 1.0})
    bare = run(EngineConfig(scenes=tmp_path / "bare", out=tmp_path / "bare-out", recipe=recipe, n=12, seed=0))

    def no_encoding(*args, **kwargs):
        raise AssertionError("the stored video should have been used")

    monkeypatch.setattr(video, "encode_mp4", no_encoding)
    cached = run(EngineConfig(scenes=tmp_path / "scenes", out=tmp_path / "out", recipe=recipe, n=12, seed=0))
    assert cached["rows"] == bare["rows"] > 0 and not cached["skill_errors"]
    assert (tmp_path / "out" / cached["shard"]).read_bytes() == (tmp_path / "bare-out" / bare["shard"]).read_bytes()
    # a frame rewritten in place, even at the same size, is another key: the stored file no longer applies
    path = folder / frames[0].image_path
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    assert video_cache_path(folder, frames, sequence_fps(scene, frames)) != stored
