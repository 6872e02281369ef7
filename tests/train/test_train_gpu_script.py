"""benchmarks/train_gpu.py, the prepared GPU throughput script, runs end to end on the CPU with a tiny architecture:
SFT steps (padding-free) recorded before packing, MFU left out without a known peak, a save and a resume from it,
GRPO steps after."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.train.test_sft import shard  # noqa: F401  (module fixture: a small VST-P shard)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_gpu.py"


def test_gpu_script_runs_on_cpu_with_a_tiny_architecture(shard, tiny_folder, tmp_path):  # noqa: F811
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "VST_CACHE": str(tiny_folder.parent)}
    command = [sys.executable, str(SCRIPT), "--arch", "tiny", "--cpu", "--steps", "2", "--warmup", "1",
               "--padding-free", "--resume", "--rl", "--rl-steps", "1", "--shard", shard, "--work", str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["steps"] == 2 and report["padding_free"] and report["mfu"] is None and not report["fsdp"]
    assert report["tokens_per_step"] > report["rows_per_step"] > 0 and report["patches_per_step"] > 0
    assert report["tokens_per_s"] > 0 and report["model_tflops_per_step"] > 0
    assert report["rl_rollouts"] == "transformers" and report["rl_steps"] == 1
    # save + resume: the resumed run ends on the uninterrupted run's weights and losses
    assert report["resume_max_abs_diff"] == 0.0 and report["resume_checkpoint_gb"] > 0
    assert report["resume_losses"][0] == report["resume_losses"][1] and len(report["resume_losses"][0]) == 2
