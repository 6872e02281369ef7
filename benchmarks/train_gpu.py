"""Training throughput of the real Qwen2.5-VL architecture (random weights, no download) through vst's trainers.

    accelerate launch --config_file configs/accelerate/fsdp2.yaml --num_processes 1 benchmarks/train_gpu.py --arch 3b
    python benchmarks/train_gpu.py --arch 3b --shard small.parquet --rl      # plain process (no FSDP); GRPO steps too
    accelerate launch --config_file configs/accelerate/fsdp2.yaml --num_processes 4 benchmarks/train_gpu.py --arch 7b
    python benchmarks/train_gpu.py --arch tiny --cpu --steps 3 --resume     # the same path on a CPU (a smoke test)

Memory: fp32 master weights + AdamW are ~16 bytes per parameter: 60 GB for 3B (one 80 GB GPU is tight once
activations and a vLLM engine join: prefer an H200), 133 GB for 7B (FSDP2 over several GPUs). Outside an FSDP
launch the script turns on activation checkpointing itself (under FSDP2 the config's fsdp_config does it).

One prepared script for a short GPU lease (the device tool's 15 minutes):
  sft   `--steps` SFT steps of configs/train/qwen2_5vl-3b-sft.yaml (or 7b) on a random-weight model of that
        architecture, through `vst.train.sft.train_sft` (FSDP2 when launched with the fsdp2 accelerate config);
        tokens/s, samples/s and MFU from the batches the trainer really collated, after `--warmup` steps
  save  with --resume: 2 SFT steps saving a checkpoint after step 1 (the config's state_dict_type: per-rank DCP
        shards under FSDP2), then the same run resumed from it into another folder; seconds per save, the
        checkpoint's size and the largest weight difference between the resumed and the uninterrupted run
  rl    with --rl: `--rl-steps` GRPO steps of qwen2_5vl-3b-grpo.yaml, rollouts on vLLM when it is installed
        (`use_vllm`, colocated), else transformers generate; seconds per step

MFU = model FLOPs / (seconds x peak bf16 FLOPs of the GPU). Model FLOPs per step = 6 x LLM matmul parameters
(embedding table left out, lm_head counted even when tied) x tokens + 6 x ViT parameters x patches (forward +
backward), plus LLM attention 12 x layers x hidden x sum over rows of row length^2. Peak dense bf16: 989 TFLOPS for
H100 SXM and H200, 835 H100 NVL, 756 H100 PCIe, 312 A100; other GPUs report no MFU.
The shard: `--shard FILE` (any VST-P parquet), else one generated here from `--scenes` procedural rooms (needs EGL).
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# Qwen2.5-VL-3B/7B-Instruct config.json dimensions; the tokenizer is vst's offline one (ids < its 1k vocab).
ARCHS = {
    "3b": {"text": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                    "num_attention_heads": 16, "num_key_value_heads": 2, "vocab_size": 151936},
           "tie_word_embeddings": True},
    "7b": {"text": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                    "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064},
           "tie_word_embeddings": False},
}
VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "patch_size": 14,
          "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
          "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2}
PEAK_BF16 = {"H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}  # first match


def save_architecture(arch: str, folder: Path) -> Path:
    """A random-weight model of `arch` ("3b" | "7b" | a tiny size) with vst's offline processor, saved at `folder`."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from vst.models.loading import TINY_MODELS
    from vst.models.tiny import build_processor, build_tokenizer, mrope_section, save_tiny

    if arch in TINY_MODELS:
        return save_tiny(folder, size=TINY_MODELS[arch])
    spec = ARCHS[arch]
    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer)
    ids = tokenizer.convert_tokens_to_ids
    text = spec["text"]
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    config = Qwen2_5_VLConfig(
        text_config={**text, "max_position_embeddings": 128000, "bos_token_id": ids("<|endoftext|>"),
                     "eos_token_id": ids("<|im_end|>"), "pad_token_id": tokenizer.pad_token_id,
                     "rope_parameters": {"rope_type": "default", "mrope_section": mrope_section(head_dim),
                                         "rope_theta": 1e6}},
        vision_config={**VISION, "out_hidden_size": text["hidden_size"]},
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=spec["tie_word_embeddings"],
    )
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def parameter_counts(folder: Path) -> tuple[int, int, int, int]:
    """(LLM matmul parameters, ViT parameters, LLM layers, LLM hidden size) of a saved folder, on the meta device.
    LLM matmul parameters: all but the vision tower and the embedding table, plus lm_head when it is tied to it."""
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    vision = sum(p.numel() for name, p in model.named_parameters() if ".visual." in f".{name}")
    total = sum(p.numel() for p in model.parameters())  # a tied lm_head is counted once, as the embedding
    embedding = model.get_input_embeddings().weight.numel()
    head = embedding if config.tie_word_embeddings else 0
    text = config.text_config
    return total - vision - embedding + head, vision, text.num_hidden_layers, text.hidden_size


class Recorder:
    """Trainer callback + model forward pre-hook (run before padding-free packing): tokens, rows and ViT patches of
    every training forward, and each step's end time. In the main process, whatever the dataloader workers do."""

    def __init__(self):
        from transformers import TrainerCallback

        self.batches, self.ends, self.forwards = [], [], []  # forwards: batches seen by each step's end
        recorder = self

        class StepEnds(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                recorder.ends.append(time.perf_counter())
                recorder.forwards.append(len(recorder.batches))

        self.callback = StepEnds()

    def hook(self, module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if kwargs.get("labels") is None or mask is None:
            return None
        grids = [kwargs[key] for key in ("image_grid_thw", "video_grid_thw") if kwargs.get(key) is not None]
        self.batches.append({"tokens": int(mask.sum()), "rows": mask.size(0), "row_tokens": mask.sum(1).tolist(),
                             "patches": int(sum(grid.prod(dim=-1).sum() for grid in grids))})
        return None


def sft_throughput(config, warmup: int, grad_accum: int) -> dict:
    """Train as `config` says with a `Recorder` attached; per-step means after `warmup` steps."""
    from vst.train.sft import build_trainer

    trainer = build_trainer(config)
    recorder = Recorder()
    trainer.model.register_forward_pre_hook(recorder.hook, with_kwargs=True, prepend=True)
    trainer.add_callback(recorder.callback)
    start = time.perf_counter()
    trainer.train()
    steps = len(recorder.ends) - warmup  # timed: from the end of the last warm-up step to the end of training
    seconds = (recorder.ends[-1] - recorder.ends[warmup - 1]) / steps
    batches = recorder.batches[recorder.forwards[warmup - 1]:recorder.forwards[-1]]
    per_step = lambda key: sum(b[key] for b in batches) / steps  # noqa: E731
    return {"steps": steps, "seconds_per_step": seconds, "train_seconds": time.perf_counter() - start,
            "tokens_per_step": per_step("tokens"), "rows_per_step": per_step("rows"),
            "patches_per_step": per_step("patches"),
            "row_tokens_squared_per_step": sum(t * t for b in batches for t in b["row_tokens"]) / steps,
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None}


def save_and_resume(config_path: Path, overrides: list[str], work: Path) -> dict:
    """2 steps saving after step 1, then a run resumed from that checkpoint; the two final models compared."""
    from vst.train import sft

    steps = ["max_steps=2", "save_strategy=steps", "save_steps=1", "save_total_limit=2",
             "lr_scheduler_type=constant", "warmup_steps=0", "logging_steps=1"]
    start = time.perf_counter()
    sft.train_sft(sft.load_config(config_path, [*overrides, *steps, f"output_dir={work / 'resume-a'}"]))
    whole_seconds = time.perf_counter() - start
    checkpoint = work / "resume-a" / "checkpoint-1"
    sft.train_sft(sft.load_config(config_path, [*overrides, *steps, f"output_dir={work / 'resume-b'}",
                                                f"resume_from_checkpoint={checkpoint}"]))
    report = {"resume_checkpoint_gb": None, "resume_max_abs_diff": None, "resume_two_step_seconds": whole_seconds}
    if int(os.environ.get("RANK", "0")) == 0:
        from safetensors.torch import load_file

        a, b = (load_file(work / run / "model.safetensors") for run in ("resume-a", "resume-b"))
        losses = [[e["loss"] for e in json.loads((work / run / "trainer_state.json").read_text())["log_history"]
                   if "loss" in e] for run in ("resume-a", "resume-b")]
        report.update(resume_checkpoint_gb=sum(f.stat().st_size for f in checkpoint.rglob("*") if f.is_file()) / 2**30,
                      resume_checkpoint_files=sorted(str(f.relative_to(checkpoint)) for f in checkpoint.rglob("*")
                                                     if f.is_file())[:12],
                      resume_max_abs_diff=max(float((a[k].float() - b[k].float()).abs().max()) for k in a),
                      resume_losses=losses)
    return report


def make_shard(folder: Path, scenes: int) -> str:
    from vst.data.engine import EngineConfig, run
    from vst.data.recipes import load_recipe
    from vst.scene.generate import generate_scenes

    generate_scenes(folder / "scenes", scenes, seed=5)
    manifest = run(EngineConfig(scenes=folder / "scenes", out=folder / "data", recipe=load_recipe("vst-p"),
                                n=40 * scenes, seed=0))
    return str(folder / "data" / manifest["shard"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="3b", choices=[*ARCHS, "tiny", "tiny-medium", "tiny-small"])
    parser.add_argument("--shard", help="a VST-P parquet shard; default: generate one (needs EGL)")
    parser.add_argument("--scenes", type=int, default=2, help="procedural rooms for the generated shard")
    parser.add_argument("--steps", type=int, default=8, help="timed SFT optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="SFT steps before the timing (at least 1)")
    parser.add_argument("--batch", type=int, default=2, help="per-device rows per micro-batch")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--padding-free", action="store_true", help="packed rows (flash-attention 2 on a GPU)")
    parser.add_argument("--resume", action="store_true", help="also save a checkpoint and resume from it")
    parser.add_argument("--rl", action="store_true", help="also run GRPO steps")
    parser.add_argument("--rl-steps", type=int, default=2)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU in fp32 (smoke test with a tiny arch)")
    parser.add_argument("--work", help="folder for the model, data and runs (default: a temporary one)")
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from vst.train import rl, sft

    size = "7b" if args.arch == "7b" else "3b"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work or scratch)
        work.mkdir(parents=True, exist_ok=True)
        shard = args.shard or make_shard(work, args.scenes)
        model = save_architecture(args.arch, work / f"model-{args.arch}")
        llm_params, vit_params, layers, hidden = parameter_counts(model)
        device = ["use_cpu=true", "bf16=false", "model_init_kwargs={dtype: float32}"] if args.cpu else []
        under_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")
        if not under_fsdp:  # the configs checkpoint activations through fsdp_config, which applies under FSDP only
            device += ["fsdp=", "fsdp_config=", "activation_checkpointing=true"]
        attention = "flash_attention_2" if not args.cpu and _has("flash_attn") else "sdpa"
        # the configs batch by tokens (max_tokens_per_batch, packed rows); this script measures fixed batches of
        # `--batch` rows, padded or packed into one row, so that the two compare on the same samples
        packing = ["max_tokens_per_batch=null", f"padding_free={str(args.padding_free).lower()}"]
        device.append(f"model_init_kwargs={{dtype: float32, attn_implementation: {attention}}}")  # configs ask for FA2
        source = [f"shards=[{shard}]", f"model_name_or_path={model}", "report_to=none", "seed=0"]
        common = [*source, "save_strategy=no", "logging_steps=1"]
        sft_config = sft.load_config(ROOT / "configs" / "train" / f"qwen2_5vl-{size}-sft.yaml", [
            *common, f"output_dir={work / 'sft'}", f"max_steps={args.steps + args.warmup}",
            f"per_device_train_batch_size={args.batch}", f"gradient_accumulation_steps={args.grad_accum}",
            f"dataloader_num_workers={0 if args.cpu else 2}", *device, *packing])
        result = sft_throughput(sft_config, args.warmup, args.grad_accum)
        gc.collect()  # the SFT trainer's model and optimizer state go before the GRPO run (and its vLLM engine)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

        flops = (6 * llm_params * result["tokens_per_step"] + 6 * vit_params * result["patches_per_step"]
                 + 12 * layers * hidden * result["row_tokens_squared_per_step"])
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
        peak = next((value for key, value in PEAK_BF16.items() if key in name), None)
        seconds = result["seconds_per_step"]
        results = {
            "arch": args.arch, "device": name, "llm_params": llm_params, "vit_params": vit_params,
            "padding_free": args.padding_free, "attention": attention, "fsdp": under_fsdp, "batch": args.batch,
            "grad_accum": args.grad_accum, **result,
            "tokens_per_s": result["tokens_per_step"] / seconds, "samples_per_s": result["rows_per_step"] / seconds,
            "model_tflops_per_step": flops / 1e12, "mfu": flops / seconds / peak if peak else None,
        }
        if args.resume:
            results.update(save_and_resume(
                ROOT / "configs" / "train" / f"qwen2_5vl-{size}-sft.yaml",
                [*source, f"per_device_train_batch_size={args.batch}",
                 f"dataloader_num_workers={0 if args.cpu else 2}", *device, *packing], work))
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        if args.rl:
            rl_config = rl.load_config(ROOT / "configs" / "train" / f"qwen2_5vl-{size}-grpo.yaml", [
                *common, f"output_dir={work / 'rl'}", f"max_steps={args.rl_steps}", "per_device_train_batch_size=8",
                "num_generations=4", "steps_per_generation=1", "gradient_accumulation_steps=1",
                "max_completion_length=128", "resample_rounds=0", *device,
                *(["use_vllm=true", "vllm_gpu_memory_utilization=0.15", "vllm_enable_sleep_mode=true"]
                  if _has("vllm") and not args.cpu else ["use_vllm=false"])])
            start = time.perf_counter()
            rl.train_rl(rl_config)
            results.update({"rl_steps": args.rl_steps, "rl_seconds": time.perf_counter() - start,
                            "rl_rollouts": "vllm" if rl_config.use_vllm else "transformers"})
    print(f"{args.arch} on {name}: LLM {llm_params / 1e9:.2f} B + ViT {vit_params / 1e9:.2f} B parameters, "
          f"batch {args.batch} x accumulation {args.grad_accum}, padding-free {args.padding_free}")
    print(f"  SFT: {seconds:.3f} s/step, {results['tokens_per_s']:.0f} tokens/s, {results['samples_per_s']:.2f} "
          f"samples/s, {results['model_tflops_per_step']:.2f} TFLOP/step, MFU "
          + (f"{results['mfu']:.1%}" if results["mfu"] is not None else "n/a (unknown peak)"))
    if args.resume and results["resume_max_abs_diff"] is not None:
        print(f"  save + resume: checkpoint {results['resume_checkpoint_gb']:.2f} GB, resumed run's weights within "
              f"{results['resume_max_abs_diff']:.2e} of the uninterrupted run's")
    if args.rl:
        print(f"  GRPO ({results['rl_rollouts']} rollouts): {results['rl_seconds']:.1f} s for {args.rl_steps} steps")
    print(json.dumps(results))


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
