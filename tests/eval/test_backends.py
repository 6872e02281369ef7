"""OpenAIBackend against a fake OpenAI-compatible server on 127.0.0.1 (a random free port, in a thread)."""

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import numpy as np
import pytest
from PIL import Image

from vst.eval.backends import (
    BackendError,
    OpenAIBackend,
    chat_messages,
    make_backend,
)
from vst.eval.benchmarks.registry import Prompt
from vst.eval.media import MediaBudget

SYSTEM = "You are a helpful assistant."
JPEG_PREFIX = "data:image/jpeg;base64,"


class FakeServer:
    """Canned chat completions: answers "<n> images: <text>"; the first `fail_first` requests get a 500.

    Prompt texts steer it: "ALWAYS_FAIL" -> 500 every time, "BAD" -> 400, "SLOW" -> no answer until the test ends.
    """

    def __init__(self, fail_first=0):
        self.requests, self.fail_first, self.lock, self.release = [], fail_first, threading.Lock(), threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append((self.path, body))
                    failing = server.fail_first > 0
                    server.fail_first -= failing
                text = body["messages"][-1]["content"][-1]["text"]
                images = sum(part["type"] == "image_url" for part in body["messages"][-1]["content"])
                if "SLOW" in text:
                    server.release.wait(30)
                    return
                if failing or "ALWAYS_FAIL" in text:
                    return self.reply(500, {"error": {"message": "overloaded", "type": "server_error"}})
                if "BAD" in text:
                    return self.reply(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
                message = {"role": "assistant", "content": f"{images} images: {text}"}
                self.reply(200, {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

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
    with pytest.raises(BackendError, match=r"item 0 .*after 2 attempts.*APITimeoutError"):
        backend_for(server, retries=1, timeout_s=0.3).generate([Prompt(text="SLOW answer")])


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
    with pytest.raises(NotImplementedError, match="VLLMBackend lands with the training stage"):
        make_backend("vllm:/ckpt")
