"""Frame sampling and pixel budgets (vst.common.media), with sizes and indices worked out by hand from Qwen's rules."""

import io

import av
import numpy as np
import pytest
from PIL import Image

from vst.common.media import (
    VST_VSI,
    MediaBudget,
    frame_indices,
    load_image,
    load_video,
    read_video_info,
    sample_video,
    smart_resize,
    video_frame_size,
)

FRAMES, FPS, WIDTH, HEIGHT, STEP = 20, 10, 64, 48, 12


def write_video(path, frames=FRAMES, fps=FPS, width=WIDTH, height=HEIGHT):
    """An mp4 whose frame i is a flat grey of level i * STEP, so a sampled frame tells which index it was."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            pixels = np.full((height, width, 3), index * STEP, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def levels(frames):
    """The frame index each sampled frame shows (its grey level / STEP, rounded)."""
    return [round(float(np.asarray(frame).mean()) / STEP) for frame in frames]


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "clip.mp4")


@pytest.mark.parametrize(
    "height, width, kwargs, expected",
    [
        # 48/28 = 1.71 -> 2 and 64/28 = 2.29 -> 2; 56*56 = 3136 is exactly the default minimum
        (48, 64, {}, (56, 56)),
        # round half to even, as Python's round: 42/28 = 1.5 -> 2, 70/28 = 2.5 -> 2
        (42, 70, {"min_pixels": 784, "max_pixels": 10**6}, (56, 56)),
        # too big: beta = sqrt(2e6 / 78400) = 5.05; floor(1000/5.05/28) = 7, floor(2000/5.05/28) = 14
        (1000, 2000, {"max_pixels": 78400}, (196, 392)),
        # too small: 28x28 < 3136; beta = sqrt(3136/200) = 3.96; ceil(10*3.96/28) = 2, ceil(20*3.96/28) = 3
        (10, 20, {}, (56, 84)),
    ],
)
def test_smart_resize_by_hand(height, width, kwargs, expected):
    assert smart_resize(height, width, **kwargs) == expected


def test_smart_resize_invariants():
    rng = np.random.default_rng(0)
    for height, width in rng.integers(20, 3000, size=(200, 2)):
        new_height, new_width = smart_resize(int(height), int(width), min_pixels=256 * 784, max_pixels=1280 * 784)
        assert new_height % 28 == 0 and new_width % 28 == 0
        assert 256 * 784 <= new_height * new_width <= 1280 * 784
        # the aspect ratio survives up to one 28-pixel step per side
        ratio = width / height
        assert abs(new_width / new_height - ratio) <= ratio * (28 / new_height + 28 / new_width) * 1.01


def test_smart_resize_rejects():
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2010)
    with pytest.raises(ValueError, match="min_pixels"):
        smart_resize(100, 100, min_pixels=2000, max_pixels=1000)


@pytest.mark.parametrize(
    "total, kwargs, expected",
    [
        # VLMEvalKit: linspace(0, 19, 8) = 0, 2.71, 5.43, 8.14, 10.86, 13.57, 16.29, 19, truncated
        (20, {"num_frames": 8}, [0, 2, 5, 8, 10, 13, 16, 19]),
        # more frames asked than exist: linspace repeats frames
        (3, {"num_frames": 5}, [0, 0, 1, 1, 2]),
        # qwen fps: 20 / 10 * 2 = 4 frames; linspace(0, 19, 4) = 0, 6.33, 12.67, 19, rounded
        (20, {"fps": 2, "video_fps": 10}, [0, 6, 13, 19]),
        # fps 4 (VST's VSI setting): 8 frames, rounded linspace (compare the truncated count case above)
        (20, {"fps": 4, "video_fps": 10}, [0, 3, 5, 8, 11, 14, 16, 19]),
        # 20 / 10 * 3.5 = 7 frames, floored to the even 6
        (20, {"fps": 3.5, "video_fps": 10}, [0, 4, 8, 11, 15, 19]),
        # 20 / 10 * 0.5 = 1 frame, raised to the minimum of 4
        (20, {"fps": 0.5, "video_fps": 10}, [0, 6, 13, 19]),
        # 3 frames: the cap floor(min(768, 3) / 2) * 2 = 2 wins over the minimum of 4
        (3, {"fps": 2, "video_fps": 10}, [0, 2]),
    ],
)
def test_frame_indices_by_hand(total, kwargs, expected):
    assert frame_indices(total, **kwargs).tolist() == expected


def test_frame_indices_cap_and_errors():
    assert len(frame_indices(1000, fps=30, video_fps=30)) == 768  # FPS_MAX_FRAMES
    with pytest.raises(ValueError, match="at least 2"):
        frame_indices(1, fps=2, video_fps=10)
    with pytest.raises(ValueError, match="exactly one"):
        frame_indices(20)
    with pytest.raises(ValueError, match="exactly one"):
        frame_indices(20, num_frames=4, fps=2, video_fps=10)


def test_video_frame_size_vst_budget():
    # VST VSI: 480 frames of 640x480 share 8192*28^2 in frame pairs: max = 8192*784/480*2 = 26760.5 per frame;
    # beta = sqrt(307200/26760.5) = 3.39 -> floor(480/3.39/28) = 5, floor(640/3.39/28) = 6
    assert video_frame_size(480, 640, 480, min_pixels=16 * 784, total_pixels=8192 * 784) == (140, 168)
    # 8 frames: the share (1.6M) is above the 768*28^2 per-frame cap, so plain rounding: 476 x 644
    assert video_frame_size(480, 640, 8, min_pixels=16 * 784, total_pixels=8192 * 784) == (476, 644)
    # an explicit max_pixels replaces the share of the total
    assert video_frame_size(480, 640, 8, min_pixels=784, max_pixels=100 * 784) == (224, 308)


def test_load_image_sources(tmp_path):
    image = Image.new("RGB", (100, 80), (10, 200, 30))
    path = tmp_path / "a.png"
    image.save(path)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    # 80/28 = 2.86 -> 3, 100/28 = 3.57 -> 4: 84 x 112
    for source in (path, str(path), buffer.getvalue(), image, {"bytes": None, "path": str(path)}):
        loaded = load_image(source)
        assert loaded.mode == "RGB" and loaded.size == (112, 84)
        assert loaded.getpixel((50, 40)) == (10, 200, 30)
    assert load_image(image, min_pixels=28 * 28, max_pixels=28 * 28).size == (28, 28)


def test_load_image_transparent_becomes_white_and_missing_names_path(tmp_path):
    clear = Image.new("RGBA", (56, 56), (255, 0, 0, 0))
    assert load_image(clear).getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")


def test_read_video_info(video):
    assert read_video_info(video) == (FRAMES, FPS)


def test_sample_video_by_count_and_total_budget(video):
    # linspace(0, 19, 5) = 0, 4.75, 9.5, 14.25, 19 -> 0, 4, 9, 14, 19
    frames = sample_video(video, num_frames=5, min_pixels=784, total_pixels=10 * 784)
    assert levels(frames) == [0, 4, 9, 14, 19]
    # 10*784 / 5 frames * 2 = 3136 per frame: 48x64 rounds to 56x56 = 3136
    assert {frame.size for frame in frames} == {(56, 56)}
    # 5*784 / 5 * 2 = 1568: beta = sqrt(3072/1568) = 1.40 -> floor(1.22) = 1, floor(1.63) = 1 -> 28x28
    assert sample_video(video, num_frames=5, min_pixels=784, total_pixels=5 * 784)[0].size == (28, 28)


def test_sample_video_by_fps_from_path_and_bytes(video):
    frames = sample_video(video)  # default 2 fps: 4 frames [0, 6, 13, 19]
    assert levels(frames) == [0, 6, 13, 19]
    # default video min_pixels 128*28^2 grows 48x64: beta = sqrt(100352/3072) = 5.72 -> 10*28 x 14*28
    assert frames[0].size == (392, 280)
    assert levels(sample_video(video.read_bytes(), fps=4, min_pixels=784)) == [0, 3, 5, 8, 11, 14, 16, 19]


def test_load_video_vst_budget(video):
    frames = load_video(video, VST_VSI)
    assert levels(frames) == [0, 3, 5, 8, 11, 14, 16, 19]  # fps 4
    # min 16*28^2 = 12544 > 56*56: beta = sqrt(12544/3072) = 2.02 -> ceil(3.46) = 4, ceil(4.62) = 5
    assert frames[0].size == (140, 112)
    assert levels(load_video(video, MediaBudget(video_frames=3))) == [0, 9, 19]  # linspace 0, 9.5, 19


def test_sample_video_frame_list():
    frames = [Image.new("RGB", (64, 48), (index * STEP,) * 3) for index in range(10)]
    assert levels(sample_video(frames, num_frames=4, min_pixels=784)) == [0, 3, 6, 9]  # 0, 3, 6, 9 exactly
    assert len(sample_video(frames, min_pixels=784)) == 10  # no timing: kept whole


def test_sample_video_errors(tmp_path, video):
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        sample_video(tmp_path / "nothing.mp4")
    with pytest.raises(ValueError, match="cannot read video"):
        sample_video(b"not a video at all")
    with pytest.raises(ValueError, match="at most one"):
        sample_video(video, fps=2, num_frames=4)
