"""`vst train vla` on the SFT trainer: a 2-step CLI run writes a policy folder that predicts actions in process and
over HTTP alike; a short run's loss falls; the action tokens extend the tokenizer without breaking it."""

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.vla.test_data import write_libero_fixture
from vst.cli import app
from vst.vla.actions import BinningTokenizer

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "tiny-cpu-vla.yaml"
pytest.importorskip("h5py")


def train(tmp_path, tiny_folder, *overrides):
    demos = tmp_path / "demos"
    demos.mkdir(exist_ok=True)
    if not (demos / "put_the_bowl_on_the_plate_demo.hdf5").is_file():
        write_libero_fixture(demos / "put_the_bowl_on_the_plate_demo.hdf5", n_demos=3, steps=8)
    out = tmp_path / "ckpt"
    result = CliRunner().invoke(app, ["train", "vla", "--config", str(CONFIG), f"data=[{demos}]",
                                      f"model_name_or_path={tiny_folder}", f"output_dir={out}", "save_strategy=no",
                                      "per_device_train_batch_size=4", "logging_steps=1", "image_size=28",
                                      "dataloader_num_workers=0", *overrides])
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="module")
def two_steps(tmp_path_factory, tiny_folder):
    return train(tmp_path_factory.mktemp("vla"), tiny_folder, "max_steps=2")


def test_two_steps_write_a_policy_folder(two_steps):
    out, output = two_steps
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    settings = json.loads((out / "vla.json").read_text())
    assert settings["n_bins"] == 256 and settings["chunk"] == 1 and settings["camera_resolution"] == 32
    assert settings["episodes"] == 3 and settings["samples"] <= 24  # no-op steps may be dropped
    stats = json.loads((out / "norm_stats.json").read_text())
    assert stats["action"]["mask"] == [True] * 6 + [False] and stats["num_trajectories"] == 3
    assert "24 steps" in output or "steps from 3 episodes" in output


def test_the_policy_predicts_in_process_and_over_http(two_steps):
    from vst.vla.policy import RemotePolicy, VLAPolicy, make_server

    out, _ = two_steps
    policy = VLAPolicy.load(out)
    assert len(policy.processor.tokenizer("<|action_0|><|action_255|>", add_special_tokens=False)["input_ids"]) == 2
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    actions = policy.predict(image, "put the bowl on the plate")
    assert actions.shape == (1, 7) and set(np.abs(actions[:, 6])) == {1.0}  # gripper binarised
    stats = policy.normalizer
    assert np.all(actions[0, :6] >= stats.q01[:6] - 1e-6) and np.all(actions[0, :6] <= stats.q99[:6] + 1e-6)
    server = make_server(policy, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        remote = RemotePolicy(f"http://127.0.0.1:{server.server_address[1]}")
        assert remote.execute_steps == 1
        assert np.allclose(remote.predict(image, "put the bowl on the plate"), actions)
        request = urllib.request.Request(remote.url + "/act", data=b'{"instruction": "no image"}')
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request)
        assert error.value.code == 400 and b"image" in error.value.read()
    finally:
        server.shutdown()
        server.server_close()


def test_a_short_run_lowers_the_loss(tmp_path, tiny_folder):
    out, _ = train(tmp_path, tiny_folder, "max_steps=30", "learning_rate=5e-3", "warmup_steps=0")
    losses = [h["loss"] for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


def test_chunked_policy_predicts_a_chunk(tmp_path, tiny_folder):
    from vst.vla.policy import VLAPolicy

    out, _ = train(tmp_path, tiny_folder, "max_steps=1", "chunk=4", "execute_steps=2")
    policy = VLAPolicy.load(out)
    assert policy.predict(np.zeros((32, 32, 3), np.uint8), "put the bowl on the plate").shape == (4, 7)
    assert policy.execute_steps == 2


def test_3b_configs_keep_vsts_recipe():
    from vst.vla.train import load_vla_config

    root = CONFIG.parent
    vst = load_vla_config(root / "qwen2_5vl-3b-vla.yaml", ["bf16=false", "use_cpu=true"])
    # spec vla.md §2.4-2.7: 256 bins, one step of 7 tokens, 256 px -> 81 tokens, lr 5e-5 / ViT 5e-6, warmup 10 %,
    # cosine, global batch 8 GPUs x 16 packed rows of 1,024 tokens, unconstrained greedy decode
    assert (vst.n_bins, vst.chunk, vst.image_size, vst.image_max_pixels) == (256, 1, 256, 65536)
    assert (vst.learning_rate, vst.vit_lr, vst.warmup_steps, vst.lr_scheduler_type) == (5e-5, 5e-6, 0.1, "cosine")
    assert (vst.max_tokens_per_batch, vst.gradient_accumulation_steps, vst.padding_free) == (1024, 16, True)
    assert vst.filter_noops and not vst.constrained_decoding and vst.model_name_or_path == "Qwen/Qwen2.5-VL-3B-Instruct"
    chunked = load_vla_config(root / "qwen2_5vl-3b-vla-chunk8.yaml", ["bf16=false", "use_cpu=true"])
    assert (chunked.chunk, chunked.execute_steps, chunked.learning_rate) == (8, 4, vst.learning_rate)
    from vst.common.media import smart_resize

    assert smart_resize(256, 256, 28, vst.image_min_pixels, vst.image_max_pixels) == (252, 252)  # 9 x 9 = 81 tokens


def test_a_rerun_resumes_and_keeps_the_data(tmp_path, tiny_folder):
    out, _ = train(tmp_path, tiny_folder, "max_steps=2", "save_strategy=steps", "save_steps=1", "keep_checkpoints=true")
    assert (out / "checkpoint-2").is_dir()
    out, output = train(tmp_path, tiny_folder, "max_steps=3", "save_strategy=steps", "save_steps=1")
    output = output.replace("\n", "")  # rich wraps long paths
    assert "resuming from" in output and "checkpoint-2" in output and "vla-train.parquet: kept" in output
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]
    assert not list(out.glob("checkpoint-*"))  # a finished run keeps only the policy


def test_proprio_puts_the_state_in_the_prompt_and_the_policy_needs_it(tmp_path, tiny_folder):
    import pyarrow.parquet as pq

    from vst.vla.policy import RemotePolicy, VLAPolicy, make_server
    from vst.vla.data import read_libero_hdf5

    out, _ = train(tmp_path, tiny_folder, "max_steps=1", "proprio=true", "filter_noops=false")
    episode = next(read_libero_hdf5(tmp_path / "demos" / "put_the_bowl_on_the_plate_demo.hdf5"))
    stats = json.loads((out / "norm_stats.json").read_text())["proprio"]
    assert np.allclose(stats["q01"], np.quantile(np.concatenate(
        [e.states for e in read_libero_hdf5(tmp_path / "demos" / "put_the_bowl_on_the_plate_demo.hdf5")]), 0.01, 0))
    row = pq.read_table(out / "data" / "vla-train.parquet").slice(0, 1).to_pylist()[0]
    prompt = row["conversations"][0]["value"]
    head, state = prompt.split(" State: ")
    assert head.endswith("What action should the robot take to put the bowl on the plate?")
    assert len(BinningTokenizer(dim=8).parse(state)) == 8 and state == BinningTokenizer(dim=8).text(
        VLAPolicy.load(out).proprio.normalize(episode.states[0]))
    policy = VLAPolicy.load(out)
    assert json.loads((out / "vla.json").read_text())["proprio"] is True
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="give the state"):
        policy.predict(image, "put the bowl on the plate")
    actions = policy.predict(image, "put the bowl on the plate", episode.states[0])
    server = make_server(policy, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        remote = RemotePolicy(f"http://127.0.0.1:{server.server_address[1]}")
        assert remote.settings["proprio"] is True
        assert np.allclose(remote.predict(image, "put the bowl on the plate", episode.states[0]), actions)
        with pytest.raises(RuntimeError, match="400.*give the state"):
            remote.predict(image, "put the bowl on the plate")
    finally:
        server.shutdown()
        server.server_close()
