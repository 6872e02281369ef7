"""GRPO on the tiny model: video reaches every log-prob forward and trains the vision tower, a few steps end to end,
online filtering, config defaults equal VST's (spec paper.md §4.3, training.md §7.5-7.6)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vst.scene.video import encode_mp4
from vst.data.engine import EngineConfig, run
from vst.data.recipes import Recipe
from vst.data.sample import VIDEO_PLACEHOLDER, Media, Sample, Turn
from vst.scene.generate import generate_scenes
from vst.train.rl import (VSTGRPOConfig, VSTGRPOTrainer, grpo_dataset, load_config, online_filter_mask, train_rl,
                          vst_reward)
from vst.train.sft import is_vision_tower

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"
TINY_CONFIG = CONFIGS / "tiny-cpu-grpo.yaml"
RECIPE = Recipe("rl-test", {"si_depth_comparison": 1.0, "mi_camera_motion": 1.0})
MEDIA_KWARGS = {"pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "mm_token_type_ids"}


@pytest.fixture(scope="module")
def shard(tmp_path_factory, small_config):
    """One small procedural scene -> a shard of single- and two-image samples (mixed image counts per batch)."""
    folder = tmp_path_factory.mktemp("rl-data")
    generate_scenes(folder / "scenes", 1, seed=1, config=small_config)
    manifest = run(EngineConfig(scenes=folder / "scenes", out=folder / "data", recipe=RECIPE, n=8, seed=0))
    return str(folder / "data" / manifest["shard"])


@pytest.fixture
def tiny_cache(tiny_folder, monkeypatch):
    monkeypatch.setenv("VST_CACHE", str(tiny_folder.parent))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def video_samples(n=2):
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        frames = [rng.integers(0, 255, (56, 56, 3), dtype=np.uint8) for _ in range(4)]
        samples.append(Sample(
            id=f"video-{i}", conversations=[Turn("human", f"{VIDEO_PLACEHOLDER}\nHow many chairs are there?"),
                                            Turn("gpt", "2")],
            images=[Media(encode_mp4(frames, fps=2.0))], type="video", modality="video",
            answer={"type": "number", "value": 2}, reward={"fn": "numeric"}))
    return samples


def dense_reward(completions, **kwargs):
    """Distinct characters / 32: non-zero advantages with random weights (spec training.md §7.3)."""
    return [len(set(c[-1]["content"] if isinstance(c, list) else c)) / 32 for c in completions]


def test_video_only_batch_trains_vision_tower_through_every_logprob_forward(tiny_folder, tmp_path):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(tiny_folder))
    processor.tokenizer.padding_side = "left"
    config = load_config(TINY_CONFIG, [
        f"output_dir={tmp_path}", "max_steps=1", "per_device_train_batch_size=2", "num_generations=2",
        "steps_per_generation=2", "beta=0.04", "online_filtering=false", "learning_rate=1e-2", "vit_lr=1e-2",
        "max_completion_length=6"])
    trainer = VSTGRPOTrainer(model=str(tiny_folder), reward_funcs=[dense_reward, vst_reward], args=config,
                             train_dataset=grpo_dataset(video_samples()), processing_class=processor)
    calls = []

    def record(tag):
        def hook(module, args, kwargs):
            if kwargs.get("labels") is not None:
                calls.append((tag, {k for k, v in kwargs.items() if v is not None}))
        return hook

    trainer.model.register_forward_pre_hook(record("policy"), with_kwargs=True)
    trainer.ref_model.register_forward_pre_hook(record("reference"), with_kwargs=True)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if is_vision_tower(n)}
    trainer.train()

    # old + policy log-probs on the policy, reference log-probs on the reference model, all with the video
    # 4 rollouts scored in chunks of 2: old log-probs (2 calls) + reference (2 calls) + the loss forward (1 call)
    assert [tag for tag, _ in calls].count("policy") == 3 and [tag for tag, _ in calls].count("reference") == 2
    assert all(MEDIA_KWARGS <= names and "pixel_values" not in names for _, names in calls), calls
    after = dict(trainer.model.named_parameters())
    changed = [n for n in before if not torch.equal(before[n], after[n])]
    assert before and len(changed) == len(before), f"{len(changed)}/{len(before)} vision tensors updated"


def test_grpo_steps_end_to_end_on_mixed_image_counts(shard, tmp_path, tiny_cache):
    from vst.models.loading import load_model

    config = load_config(TINY_CONFIG, [f"shards=[{shard}]", f"output_dir={tmp_path / 'run'}", "max_steps=3"])
    output = train_rl(config)
    history = json.loads((output / "trainer_state.json").read_text())["log_history"]
    logs = [entry for entry in history if "loss" in entry]
    assert len(logs) == 3 and all(np.isfinite(entry["loss"]) for entry in logs)
    assert all("online_filter/kept_fraction" in entry for entry in logs)
    curves = Image.open(output / "curves.png")
    curves.load()
    assert curves.text["Description"].split(",") == ["loss", "reward", "reward_std", "completions/mean_length"]
    model, _ = load_model(str(output))
    assert any(is_vision_tower(name) for name, _ in model.named_parameters())


def test_online_filter_drops_groups_with_mean_reward_0_or_1():
    rewards = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.01, 0.0, 0.995, 1.0, 0.2, 0.1])
    keep = online_filter_mask(rewards, num_generations=2)
    assert keep.tolist() == [False, False, False, False, True, True, False, False, False, False, True, True]
    assert online_filter_mask(torch.tensor([0.5, float("nan"), 0.0, float("nan")]), 2).tolist() == [True, True,
                                                                                                     False, False]


def test_vst_reward_dispatches_on_each_rows_reward_fn():
    completions = [[{"role": "assistant", "content": "<think>x</think> 2"}], [{"role": "assistant", "content": "B"}]]
    reward = [json.dumps({"fn": "numeric"}), json.dumps({"fn": "multiple_choice"})]
    answer = [json.dumps({"type": "number", "value": 2}), json.dumps({"type": "choice", "value": "B"})]
    assert vst_reward(completions, reward, answer) == [1.0, 0.5]


def test_config_defaults_equal_vst():
    config = VSTGRPOConfig(output_dir="unused", use_cpu=True)
    assert (config.epsilon, config.epsilon_high, config.beta, config.temperature) == (0.2, 0.28, 0.0, 1.0)
    assert (config.filter_low, config.filter_high, config.online_filtering) == (0.01, 0.99, True)
    assert (config.num_generations, config.max_completion_length, config.learning_rate) == (5, 2048, 1e-6)
    assert config.loss_type == "dapo" and config.lr_scheduler_type == "constant" and config.weight_decay == 0.01


@pytest.mark.parametrize("name", ["qwen2_5vl-3b-grpo.yaml", "qwen2_5vl-7b-grpo.yaml"])
def test_rl_configs_reproduce_vst(name):
    config = load_config(CONFIGS / name, ["bf16=false", "use_cpu=true", "fsdp=", "fsdp_config="])
    assert (config.epsilon, config.epsilon_high, config.beta, config.num_generations) == (0.2, 0.28, 0.0, 5)
    assert (config.learning_rate, config.max_completion_length, config.temperature) == (1e-6, 2048, 1.0)
    assert (config.filter_low, config.filter_high) == (0.01, 0.99)
    rollouts = config.per_device_train_batch_size * 8
    assert rollouts * config.steps_per_generation == 256 * 5 and rollouts * config.gradient_accumulation_steps == 640


def test_unknown_key_names_grpo_config(tmp_path):
    with pytest.raises(ValueError, match="filter_lo: unknown key .*VSTGRPOConfig"):
        load_config(None, ["filter_lo=0.1"])


def test_images_and_video_share_a_batch(shard, tiny_folder, tmp_path):
    from transformers import AutoProcessor

    from vst.data.shards import read_samples

    processor = AutoProcessor.from_pretrained(str(tiny_folder))
    processor.tokenizer.padding_side = "left"
    rows = list(read_samples(shard))[:2] + video_samples(2)
    config = load_config(TINY_CONFIG, [f"output_dir={tmp_path}", "max_steps=1", "per_device_train_batch_size=8",
                                       "num_generations=2", "online_filtering=false", "max_completion_length=4"])
    trainer = VSTGRPOTrainer(model=str(tiny_folder), reward_funcs=[dense_reward], args=config,
                             train_dataset=grpo_dataset(rows), processing_class=processor)
    calls = []
    trainer.model.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append({k for k, v in kwargs.items() if v is not None})
        if kwargs.get("labels") is not None else None, with_kwargs=True)
    trainer.train()
    assert calls and all({"pixel_values", "image_grid_thw"} | MEDIA_KWARGS <= names for names in calls), calls


class FakeLLM:
    """Stands in for `vllm.LLM` (no vLLM on CPU): records the engine kwargs, the weights pushed to it and every
    request; answers each request with a few deterministic text tokens plus `<|im_end|>` and their log-probs."""

    instances: list = []

    def __init__(self, **kwargs):
        from types import SimpleNamespace

        self.kwargs, self.requests, self.weight_rounds, self.resets = kwargs, [], [], 0
        self.rng = np.random.default_rng(0)
        self.eos = None
        loader = SimpleNamespace(load_weights=self._load_weights)
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(
            driver_worker=SimpleNamespace(model_runner=SimpleNamespace(model=loader))))
        FakeLLM.instances.append(self)

    def _load_weights(self, weights):
        if not self.weight_rounds or self.resets == len(self.weight_rounds):
            self.weight_rounds.append({})
        self.weight_rounds[-1].update({name: tensor.detach().clone() for name, tensor in weights})

    def reset_prefix_cache(self):
        self.resets += 1

    def generate(self, requests, sampling_params, use_tqdm=True):
        from types import SimpleNamespace

        assert sampling_params.kwargs["n"] == 1 and sampling_params.kwargs["max_tokens"] == 6
        self.requests.append(requests)
        outputs = []
        for request in requests:
            tokens = [int(t) for t in self.rng.integers(200, 400, size=int(self.rng.integers(1, 5)))] + [self.eos]
            logprobs = [{token: SimpleNamespace(logprob=-1.5, rank=1)} for token in tokens]
            outputs.append(SimpleNamespace(prompt_token_ids=request["prompt_token_ids"],
                                           outputs=[SimpleNamespace(token_ids=tokens, logprobs=logprobs)]))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    import sys
    from types import ModuleType, SimpleNamespace

    import trl.generation.vllm_generation as vllm_generation

    module = ModuleType("vllm")
    module.SamplingParams = lambda **kwargs: SimpleNamespace(kwargs=kwargs)
    module.LLM = FakeLLM
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(vllm_generation, "is_vllm_available", lambda *args, **kwargs: True)
    monkeypatch.setattr(vllm_generation, "LLM", FakeLLM, raising=False)
    monkeypatch.setattr(vllm_generation, "SamplingParams", module.SamplingParams, raising=False)
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        # TRL's colocate set-up writes them. setenv records the value before it (or its absence) for the undo;
        # a bare delenv of an absent name records nothing and the set-up's values would leak into later tests
        monkeypatch.setenv(name, os.environ.get(name, ""))
        if not os.environ[name]:
            monkeypatch.delenv(name)
    FakeLLM.instances = []
    return FakeLLM


def test_vllm_rollouts_carry_images_and_video_and_get_each_steps_weights(shard, tiny_folder, tmp_path, fake_vllm):
    from transformers import AutoProcessor

    from vst.data.shards import read_samples
    from vst.models.processing import collapse_placeholders, encode_for_generation, load_image, load_video
    from vst.train.rl import clean_messages

    processor = AutoProcessor.from_pretrained(str(tiny_folder))
    processor.tokenizer.padding_side = "left"
    samples = list(read_samples(shard))
    rows = [next(s for s in samples if len(s.images) == n) for n in (1, 2)] + video_samples(2)
    config = load_config(TINY_CONFIG, [
        f"output_dir={tmp_path}", "max_steps=2", "per_device_train_batch_size=8", "num_generations=2",
        "online_filtering=false", "max_completion_length=6", "use_vllm=true", "vllm_mode=colocate",
        "learning_rate=1e-2"])
    dataset = grpo_dataset(rows)
    trainer = VSTGRPOTrainer(model=str(tiny_folder), reward_funcs=[dense_reward], args=config,
                             train_dataset=dataset, processing_class=processor)
    (llm,) = fake_vllm.instances
    llm.eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert llm.kwargs["model"] == str(tiny_folder) and llm.kwargs["tensor_parallel_size"] == 1
    trainer.train()

    # one generation round per step; 8 rollouts = 4 prompts x 2, each carrying its own media
    assert len(llm.requests) == 2 and all(len(batch) == 8 for batch in llm.requests)
    budgets = config.budgets()
    pads = [processor.tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")]
    by_ids = {}
    for prompt in dataset["prompt"]:
        messages = clean_messages(prompt)
        ids = encode_for_generation([messages], processor, budgets)["input_ids"][0].tolist()
        by_ids.setdefault(tuple(collapse_placeholders(ids, pads)), []).append(messages)  # the 2 videos share ids
    kinds = set()
    for request in (r for batch in llm.requests for r in batch):
        ids = request["prompt_token_ids"]  # our processor's ids, one placeholder per medium: vLLM expands them
        candidates = by_ids[tuple(ids)]
        assert sum(ids.count(pad) for pad in pads) == len(request["multi_modal_data"].get("image", [])) + len(
            request["multi_modal_data"].get("video", []))
        media = [[i for m in messages for i in m["content"] if i.get("type") in ("image", "video")]
                 for messages in candidates]
        items = media[0]
        data = request["multi_modal_data"]
        if items[0]["type"] == "video":
            kinds.add("video")
            videos = [np.stack([np.asarray(f) for f in load_video(m[0]["video"], budgets)[0]]) for m in media]
            assert [v.shape for v in data["video"]] == [videos[0].shape] and videos[0].shape[0] == 4
            assert any(np.array_equal(data["video"][0], video) for video in videos)
            assert request["mm_processor_kwargs"] == {"do_resize": False, "fps": 2.0}
        else:
            kinds.add(len(items))
            cap = budgets.image_max_pixels_for(len(items))
            assert [im.size for im in data["image"]] == [
                load_image(i["image"], budgets.image_min_pixels, cap).size for i in items]
            assert request["mm_processor_kwargs"] == {"do_resize": False}
    assert kinds == {"video", 1, 2}

    # weights pushed before each step's rollouts: every parameter, and the second round holds the trained values
    assert len(llm.weight_rounds) == 2 and llm.resets == 2
    names = {name for name, _ in trainer.model.named_parameters()}
    assert all(set(round_) == names for round_ in llm.weight_rounds)
    first, second = llm.weight_rounds
    assert any(not torch.equal(first[name], second[name]) for name in names)
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(history) == 2 and all(np.isfinite(entry["loss"]) for entry in history)


def test_vllm_server_mode_is_refused_before_any_engine_starts(tiny_folder, tmp_path, fake_vllm):
    config = load_config(TINY_CONFIG, [f"output_dir={tmp_path}", "use_vllm=true", "vllm_mode=server"])
    with pytest.raises(ValueError, match="colocated with tensor_parallel_size 1"):
        VSTGRPOTrainer(model=str(tiny_folder), reward_funcs=[dense_reward], args=config,
                       train_dataset=grpo_dataset(video_samples(2)))
    assert fake_vllm.instances == []


def test_refill_groups_pads_and_fills_dropped_slots_in_order():
    from vst.train.rl import refill_groups

    # 3 groups of 2 rollouts; groups 0 and 2 dropped. Refill round: groups 0 (dropped) and 1, 2 (kept).
    output = {"prompt_ids": torch.tensor([[9, 1], [9, 1], [0, 2], [0, 2], [0, 3], [0, 3]]),
              "prompt_mask": torch.tensor([[0, 1], [0, 1], [1, 1], [1, 1], [1, 1], [1, 1]]),
              "completion_ids": torch.tensor([[5], [6], [7], [8], [5], [5]]),
              "completion_mask": torch.ones(6, 1, dtype=torch.long),
              "advantages": torch.tensor([0.0, 0.0, 1.0, -1.0, 0.0, 0.0]),
              "num_items_in_batch": torch.tensor(6), "media_rows": [None, None, {"a": 1}, {"a": 1}, None, None]}
    extra = {"prompt_ids": torch.tensor([[4, 4, 4]] * 2 + [[9, 5, 5]] * 2 + [[6, 6, 6]] * 2),
             "prompt_mask": torch.tensor([[1, 1, 1]] * 2 + [[0, 1, 1]] * 2 + [[1, 1, 1]] * 2),
             "completion_ids": torch.tensor([[1, 1]] * 2 + [[2, 3], [4, 9]] + [[5, 6], [7, 8]]),
             "completion_mask": torch.tensor([[1, 1]] * 2 + [[1, 1], [1, 0]] + [[1, 1], [1, 1]]),
             "advantages": torch.tensor([0.0, 0.0, 0.5, -0.5, 2.0, -2.0]), "num_items_in_batch": torch.tensor(12)}
    keep = torch.tensor([False, False, True, True, False, False])
    extra_keep = torch.tensor([False, False, True, True, True, True])

    merged, merged_keep = refill_groups(output, keep, extra, extra_keep, group=2, pad_token_id=9)

    assert merged_keep.tolist() == [True] * 6
    assert merged["prompt_ids"].tolist() == [[9, 5, 5], [9, 5, 5], [9, 0, 2], [9, 0, 2], [6, 6, 6], [6, 6, 6]]
    assert merged["prompt_mask"].tolist() == [[0, 1, 1], [0, 1, 1], [0, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]]
    assert merged["completion_ids"].tolist() == [[2, 3], [4, 9], [7, 9], [8, 9], [5, 6], [7, 8]]
    assert merged["completion_mask"].tolist() == [[1, 1], [1, 0], [1, 0], [1, 0], [1, 1], [1, 1]]
    assert merged["advantages"].tolist() == [0.5, -0.5, 1.0, -1.0, 2.0, -2.0]
    assert merged["media_rows"] == [None, None, {"a": 1}, {"a": 1}, None, None]
    assert output["prompt_ids"].shape == (6, 2) and keep.tolist()[0] is False  # inputs untouched
    # nothing to give: unchanged
    same, same_keep = refill_groups(output, keep, extra, torch.zeros(6, dtype=torch.bool), group=2, pad_token_id=9)
    assert same is output and same_keep is keep


def saturating_reward(completions, id, **kwargs):
    """1.0 for every rollout of the `sat-*` prompts (their groups get dropped), dense for the others."""
    return [1.0 if row_id.startswith("sat") else dense for row_id, dense in zip(id, dense_reward(completions))]


@pytest.mark.parametrize("rounds", [0, 4])
def test_dropped_groups_are_refilled_with_fresh_prompts(shard, tiny_folder, tmp_path, rounds):
    from dataclasses import replace

    from transformers import AutoProcessor

    from vst.data.shards import read_samples

    processor = AutoProcessor.from_pretrained(str(tiny_folder))
    processor.tokenizer.padding_side = "left"
    samples = list(read_samples(shard))[:4]
    samples = [replace(s, id=("sat-" if i < 2 else "dense-") + s.id) for i, s in enumerate(samples)]
    config = load_config(TINY_CONFIG, [
        f"output_dir={tmp_path}", "max_steps=2", "per_device_train_batch_size=4", "num_generations=2",
        "max_completion_length=4", f"resample_rounds={rounds}", "seed=3"])
    trainer = VSTGRPOTrainer(model=str(tiny_folder), reward_funcs=[saturating_reward], args=config,
                             train_dataset=grpo_dataset(samples), processing_class=processor)
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    first = [entry["online_filter/kept_fraction"] for entry in logs]
    final = [entry["online_filter/final_kept_fraction"] for entry in logs]
    done = [entry["online_filter/resample_rounds"] for entry in logs]
    assert any(f < 1.0 for f in first)  # the saturated prompts were drawn and dropped
    if rounds == 0:
        assert final == first and done == [0.0, 0.0]
    else:
        assert final == [1.0, 1.0] and all(0 < d <= rounds for d, f in zip(done, first) if f < 1)


def test_grpo_shards_are_memory_mapped_and_equal_the_in_memory_rows(shard, tmp_path):
    import pyarrow.parquet as pq

    from vst.data.shards import read_samples
    from vst.train.rl import grpo_shards

    mapped = grpo_shards([shard])
    assert mapped.cache_files  # an Arrow file on disk, not a table in memory
    assert mapped.to_list() == grpo_dataset(list(read_samples(shard))).to_list()
    assert grpo_shards([shard]).cache_files == mapped.cache_files  # same files: the cache is reused
    copy = tmp_path / "copy.parquet"  # other files (same rows): another cache entry, never a stale one
    pq.write_table(pq.read_table(shard), copy)
    assert grpo_shards([copy]).cache_files != mapped.cache_files


def test_shards_without_reward_functions_give_a_clear_error(shard, tmp_path):
    from dataclasses import replace

    from vst.data.shards import read_samples, write_samples
    from vst.train.rl import grpo_shards

    bare = tmp_path / "no-rewards.parquet"
    write_samples(bare, [replace(s, reward={}) for s in read_samples(shard)])
    with pytest.raises(ValueError, match="no sample carries a reward function"):
        grpo_shards([bare])


def test_rank_uniform_vision_runs_the_tower_once_per_forward(shard, tiny_folder, tmp_path):
    """rank_uniform_vision (on by default with more than one process): rollouts, decode steps and log-prob passes
    each call the vision tower exactly once (images and the video together, a dummy when a forward has none), so
    sharded ranks run the same collectives."""
    from transformers import AutoProcessor

    from vst.data.shards import read_samples

    processor = AutoProcessor.from_pretrained(str(tiny_folder))
    processor.tokenizer.padding_side = "left"
    rows = list(read_samples(shard))[:2] + video_samples(2)
    config = load_config(TINY_CONFIG, [f"output_dir={tmp_path}", "max_steps=1", "per_device_train_batch_size=8",
                                       "num_generations=2", "online_filtering=false", "max_completion_length=4",
                                       "rank_uniform_vision=true"])
    trainer = VSTGRPOTrainer(model=str(tiny_folder), reward_funcs=[dense_reward], args=config,
                             train_dataset=grpo_dataset(rows), processing_class=processor)
    core = trainer.model.model
    forwards, tower = [], []
    core.register_forward_hook(lambda *_: forwards.append(1))
    core.visual.register_forward_hook(lambda *_: tower.append(1))
    trainer.train()
    assert forwards and len(tower) == len(forwards)
    assert trainer.state.global_step == 1


@pytest.mark.parametrize("name", ["qwen2_5vl-3b-sft.yaml", "qwen2_5vl-7b-sft.yaml", "qwen2_5vl-3b-coldstart.yaml",
                                  "qwen2_5vl-7b-coldstart.yaml", "qwen2_5vl-3b-grpo.yaml", "qwen2_5vl-7b-grpo.yaml"])
def test_gpu_configs_shard_once_checkpoint_once_and_load_lean(name):
    """Issue 13.3: FSDP checkpoints activations, so the trainer must not too (TRL defaults gradient_checkpointing to
    true); the train YAML's fsdp_config replaces the accelerate file's, so it carries cpu_ram_efficient_loading
    itself; flash-attention kernels; GRPO with EasyR1's dual clip on colocated vLLM."""
    import yaml

    from vst.train.sft import load_config as load_sft

    raw = yaml.safe_load((CONFIGS / name).read_text())
    loader = load_config if "grpo" in name else load_sft
    config = loader(CONFIGS / name, ["bf16=false", "use_cpu=true"])
    assert raw["fsdp_config"]["activation_checkpointing"] and raw["fsdp_config"]["cpu_ram_efficient_loading"]
    assert raw["fsdp_config"]["state_dict_type"] == "SHARDED_STATE_DICT"  # issue 13.4: light checkpoints
    assert not config.gradient_checkpointing and not config.activation_checkpointing
    assert config.model_init_kwargs["attn_implementation"] == "flash_attention_2"
    assert config.vit_lr_scope == "visual"
    if "grpo" in name:
        assert config.delta == 3.0 and config.use_vllm and config.vllm_mode == "colocate"
        assert config.vllm_enable_sleep_mode and config.vllm_gpu_memory_utilization == 0.6
