"""Training-step overhead of our SFT path, and padding efficiency of a VST-P shard, on the offline tiny model.

    OMP_NUM_THREADS=1 python benchmarks/train_step.py                   # tiny (0.4 M), 2 scenes, 200 samples
    OMP_NUM_THREADS=2 python benchmarks/train_step.py --model tiny-small --steps 10

Measured in one process, on one shard generated in a temporary folder (procedural scenes -> `vst-p` recipe), with
the settings of configs/train/tiny-cpu-sft.yaml (batch 4, 112^2 image budget) and tiny-cpu-grpo.yaml's video budget:
  full       `VSTSFTTrainer.train()` (SampleCollator in the dataloader, TRL's loop, logging every step), samples/s
             from the time between consecutive `on_step_end` callbacks (median, first steps dropped)
  bare       forward + backward + AdamW step of a fresh copy of the model on exactly the batches `full` collated
  packed     `full` with `padding_free=true`: each batch trained as one packed row (sdpa block mask on CPU)
  grouped    `full` with `train_sampling_strategy=group_by_length` (lengths from media headers): samples/s, and the
             padding efficiency of the batches the trainer really collated (beside `full`'s random batches), and
             `bare` replayed on those grouped batches (model compute only, the cleaner comparison on a noisy VM)
  collate    SampleCollator time per batch (inside `full`)
  padding    real tokens / token slots over the shard's batches of 4: shard order, shuffled (the trainer's random
             sampler; mean of 20 shuffles) and sorted by length (what `group_by_length` approximates)
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vst.data.engine import EngineConfig, run
from vst.data.recipes import load_recipe
from vst.scene.generate import generate_scenes

TINY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train" / "tiny-cpu-sft.yaml"
# tiny-cpu-sft.yaml keeps VST's video budget (128 x 28^2 min pixels per frame: ~4,400 tokens per video, over its
# max_seq_len, so the collator would skip every video); these are tiny-cpu-grpo.yaml's, which also set the budget of
# multi-image rows (50176 / n pixels per image).
SMALL_MEDIA = ["video_min_pixels=3136", "video_total_pixels=50176"]
BATCH = 4
WARMUP_STEPS = 2


def padding_efficiency(lengths: list[int], batch: int = BATCH) -> float:
    """Real tokens / (rows x longest row) summed over consecutive batches of `lengths`."""
    real = slots = 0
    for start in range(0, len(lengths), batch):
        chunk = lengths[start:start + batch]
        real += sum(chunk)
        slots += len(chunk) * max(chunk)
    return real / slots


class Timed:
    """A collator wrapper that keeps every batch it returns and the seconds each call took."""

    def __init__(self, collator):
        self.collator, self.batches, self.seconds = collator, [], []

    def __call__(self, rows):
        start = time.perf_counter()
        batch = self.collator(rows)
        self.seconds.append(time.perf_counter() - start)
        self.batches.append(batch)
        return batch


def batch_efficiency(batches: list[dict]) -> float:
    """Real tokens / token slots over collated batches."""
    return sum(int(b["attention_mask"].sum()) for b in batches) / sum(b["attention_mask"].numel() for b in batches)


def step_seconds(ends: list[float]) -> float:
    """Median interval between step ends after the warm-up steps."""
    return statistics.median(np.diff(ends[WARMUP_STEPS:]))


def train_full(config):
    """Median seconds per step of our trainer, and the collator wrapper that saw its batches."""
    from transformers import TrainerCallback

    from vst.train.sft import build_trainer

    ends: list[float] = []

    class StepEnds(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

    trainer = build_trainer(config)
    timed = Timed(trainer.data_collator)
    trainer.data_collator = timed
    trainer.add_callback(StepEnds())
    trainer.train()
    return step_seconds(ends), timed


def train_bare(model_folder: str, batches: list[dict], learning_rate: float) -> float:
    """Median seconds per step of forward + backward + AdamW on pre-collated `batches`."""
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(model_folder, dtype=torch.float32)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    ends = []
    for batch in batches:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # the trainer clips too (max_grad_norm 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ends.append(time.perf_counter())
    return step_seconds(ends)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", choices=["tiny", "tiny-small"])
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--n", type=int, default=200, help="samples in the VST-P shard")
    parser.add_argument("--steps", type=int, default=30, help="training steps of each measured loop")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from vst.data.shards import read_samples
    from vst.models.loading import TINY_MODELS
    from vst.models.tiny import save_tiny
    from vst.train.collate import SampleCollator
    from vst.train.sft import load_config

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        start = time.perf_counter()
        generate_scenes(folder / "scenes", args.scenes, seed=7)
        manifest = run(EngineConfig(scenes=folder / "scenes", out=folder / "data", recipe=load_recipe("vst-p"),
                                    n=args.n, seed=0))
        shard = str(folder / "data" / manifest["shard"])
        model_folder = str(save_tiny(folder / "model", size=TINY_MODELS[args.model]))
        data_seconds = time.perf_counter() - start

        config = load_config(TINY_CONFIG, [f"shards=[{shard}]", f"output_dir={folder / 'run'}",
                                           f"model_name_or_path={model_folder}", f"max_steps={args.steps}",
                                           f"per_device_train_batch_size={BATCH}", *SMALL_MEDIA])
        full_seconds, timed = train_full(config)
        bare_seconds = train_bare(model_folder, timed.batches[:args.steps], config.learning_rate)
        packed_seconds, _ = train_full(dataclasses.replace(config, padding_free=True, output_dir=str(folder / "packed")))
        grouped_seconds, grouped = train_full(dataclasses.replace(
            config, train_sampling_strategy="group_by_length", output_dir=str(folder / "grouped")))
        bare_grouped_seconds = train_bare(model_folder, grouped.batches[:args.steps], config.learning_rate)
        bare_again_seconds = train_bare(model_folder, timed.batches[:args.steps], config.learning_rate)

        samples = list(read_samples(shard))
        unlimited = dataclasses.replace(config.budgets(), max_seq_len=10**9)
        collator = SampleCollator(timed.collator.processor, unlimited)
        all_lengths = [int(collator([sample])["attention_mask"].sum()) for sample in samples]
    lengths = [length for length in all_lengths if length <= config.max_seq_len]  # the collator skips the rest
    rng = np.random.default_rng(0)
    shuffled = statistics.mean(padding_efficiency(list(rng.permutation(lengths))) for _ in range(20))
    modalities = {m: sum(s.modality == m for s in samples) for m in ("single", "multi", "video", "text")}

    results = {
        "model": args.model, "threads": torch.get_num_threads(), "batch": BATCH, "steps": args.steps,
        "samples": len(samples), "modalities": modalities, "data_seconds": round(data_seconds, 1),
        "full_samples_per_s": round(BATCH / full_seconds, 2), "bare_samples_per_s": round(BATCH / bare_seconds, 2),
        "overhead_ratio": round(full_seconds / bare_seconds, 3),
        "packed_samples_per_s": round(BATCH / packed_seconds, 2), "packed_speedup": round(full_seconds / packed_seconds, 3),
        "grouped_samples_per_s": round(BATCH / grouped_seconds, 2),
        "grouped_speedup": round(full_seconds / grouped_seconds, 3),
        "bare_grouped_samples_per_s": round(BATCH / bare_grouped_seconds, 2),
        "bare_random_again_samples_per_s": round(BATCH / bare_again_seconds, 2),
        "bare_grouped_speedup": round(bare_again_seconds / bare_grouped_seconds, 3),
        "padding_trainer_random": round(batch_efficiency(timed.batches), 3),
        "padding_trainer_grouped": round(batch_efficiency(grouped.batches), 3),
        "collate_ms_per_batch": round(1000 * statistics.median(timed.seconds), 1),
        "tokens_per_sample": {"median": int(np.median(all_lengths)), "max": max(all_lengths)},
        "over_max_seq_len": len(all_lengths) - len(lengths),
        "padding_shard_order": round(padding_efficiency(lengths), 3),
        "padding_shuffled": round(shuffled, 3), "padding_sorted": round(padding_efficiency(sorted(lengths)), 3),
    }
    print(f"{args.model}, {results['threads']} thread(s), batch {BATCH}, {args.steps} steps; shard: {len(samples)} "
          f"VST-P samples {modalities} (data {data_seconds:.0f} s)")
    rows = [
        ("full path: SampleCollator + VSTSFTTrainer", f"{results['full_samples_per_s']:.2f} samples/s"),
        ("bare fwd/bwd + AdamW, same batches", f"{results['bare_samples_per_s']:.2f} samples/s"),
        ("overhead: full step time / bare step time", f"{results['overhead_ratio']:.2f}x"),
        ("padding-free (packed rows), same trainer", f"{results['packed_samples_per_s']:.2f} samples/s"),
        ("speed-up: padded step time / packed step time", f"{results['packed_speedup']:.2f}x"),
        ("group_by_length (header token counts), same trainer", f"{results['grouped_samples_per_s']:.2f} samples/s"),
        ("speed-up: random-batch step time / grouped step time", f"{results['grouped_speedup']:.2f}x"),
        ("bare on the grouped batches", f"{results['bare_grouped_samples_per_s']:.2f} samples/s"),
        ("bare on the random batches, again (after it)", f"{results['bare_random_again_samples_per_s']:.2f} samples/s"),
        ("speed-up of the model step: random / grouped", f"{results['bare_grouped_speedup']:.2f}x"),
        ("padding efficiency of the trainer's batches: random", f"{results['padding_trainer_random']:.3f}"),
        ("padding efficiency of the trainer's batches: grouped", f"{results['padding_trainer_grouped']:.3f}"),
        ("SampleCollator per batch (median)", f"{results['collate_ms_per_batch']:.1f} ms"),
        ("tokens per sample (median / max)", f"{results['tokens_per_sample']['median']} / {max(all_lengths)}"),
        (f"samples over max_seq_len {config.max_seq_len} (skipped)", f"{results['over_max_seq_len']}"),
        ("padding efficiency, shard order", f"{results['padding_shard_order']:.3f}"),
        ("padding efficiency, shuffled (mean of 20)", f"{results['padding_shuffled']:.3f}"),
        ("padding efficiency, sorted by length", f"{results['padding_sorted']:.3f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>16}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
