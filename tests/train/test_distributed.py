"""Two-process training on CPU (gloo) through the real entry points, `torchrun` and `accelerate launch`, of
`vst.cli train sft` (spec training.md §7.7)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from vst.data.engine import EngineConfig, run
from vst.data.recipes import Recipe
from vst.scene.generate import generate_scenes

TINY_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "tiny-cpu-sft.yaml"
# What a process group left alive at exit looks like: torch's leak warning, or gloo threads aborting (SIGABRT).
TEARDOWN_FAILURES = ("destroy_process_group", "terminate called", "leak")


@pytest.fixture(scope="module")
def shard(tmp_path_factory, small_config):
    folder = tmp_path_factory.mktemp("ddp-data")
    generate_scenes(folder / "scenes", 1, seed=1, config=small_config)
    recipe = Recipe("ddp-test", {"si_depth_comparison": 1.0, "mi_camera_motion": 1.0})
    manifest = run(EngineConfig(scenes=folder / "scenes", out=folder / "data", recipe=recipe, n=16, seed=0))
    return folder / "data" / manifest["shard"]


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
# accelerate's own launcher; --multi_gpu is its torchrun path, which falls back to gloo on a machine without GPUs
# (its --cpu flag starts a single process unless mpirun is configured)
ACCELERATE_LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                     "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


def launch_sft(tiny_folder, *overrides, launcher=TORCHRUN):
    command = [*launcher, "-m", "vst.cli", "train", "sft", "--config", str(TINY_CONFIG), "max_steps=3", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "VST_CACHE": str(tiny_folder.parent)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [word for word in TEARDOWN_FAILURES if word in result.stderr], result.stderr[-3000:]
    return result


def test_two_process_ddp_trains_saves_and_tears_down(shard, tiny_folder, tmp_path):
    out = tmp_path / "run"
    result = launch_sft(tiny_folder, f"shards=[{shard}]", f"output_dir={out}")
    assert (result.stdout + result.stderr).count("checkpoint ->") == 1  # printed by rank 0 only
    assert (out / "model.safetensors").is_file() and (out / "curves.png").is_file()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    # Each rank sees every other batch of 4 rows, so an epoch takes half the steps of a single process.
    rows = pq.read_metadata(shard).num_rows
    steps_per_epoch = math.ceil(math.ceil(rows / 4) / 2)
    assert state["epoch"] == pytest.approx(3 / steps_per_epoch)


def test_two_process_ddp_streams_one_file_per_rank(shard, tiny_folder, tmp_path):
    """Streamed shards are not dispatched from rank 0 (that would slice pixel_values by row): each rank reads its own
    file. The files differ in size (16 rows and 4) and steps accumulate 2 batches: the stream repeats, so the rank
    with the short file keeps up instead of leaving the other waiting in a collective."""
    from vst.data.shards import read_samples, write_samples

    short = tmp_path / "short.parquet"
    write_samples(short, list(read_samples(shard))[:4])
    out = tmp_path / "run"
    launch_sft(tiny_folder, f"shards=[{shard},{short}]", "streaming=true", "gradient_accumulation_steps=2",
               f"output_dir={out}")
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and all(math.isfinite(e["loss"]) for e in state["log_history"] if "loss" in e)
    assert (out / "model.safetensors").is_file()


def test_accelerate_launch_runs_two_processes_and_tears_down(shard, tiny_folder, tmp_path):
    out = tmp_path / "run"
    launch_sft(tiny_folder, f"shards=[{shard}]", f"output_dir={out}", launcher=ACCELERATE_LAUNCH)
    state = json.loads((out / "trainer_state.json").read_text())
    rows = pq.read_metadata(shard).num_rows
    # two ranks: 3 steps of 2 x 4 rows cover twice the epoch one process would
    assert state["global_step"] == 3 and state["epoch"] == pytest.approx(3 / math.ceil(math.ceil(rows / 4) / 2))
    assert (out / "model.safetensors").is_file()
