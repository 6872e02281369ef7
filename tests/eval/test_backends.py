"""OpenAIBackend against a fake OpenAI-compatible server on 127.0.0.1 (a random free port, in a thread); VLLMBackend
against a fake `vllm` module (vLLM itself needs a GPU) with the tiny model's real processor and chat template."""

import base64
import io
import json
import sys
import threading
import types

import av
import numpy as np
import pytest
from PIL import Image

from vst.common.clients import BackendError, OpenAIBackend, Prompt, chat_messages
from vst.common.media import MediaBudget, load_image, load_video
from vst.eval.backends import VLLM_MISSING, VLLMBackend, make_backend

from tests.chat_server import ChatServer, completion, error

SYSTEM = "You are a helpful assistant."
JPEG_PREFIX = "data:image/jpeg;base64,"


class FakeServer(ChatServer):
    """Canned chat completions: answers "<n> images: <text>"; the first `fail_first` requests get a 500.

    Prompt texts steer it: "ALWAYS_FAIL" -> 500 every time, "BAD" -> 400, "SLOW" -> no answer until the test ends,
    "DRIP" -> an answer sent one byte every 50 ms (each read succeeds; the whole takes ~15 s).
    """

    def __init__(self, fail_first=0):
        self.requests, self.fail_first, self.lock, self.release = [], fail_first, threading.Lock(), threading.Event()
        super().__init__(self.respond)

    def respond(self, path, body):
        with self.lock:
            self.requests.append((path, body))
            failing = self.fail_first > 0
            self.fail_first -= failing
        text = body["messages"][-1]["content"][-1]["text"]
        images = sum(part["type"] == "image_url" for part in body["messages"][-1]["content"])
        if "SLOW" in text:
            self.release.wait(30)
            return None
        if "DRIP" in text:
            return (*completion(body["model"], text), 0.05)
        if failing or "ALWAYS_FAIL" in text:
            return error(500, "overloaded")
        if "BAD" in text:
            return error(400, "bad request")
        return completion(body["model"], f"{images} images: {text}")

    def close(self):
        self.release.set()
        super().close()

    def bodies_for(self, text):
        return [body for _, body in self.requests if body["messages"][-1]["content"][-1]["text"] == text]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # loopback only, whatever proxy the environment names
    fake = FakeServer(fail_first=1)
    yield fake
    fake.close()


def backend_for(server, **options):
    options = {"retries": 2, "backoff_s": 0.01, "timeout_s": 10, **options}
    return OpenAIBackend(server.base_url, "vst-test-model", api_key="test-key", **options)


def write_video(path, frames=8, fps=4):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            pixels = np.full((48, 64, 3), index * 30, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def png_bytes(size, color):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_part(part):
    assert part["type"] == "image_url" and part["image_url"]["url"].startswith(JPEG_PREFIX)
    return Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"][len(JPEG_PREFIX):])))


def test_generate_sends_images_video_frames_and_retries(server, tmp_path):
    image_path = tmp_path / "b.png"
    Image.new("RGB", (100, 80), (0, 0, 255)).save(image_path)
    video_path = write_video(tmp_path / "clip.mp4")  # 8 frames at 4 fps: 2 s
    prompts = [
        Prompt(text="Which is closer?", images=[png_bytes((64, 48), (255, 0, 0)), image_path], system=SYSTEM),
        Prompt(text="How many chairs?", video=video_path),
    ]
    backend = backend_for(server, concurrency=2, media=MediaBudget(video_fps=2.0, video_min_pixels=784))
    responses = backend.generate(prompts, max_new_tokens=16, temperature=0.1, top_p=0.001, repetition_penalty=1.05)

    # 2 images; the video at 2 fps gives max(2 s * 2, 4 minimum) = 4 frames, each sent as an image
    assert responses == ["2 images: Which is closer?", "4 images: How many chairs?"]
    assert len(server.requests) == 3  # the first request got a 500 and was retried once
    assert {path for path, _ in server.requests} == {"/v1/chat/completions"}

    body = server.bodies_for("Which is closer?")[-1]
    assert body["model"] == "vst-test-model" and body["max_tokens"] == 16
    assert body["temperature"] == 0.1 and body["top_p"] == 0.001 and body["repetition_penalty"] == 1.05
    assert "top_k" not in body and "seed" not in body  # not given: left to the server
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM}
    first, second, text = user["content"]
    assert text == {"type": "text", "text": "Which is closer?"}  # text after the media
    # image budget: 64x48 -> 56x56 (each side rounded to 28); 100x80 -> 112x84
    assert decode_part(first).size == (56, 56) and decode_part(first).format == "JPEG"
    assert decode_part(second).size == (112, 84)
    assert decode_part(first).getpixel((28, 28))[0] > 200  # still red, in order

    video_body = server.bodies_for("How many chairs?")[-1]
    assert video_body["messages"][0]["role"] == "user"  # no system prompt given, none sent
    frames = [decode_part(part) for part in video_body["messages"][0]["content"][:-1]]
    # frames 0, 2, 5, 7 (rounded linspace(0, 7, 4)) at grey 30 * index
    assert [round(np.asarray(frame).mean() / 30) for frame in frames] == [0, 2, 5, 7]


def test_media_budget_per_call(server, tmp_path):
    video_path = write_video(tmp_path / "clip.mp4")
    backend = backend_for(server)  # default budget: 2 fps -> 4 frames
    budget = MediaBudget(video_frames=3, video_min_pixels=784)  # a benchmark's MEDIA_BUDGET[protocol]
    assert backend.generate([Prompt(text="count", video=video_path)], media=budget) == ["3 images: count"]
    assert backend.generate([Prompt(text="count", video=video_path)]) == ["4 images: count"]


def test_order_kept_with_concurrency(server):
    prompts = [Prompt(text=f"question {index}") for index in range(7)]
    responses = backend_for(server, concurrency=3).generate(prompts)
    assert responses == [f"0 images: question {index}" for index in range(7)]
    assert server.requests[0][1]["temperature"] == 0.0  # greedy by default


def test_persistent_failure_names_item_after_retries(server):
    prompts = [Prompt(text="fine"), Prompt(text="ALWAYS_FAIL here")]
    with pytest.raises(BackendError, match=r"item 1 \('ALWAYS_FAIL here'\).*after 3 attempts.*InternalServerError"):
        backend_for(server, concurrency=1).generate(prompts)
    assert len(server.bodies_for("ALWAYS_FAIL here")) == 3  # retries=2: three attempts in all


def test_client_error_is_not_retried(server):
    server.fail_first = 0
    with pytest.raises(BackendError, match=r"item 0 .*after 1 attempt:.*BadRequestError"):
        backend_for(server).generate([Prompt(text="BAD request")])
    assert len(server.requests) == 1


def test_timeout_never_hangs(server):
    server.fail_first = 0
    with pytest.raises(BackendError, match=r"item 0 .*after 2 attempts.*(APITimeoutError|no complete answer)"):
        backend_for(server, retries=1, timeout_s=0.3).generate([Prompt(text="SLOW answer")])


def test_a_server_that_drips_bytes_times_out_on_the_whole_request(server):
    """`timeout_s` bounds each attempt as a whole, not each read: one byte every 50 ms never trips a read timeout."""
    import time

    server.fail_first = 0
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"item 0 .*after 2 attempts: Deadline: no complete answer within 0.5 s"):
        backend_for(server, retries=1, timeout_s=0.5).generate([Prompt(text="DRIP answer")])
    assert time.monotonic() - started < 5


def test_missing_media_names_item_and_path(server, tmp_path):
    prompts = [Prompt(text="ok"), Prompt(text="where", images=[tmp_path / "gone.png"])]
    with pytest.raises(BackendError, match=r"item 1 \('where'\): cannot prepare media: .*gone.png"):
        backend_for(server).generate(prompts)


def test_chat_messages_without_server():
    messages = chat_messages(Prompt(text="plain", system=None))
    assert messages == [{"role": "user", "content": [{"type": "text", "text": "plain"}]}]


def test_make_backend(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    backend = make_backend(f"openai:{server.base_url}#Qwen/Qwen2.5-VL-7B-Instruct", concurrency=2)
    assert isinstance(backend, OpenAIBackend)
    assert (backend.base_url, backend.model, backend.concurrency) == (server.base_url, "Qwen/Qwen2.5-VL-7B-Instruct", 2)
    assert backend.client.api_key == "from-env"
    for spec in ("openai:http://127.0.0.1:8000/v1", "openai:#model"):
        with pytest.raises(ValueError, match="expected"):
            make_backend(spec)
    for spec in ("transformers:/no/such/ckpt", "/no/such/ckpt"):  # both mean in-process transformers
        with pytest.raises(FileNotFoundError, match="/no/such/ckpt: not a model folder"):
            make_backend(spec)


# -- VLLMBackend, against a fake vllm module -------------------------------------------------------------------------
IMAGE_BLOCK = "<|vision_start|><|image_pad|><|vision_end|>"
VIDEO_BLOCK = "<|vision_start|><|video_pad|><|vision_end|>"
EXPERT = "You are a spatial reasoning expert."


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeLLM:
    """Records its constructor kwargs and every `generate` call; answers "answer to <user text>" per request."""

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []

    def generate(self, requests, sampling_params=None, **kwargs):
        self.calls.append((requests, sampling_params))
        questions = [request["prompt"].rsplit("<|im_start|>user\n", 1)[1].split("<|im_end|>")[0]
                     for request in requests]
        return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"answer to {question.split('>')[-1]}")])
                for question in questions]


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams = FakeLLM, FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def image_file(path, size):
    Image.new("RGB", size, (0, 128, 255)).save(path)
    return path


def test_vllm_requests_prompts_media_and_sampling(fake_vllm, tiny_folder, tmp_path):
    budget = MediaBudget(image_min_pixels=4 * 784, image_max_pixels=16 * 784, video_fps=2.0, video_min_pixels=784)
    backend = VLLMBackend(str(tiny_folder), media=budget, gpu_memory_utilization=0.5, max_model_len=4096)
    assert backend.llm.kwargs == {"model": str(tiny_folder), "limit_mm_per_prompt": {"image": 8, "video": 1},
                                  "gpu_memory_utilization": 0.5, "max_model_len": 4096}
    images = [png_bytes((64, 48), (255, 0, 0)), image_file(tmp_path / "big.png", (400, 300)),
              image_file(tmp_path / "small.png", (20, 20))]
    video_path = write_video(tmp_path / "clip.mp4")  # 8 frames at 4 fps
    prompts = [
        Prompt(text="Which is closer?", images=images, system=EXPERT),
        Prompt(text="How many chairs?", video=video_path),
        Prompt(text="plain"),
    ]
    responses = backend.generate(prompts, max_new_tokens=16, temperature=0.1, top_p=0.001, repetition_penalty=1.05)

    assert responses == ["answer to Which is closer?", "answer to How many chairs?", "answer to plain"]
    (requests, sampling), = backend.llm.calls  # one batched call
    # only the given optional fields: top_k and seed stay vLLM's defaults
    assert sampling.kwargs == {"max_tokens": 16, "temperature": 0.1, "top_p": 0.001, "repetition_penalty": 1.05}

    image_request, video_request, text_request = requests
    assert image_request["prompt"].count(IMAGE_BLOCK) == 3 and "<|video_pad|>" not in image_request["prompt"]
    assert image_request["prompt"].startswith(f"<|im_start|>system\n{EXPERT}<|im_end|>")
    assert image_request["prompt"].endswith(f"{IMAGE_BLOCK * 3}Which is closer?<|im_end|>\n<|im_start|>assistant\n")
    sent = image_request["multi_modal_data"]["image"]
    assert [image.size for image in sent] == [(56, 56), (112, 84), (56, 56)]  # shrunk to <= 16·784, grown to >= 4·784
    for image in sent:
        assert image.mode == "RGB" and image.width % 28 == 0 and image.height % 28 == 0
        assert budget.image_min_pixels <= image.width * image.height <= budget.image_max_pixels
    assert [image.size for image in sent] == [load_image(image, 4 * 784, 16 * 784).size for image in images]
    assert sent[0].getpixel((28, 28))[0] > 200  # the red one first: order kept
    assert image_request["mm_processor_kwargs"] == {"do_resize": False}  # vLLM must not resize again

    assert video_request["prompt"].count(VIDEO_BLOCK) == 1 and "<|image_pad|>" not in video_request["prompt"]
    assert "You are a helpful assistant." in video_request["prompt"]  # the template's default system prompt
    frames = video_request["multi_modal_data"]["video"]
    expected = np.stack([np.asarray(frame) for frame in load_video(video_path, budget)])
    assert frames.dtype == np.uint8 and frames.shape == expected.shape and frames.shape[0] == 4  # 2 s at 2 fps
    assert np.array_equal(frames, expected)
    # 4 of 8 frames at 4 fps: sampled at 2 fps, the rate Qwen2.5-VL needs for its temporal positions
    assert video_request["mm_processor_kwargs"] == {"do_resize": False, "fps": 2.0}

    assert text_request == {"prompt": text_request["prompt"]}  # no media, no processor kwargs
    assert text_request["prompt"].count("<|vision_start|>") == 0


def test_vllm_media_budget_per_call(fake_vllm, tiny_folder, tmp_path):
    backend = VLLMBackend(str(tiny_folder))  # default budget: 2 fps
    video_path = write_video(tmp_path / "clip.mp4")
    budget = MediaBudget(video_frames=3, video_min_pixels=784)  # a benchmark's MEDIA_BUDGET[protocol]
    responses = backend.generate([Prompt(text="count", video=video_path)], media=budget, seed=7, top_k=1)
    assert responses == ["answer to count"]
    backend.generate([Prompt(text="count", video=video_path)])

    (by_count, sampling), (by_default, _) = backend.llm.calls
    assert sampling.kwargs == {"max_tokens": 256, "temperature": 0.0, "top_k": 1, "seed": 7}
    frames = by_count[0]["multi_modal_data"]["video"]
    assert np.array_equal(frames, np.stack([np.asarray(frame) for frame in load_video(video_path, budget)]))
    assert frames.shape[0] == 3 and by_count[0]["mm_processor_kwargs"]["fps"] == 1.5  # 3 of 8 frames at 4 fps
    assert by_default[0]["multi_modal_data"]["video"].shape[0] == 4
    assert by_default[0]["mm_processor_kwargs"]["fps"] == 2.0

    # a list of frames has no timing: it keeps every frame and counts as the budget's fps
    listed = [Image.new("RGB", (64, 48), (grey, grey, grey)) for grey in (0, 60, 120, 180, 240, 250)]
    backend.generate([Prompt(text="frames", video=listed)], media=MediaBudget(video_fps=4.0, video_min_pixels=784))
    request = backend.llm.calls[-1][0][0]
    assert request["multi_modal_data"]["video"].shape[0] == 6 and request["mm_processor_kwargs"]["fps"] == 4.0


def test_vllm_bad_prompts_name_the_item(fake_vllm, tiny_folder, tmp_path):
    backend = VLLMBackend(str(tiny_folder), limit_mm_per_prompt={"image": 2, "video": 0})
    assert backend.llm.kwargs["limit_mm_per_prompt"] == {"image": 2, "video": 0}
    three = [png_bytes((64, 48), (255, 0, 0))] * 3
    with pytest.raises(BackendError, match=r"item 1 \('many'\): 3 image\(s\), over .*limit_mm_per_prompt"):
        backend.generate([Prompt(text="ok"), Prompt(text="many", images=three)])
    with pytest.raises(BackendError, match=r"item 0 \('clip'\): 1 video\(s\), over"):
        backend.generate([Prompt(text="clip", video=write_video(tmp_path / "clip.mp4"))])
    with pytest.raises(BackendError, match=r"item 1 \('where'\): cannot prepare media: .*gone.png"):
        backend.generate([Prompt(text="ok"), Prompt(text="where", images=[tmp_path / "gone.png"])])
    assert backend.llm.calls == []  # nothing reaches the engine when a prompt is bad
    assert backend.generate([]) == [] and backend.llm.calls == []


def test_make_backend_vllm(fake_vllm, tiny_folder):
    backend = make_backend(f"vllm:{tiny_folder}", max_model_len=2048)
    assert isinstance(backend, VLLMBackend)
    assert backend.llm.kwargs["model"] == str(tiny_folder) and backend.llm.kwargs["max_model_len"] == 2048
    with pytest.raises(FileNotFoundError, match="/no/such/ckpt: not a model folder"):
        make_backend("vllm:/no/such/ckpt")


def test_vllm_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now fails as on a machine without it
    with pytest.raises(ImportError) as raised:
        make_backend("vllm:/ckpt")
    assert str(raised.value) == ("vllm is not installed: pip install vllm on a GPU machine, or serve the model with "
                                 "`vllm serve` and use openai:<url>#<model>")
    assert str(raised.value) == VLLM_MISSING
