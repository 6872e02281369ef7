"""VST stage 3 RL: GRPO/DAPO with TRL's `GRPOTrainer`, media through our processing path, VST's online filtering.

Flow: `load_config` (sft's loader with `VSTGRPOConfig`) -> `train_rl`: shards -> `grpo_shards` (memory-mapped;
`grpo_dataset` for rows in memory; one prompt row per sample: chat messages with media bytes inline, plus its
`reward` and `answer` JSON) ->
`VSTGRPOTrainer` with one reward function, `vst_reward`, that dispatches on each row's `reward.fn` to
`vst.common.rewards` -> a `save_pretrained` folder that `vst.models.loading.load_model` reads back.

Defaults follow spec paper.md §4.3 (VST's EasyR1 run): clip 0.2 low / 0.28 high (DAPO clip-higher), KL off
(`beta=0`), n=5 rollouts per prompt at temperature 1.0 / top_p 1.0, 2048-token responses, lr 1e-6 constant, weight
decay 1e-2, token-level loss averaging (TRL's "dapo" loss), online filtering of prompt groups whose mean reward is
<= 0.01 or >= 0.99. TRL settings follow spec training.md §3.4, §3.5, §7.3 and §7.5.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from trl import GRPOConfig, GRPOTrainer
from trl.extras.profiling import profiling_context

from vst.data.sample import Sample
from vst.data.shards import read_samples
from vst.models.processing import (THINKING_SYSTEM_PROMPT, Budgets, collapse_placeholders, encode_for_generation,
                                   media_factor, prompt_messages, vllm_media)
from vst.common import rewards as vst_rewards
from vst.train.curves import RL_KEYS
from vst.train.sft import (CheckpointResumeMixin, VitLrMixin, VSTSFTConfig, expand_shards, files_fingerprint,
                           save_run, uniform_vision)
from vst.train.sft import load_config as _load_config

logger = logging.getLogger(__name__)

# Processor outputs that carry one prompt's pixels; all are concatenated over rows (not padded).
MEDIA_KEYS = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts")
# Rewards whose prompts keep the default system prompt (VST: the thinking prompt goes in the system turn, except for
# 3D boxes, spec paper.md §4.3).
NO_THINK_REWARDS = ("boxes3d",)


@dataclass
class VSTGRPOConfig(GRPOConfig):
    """TRL's `GRPOConfig` plus the vst fields below; YAML keys are TRL's own names.

    Defaults that differ from TRL 1.16 (VST, spec paper.md §4.3): `epsilon_high` 0.28 (clip-higher; `epsilon` 0.2 and
    `beta` 0.0, KL off, are TRL's defaults too, restated), `num_generations` 5 (so `per_device_train_batch_size` 10,
    a multiple), `max_completion_length` 2048,
    `lr_scheduler_type` "constant", `weight_decay` 0.01. `learning_rate` (1e-6), `temperature` (1.0), `top_p` (1.0),
    `loss_type` "dapo" (token-level averaging) and `max_grad_norm` (1.0) already match.
    """

    epsilon: float = field(default=0.2, metadata={"help": "Lower clip of the probability ratio (VST clip_ratio_low)."})
    epsilon_high: float | None = field(
        default=0.28, metadata={"help": "Upper clip of the probability ratio (VST clip_ratio_high, DAPO clip-higher)."}
    )
    beta: float = field(default=0.0, metadata={"help": "KL coefficient; 0 turns KL off as in VST's run."})
    temperature: float = field(default=1.0, metadata={"help": "Rollout sampling temperature."})
    num_generations: int | None = field(default=5, metadata={"help": "Rollouts per prompt (VST n=5)."})
    max_completion_length: int | None = field(default=2048, metadata={"help": "Response-length cap in tokens."})
    per_device_train_batch_size: int = field(
        default=10, metadata={"help": "Rollouts per device step; a multiple of num_generations (2 prompts x 5)."}
    )
    lr_scheduler_type: str = field(default="constant", metadata={"help": "EasyR1 default: constant learning rate."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (VST 1e-2)."})

    # vst fields
    shards: list[str] = field(default_factory=list, metadata={"help": "Parquet shards of Samples to train on."})
    model_name_or_path: str = field(
        default="tiny",
        metadata={"help": "Policy to train: 'tiny'/'tiny-small' (offline), a save_pretrained folder or a hub id."},
    )
    vit_lr: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the visual parameters (see vit_lr_scope); None uses learning_rate."},
    )
    vit_lr_scope: str = field(
        default="visual", metadata={"help": "Which parameters take vit_lr: 'visual' (the merger included, as VST) or "
                                    "'tower' (the merger at learning_rate)."})
    online_filtering: bool = field(default=True, metadata={"help": "Drop prompt groups by mean reward (VST)."})
    filter_low: float = field(default=0.01, metadata={"help": "Drop a group whose mean reward is <= this."})
    filter_high: float = field(default=0.99, metadata={"help": "Drop a group whose mean reward is >= this."})
    resample_rounds: int = field(
        default=8,
        metadata={"help": "Online filtering: rounds of fresh prompts rolled out to refill dropped groups (VST "
                          "max_try_make_batch); 0 lets the step's batch shrink, -1 refills until full (VST's -1)."},
    )
    rank_uniform_vision: bool | None = field(
        default=None, metadata={"help": "One vision-tower call per forward on every rank (vst.models.vision), in "
                                "rollouts and log-prob passes alike; None: on when training on more than one process."})
    image_min_pixels: int = field(default=262144, metadata={"help": "Min pixels of one image (VST RL: 512^2)."})
    image_max_pixels: int = field(default=3211264, metadata={"help": "Max pixels of one image (VST RL)."})
    max_seq_len: int = field(default=8192, metadata={"help": "Prompt token budget (VST max_prompt_length)."})
    video_total_pixels: int | None = field(
        default=None, metadata={"help": "Pixel budget of a video or image set; None: max_seq_len * 28^2 * 0.8."}
    )
    video_min_pixels: int = field(default=Budgets.video_min_pixels, metadata={"help": "Min pixels of a video frame."})
    video_fps: float = field(default=2.0, metadata={"help": "Video sampling rate, frames per second."})
    video_max_frames: int | None = field(default=None, metadata={"help": "Frame cap; None derives it from budgets."})

    budgets = VSTSFTConfig.budgets


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> VSTGRPOConfig:
    """A `VSTGRPOConfig` from YAML then `key=value` overrides (`vst.train.sft.load_config`, same rules and errors)."""
    return _load_config(path, overrides, config_class=VSTGRPOConfig)


# -- dataset ---------------------------------------------------------------------------------------------------------
_ITEM_KEYS = ("type", "text", "image", "video")


def _uniform(messages: list[dict]) -> list[dict]:
    """Messages whose content items all have the keys type/text/image/video (None when absent): Arrow needs one
    struct type per column. Media paths are read into bytes for the same reason."""
    out = []
    for message in messages:
        items = []
        for item in message["content"]:
            row = {key: item.get(key) for key in _ITEM_KEYS}
            for key in ("image", "video"):
                if isinstance(row[key], str):
                    row[key] = Path(row[key]).read_bytes()
            items.append(row)
        out.append({"role": message["role"], "content": items})
    return out


def clean_messages(messages: list[dict]) -> list[dict]:
    """Undo `_uniform`: drop the None keys, so the processing module sees ordinary content items."""
    return [{"role": m["role"], "content": [{k: v for k, v in item.items() if v is not None} for item in m["content"]]}
            for m in messages]


def grpo_row(sample: Sample) -> dict:
    """One GRPO prompt row: `prompt` (messages up to the last assistant turn, media inline), `reward`, `answer` (JSON
    strings, read by `vst_reward`) and `id`. The thinking prompt goes in the system turn (VST
    `think_prompt_in_system`), except for 3D-box prompts."""
    system = None if sample.reward.get("fn") in NO_THINK_REWARDS else THINKING_SYSTEM_PROMPT
    return {"prompt": _uniform(prompt_messages(sample, system)), "reward": json.dumps(sample.reward, sort_keys=True),
            "answer": json.dumps(sample.answer, sort_keys=True), "id": sample.id}


def grpo_features():
    """The Arrow types of GRPO prompt rows (`grpo_row`), fixed so media columns never depend on the first rows seen."""
    import datasets

    text, binary = datasets.Value("string"), datasets.Value("binary")
    item = {"type": text, "text": text, "image": binary, "video": binary}
    return datasets.Features({"prompt": datasets.List({"role": text, "content": datasets.List(item)}),
                              "reward": text, "answer": text, "id": text})


def grpo_dataset(rows) -> Any:
    """A `datasets.Dataset` of GRPO prompt rows from shard rows or Samples, in memory; rows without a reward function
    are dropped (and counted in the log). `grpo_shards` is the memory-mapped form for parquet files."""
    import datasets

    samples = [row if isinstance(row, Sample) else Sample.from_row(row) for row in rows]
    kept = list(_prompt_rows(samples))
    if len(kept) < len(samples):
        logger.warning("dropping %d sample(s) with no reward function", len(samples) - len(kept))
    if not kept:
        raise ValueError("no sample carries a reward function (`reward.fn`)")
    return datasets.Dataset.from_list(kept, features=grpo_features())


def _prompt_rows(samples):
    """GRPO prompt rows of the samples that carry a reward function."""
    return (grpo_row(sample) for sample in samples if sample.reward.get("fn"))


def _grpo_rows(files: list[str]):
    yield from _prompt_rows(read_samples(files))


def grpo_shards(paths) -> Any:
    """GRPO prompt rows of parquet shards (globs expand), written once to the `datasets` cache and memory-mapped, so
    ranks share the prompts' images instead of each holding a copy (`sft.load_shards` does the same for SFT)."""
    import datasets
    import pyarrow.parquet as pq

    files = expand_shards(paths)
    try:
        dataset = datasets.Dataset.from_generator(_grpo_rows, features=grpo_features(), gen_kwargs={"files": files},
                                                  fingerprint=files_fingerprint("vst-grpo", files))
    except ValueError as error:
        if "no data" not in str(error):  # what `datasets` says of a generator that yields nothing
            raise
        raise ValueError(f"{files}: no sample carries a reward function (`reward.fn`)") from None
    total = sum(pq.read_metadata(path).num_rows for path in files)
    if len(dataset) < total:
        logger.warning("dropping %d sample(s) with no reward function", total - len(dataset))
    return dataset


def vst_reward(completions: list, reward: list, answer: list, **kwargs: Any) -> list[float]:
    """TRL reward function over VST's total reward, dispatching on each row's `reward.fn` (`rewards.batched`)."""
    functions = [json.loads(r)["fn"] if isinstance(r, str) else r["fn"] for r in reward]
    return [vst_rewards.batched(fn)([completion], [ans])[0]
            for fn, completion, ans in zip(functions, completions, answer)]


# -- online filtering ------------------------------------------------------------------------------------------------
def online_filter_mask(rewards: torch.Tensor, num_generations: int, low: float = 0.01, high: float = 0.99):
    """Per-rollout keep mask (bool, like `rewards`): a prompt group (`num_generations` consecutive rollouts) is kept
    when its mean reward is strictly between `low` and `high` (VST online_filtering; NaN rewards are ignored)."""
    means = torch.nanmean(rewards.view(-1, num_generations), dim=1)
    keep = (means > low) & (means < high)
    return keep.repeat_interleave(num_generations)


PROMPT_SIDE = ("prompt_ids", "prompt_mask")  # left-padded per-rollout tensors; the others are right-padded


def _pad_width(tensor: torch.Tensor, width: int, left: bool, value: int | float) -> torch.Tensor:
    missing = width - tensor.size(1)
    if missing <= 0:
        return tensor
    fill = tensor.new_full((tensor.size(0), missing, *tensor.shape[2:]), value)
    return torch.cat([fill, tensor] if left else [tensor, fill], dim=1)


def refill_groups(output: dict, keep: torch.Tensor, extra: dict, extra_keep: torch.Tensor, group: int,
                  pad_token_id: int) -> tuple[dict, torch.Tensor]:
    """Put the kept prompt groups of a refill round (`extra`) into the dropped group slots of `output`, in order.

    Both are one process's rollout batches from TRL's `_generate_and_score_completions` (rows in groups of `group`
    consecutive rollouts). Per-rollout tensors are padded to a common width first: prompt ids/masks on the left,
    completions and per-token values on the right (ids with `pad_token_id`, the rest with 0; the loss masks the
    padding). `media_rows` lists are filled the same way. Returns (merged output, its keep mask); `output` is left
    as is. `num_items_in_batch` is not recomputed here.
    """
    slots = [g for g in range(keep.numel() // group) if not keep[g * group]]
    donors = [g for g in range(extra_keep.numel() // group) if extra_keep[g * group]]
    pairs = list(zip(slots, donors))
    if not pairs:
        return output, keep
    rows = keep.numel()
    # rounds without media carry none; keys keep their order (TRL's split_tensor_dict sizes by the first value)
    output = {**output, "media_rows": output.get("media_rows", [None] * rows)}
    extra = {**extra, "media_rows": extra.get("media_rows", [None] * extra_keep.numel())}
    merged = {}
    for key, value in output.items():
        other = extra.get(key)
        if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.size(0) == rows:
            if value.ndim >= 2 and other.size(1) != value.size(1):
                width, left = max(value.size(1), other.size(1)), key in PROMPT_SIDE
                fill = pad_token_id if key in ("prompt_ids", "completion_ids") else 0
                value, other = _pad_width(value, width, left, fill), _pad_width(other, width, left, fill)
            value = value.clone()
        elif isinstance(value, list) and len(value) == rows:
            value = list(value)
        else:
            merged[key] = value
            continue
        for slot, donor in pairs:
            value[slot * group:(slot + 1) * group] = other[donor * group:(donor + 1) * group]
        merged[key] = value
    if not any(merged["media_rows"]):
        del merged["media_rows"]
    keep = keep.clone()
    for slot, _ in pairs:
        keep[slot * group:(slot + 1) * group] = True
    return merged, keep


# -- trainer ---------------------------------------------------------------------------------------------------------
def _concat_media(rows: Sequence[dict | None]) -> dict[str, torch.Tensor]:
    """Media tensors of several prompt rows concatenated in row order (rows without media contribute nothing)."""
    present = [row for row in rows if row]
    out = {}
    for key in MEDIA_KEYS:
        parts = [row[key] for row in present if key in row]
        if parts:
            out[key] = torch.cat([part.reshape(-1) if key == "second_per_grid_ts" else part for part in parts])
    return out


class VSTGRPOTrainer(CheckpointResumeMixin, VitLrMixin, GRPOTrainer):
    """`GRPOTrainer` that fixes TRL 1.16's multimodal scoring for Qwen2.5-VL and adds VST's online filtering.

    What it fixes (spec training.md §3.5, §7.5):
    1. Stock TRL builds the scoring kwargs from an `images` column only and `_get_per_token_logps_and_entropies`
       takes no video arguments, so with videos (and with our inline-media prompts, images too) the old, reference
       and policy log-prob forwards run on bare `<|video_pad|>`/`<|image_pad|>` embeddings: the vision tower gets no
       gradient, silently. Here every prompt is encoded by `vst.models.processing.encode_for_generation` (the one
       prompt->tensor path, left padding); each row's media tensors travel with the batch as the python list
       `media_rows` (TRL's shuffle/split keep it in step), and a forward pre-hook on the policy and the reference
       model injects them, with `mm_token_type_ids` built from the ids, into every forward that carries `labels`
       (the scoring forwards; generation carries none). `<|video_pad|>` is suppressed during sampling as
       `<|image_pad|>` is. With `use_vllm` (colocate), rollouts come
       from vLLM with each row's images and videos (`_vllm_rollouts`); TRL 1.16's own vLLM path passes images only.
    2. VST's online filtering (DAPO dynamic sampling): prompt groups whose mean reward is <= `filter_low` or >=
       `filter_high` are dropped from the loss (advantages and completion masks zeroed, token count recomputed).
       As VST regenerates (`max_try_make_batch`), up to `resample_rounds` rounds of fresh prompts refill the dropped
       group slots (`refill_groups`); what is still dropped after them shrinks the step's batch.
    3. Resume loads the checkpoint's weights (`sft.CheckpointResumeMixin`, transformers 5.24 misses every key).

    Relies on private TRL methods (`_tokenize_prompts`, `_generate_and_score_completions`, `_compute_loss`,
    `_calculate_rewards`, `_get_per_token_logps_and_entropies`): pin `trl==1.16.*`; tests/train/test_rl.py guards it.
    """

    def __init__(self, *args, budgets: Budgets | None = None, **kwargs):
        config = kwargs.get("args")
        if config is not None:  # checked before TRL starts a vLLM engine
            if config.use_vllm and (config.vllm_mode != "colocate" or config.vllm_tensor_parallel_size != 1):
                raise ValueError(f"use_vllm: vst rollouts run vLLM colocated with tensor_parallel_size 1 (vllm_mode="
                                 f"{config.vllm_mode!r}, vllm_tensor_parallel_size={config.vllm_tensor_parallel_size})"
                                 ": TRL 1.16's server mode and TP gathers carry images only and would drop videos")
            extra_sampling = config.generation_kwargs if isinstance(config.generation_kwargs, dict) else {}
            if config.use_vllm and (kwargs.get("tools") or config.vllm_structured_outputs_regex
                                    or extra_sampling.get("structured_outputs")):
                raise ValueError("use_vllm: vst's vLLM rollouts support neither tools nor structured outputs")
            rows = config.per_device_train_batch_size * config.steps_per_generation
            if config.online_filtering and config.resample_rounds and rows % config.num_generations:
                raise ValueError(f"resample_rounds: each process's generation batch (per_device_train_batch_size x "
                                 f"steps_per_generation = {rows} rollouts) must hold whole groups of num_generations="
                                 f"{config.num_generations}; change them or set resample_rounds=0")
        super().__init__(*args, **kwargs)
        self.budgets = budgets or self.args.budgets()
        self._vllm_requests: list[dict] | None = None  # per-row vLLM prompts of the batch being generated
        self._scoring_media: list | None = None  # per-row media of the batch being scored
        self._media_queue: deque | None = None  # rows not yet consumed by the current log-prob call
        self._last_rewards: torch.Tensor | None = None
        config = self.model.config
        self._image_token_id = getattr(config, "image_token_id", None)
        self._video_token_id = getattr(config, "video_token_id", None)
        if self._video_token_id is not None and hasattr(self, "generation_config"):
            suppress = list(self.generation_config.suppress_tokens or [])
            if self._video_token_id not in suppress:
                self.generation_config.suppress_tokens = suppress + [self._video_token_id]
        self._hooks = [m.register_forward_pre_hook(self._inject_media, with_kwargs=True)
                       for m in (self.model, self.ref_model) if m is not None]
        for m in (self.model, self.ref_model):  # after _inject_media: the core sees the media it adds
            uniform_vision(self.accelerator.unwrap_model(m) if m is not None else None, self.args)

    # rollouts: our processing path, per-row media kept --------------------------------------------------------------
    def _tokenize_prompts(self, prompts: list):
        rows, previous, encoded, requests = [], None, None, []
        for prompt in prompts:
            messages = clean_messages(prompt)
            if messages != previous:  # the sampler repeats each prompt num_generations times in a row
                batch = encode_for_generation([messages], self.processing_class, self.budgets)
                media = {key: batch[key] for key in MEDIA_KEYS if key in batch}
                if "second_per_grid_ts" in media:
                    media["second_per_grid_ts"] = torch.as_tensor(media["second_per_grid_ts"], dtype=torch.float32)
                encoded, previous = (batch["input_ids"][0].tolist(), media or None), messages
                if self.use_vllm:  # the same resized media, for the rollout engine, which expands placeholders
                    placeholders = [t for t in (self._image_token_id, self._video_token_id) if t is not None]
                    request = {"prompt_token_ids": collapse_placeholders(encoded[0], placeholders),
                               **vllm_media(messages, self.budgets, media_factor(self.processing_class))}
            rows.append(encoded)
            if self.use_vllm:
                requests.append((encoded[0], request))
        prompt_ids = [ids for ids, _ in rows]
        media_rows = [media for _, media in rows]
        self._scoring_media = media_rows
        self._vllm_requests = requests if self.use_vllm else None
        fields: dict[str, Any] = {}
        if any(media_rows):
            fields.update(_concat_media(media_rows))
            fields["mm_token_type_ids"] = [self._token_types(torch.tensor(ids)).tolist() for ids in prompt_ids]
        return prompt_ids, None, fields

    def _token_types(self, ids: torch.Tensor) -> torch.Tensor:
        types = torch.zeros_like(ids)
        if self._image_token_id is not None:
            types[ids == self._image_token_id] = 1
        if self._video_token_id is not None:
            types[ids == self._video_token_id] = 2
        return types

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if not self.use_vllm:
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images)
        return self._vllm_rollouts(prompt_ids)

    def _vllm_rollouts(self, prompt_ids: list[list[int]]) -> tuple[list[list[int]], list[list[float]] | None]:
        """(completion ids, sampled-token log-probs) of one rollout per row from the colocated vLLM engine.

        Each request carries the row's prompt ids with one placeholder token per medium (vLLM expands them;
        `collapse_placeholders`) plus its
        `multi_modal_data` and `mm_processor_kwargs` (`processing.vllm_media`: images and videos resized exactly as
        for the log-prob forwards). Weights are pushed to the engine once per optimizer step with TRL's
        `sync_weights` (FSDP/ZeRO-3 gathers included); sampling settings are TRL's (`n` = 1: the sampler already
        repeats each prompt `num_generations` times).
        """
        from trl.generation.vllm_generation import extract_logprobs
        from vllm import SamplingParams

        generation = self.vllm_generation
        if self._vllm_requests is None or [ids for ids, _ in self._vllm_requests] != [list(i) for i in prompt_ids]:
            raise RuntimeError("vLLM requests out of step with the tokenized prompts")
        requests = [request for _, request in self._vllm_requests]
        if self.state.global_step != self._last_loaded_step or generation._llm_weights_sleeping:
            with profiling_context(self, "sync_weights"):
                generation.sync_weights()
            self._last_loaded_step = self.state.global_step
        sampling = SamplingParams(
            n=1, repetition_penalty=generation.repetition_penalty, temperature=generation.temperature,
            top_p=generation.top_p, top_k=generation.top_k, min_p=generation.min_p or 0.0,
            max_tokens=generation.max_completion_length, logprobs=generation.logprobs,
            **generation.generation_kwargs,
        )
        if generation.enable_sleep_mode:
            generation.llm.wake_up(tags=["kv_cache"])
        with profiling_context(self, "vLLM.generate"):
            outputs = generation.llm.generate(requests, sampling_params=sampling, use_tqdm=False)
        if generation.enable_sleep_mode:
            generation.llm.sleep(level=2)
            generation._llm_weights_sleeping = True
        completion_ids = [list(output.token_ids) for request in outputs for output in request.outputs]
        if len(completion_ids) != len(requests):
            raise RuntimeError(f"vLLM returned {len(completion_ids)} completions for {len(requests)} prompts")
        logprobs, _ = extract_logprobs(outputs)
        return completion_ids, None if logprobs is None else [[lp[0] for lp in seq] for seq in logprobs]

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_rewards = rewards_per_func
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = self._rollout_round(inputs)
        if not (self.model.training and self.args.online_filtering and self._last_rewards is not None):
            return output
        keep, first_kept = self._group_keep(len(inputs))
        rounds, limit = 0, self.args.resample_rounds
        while (limit < 0 or rounds < limit) and not self._everywhere(bool(keep.all())):
            rounds += 1
            extra = self._rollout_round(self._fresh_prompts(len(inputs), rounds))
            extra_keep, _ = self._group_keep(len(inputs))
            output, keep = refill_groups(output, keep, extra, extra_keep, self.num_generations,
                                         self.processing_class.tokenizer.pad_token_id)
        self._drop_groups(output, keep)
        metrics = self._metrics["train"]
        metrics["online_filter/kept_fraction"].append(first_kept)
        metrics["online_filter/resample_rounds"].append(float(rounds))
        metrics["online_filter/final_kept_fraction"].append(self.accelerator.gather(keep.float()).mean().item())
        return output

    def _rollout_round(self, inputs) -> dict:
        """TRL's generation and scoring of `inputs`, plus each row's media (`media_rows`, None for text rows)."""
        self._scoring_media = None
        try:
            output = super()._generate_and_score_completions(inputs)
            media_rows = self._scoring_media
        finally:
            self._scoring_media = None
        if media_rows is not None and any(media_rows):
            output["media_rows"] = media_rows
        return output

    def _group_keep(self, rows: int) -> tuple[torch.Tensor, float]:
        """(keep mask of this process's `rows` rollouts, kept fraction over all processes) of the last round."""
        rewards = (self._last_rewards * self.reward_weights.to(self._last_rewards.device)).nansum(dim=1)
        keep_all = online_filter_mask(rewards, self.num_generations, self.args.filter_low, self.args.filter_high)
        start = self.accelerator.process_index * rows
        return keep_all[start:start + rows].to(self.accelerator.device), keep_all.float().mean().item()

    def _everywhere(self, flag: bool) -> bool:
        """`flag` on every process (a collective: all processes run the same number of refill rounds)."""
        return bool(self.accelerator.gather(torch.tensor([flag], device=self.accelerator.device)).all())

    def _fresh_prompts(self, rows: int, round_: int) -> list[dict]:
        """`rows` dataset rows for a refill round: `rows / num_generations` prompts drawn at random, each repeated
        `num_generations` times. Seeded by (seed, process, step, round), so a resumed run draws what the
        uninterrupted one drew. Drawn apart from the epoch's sampler: refill prompts do not advance the epoch."""
        import numpy as np

        key = [self.args.seed, self.accelerator.process_index, self.state.global_step, round_]
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))
        indices = torch.randint(len(self.train_dataset), (rows // self.num_generations,), generator=generator)
        return [self.train_dataset[int(i)] for i in indices for _ in range(self.num_generations)]

    def _drop_groups(self, output: dict, keep: torch.Tensor) -> None:
        """Zero the advantages and completion masks of the rollouts `keep` leaves out; recount the loss tokens."""
        keep = keep.to(output["completion_mask"].device)
        output["advantages"] = output["advantages"] * keep.to(output["advantages"].dtype)
        output["completion_mask"] = output["completion_mask"] * keep.unsqueeze(1).to(output["completion_mask"].dtype)
        loss_mask = output["completion_mask"]
        if "tool_mask" in output:
            loss_mask = loss_mask * output["tool_mask"]
        output["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()

    # scoring: media re-fed to every log-prob forward ------------------------------------------------------------
    def _compute_loss(self, model, inputs):
        self._scoring_media = inputs.get("media_rows")
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._scoring_media = None

    def _get_per_token_logps_and_entropies(self, model, input_ids, *args, **kwargs):
        self._media_queue = deque(self._scoring_media) if self._scoring_media is not None else None
        try:
            return super()._get_per_token_logps_and_entropies(model, input_ids, *args, **kwargs)
        finally:
            self._media_queue = None

    def _inject_media(self, module, args, kwargs):
        """Forward pre-hook: give a scoring forward (one with `labels`) its rows' media and `mm_token_type_ids`."""
        if self._media_queue is None or kwargs.get("labels") is None:
            return None
        ids = kwargs["input_ids"]
        if len(self._media_queue) < ids.size(0):
            raise RuntimeError(f"media rows out of step: {len(self._media_queue)} left for a batch of {ids.size(0)}")
        rows = [self._media_queue.popleft() for _ in range(ids.size(0))]
        kwargs = dict(kwargs)
        kwargs.update({key: value.to(ids.device) for key, value in _concat_media(rows).items()})
        kwargs["mm_token_type_ids"] = self._token_types(ids)
        return args, kwargs


def build_trainer(config: VSTGRPOConfig) -> VSTGRPOTrainer:
    """The trainer of `config`: policy and processor (left padding) loaded, shards turned into GRPO prompts."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vst.models.loading import resolve

    if not config.shards:
        raise ValueError("shards: give at least one parquet shard to train on")
    source = resolve(config.model_name_or_path)
    processor = AutoProcessor.from_pretrained(source)
    processor.tokenizer.padding_side = "left"  # spec training.md §3.4: TRL's prompt ids are left-padded
    model = AutoModelForImageTextToText.from_pretrained(source, **(config.model_init_kwargs or {}))
    with config.main_process_first(desc="reading the shards"):  # one process writes the Arrow cache, the rest map it
        prompts = grpo_shards(config.shards)
    return VSTGRPOTrainer(
        model=model if config.beta == 0.0 else source,  # beta > 0 rebuilds a reference model from the path (§3.4)
        reward_funcs=[vst_reward], args=config, train_dataset=prompts,
        processing_class=processor,
    )


def train_rl(config: VSTGRPOConfig) -> Path:
    """Train as configured and save model + processor (+ `trainer_state.json` and `curves.png`) to `config.output_dir`;
    returns that folder."""
    trainer = build_trainer(config)
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    return save_run(trainer, config.output_dir, RL_KEYS)
