"""Model backends: prompts (vst.eval.benchmarks.registry.Prompt) in, raw response texts out, in the same order.

Backends are chosen by a spec string (`make_backend`):

    openai:<base_url>#<model>     any OpenAI-compatible chat endpoint, e.g.
                                  openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct  (after `vllm serve`)
                                  the API key comes from `api_key=` or $OPENAI_API_KEY ("EMPTY" when neither is set)
    transformers:<checkpoint>     in-process Hugging Face generation (CPU or GPU); a bare `tiny`, checkpoint folder
                                  or hub id means the same
    vllm:<checkpoint>             in-process vLLM engine (not implemented yet)
"""

from __future__ import annotations

import base64
import io
import os
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Protocol

from PIL import Image

from vst.eval.benchmarks.registry import Prompt
from vst.eval.media import MediaBudget, load_image, load_video

JPEG_QUALITY = 95
RETRYABLE_STATUS = (408, 409, 429)  # plus every 5xx
NOT_IMPLEMENTED = (
    "{name} lands with the training stage's model processing (vst.models.processing, the one place prompts become "
    "tensors). Until then, serve the checkpoint with `vllm serve <checkpoint>` and use the backend "
    "'openai:http://127.0.0.1:8000/v1#<checkpoint>'."
)


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


def _describe(index: int, prompt: Prompt) -> str:
    text = " ".join(prompt.text.split())
    return f"item {index} ({text[:60]!r}{'...' if len(text) > 60 else ''})"


def _is_retryable(error: Exception) -> bool:
    import openai

    if isinstance(error, openai.APIConnectionError):  # includes timeouts
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRYABLE_STATUS or error.status_code >= 500
    return False


class OpenAIBackend:
    """Any OpenAI-compatible chat completions endpoint: `vllm serve`, SGLang, hosted APIs.

    Images are sent as base64 JPEG data-URL `image_url` parts, resized first by `media` (Qwen's smart_resize;
    `generate(..., media=)` overrides it per call).
    Videos are NOT sent as video: they are sampled into frames (vst.eval.media, by `media.video_fps` or
    `media.video_frames`) and sent as that many images, which every endpoint accepts. A Qwen2.5-VL model therefore
    sees frames as separate images, not as one video with temporal patches, which can move video scores a little
    against in-process video input.

    Requests run `concurrency` at a time. Each has a `timeout_s` limit, so nothing hangs; connection errors, timeouts,
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

        self.base_url, self.model, self.media = base_url, model, media
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

    def _complete(self, index: int, prompt: Prompt, request: dict[str, Any], budget: MediaBudget) -> str:
        try:
            messages = chat_messages(prompt, budget)
        except (OSError, ValueError, TypeError) as error:
            raise BackendError(f"{_describe(index, prompt)}: cannot prepare media: {error}") from error
        import openai

        attempt = 0
        while True:
            try:
                response = self.client.chat.completions.create(messages=messages, **request)
                break
            except openai.APIError as error:
                if attempt < self.retries and _is_retryable(error):
                    time.sleep(self.backoff_s * 2**attempt)
                    attempt += 1
                    continue
                tries = f"after {attempt + 1} attempt{'s' if attempt else ''}"
                raise BackendError(f"{_describe(index, prompt)}: request to {self.base_url} failed {tries}: "
                                   f"{type(error).__name__}: {error}") from error
        if not response.choices:
            raise BackendError(f"{_describe(index, prompt)}: {self.base_url} answered with no choices")
        return response.choices[0].message.content or ""


class TransformersBackend:
    """In-process batched generation with a Hugging Face checkpoint (or `tiny`), on CPU or GPU.

    Prompts become tensors only in `vst.models.processing` (the same code training uses); batches are left-padded.
    Videos go to the model as videos (not frames as images), under the protocol's media budget when one is given.
    """

    def __init__(self, checkpoint: str, device: str | None = None, dtype: str = "auto", cache: str | None = None):
        import torch

        from vst.models.loading import load_model

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.processor = load_model(checkpoint, device=self.device, dtype=dtype, cache=cache)

    @staticmethod
    def messages(prompt: Prompt) -> list[dict]:
        content: list[dict] = [{"type": "image", "image": image} for image in prompt.images]
        if prompt.video is not None:
            content.append({"type": "video", "video": prompt.video})
        content.append({"type": "text", "text": prompt.text})
        system = [{"role": "system", "content": prompt.system}] if prompt.system else []
        return [*system, {"role": "user", "content": content}]

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
        import torch

        from vst.models.processing import Budgets, encode_for_generation

        budgets = Budgets()
        if media is not None:  # the benchmark protocol's budget, e.g. VST's VSI-Bench setting (fps 4, 8192 tokens)
            budgets = Budgets(
                image_min_pixels=media.image_min_pixels,
                image_max_pixels=media.image_max_pixels,
                video_fps=media.video_fps,
                video_min_pixels=media.video_min_pixels,
                total_pixels=media.video_total_pixels,
                video_max_frames=media.video_frames,
            )
        batch = encode_for_generation([self.messages(p) for p in prompts], self.processor, budgets).to(self.device)
        if seed is not None:
            torch.manual_seed(seed)
        sampling: dict[str, Any] = {"do_sample": temperature > 0}
        if temperature > 0:
            sampling.update(temperature=temperature, **({"top_p": top_p} if top_p else {}), **({"top_k": top_k} if top_k else {}))
        if repetition_penalty:
            sampling["repetition_penalty"] = repetition_penalty
        with torch.inference_mode():
            output = self.model.generate(**batch, max_new_tokens=max_new_tokens, **sampling)
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)


class VLLMBackend:
    """In-process offline generation with a vLLM engine (GPU), multimodal inputs built by the model processing.
    Lands with the training stage's model processing (vst.models.processing); not implemented."""

    def __init__(self, checkpoint: str, **options: Any):
        raise NotImplementedError(NOT_IMPLEMENTED.format(name="VLLMBackend"))

    def generate(self, prompts: list[Prompt], **sampling: Any) -> list[str]:
        raise NotImplementedError(NOT_IMPLEMENTED.format(name="VLLMBackend"))


BACKEND_KINDS = ("openai", "transformers", "vllm")


def make_backend(spec: str, **options: Any) -> Backend:
    """A backend from a spec string (module docstring); `options` go to the backend's constructor."""
    kind, separator, target = spec.partition(":")
    if not separator or kind not in BACKEND_KINDS:  # "tiny", a checkpoint folder or a hub id: in-process transformers
        return TransformersBackend(spec, **options)
    if not target:
        raise ValueError(f"backend {spec!r}: expected KIND:TARGET with KIND one of {', '.join(BACKEND_KINDS)}, "
                         "e.g. 'openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct'")
    if kind == "openai":
        base_url, separator, model = target.rpartition("#")
        if not separator or not base_url or not model:
            raise ValueError(f"backend {spec!r}: expected openai:<base_url>#<model>, "
                             "e.g. 'openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct'")
        return OpenAIBackend(base_url, model, **options)
    if kind == "transformers":
        return TransformersBackend(target, **options)
    return VLLMBackend(target, **options)
