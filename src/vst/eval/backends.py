"""Model backends: prompts (vst.eval.benchmarks.registry.Prompt) in, raw response texts out, in the same order.

Backends are chosen by a spec string (`make_backend`):

    openai:<base_url>#<model>     any OpenAI-compatible chat endpoint, e.g.
                                  openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct  (after `vllm serve`)
                                  the API key comes from `api_key=` or $OPENAI_API_KEY ("EMPTY" when neither is set)
    transformers:<checkpoint>     in-process Hugging Face generation (CPU or GPU); a bare `tiny`, checkpoint folder
                                  or hub id means the same
    vllm:<checkpoint>             in-process vLLM engine (GPU; needs `pip install vllm`): a checkpoint folder, hub id or
                                  `tiny`; keyword options go to `vllm.LLM`
"""

from __future__ import annotations

import base64
import io
import os
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from vst.eval.benchmarks.registry import Prompt
from vst.eval.media import MediaBudget, load_image, load_video, read_video_info

JPEG_QUALITY = 95
RETRYABLE_STATUS = (408, 409, 429)  # plus every 5xx
VLLM_MISSING = ("vllm is not installed: pip install vllm on a GPU machine, or serve the model with `vllm serve` "
                "and use openai:<url>#<model>")
VLLM_MM_LIMITS = {"image": 8, "video": 1}  # per prompt; vLLM reserves memory for this many items


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


def video_frames_and_fps(video: Any, budget: MediaBudget) -> tuple[np.ndarray, float]:
    """(frames (T, H, W, 3) uint8, sampled fps) of a video under `budget`, frames as `vst.eval.media.load_video` gives.

    The sampled fps is qwen-vl-utils' `frames kept / frames in the source * source fps`; Qwen2.5-VL turns it into
    `second_per_grid_ts`, the time between its temporal patches. A list of frames has no timing and counts as
    `budget.video_fps`, as in `vst.models.processing.load_video`.
    """
    frames = np.stack([np.asarray(frame) for frame in load_video(video, budget)])
    if isinstance(video, (list, tuple)):
        return frames, budget.video_fps
    total, source_fps = read_video_info(video)
    return frames, len(frames) / total * source_fps if source_fps > 0 else budget.video_fps


class VLLMBackend:
    """In-process offline generation with a vLLM engine (`vllm.LLM`, GPU), all prompts in one `generate` call.

    Prompt text comes from the checkpoint's own processor chat template (`TransformersBackend.messages`), so image and
    video placeholders match what the model was trained on. Media are prepared here, by `media`
    (`generate(..., media=)` overrides it per call): images resized by Qwen's smart_resize, videos sampled into frames
    (vst.eval.media) and sent as one video (T, H, W, 3), not as separate images. Each request carries
    `mm_processor_kwargs` `do_resize=False`, so vLLM's Hugging Face processor does not resize a second time (frames
    under its default minimum would otherwise grow), and the sampled `fps`, from which Qwen2.5-VL places frames in time.

    That fps kwarg is what Qwen's own vLLM recipe passes and what transformers 4.x Qwen2.5-VL processors read. The
    transformers 5 processor reads fps only from per-video metadata (it ignores the kwarg and assumes 24 fps: checked
    with 5.24), and vLLM's Qwen2.5-VL input parser passes no metadata (only models declaring `video_needs_metadata`,
    such as Qwen3-VL, get it); on such a stack temporal positions are off. `limit_mm_per_prompt` defaults to
    VLLM_MM_LIMITS; a prompt over it raises BackendError naming the item. Other keyword options go to `vllm.LLM`
    (`max_model_len`, `gpu_memory_utilization`, `tensor_parallel_size`, ...).
    """

    def __init__(
        self,
        checkpoint: str,
        *,
        media: MediaBudget = MediaBudget(),
        limit_mm_per_prompt: dict[str, int] | None = None,
        cache: str | None = None,
        **options: Any,
    ):
        try:
            from vllm import LLM
        except ImportError as error:
            raise ImportError(VLLM_MISSING) from error
        from transformers import AutoProcessor

        from vst.models.loading import resolve

        source = resolve(checkpoint, cache)
        looks_local = source.startswith((".", "/", "~")) or Path(source).exists()
        if looks_local and not (Path(source).expanduser() / "config.json").is_file():
            raise FileNotFoundError(f"{source}: not a model folder (no config.json); give a save_pretrained folder, "
                                    "a hub id or 'tiny'")
        self.checkpoint, self.media = source, media
        self.limits = dict(limit_mm_per_prompt or VLLM_MM_LIMITS)
        self.processor = AutoProcessor.from_pretrained(source)
        self.llm = LLM(model=source, limit_mm_per_prompt=self.limits, **options)

    def request(self, index: int, prompt: Prompt, budget: MediaBudget) -> dict[str, Any]:
        """One vLLM prompt dict: `prompt` (chat template text), `multi_modal_data`, `mm_processor_kwargs`."""
        counts = {"image": len(prompt.images), "video": int(prompt.video is not None)}
        for modality, count in counts.items():  # a modality left out of the limits is vLLM's to judge
            if count > self.limits.get(modality, count):
                raise BackendError(f"{_describe(index, prompt)}: {count} {modality}(s), over the engine's "
                                   f"limit_mm_per_prompt {self.limits}; build the backend with a larger limit")
        text = self.processor.apply_chat_template(TransformersBackend.messages(prompt), tokenize=False,
                                                  add_generation_prompt=True)
        request: dict[str, Any] = {"prompt": text}
        try:
            data: dict[str, Any] = {}
            if prompt.images:
                data["image"] = [load_image(image, budget.image_min_pixels, budget.image_max_pixels)
                                 for image in prompt.images]
            if prompt.video is not None:
                data["video"], fps = video_frames_and_fps(prompt.video, budget)
        except (OSError, ValueError, TypeError) as error:
            raise BackendError(f"{_describe(index, prompt)}: cannot prepare media: {error}") from error
        if data:
            request["multi_modal_data"] = data
            request["mm_processor_kwargs"] = {"do_resize": False, **({"fps": fps} if "video" in data else {})}
        return request

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
        from vllm import SamplingParams

        if not prompts:
            return []
        budget = media or self.media
        requests = [self.request(index, prompt, budget) for index, prompt in enumerate(prompts)]
        optional = {"top_p": top_p, "top_k": top_k, "repetition_penalty": repetition_penalty, "seed": seed}
        sampling = SamplingParams(max_tokens=max_new_tokens, temperature=temperature,
                                  **{name: value for name, value in optional.items() if value is not None})
        outputs = self.llm.generate(requests, sampling_params=sampling, use_tqdm=False)  # in request order
        if len(outputs) != len(prompts):
            raise BackendError(f"vLLM answered {len(outputs)} of {len(prompts)} prompts")
        return [output.outputs[0].text for output in outputs]


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
