"""Worker for tests/models/test_vision.py, run by torchrun with 2 processes on gloo: a tiny Qwen2.5-VL sharded
with torch's FSDP2 (`fully_shard` on the vision tower, every decoder layer and the root, as accelerate's FSDP2 path
wraps it; parameters resharded after each forward, i.e. ZeRO-3 sharding), each rank's batches holding different
media. It trains, saves a full state dict, resumes from it, trains on and generates. (FSDP1 and DeepSpeed refuse to run
without an accelerator, so FSDP2 is what runs sharded on CPU.)

    torchrun --nproc-per-node 2 tests/models/sharded_worker.py OUT image+video,text image,image [--no-hook]

The third and fourth arguments give, per step, the media of rank 0 and rank 1 (comma-separated steps).
"""

import datetime
import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist

PROMPT = "<|im_start|>user\n{media}what is here?<|im_end|>\n<|im_start|>assistant\nA table.<|im_end|>"
IMAGE, VIDEO = "<|vision_start|><|image_pad|><|vision_end|>", "<|vision_start|><|video_pad|><|vision_end|>"


def batch(processor, media: str, seed: int) -> dict:
    """Two rows with `media` ("image+video", "image", "video" or "text"), random pixels."""
    rng = np.random.default_rng(seed)
    texts, images, videos = [], [], []
    for _ in range(2):
        tags = ""
        if "image" in media:
            tags += IMAGE
            images.append((rng.random((56, 56, 3)) * 255).astype(np.uint8))
        if "video" in media:
            tags += VIDEO
            videos.append((rng.random((4, 56, 56, 3)) * 255).astype(np.uint8))
        texts.append(PROMPT.format(media=tags))
    inputs = processor(text=texts, images=images or None, videos=videos or None, return_tensors="pt", padding=True)
    inputs.pop("mm_token_type_ids", None)
    inputs["labels"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    return dict(inputs)


def shard(model, mesh):
    from torch.distributed.fsdp import fully_shard

    fully_shard(model.model.visual, mesh=mesh)
    for layer in model.model.language_model.layers:
        fully_shard(layer, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def main() -> None:
    out, plan0, plan1 = sys.argv[1:4]
    hook = "--no-hook" not in sys.argv
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=int(os.environ.get("VST_TEST_TIMEOUT", "60"))))
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, set_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor

    from vst.models.tiny import build_tiny
    from vst.models.vision import make_rank_uniform

    plans = [plan0.split(","), plan1.split(",")]
    mesh = init_device_mesh("cpu", (world,))
    full = StateDictOptions(full_state_dict=True, cpu_offload=True)
    report = {"rank": rank, "losses": []}

    def fresh():
        torch.manual_seed(0)
        model, processor = build_tiny("tiny", seed=0)
        if hook:
            make_rank_uniform(model)
        model = shard(model, mesh)
        return model, processor, torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train(model, processor, optimizer, steps):
        for step, media in enumerate(steps):
            loss = model(**batch(processor, media, seed=100 * rank + step)).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            report["losses"].append(float(loss.detach()))

    model, processor, optimizer = fresh()
    report["dtensor"] = all(isinstance(p, DTensor) for p in model.parameters())
    train(model, processor, optimizer, plans[rank])
    state = get_model_state_dict(model, options=full)  # every rank takes part; rank 0 holds the full tensors
    if rank == 0:
        torch.save(state, os.path.join(out, "state.pt"))
    dist.barrier()
    resumed, processor, optimizer = fresh()
    set_model_state_dict(resumed, torch.load(os.path.join(out, "state.pt")), options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=False))
    after = get_model_state_dict(resumed, options=full)
    if rank == 0:
        report["resumed_equal"] = all(torch.equal(after[k], state[k]) for k in state)
    train(resumed, processor, optimizer, plans[rank][:1])
    prompt = batch(processor, plans[rank][0], seed=7)  # generation with different media per rank, as GRPO rollouts
    prompt.pop("labels")
    with torch.no_grad():
        report["generated"] = resumed.generate(**prompt, max_new_tokens=3, min_new_tokens=3, do_sample=False,
                                               synced_gpus=True).shape[1] - prompt["input_ids"].shape[1]
    with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
        json.dump(report, handle)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
