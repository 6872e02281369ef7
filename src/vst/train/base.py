"""`vst train base`: pretrain the tiny base model, the embedded default's analogue of Qwen2.5-VL-Instruct.

VST starts every stage from a model that already reads images, follows instructions, answers multiple choice by
letter and writes short reasoning. A tiny model from random weights cannot learn all of that *and* spatial skills in a
CPU demo (docs/demo.md: it never binds an object name to an option letter), so the project pretrains one here, on
general non-spatial data it generates itself (`vst.data.pretrain`), and ships the result (`tiny-base`).

Flow (`train_base`), every step resumable:
1. data: procedural rooms for the image tasks (`<out>/data/rooms`, `<out>/data/rooms-heldout`), then the training
   shard and a held-out shard of other rooms and another seed (`<out>/data/*.parquet`), written atomically;
2. model: a randomly initialised Qwen2.5-VL of `base_size` with a tokenizer whose merges come from the base data, so
   every vocabulary word is one token (`<out>/init`);
3. training: the SFT trainer with next-token loss on every text token (`loss_on: all`, as in pretraining: the signal
   in which small transformers form their copy mechanisms; answer-only loss left a probe at chance for 2,500 steps),
   checkpoints every `save_steps`, picked up again by a re-run;
4. evaluation on the held-out shard (`vst-synth` scoring, per task) and a model card (`README.md`) beside the weights.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vst.train.sft import VSTSFTConfig, VSTSFTTrainer, load_config, save_run, training_rows
from vst.train.curves import SFT_KEYS


@dataclass
class VSTBaseConfig(VSTSFTConfig):
    """`VSTSFTConfig` plus what the base's data and model are made of."""

    base_size: str = field(default="medium", metadata={"help": "vst.models.tiny.SIZES key of the architecture."})
    vocab: int = field(default=2048, metadata={"help": "Tokenizer vocabulary (byte-level BPE incl. special tokens)."})
    data_samples: int = field(default=100_000, metadata={"help": "Training samples generated (vst.data.pretrain)."})
    heldout_samples: int = field(default=1000, metadata={"help": "Held-out samples (other rooms, other seed)."})
    easy_samples: int = field(default=32_000, metadata={
        "help": "Curriculum: the first samples are two-option bindings over colour names (vst.data.pretrain.generate); "
                "train in order (train_sampling_strategy: sequential)."})
    data_seed: int = field(default=0, metadata={"help": "Seed of the training data; held-out uses data_seed + 1."})
    rooms: int = field(default=12, metadata={"help": "Procedural rooms whose stills the image tasks show."})
    heldout_rooms: int = field(default=3, metadata={"help": "Other rooms for the held-out image tasks."})
    image_size: int = field(default=112, metadata={"help": "Side of the generated pictures, pixels."})
    loss_on: str = field(default="all", metadata={"help": "'all' text tokens (pretraining) or 'assistant' only."})
    eval_batch_size: int = field(default=32, metadata={"help": "Batch size of the held-out evaluation."})
    keep_checkpoints: bool = field(default=False, metadata={"help": "Keep checkpoint-N folders after a finished run."})
    export_dir: str | None = field(
        default=None, metadata={"help": "Also copy the finished model + card here (e.g. src/vst/models/weights/tiny-base)."}
    )


ROOMS_SEED = 7000  # procedural rooms of the base data: a seed no demo or test room uses (demo: 0 and 1000)
DATA_FILES = ("base-train.parquet", "base-heldout.parquet")
# What a shipped checkpoint folder holds: the Hugging Face files, the model card, its facts and curves.
EXPORT_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "chat_template.jinja", "processor_config.json", "special_tokens_map.json", "README.md",
                "base_card.json", "curves.png")


def make_data(config: VSTBaseConfig, out: Path, log=print) -> tuple[Path, Path]:
    """The training and held-out shards under `out/data` (kept when already written)."""
    from vst.data import pretrain
    from vst.data.shards import write_samples
    from vst.scene.cameras import CameraConfig
    from vst.scene.generate import generate_scenes
    from vst.scene.procedural import ProceduralConfig

    data = out / "data"
    train, heldout = data / DATA_FILES[0], data / DATA_FILES[1]
    cameras = CameraConfig(width=224, height=224, n_stills=4, n_pairs=0, video=False)
    jobs = ((train, "rooms", config.rooms, ROOMS_SEED, config.data_samples, config.data_seed, config.easy_samples),
            (heldout, "rooms-heldout", config.heldout_rooms, ROOMS_SEED + 1, config.heldout_samples,
             config.data_seed + 1, 0))
    for shard, rooms, n_rooms, rooms_seed, n_samples, seed, easy in jobs:
        if shard.is_file():
            log(f"{shard}: kept")
            continue
        result = generate_scenes(data / rooms, n_rooms, rooms_seed, ProceduralConfig(cameras=cameras))
        scene_dirs = [data / rooms / name for name in sorted(result.generated + result.skipped)]
        context = pretrain.Context(pretrain.room_frames(scene_dirs, config.image_size), config.image_size)
        started = time.time()
        samples = pretrain.generate(n_samples, seed, context, prefix=shard.stem, easy=easy)
        write_samples(shard, samples)  # atomic: a temporary name, then a rename
        log(f"{shard}: {len(samples)} samples from {len(scene_dirs)} rooms in {time.time() - started:.0f} s")
    return train, heldout


def make_init(config: VSTBaseConfig, out: Path) -> Path:
    """The randomly initialised model + processor (`<out>/init`), its tokenizer trained on the base data."""
    from vst.data.pretrain import tokenizer_corpus
    from vst.models.tiny import save_tiny

    return save_tiny(out / "init", size=config.base_size, seed=config.seed, vocab=config.vocab,
                     corpus=tokenizer_corpus(config.data_seed))


def last_checkpoint(out: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder under `out`, if any."""
    done = [p for p in out.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[-1])) if done else None


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


Evaluate = Callable[[Path, Path, Path, VSTBaseConfig], dict]


def train_base(config: VSTBaseConfig, log=print, evaluate: Evaluate | None = None) -> Path:
    """Data, initial model, training (resuming from the newest checkpoint), held-out scores and model card; returns
    the output folder, a Hugging Face folder that `vst.models.loading.load_model` reads.

    `evaluate(model_dir, heldout_shard, out_dir, config) -> scores` (the evaluation layer's runner: `vst.pipeline.
    build_base` passes it; training never imports evaluation) fills the card's held-out table; without it the card
    says the model was not evaluated."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vst.train.collate import SampleCollator

    out = Path(config.output_dir)
    started = time.time()
    train_shard, heldout_shard = make_data(config, out, log)
    init = make_init(config, out)
    config.shards = [str(train_shard)]
    config.model_name_or_path = str(init)
    processor = AutoProcessor.from_pretrained(init)
    model = AutoModelForImageTextToText.from_pretrained(init, **(config.model_init_kwargs or {}))
    with config.main_process_first(desc="reading the shards"):
        rows = training_rows(config, processor)
    trainer = VSTSFTTrainer(model=model, args=config, train_dataset=rows, processing_class=processor,
                            data_collator=SampleCollator(processor, config.budgets(), config.loss_on))
    resume = config.resume_from_checkpoint or last_checkpoint(out)
    if resume:
        log(f"resuming from {resume}")
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    save_run(trainer, out, SFT_KEYS)
    if not trainer.is_world_process_zero():
        return out
    train_seconds = time.time() - started
    scores = evaluate(out, heldout_shard, out / "eval-heldout", config) if evaluate else None
    write_card(config, out, scores, train_seconds, trainer)
    for leftover in [init, *([] if config.keep_checkpoints else out.glob("checkpoint-*"))]:
        shutil.rmtree(leftover, ignore_errors=True)
    if config.export_dir:
        export(out, Path(config.export_dir))
        log(f"exported to {config.export_dir}")
    return out


def export(folder: Path, target: Path) -> Path:
    """Copy the checkpoint's `EXPORT_FILES` to `target`, replacing what is there in one rename."""
    staging = target.with_name(target.name + ".incomplete")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in EXPORT_FILES:
        if (folder / name).is_file():
            shutil.copy2(folder / name, staging / name)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def write_card(config: VSTBaseConfig, out: Path, scores: dict | None, seconds: float, trainer) -> Path:
    """`README.md` (model card) and `base_card.json` (the same facts, machine-readable) beside the weights."""
    from vst.data.pretrain import TASKS

    parameters = sum(p.numel() for p in trainer.model.parameters())
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    facts = {
        "name": "tiny-base", "architecture": "Qwen2_5_VLForConditionalGeneration", "size": config.base_size,
        "parameters": parameters, "vocab": config.vocab, "steps": trainer.state.global_step,
        "batch_size": config.per_device_train_batch_size * config.gradient_accumulation_steps * config.world_size,
        "learning_rate": config.learning_rate, "vit_lr": config.vit_lr,
        "lr_scheduler_type": getattr(config.lr_scheduler_type, "value", config.lr_scheduler_type),
        "loss_on": config.loss_on, "data_samples": config.data_samples, "data_seed": config.data_seed,
        "rooms": config.rooms, "seed": config.seed, "wall_s": round(seconds), "commit": git_commit(),
        "final_loss": losses[-1] if losses else None, "tasks": {name: weight for name, (_, weight) in TASKS.items()},
        "heldout": scores and {"n": scores["n"], "n_unparsed": scores["n_unparsed"],
                               "overall": round(scores["overall"], 1),
                               "tasks": {k: round(v, 1) for k, v in scores["categories"].items()}},
    }
    (out / "base_card.json").write_text(json.dumps(facts, indent=1) + "\n")
    if scores:
        rows = "\n".join(f"| {task} | {value:.1f} |" for task, value in sorted(scores["categories"].items()))
        heldout = f"""Held-out (other rooms, seed {config.data_seed + 1}; n = {scores['n']}, {scores['n_unparsed']} unparsed), percent:

| task | score |
|---|---|
{rows}
| **overall** | {scores['overall']:.1f} |
"""
    else:
        heldout = "Not evaluated (`vst train base` evaluates on the held-out shard; `vst.train.base.train_base` alone does not).\n"
    card = f"""---
library_name: transformers
license: apache-2.0
pipeline_tag: image-text-to-text
tags: [vst, qwen2_5_vl, tiny]
---
# tiny-base: vst's pretrained tiny Qwen2.5-VL

A {parameters / 1e6:.1f} M-parameter Qwen2.5-VL (`{config.base_size}` size of `vst.models.tiny`, vocabulary
{config.vocab}) pretrained by `vst train base` on general, **non-spatial** vision-language data that vst generates
itself (`vst.data.pretrain`: option binding, lists, instructions, short `<think>` traces, colours and shapes in
procedural pictures, marker colours and objects in procedural rooms). It is the embedded default's analogue of
Qwen2.5-VL-Instruct: `vst demo` starts from it. It has never seen a spatial question.

- Data: {config.data_samples:,} samples, seed {config.data_seed}, {config.rooms} procedural rooms (seed {ROOMS_SEED});
  task weights {facts['tasks']}.
- Training: {facts['steps']} steps, batch {facts['batch_size']}, lr {config.learning_rate} ({facts['lr_scheduler_type']}),
  next-token loss on {config.loss_on} tokens; final loss {facts['final_loss']}.
- Wall time: {seconds / 60:.1f} min on this machine ({os.cpu_count()} cores); commit {facts['commit']}.
- Reproduce: `vst train base --config configs/train/tiny-base.yaml`.

{heldout}"""
    (out / "README.md").write_text(card)
    return out / "README.md"


def load_base_config(path, overrides=()) -> VSTBaseConfig:
    return load_config(path, overrides, VSTBaseConfig)
