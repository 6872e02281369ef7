"""Model clients shared by every layer that asks a model something: the `Prompt` a client takes, the `Backend`
protocol every client follows, and the OpenAI-compatible chat client (`vllm serve`, SGLang, hosted APIs).

The data engine's teacher (VST-R distillation), evaluation and inference all send prompts through these. The
in-process clients (transformers, vLLM) need the model layer's processing and live in `vst.eval.backends`.
"""

from __future__ import annotations

import base64
import io
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from vst.common.media import MediaBudget, load_image, load_video


@dataclass
class Prompt:
    text: str  # the user message; media placeholders are added by the model processor
    images: list[Any] = field(default_factory=list)  # paths or bytes of images, in order
    video: Any = None  # path or bytes of a video, or a list of frames
    system: str | None = None


JPEG_QUALITY = 95
RETRYABLE_STATUS = (408, 409, 429)  # plus every 5xx


class BackendError(RuntimeError):
    """A request that failed for good (after retries); the message names the item."""


class Backend(Protocol):
    def generate(
        self,
        prompts: list[Prompt],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float | None = None,
        top_k: int | None = None,
        repetition_penalty: float | None = None,
        seed: int | None = None,
        media: MediaBudget | None = None,
    ) -> list[str]:
        """One raw response text per prompt, in order. Sampling arguments left as None keep the backend's default;
        `media` overrides the backend's media budget for this call (a benchmark's per-protocol MEDIA_BUDGET)."""
        ...


def jpeg_data_url(image: Image.Image, quality: int = JPEG_QUALITY) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def prompt_images(prompt: Prompt, budget: MediaBudget) -> list[Image.Image]:
    """The images a prompt shows, in order: its images, then its video's sampled frames, all resized to the budget."""
    images = [load_image(image, budget.image_min_pixels, budget.image_max_pixels) for image in prompt.images]
    if prompt.video is not None:
        images += load_video(prompt.video, budget)
    return images


def chat_messages(prompt: Prompt, budget: MediaBudget = MediaBudget()) -> list[dict[str, Any]]:
    """OpenAI chat messages for a prompt: the system message when given, then one user message whose content is the
    images as JPEG data-URL `image_url` parts followed by the text (media first, as Qwen's own chat examples do)."""
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": jpeg_data_url(image)}} for image in prompt_images(prompt, budget)
    ]
    content.append({"type": "text", "text": prompt.text})
    messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
    return messages + [{"role": "user", "content": content}]


def describe_prompt(index: int, prompt: Prompt) -> str:
    """`item 3 ('How far …')`: how an error names the prompt it is about."""
    text = " ".join(prompt.text.split())
    return f"item {index} ({text[:60]!r}{'...' if len(text) > 60 else ''})"


class Deadline(TimeoutError):
    """A request that did not complete within the backend's `timeout_s` (the whole request, not one read)."""


def _is_retryable(error: Exception) -> bool:
    import openai

    if isinstance(error, (Deadline, ValueError)):  # too slow, or a garbled body: worth another try
        return True
    if isinstance(error, openai.APIConnectionError):  # includes timeouts
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRYABLE_STATUS or error.status_code >= 500
    return False


class OpenAIBackend:
    """Any OpenAI-compatible chat completions endpoint: `vllm serve`, SGLang, hosted APIs.

    Images are sent as base64 JPEG data-URL `image_url` parts, resized first by `media` (Qwen's smart_resize;
    `generate(..., media=)` overrides it per call).
    Videos are NOT sent as video: they are sampled into frames (vst.common.media, by `media.video_fps` or
    `media.video_frames`) and sent as that many images, which every endpoint accepts. A Qwen2.5-VL model therefore
    sees frames as separate images, not as one video with temporal patches, which can move video scores a little
    against in-process video input.

    Requests run `concurrency` at a time. Each attempt has a `timeout_s` limit on the whole request (not per read),
    so nothing hangs; connection errors, timeouts,
    408/409/429 and 5xx answers are retried `retries` times with exponential back-off (`backoff_s` · 2^attempt).
    Any other failure, or the last retry, raises BackendError naming the item. top_k, repetition_penalty are vLLM
    extensions sent in the request body only when given (hosted APIs may reject them).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        concurrency: int = 8,
        retries: int = 3,
        backoff_s: float = 1.0,
        timeout_s: float = 300.0,
        media: MediaBudget = MediaBudget(),
    ):
        if concurrency < 1 or retries < 0 or timeout_s <= 0:
            raise ValueError("concurrency must be >= 1, retries >= 0 and timeout_s > 0")
        import openai  # optional dependency: only this backend needs it

        self.base_url, self.model, self.media, self.timeout_s = base_url, model, media, timeout_s
        self.concurrency, self.retries, self.backoff_s = concurrency, retries, backoff_s
        # The client's own retries are off: ours name the item and follow the policy above.
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=timeout_s,
            max_retries=0,
        )

    def generate(
        self,
        prompts: list[Prompt],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float | None = None,
        top_k: int | None = None,
        repetition_penalty: float | None = None,
        seed: int | None = None,
        media: MediaBudget | None = None,
    ) -> list[str]:
        request: dict[str, Any] = {"model": self.model, "max_tokens": max_new_tokens, "temperature": temperature}
        if top_p is not None:
            request["top_p"] = top_p
        if seed is not None:
            request["seed"] = seed
        extra = {name: value for name, value in (("top_k", top_k), ("repetition_penalty", repetition_penalty))
                 if value is not None}
        if extra:
            request["extra_body"] = extra
        if not prompts:
            return []
        executor = ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)))
        try:
            budget = media or self.media
            futures = [executor.submit(self._complete, index, prompt, request, budget)
                       for index, prompt in enumerate(prompts)]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = sorted((future for future in done if future.exception()), key=futures.index)
            if failed:
                raise failed[0].exception()
            return [future.result() for future in futures]
        finally:
            # On failure, queued requests are dropped; running ones end by their own timeout in the background.
            executor.shutdown(wait=False, cancel_futures=True)

    def _attempt(self, messages: list[dict[str, Any]], request: dict[str, Any]):
        """One request, bounded as a whole by `timeout_s`: the HTTP client's timeout bounds each read, so a server
        that sends a byte a second would otherwise hold the request forever. The call runs in a daemon thread; past
        the deadline it is abandoned (it ends with its connection) and `Deadline` is raised."""
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["response"] = self.client.chat.completions.create(messages=messages, **request)
            except BaseException as error:  # handed to the caller's thread
                outcome["error"] = error

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        thread.join(self.timeout_s)
        if thread.is_alive():
            raise Deadline(f"no complete answer within {self.timeout_s:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    def _complete(self, index: int, prompt: Prompt, request: dict[str, Any], budget: MediaBudget) -> str:
        try:
            messages = chat_messages(prompt, budget)
        except (OSError, ValueError, TypeError) as error:
            raise BackendError(f"{describe_prompt(index, prompt)}: cannot prepare media: {error}") from error
        import openai

        attempt = 0
        while True:
            try:
                response = self._attempt(messages, request)
                break
            except (openai.APIError, Deadline, ValueError) as error:  # ValueError: a body that is not JSON
                if attempt < self.retries and _is_retryable(error):
                    time.sleep(self.backoff_s * 2**attempt)
                    attempt += 1
                    continue
                tries = f"after {attempt + 1} attempt{'s' if attempt else ''}"
                raise BackendError(f"{describe_prompt(index, prompt)}: request to {self.base_url} failed {tries}: "
                                   f"{type(error).__name__}: {error}") from error
        if not getattr(response, "choices", None):
            raise BackendError(f"{describe_prompt(index, prompt)}: {self.base_url} answered with no choices")
        return response.choices[0].message.content or ""
