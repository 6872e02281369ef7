"""`vst train vla`: a Qwen2.5-VL (any checkpoint: Qwen2.5-VL-Instruct, a VST checkpoint, a tiny model) fine-tuned
into a policy with VST's recipe (spec vla.md §2), on the SFT trainer (`vst.train.sft.VSTSFTTrainer`: TRL's loop,
accelerate / FSDP2, `vit_lr`, resumable checkpoints).

Flow (`train_vla`):
1. episodes (`vla.data.read_episodes`: LIBERO HDF5 files or folders, LeRobot v3 folders), no-op steps dropped;
2. the quantile statistics (fitted, or read from `norm_stats`, e.g. VST's `norm_stats_libero_spatial.json`) saved as
   `<out>/norm_stats.json` in OpenVLA's layout;
3. one `Sample` per step written to `<out>/data/vla-train.parquet` (atomic; reused when the inputs and settings
   are unchanged, `<out>/data/vla-data.json`);
4. the model's tokenizer gains `<|action_0|>` .. `<|action_{n-1}|>` as added tokens; the embeddings grow only when the
   tokenizer outgrows them (Qwen2.5-VL-3B has 271 spare rows, so 256 fit with no resize, as in VST); new rows start
   at the mean embedding;
5. training, then `<out>` = a Hugging Face folder + `norm_stats.json` + `vla.json` (the policy's settings), which
   `vst.vla.policy.VLAPolicy.load` and `vst vla eval --model` read.

Loss: VST labels the whole assistant turn; vst's collator labels the assistant's answer and its `<|im_end|>` (the
`<|im_start|>assistant\\n` header is part of the generation prompt at inference, so it carries no information).
Train and evaluation render the prompt through the same template (`vst.models.processing`), so VST's train/eval
system-prompt mismatch (spec vla.md §2.5) does not arise.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vst.train.sft import (VSTSFTConfig, VSTSFTTrainer, apply_freezing, files_fingerprint, load_config, save_run,
                           training_rows)
from vst.train.curves import SFT_KEYS

DATA_FILE = "vla-train.parquet"
SETTINGS_FILE = "vla.json"
STATS_FILE = "norm_stats.json"

if TYPE_CHECKING:
    from vst.vla.actions import QuantileNormalizer


@dataclass
class VSTVLAConfig(VSTSFTConfig):
    """`VSTSFTConfig` plus the policy's data and action settings."""

    data: list[str] = field(default_factory=list, metadata={
        "help": "Demonstrations: LIBERO *_demo.hdf5 files or folders of them, or LeRobot v3 dataset folders."})
    n_bins: int = field(default=256, metadata={"help": "Uniform bins per action dimension (VST / OpenVLA: 256)."})
    chunk: int = field(default=1, metadata={"help": "Steps predicted per forward pass (VST: 1; chunked: e.g. 8)."})
    execute_steps: int | None = field(default=None, metadata={
        "help": "Steps of a predicted chunk executed before predicting again (None: the whole chunk)."})
    image_size: int = field(default=256, metadata={
        "help": "Side the camera frame is resized to before the processor (VST: 256 -> 252 px, 81 tokens)."})
    filter_noops: bool = field(default=True, metadata={"help": "Drop no-op steps (OpenVLA's regeneration)."})
    norm_stats: str | None = field(default=None, metadata={
        "help": "Quantile statistics to use (OpenVLA dataset_statistics.json / VST norm_stats_*.json) instead of "
                "fitting them on the data."})
    camera: str | None = field(default=None, metadata={"help": "LeRobot camera key (default: the agentview one)."})
    max_episodes: int | None = field(default=None, metadata={"help": "Use at most this many episodes."})
    keep_checkpoints: bool = field(default=False, metadata={"help": "Keep checkpoint-N folders after a finished run."})
    proprio: bool = field(default=False, metadata={
        "help": "Put the robot's state (LIBERO: end-effector position, axis-angle, gripper joints) in the prompt as "
                "binned tokens after the question. Not in VST's recipe; openpi's π0-FAST prompts with its state."})
    constrained_decoding: bool = field(default=True, metadata={
        "help": "At inference, allow only action tokens (False: VST's unconstrained greedy decode)."})


def _data_fingerprint(config: VSTVLAConfig) -> str:
    """Changes when a demonstration file or a setting that shapes the samples changes (`files_fingerprint`)."""
    files = []
    for raw in config.data:
        path = Path(raw)
        files += (sorted(str(p) for p in path.rglob("*") if p.is_file() and ".parts" not in p.parts)
                  if path.is_dir() else [str(path)])
    settings = [config.n_bins, config.chunk, config.image_size, config.filter_noops, config.norm_stats,
                config.camera, config.max_episodes] + ([True] if config.proprio else [])
    return files_fingerprint("vla-samples " + json.dumps(settings), files)


def make_data(config: VSTVLAConfig, out: Path, log=print) -> tuple[Path, QuantileNormalizer, dict]:
    """The training shard, the statistics and facts about the data (`episodes`, `samples`, `camera_resolution`),
    kept when made from the same inputs and settings."""
    import numpy as np

    from vst.data.shards import write_samples
    from vst.vla.actions import BinningTokenizer, QuantileNormalizer
    from vst.vla.data import episode_samples, noop_mask, read_episodes

    if not config.data:
        raise ValueError("data: give at least one demonstration file or folder (data=[DEMOS])")
    shard, stats_path, stamp = out / "data" / DATA_FILE, out / STATS_FILE, out / "data" / "vla-data.json"
    fingerprint = _data_fingerprint(config)
    if shard.is_file() and stats_path.is_file() and stamp.is_file() \
            and json.loads(stamp.read_text()).get("fingerprint") == fingerprint:
        log(f"{shard}: kept")
        return shard, QuantileNormalizer.load(stats_path), json.loads(stamp.read_text())
    episodes = []
    for episode in read_episodes(config.data, camera=config.camera):
        if config.filter_noops:
            episode = episode.select(noop_mask(episode.actions))
        if len(episode):
            episodes.append(episode)
        if config.max_episodes and len(episodes) >= config.max_episodes:
            break
    if not episodes:
        raise ValueError(f"data: {config.data}: no episodes with steps")
    if config.norm_stats:
        normalizer = QuantileNormalizer.load(config.norm_stats)
    else:
        normalizer = QuantileNormalizer.fit(np.concatenate([e.actions for e in episodes]), n_trajectories=len(episodes))
    proprio = None
    if config.proprio:
        missing = [e.source for e in episodes if e.states is None]
        if missing:
            raise ValueError(f"{missing[0]}: states: missing; proprio=true needs the robot's state in every episode "
                             f"({len(missing)} of {len(episodes)} lack it)")
        if normalizer.proprio() is None:  # statistics given without a proprio part are completed from the data
            normalizer.with_proprio(np.concatenate([e.states for e in episodes]))
        proprio = normalizer.proprio()
    tokenizer = BinningTokenizer(config.n_bins, chunk=config.chunk)
    samples = [sample for i, episode in enumerate(episodes)
               for sample in episode_samples(episode, normalizer, tokenizer, config.image_size, f"ep{i:05d}",
                                             proprio=proprio)]
    out.mkdir(parents=True, exist_ok=True)
    normalizer.save(stats_path)
    write_samples(shard, samples)
    facts = {"fingerprint": fingerprint, "episodes": len(episodes), "samples": len(samples),
             "camera_resolution": int(episodes[0].images.shape[1])}
    stamp.write_text(json.dumps(facts) + "\n")
    log(f"{shard}: {len(samples)} steps from {len(episodes)} episodes")
    return shard, normalizer, facts


def add_action_tokens(model, processor, n_bins: int) -> list[int]:
    """Add `<|action_i|>` to the tokenizer (ids in order) and grow the embeddings only if needed; returns the ids."""
    import torch

    from vst.vla.actions import action_tokens

    tokenizer = processor.tokenizer
    tokens = action_tokens(n_bins)
    tokenizer.add_tokens(tokens, special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        embeddings = model.get_input_embeddings().weight
        mean = embeddings.detach().mean(0)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            model.get_input_embeddings().weight[rows:] = mean
            output = model.get_output_embeddings()
            if output is not None and output.weight.shape[0] > rows and output.weight is not model.get_input_embeddings().weight:
                output.weight[rows:] = output.weight[:rows].mean(0)
    return ids


def policy_settings(config: VSTVLAConfig, normalizer, action_ids: list[int]) -> dict:
    from vst.vla.actions import ACTION_DIM
    from vst.vla.data import PROMPT

    return {"n_bins": config.n_bins, "chunk": config.chunk, "dim": ACTION_DIM,
            "execute_steps": config.execute_steps or config.chunk, "image_size": config.image_size,
            "prompt": PROMPT, "gripper": "sign(2x-1)", "rotate_180": True,
            "proprio": config.proprio, "constrained_decoding": config.constrained_decoding, "action_token_ids": [action_ids[0], action_ids[-1]],
            "image_min_pixels": config.image_min_pixels, "image_max_pixels": config.image_max_pixels,
            "initialised_from": config.model_name_or_path, "data": [str(d) for d in config.data]}


def train_vla(config: VSTVLAConfig, log=print) -> Path:
    """Data, model with action tokens, training (resuming from the newest checkpoint), policy files; returns the
    output folder."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vst.models.loading import resolve
    from vst.train.base import last_checkpoint
    from vst.train.collate import SampleCollator

    out = Path(config.output_dir)
    started = time.time()
    with config.main_process_first(desc="writing the VLA shard"):
        shard, normalizer, facts = make_data(config, out, log)
    config.shards = [str(shard)]
    source = resolve(config.model_name_or_path)
    processor = AutoProcessor.from_pretrained(source)
    model = AutoModelForImageTextToText.from_pretrained(source, **(config.model_init_kwargs or {}))
    action_ids = add_action_tokens(model, processor, config.n_bins)
    apply_freezing(model, config)
    with config.main_process_first(desc="reading the shards"):
        rows = training_rows(config, processor)
    trainer = VSTSFTTrainer(model=model, args=config, train_dataset=rows, processing_class=processor,
                            data_collator=SampleCollator(processor, config.budgets()))
    resume = config.resume_from_checkpoint or (last_checkpoint(out) if config.save_strategy != "no" else None)
    if resume:
        log(f"resuming from {resume}")
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    save_run(trainer, out, SFT_KEYS)
    if trainer.is_world_process_zero():
        settings = policy_settings(config, normalizer, action_ids)
        settings.update(episodes=facts["episodes"], samples=facts["samples"],
                        camera_resolution=facts["camera_resolution"], steps=trainer.state.global_step, train_seconds=round(time.time() - started, 1),
                        final_loss=next((e["loss"] for e in reversed(trainer.state.log_history) if "loss" in e), None))
        temp = out / (SETTINGS_FILE + ".tmp")
        temp.write_text(json.dumps(settings, indent=1) + "\n")
        os.replace(temp, out / SETTINGS_FILE)
        if not config.keep_checkpoints:  # the finished folder is the policy; checkpoints only served the resume
            import shutil

            for checkpoint in out.glob("checkpoint-*"):
                shutil.rmtree(checkpoint, ignore_errors=True)
    return out


def load_vla_config(path, overrides=()) -> VSTVLAConfig:
    return load_config(path, overrides, VSTVLAConfig)
