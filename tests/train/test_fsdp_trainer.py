"""Issue 13.4: the Trainer under accelerate's own FSDP2 path (2 ranks, gloo, CPU) saves light checkpoints (per-rank
DCP shards of weights and AdamW state, SHARDED_STATE_DICT as the GPU configs set it), resumes from one to the very
weights of an uninterrupted run, and still ends in one plain HF folder.

accelerate enables FSDP only on accelerator devices; `tests/train/fsdp_cpu.py` makes its state take the GPU branch
(and asserts, per rank and step, that every trainable parameter is a DTensor), so what runs here is the same
`fully_shard` preparation, `save_fsdp_model`/`save_fsdp_optimizer` and `load_fsdp_*` resume path a GPU cluster runs.
The shard mixes single- and multi-image samples, so the ranks' vision passes differ (rank-uniform vision on)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.train.test_distributed import TORCHRUN, shard  # noqa: F401 - the fixture: one scene, image + multi-image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, shard):  # noqa: F811 - the imported fixture
    folder = tmp_path_factory.mktemp("fsdp")
    config = yaml.safe_load((ROOT / "configs" / "train" / "tiny-cpu-sft.yaml").read_text())
    # the GPU configs' FSDP block (qwen2_5vl-3b-sft.yaml), minus activation checkpointing
    gpu = yaml.safe_load((ROOT / "configs" / "train" / "qwen2_5vl-3b-sft.yaml").read_text())["fsdp_config"]
    config.update(fsdp=True, fsdp_config={"version": 2, "reshard_after_forward": True,
                                          "state_dict_type": gpu["state_dict_type"]})
    (folder / "fsdp.yaml").write_text(yaml.safe_dump(config))
    return folder, shard


def launch(folder, shard, tiny_folder, report, *overrides):
    report.mkdir(parents=True, exist_ok=True)
    command = [*TORCHRUN, str(ROOT / "tests" / "train" / "fsdp_cpu.py"), "train", "sft", "--config",
               str(folder / "fsdp.yaml"), f"shards=[{shard}]", "save_strategy=steps", "save_steps=2",
               "lr_scheduler_type=constant", "warmup_steps=0", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "VST_CACHE": str(tiny_folder.parent),
           "VST_FSDP_REPORT": str(report), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((report / f"fsdp-rank{rank}.json").read_text()) for rank in (0, 1)]


def test_sharded_checkpoints_resume_to_the_uninterrupted_weights(setup, tiny_folder, tmp_path):
    from safetensors.torch import load_file

    from vst.models.loading import load_model

    folder, shard = setup
    whole = launch(folder, shard, tiny_folder, tmp_path / "report-a", f"output_dir={tmp_path / 'a'}", "max_steps=4")
    assert whole == [{"steps": 4, "sharded": True}] * 2  # accelerate's FSDP2 really sharded, on both ranks
    checkpoint = tmp_path / "a" / "checkpoint-2"
    # light: one DCP file per rank for the weights and for the optimizer, no gathered weights, no torch .bin
    assert sorted(p.name for p in (checkpoint / "pytorch_model_fsdp_0").iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    assert sorted(p.name for p in (checkpoint / "optimizer_0").iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    assert not list(checkpoint.glob("*.safetensors")) and not list(checkpoint.glob("*.bin"))
    # resumed from step 2 into another folder: the weights of the uninterrupted run, bit for bit
    resumed = launch(folder, shard, tiny_folder, tmp_path / "report-b", f"output_dir={tmp_path / 'b'}", "max_steps=4",
                     f"resume_from_checkpoint={checkpoint}")
    assert resumed == [{"steps": 2, "sharded": True}] * 2
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and len(a) > 50
    assert all(a[key].equal(b[key]) for key in a)
    history = [json.loads((tmp_path / run / "trainer_state.json").read_text())["log_history"] for run in "ab"]
    losses = [[e["loss"] for e in h if "loss" in e] for h in history]  # the resumed run carries steps 1-2 over
    assert losses[0] == losses[1] and len(losses[0]) == 4
    # the finished run is one plain HF folder (the final save gathers the full state dict)
    model, _ = load_model(str(tmp_path / "b"))
    assert sum(p.numel() for p in model.parameters()) > 0
