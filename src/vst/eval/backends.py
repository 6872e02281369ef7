"""Model backends: prompts (vst.common.clients.Prompt) in, raw response texts out, in the same order.

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

from pathlib import Path
from typing import Any

import numpy as np

from vst.common.clients import Backend, BackendError, OpenAIBackend, Prompt, describe_prompt
from vst.common.media import MediaBudget, load_image, load_video, read_video_info

VLLM_MISSING = ("vllm is not installed: pip install vllm on a GPU machine, or serve the model with `vllm serve` "
                "and use openai:<url>#<model>")
VLLM_MM_LIMITS = {"image": 8, "video": 1}  # per prompt; vLLM reserves memory for this many items


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
    """(frames (T, H, W, 3) uint8, sampled fps) of a video under `budget`, frames as `vst.common.media.load_video` gives.

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
    (vst.common.media) and sent as one video (T, H, W, 3), not as separate images. Each request carries
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
                raise BackendError(f"{describe_prompt(index, prompt)}: {count} {modality}(s), over the engine's "
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
            raise BackendError(f"{describe_prompt(index, prompt)}: cannot prepare media: {error}") from error
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
