"""Rank-uniform vision passes (vst.models.vision): one vision-tower call per forward, the same loss and gradients
as transformers' own path, and 2-process FSDP2 training on gloo with different media per rank (issue: ranks with
different modalities ran different numbers of sharded collectives and hung)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.models.sharded_worker import batch
from vst.models.tiny import build_tiny
from vst.models.vision import make_rank_uniform

WORKER = Path(__file__).with_name("sharded_worker.py")


def _loss_and_grads(model, inputs):
    model.zero_grad()
    loss = model(**inputs).loss
    loss.backward()
    grads = {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}
    return float(loss.detach()), grads


@pytest.mark.parametrize("media", ["image+video", "image", "video", "text"])
def test_same_loss_and_gradients_as_transformers(media):
    plain, processor = build_tiny("tiny", seed=0)
    hooked, _ = build_tiny("tiny", seed=0)
    assert make_rank_uniform(hooked) and make_rank_uniform(hooked)  # idempotent
    calls = []
    hooked.model.visual.register_forward_hook(lambda *_: calls.append(1))
    inputs = batch(processor, media, seed=3)
    want_loss, want = _loss_and_grads(plain, inputs)
    got_loss, got = _loss_and_grads(hooked, inputs)
    assert len(calls) == 1  # one tower call per forward: images and videos together, or the dummy
    assert got_loss == pytest.approx(want_loss, abs=1e-6)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("media", ["image+video", "image", "text"])
def test_generation_unchanged_and_one_tower_call_per_step(media):
    """transformers' generate encodes media before prefill, one tower call per modality; with the hook, prefill and
    every decode step call the tower once, and the tokens are the same."""
    plain, processor = build_tiny("tiny", seed=0)
    hooked, _ = build_tiny("tiny", seed=0)
    make_rank_uniform(hooked)
    calls = []
    hooked.model.visual.register_forward_hook(lambda *_: calls.append(1))
    inputs = batch(processor, media, seed=5)
    inputs.pop("labels")
    settings = {"max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False}
    assert torch.equal(plain.generate(**inputs, **settings), hooked.generate(**inputs, **settings))
    assert len(calls) == 6  # one per generated token: the prefill, then five decode steps


def _torchrun(out: Path, *args, timeout_s: int = 60):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VST_TEST_TIMEOUT": str(timeout_s)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(WORKER), str(out), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_fsdp2_two_ranks_with_different_media_train_save_resume_and_generate(tmp_path):
    # rank 0: images + a video, then text only, then a video; rank 1: images only, then images, then text only
    result = _torchrun(tmp_path, "image+video,text,video", "image,image,text")
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["dtensor"] for r in reports)  # really sharded: every parameter a DTensor on both ranks
    assert reports[0]["resumed_equal"]  # the full state dict saved and loaded back bit for bit
    for report in reports:
        assert len(report["losses"]) == 4 and all(loss == loss for loss in report["losses"])
        assert report["losses"][-1] < report["losses"][0]  # resumed from the trained weights, on the first batch
        assert report["generated"] == 3


def test_fsdp2_without_the_hook_fails_with_mixed_media(tmp_path):
    """The failure the hook removes, reproduced: gloo reports the collective mismatch (NCCL would hang)."""
    result = _torchrun(tmp_path, "image+video", "image", "--no-hook", timeout_s=10)
    assert result.returncode != 0
    assert "mismatch" in result.stderr or "Connection reset" in result.stderr or "Timed out" in result.stderr
