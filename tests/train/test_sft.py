"""SFT on the tiny model: loss falls, the checkpoint loads and generates, vit_lr groups, freezing, config errors,
resuming from a checkpoint equals not stopping, released VST rows train as they are."""

import io
import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from vst.data.engine import EngineConfig, run
from vst.data.recipes import Recipe
from vst.scene.generate import generate_scenes
from vst.train.collate import SampleCollator
from vst.train.sft import (VSTSFTConfig, build_trainer, is_vision_tower, is_visual, load_checkpoint_weights,
                           load_config, load_shards, train_sft)

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"
TINY_CONFIG = CONFIGS / "tiny-cpu-sft.yaml"
RECIPE = Recipe("sft-test", {"si_depth_comparison": 1.0, "mi_camera_motion": 1.0})


@pytest.fixture(scope="module")
def shard(tmp_path_factory, small_config):
    """One small procedural scene -> a shard of about 16 single- and two-image samples."""
    folder = tmp_path_factory.mktemp("sft-data")
    generate_scenes(folder / "scenes", 1, seed=1, config=small_config)
    manifest = run(EngineConfig(scenes=folder / "scenes", out=folder / "data", recipe=RECIPE, n=16, seed=0))
    assert manifest["rows"] >= 8
    return str(folder / "data" / manifest["shard"])


@pytest.fixture
def tiny_cache(tiny_folder, monkeypatch):
    """Point `model_name_or_path: tiny` at the session's tiny model folder."""
    monkeypatch.setenv("VST_CACHE", str(tiny_folder.parent))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def tiny_config(shard, out, *overrides):
    return load_config(TINY_CONFIG, [f"shards=[{shard}]", f"output_dir={out}", *overrides])


def test_training_lowers_loss_checkpoint_loads_and_generates(shard, tmp_path, tiny_cache, tiny_model):
    from vst.data.shards import read_samples
    from vst.models.loading import load_model
    from vst.models.processing import Budgets, encode_for_generation

    output = train_sft(tiny_config(shard, tmp_path / "run", "freeze_vision=true"))

    losses = [entry["loss"] for entry in json.loads((output / "trainer_state.json").read_text())["log_history"]
              if "loss" in entry]
    assert len(losses) == 10 and losses[-1] < losses[0]

    model, processor = load_model(str(output))
    before = dict(tiny_model[0].named_parameters())
    after = dict(model.named_parameters())
    vision = [name for name in after if is_vision_tower(name)]
    assert vision and all(torch.equal(after[name], before[name]) for name in vision)
    assert any(not torch.equal(after[name], before[name]) for name in after if "language_model" in name)

    sample = next(iter(read_samples(shard)))
    batch = encode_for_generation([sample], processor, Budgets(image_max_pixels=112 * 112))
    generated = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > batch["input_ids"].shape[1]


@pytest.mark.parametrize("scope", ["visual", "tower"])
def test_vit_lr_gives_two_param_groups(shard, tmp_path, tiny_cache, scope):
    """vit_lr_scope 'visual' (default, VST's get_param_groups): every visual.* parameter, the merger included, at
    vit_lr; 'tower': the merger at learning_rate."""
    trainer = build_trainer(tiny_config(shard, tmp_path / "run", "learning_rate=1e-4", "vit_lr=1e-5", f"vit_lr_scope={scope}"))
    optimizer = trainer.create_optimizer()
    assert sorted(group["lr"] for group in optimizer.param_groups) == [1e-5, 1e-4]
    vision_group = next(group for group in optimizer.param_groups if group["lr"] == 1e-5)
    chosen = is_visual if scope == "visual" else is_vision_tower
    vision_ids = {id(p) for name, p in trainer.model.named_parameters() if chosen(name)}
    assert {id(p) for p in vision_group["params"]} == vision_ids
    merger = {id(p) for name, p in trainer.model.named_parameters() if "visual.merger." in name}
    assert (merger <= vision_ids) == (scope == "visual") and merger
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(trainer.model.parameters()))


def test_unknown_yaml_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("learning_rate: 1.0e-5\nlearnig_rate: 2.0e-5\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: learnig_rate: unknown key"):
        load_config(path)
    with pytest.raises(ValueError, match="vit_lrr: unknown key"):
        load_config(None, ["vit_lrr=1e-6"])


@pytest.mark.parametrize("text, expected", [
    ('max_steps: "abc"\n', r"bad\.yaml: max_steps: expected an integer, got 'abc'"),
    ("learning_rate: [1, 2]\n", r"bad\.yaml: learning_rate: expected a number, got \[1, 2\]"),
    ("shards: 5\n", r"bad\.yaml: shards: expected a list, got 5"),
    ("shards: [a.parquet, 3]\n", None),  # list[str] items are not checked (str fields take what YAML gives)
    ("use_cpu: maybe\n", r"bad\.yaml: use_cpu: expected true or false, got 'maybe'"),
    ("a: !!python/object:os.system\n", r"bad\.yaml: line 3: invalid YAML \(could not determine a constructor"),
    ("a: [1, 2\n", r"bad\.yaml: line 4: invalid YAML \(expected ',' or ']'"),
])
def test_malformed_or_mistyped_yaml_is_one_line_naming_file_and_key(text, expected, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("use_cpu: true\nbf16: false\n" + text if "use_cpu" not in text else "bf16: false\n" + text)
    if expected is None:
        assert load_config(path).shards == ["a.parquet", 3]
        return
    with pytest.raises(ValueError, match=expected) as error:
        load_config(path)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="override 'max_steps=abc': max_steps|overrides: max_steps: expected an integer"):
        load_config(None, ["max_steps=abc"])


def test_yaml_values_keep_trl_types(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("save_strategy: no\nlearning_rate: 5e-5\nvit_lr: 5e-6\nuse_cpu: true\nbf16: false\n")
    config = load_config(path, ["warmup_steps=0.03"])
    assert isinstance(config, VSTSFTConfig)
    assert config.save_strategy == "no" and config.learning_rate == 5e-5 and config.vit_lr == 5e-6
    assert config.warmup_steps == 0.03 and config.lr_scheduler_type == "cosine"
    assert config.remove_unused_columns is False and config.max_length is None


@pytest.mark.parametrize("name", ["qwen2_5vl-3b-sft.yaml", "qwen2_5vl-7b-sft.yaml"])
def test_stage1_configs_reproduce_vst(name):
    # bf16 needs a GPU; the rest of the config is checked on CPU.
    config = load_config(CONFIGS / name, ["bf16=false", "use_cpu=true"])
    assert (config.learning_rate, config.vit_lr, config.warmup_steps) == (5e-5, 5e-6, 0.1)
    assert config.lr_scheduler_type == "cosine" and config.num_train_epochs == 1
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps * 8 == 128


def test_collator_skips_samples_longer_than_max_seq_len(shard, tiny_model):
    from vst.data.shards import read_samples
    from vst.models.processing import Budgets

    model, processor = tiny_model
    samples = list(read_samples(shard))
    budgets = Budgets(image_min_pixels=3136, image_max_pixels=12544)
    lengths = [int(SampleCollator(processor, budgets)([s])["attention_mask"].sum()) for s in samples]
    assert len(set(lengths)) > 1
    limit = max(lengths) - 1  # the longest samples no longer fit, the others do
    collator = SampleCollator(processor, Budgets(image_min_pixels=3136, image_max_pixels=12544, max_seq_len=limit))
    batch = collator(samples)
    assert batch["input_ids"].shape[0] == sum(length <= limit for length in lengths)
    assert collator.skipped == [s.id for s, length in zip(samples, lengths) if length > limit] != []
    with pytest.raises(ValueError, match="every sample of a batch is longer than max_seq_len"):
        SampleCollator(processor, Budgets(image_min_pixels=3136, image_max_pixels=12544, max_seq_len=8))(samples)


def logged(output, *keys):
    """{step: (key values...)} of the entries of `output/trainer_state.json` that logged a loss."""
    history = json.loads((Path(output) / "trainer_state.json").read_text())["log_history"]
    return {entry["step"]: tuple(entry[key] for key in keys) for entry in history if "loss" in entry}


def test_resumed_run_continues_exactly_like_the_uninterrupted_one(shard, tmp_path, tiny_cache):
    # 16 rows / batch 4: the resume at step 3 continues into the second epoch (a reshuffle), so data order, RNG
    # state, optimizer, scheduler and weights must all come back from checkpoint-3 for the losses to match.
    common = ["max_steps=6", "save_strategy=steps", "save_steps=3"]
    full = train_sft(tiny_config(shard, tmp_path / "full", *common))
    resumed = train_sft(tiny_config(shard, tmp_path / "resumed", *common,
                                    f"resume_from_checkpoint={full / 'checkpoint-3'}"))
    keys = ("loss", "grad_norm", "learning_rate")
    expected, got = logged(full, *keys), logged(resumed, *keys)
    assert sorted(expected) == list(range(1, 7)) and sorted(got) == list(range(1, 7))
    for step in (4, 5, 6):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    assert (resumed / "curves.png").is_file()


def test_released_vst_rows_train_without_conversion(tmp_path, tiny_cache, tiny_model):
    def jpeg(seed):
        pixels = np.random.default_rng(seed).integers(0, 255, (84, 112, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG")
        return {"bytes": buffer.getvalue(), "path": f"frames/{seed}.jpg"}

    # VST's released parquet schema (vst_500k): no vst columns, <|image_pad|> or LLaVA's <image>, meta_info a JSON string
    rows = [
        {"id": "si_depth_000001", "data_source": "scannet", "type": "si_depth_comparison",
         "conversations": [{"from": "human", "value": "<image>\nWhich is closer, the chair or the table?"},
                           {"from": "gpt", "value": "The chair."}],
         "images": [jpeg(0)], "meta_info": json.dumps({"height": 84, "width": 112})},
        {"id": "mi_camera_motion_000001", "data_source": "arkitscenes", "type": "mi_camera_motion",
         "conversations": [{"from": "human", "value": "<|image_pad|><|image_pad|>Did the camera move left or right?"},
                           {"from": "gpt", "value": "Left"}],
         "images": [jpeg(1), jpeg(2)], "meta_info": json.dumps([{"height": -1, "width": -1}])},
    ] * 2
    path = tmp_path / "vst_500k.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)

    config = tiny_config(str(path), tmp_path / "run", "max_steps=2", "per_device_train_batch_size=2")
    batch = SampleCollator(tiny_model[1], config.budgets())(list(load_shards([path]))[:2])
    assert batch["image_grid_thw"].shape[0] == 3  # every image of the two rows reached the batch
    losses = [loss for (loss,) in logged(train_sft(config), "loss").values()]
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_checkpoint_weights_load_through_the_key_renaming_or_fail_loudly(tiny_folder, tmp_path):
    import safetensors.torch
    from transformers import AutoModelForImageTextToText

    saved = safetensors.torch.load_file(str(tiny_folder / "model.safetensors"))
    assert any(key.startswith("visual.") for key in saved)  # the hub layout, not the module's `model.visual.*`
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_folder))
    reference = {name: p.detach().clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    load_checkpoint_weights(model, tiny_folder)
    assert all(torch.equal(p, reference[name]) for name, p in model.named_parameters())

    for name, broken in [("extra", {**saved, "visual.bogus.weight": torch.zeros(1)}),
                         ("missing", {k: v for k, v in saved.items() if not k.startswith("visual.merger.")})]:
        folder = tmp_path / name
        folder.mkdir()
        safetensors.torch.save_file(broken, str(folder / "model.safetensors"))
        with pytest.raises(RuntimeError, match="bogus" if name == "extra" else "merger"):
            load_checkpoint_weights(model, folder)


def test_padding_free_rows_give_the_padded_loss_and_gradients(shard, tmp_path, tiny_cache):
    """One packed row of two-image, single-image and video samples (3D RoPE per sample, block-diagonal attention)
    equals the right-padded batch: same loss, same gradients in the vision tower and the LLM."""
    from tests.train.test_rl import video_samples
    from vst.data.shards import read_samples

    trainer = build_trainer(tiny_config(shard, tmp_path / "run", "padding_free=true"))
    assert trainer.args.padding_free and trainer.padding_free_vl
    rows = list(read_samples(shard))[:3] + video_samples(1)
    batch = trainer.data_collator(rows)
    lengths = batch["attention_mask"].sum(dim=1)
    assert len(set(lengths.tolist())) > 1 and "pixel_values_videos" in batch and "pixel_values" in batch
    model = trainer.model
    seen = {}
    model.register_forward_pre_hook(lambda m, a, kw: seen.update(kw), with_kwargs=True)  # runs after the pack hook

    def loss_and_grads():
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    packed_loss, packed_grads = loss_and_grads()
    assert seen["input_ids"].shape == (1, int(lengths.sum())) and "attention_mask" not in seen
    assert seen["position_ids"].shape == (4, 1, int(lengths.sum()))
    trainer.pack_hook.remove()
    padded_loss, padded_grads = loss_and_grads()
    assert seen["input_ids"].shape == batch["input_ids"].shape

    assert packed_loss == pytest.approx(padded_loss, rel=1e-5)
    assert packed_grads.keys() == padded_grads.keys()
    assert any(is_vision_tower(name) for name in packed_grads)
    for name in packed_grads:
        torch.testing.assert_close(packed_grads[name], padded_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_padding_free_training_runs_and_lowers_loss(shard, tmp_path, tiny_cache):
    output = train_sft(tiny_config(shard, tmp_path / "run", "padding_free=true"))
    losses = [loss for (loss,) in logged(output, "loss").values()]
    assert len(losses) == 10 and losses[-1] < losses[0]


def test_streamed_shards_give_the_in_memory_rows_and_losses(shard, tmp_path, tiny_cache):
    import datasets

    from vst.train.sft import load_shards

    streamed = load_shards([shard, shard], streaming=True)
    assert isinstance(streamed, datasets.IterableDataset) and streamed.n_shards == 2  # ranks/workers split files
    assert list(streamed) == load_shards([shard, shard]).to_list()
    endless = load_shards(shard, streaming=True, repeat=True)  # what training streams: max_steps ends it
    one_pass = load_shards(shard).to_list()
    assert list(itertools.islice(endless, 2 * len(one_pass) + 1)) == one_pass * 2 + one_pass[:1]

    # shard order on both sides (no shuffle buffer; sequential sampler): the same batches, hence the same losses
    streaming = train_sft(tiny_config(shard, tmp_path / "streamed", "streaming=true", "shuffle_buffer=0",
                                      "max_steps=3"))
    in_memory = train_sft(tiny_config(shard, tmp_path / "in-memory", "train_sampling_strategy=sequential",
                                      "max_steps=3"))
    expected, got = logged(in_memory, "loss", "grad_norm"), logged(streaming, "loss", "grad_norm")
    assert sorted(got) == [1, 2, 3]
    for step in got:
        assert got[step] == pytest.approx(expected[step], rel=1e-5), step

    with pytest.raises(ValueError, match="streaming: set max_steps"):
        build_trainer(tiny_config(shard, tmp_path / "no-steps", "streaming=true", "max_steps=-1"))


def test_load_best_model_restores_the_best_checkpoints_weights(shard, tmp_path, tiny_cache):
    from transformers import AutoModelForImageTextToText

    trainer = build_trainer(tiny_config(shard, tmp_path / "run", "max_steps=2", "save_strategy=steps",
                                        "save_steps=1"))
    trainer.train()
    best = tmp_path / "run" / "checkpoint-1"
    saved = dict(AutoModelForImageTextToText.from_pretrained(best).named_parameters())
    current = dict(trainer.model.named_parameters())
    assert any(not torch.equal(current[name], saved[name]) for name in saved)
    trainer.state.best_model_checkpoint, trainer.state.best_metric = str(best), 0.5
    trainer._load_best_model()
    current = dict(trainer.model.named_parameters())
    assert current.keys() == saved.keys() and all(torch.equal(current[n], saved[n]) for n in saved)


def test_group_by_length_reads_header_token_counts_and_cuts_padding(shard, tmp_path, tiny_cache):
    # 8 copies of the shard: transformers sorts mega-batches of up to 50 batches, at least 4 mega-batches per epoch
    config = load_config(TINY_CONFIG, [f"shards=[{','.join([shard] * 8)}]", f"output_dir={tmp_path / 'run'}",
                                       "train_sampling_strategy=group_by_length"])
    trainer = build_trainer(config)
    dataset = trainer.train_dataset
    exact = [int(trainer.data_collator([row])["attention_mask"].sum()) for row in dataset]
    assert dataset["length"] == exact and len(set(exact)) > 2

    def efficiency(order):
        batches = [[exact[i] for i in order[start:start + 4]] for start in range(0, len(order), 4)]
        return sum(map(sum, batches)) / sum(max(batch) * len(batch) for batch in batches)

    sampler = trainer._get_train_sampler()
    assert type(sampler).__name__ == "LengthGroupedSampler"
    torch.manual_seed(0)
    shuffled = [efficiency(torch.randperm(len(exact)).tolist()) for _ in range(20)]
    assert efficiency(list(sampler)) > max(shuffled)


def test_a_length_column_in_the_shards_is_used_as_is(shard, tmp_path, tiny_cache):
    table = pq.read_table(shard)
    given = list(range(1000, 1000 + table.num_rows))
    pq.write_table(table.append_column("length", pa.array(given, pa.int64())), tmp_path / "with-length.parquet")
    trainer = build_trainer(load_config(TINY_CONFIG, [f"shards=[{tmp_path / 'with-length.parquet'}]",
                                                      f"output_dir={tmp_path / 'run'}",
                                                      "train_sampling_strategy=group_by_length"]))
    assert trainer.train_dataset["length"] == given  # read, not estimated (estimates are a few hundred tokens)


def test_shards_are_memory_mapped(shard, tmp_path):
    from vst.train.sft import load_shards

    mapped = load_shards(shard)
    assert mapped.cache_files and len(mapped) == pq.read_metadata(shard).num_rows
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(shard).slice(0, 0), empty)
    with pytest.raises(ValueError, match="hold no rows"):
        load_shards(empty)


def test_a_foreign_parquet_is_named_before_training(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vst.train.sft import expand_shards

    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "wrong.parquet")
    with pytest.raises(ValueError, match=r"wrong.parquet: id: missing column"):
        expand_shards([tmp_path / "wrong.parquet"])
    with pytest.raises(FileNotFoundError, match=r"gone.parquet: file not found"):
        expand_shards([tmp_path / "gone.parquet"])


def test_token_budget_batches_fill_the_budget_and_cover_every_sample_once():
    from vst.train.collate import TokenBudgetBatchSampler

    lengths = np.random.default_rng(0).integers(200, 3000, size=500)
    sampler = TokenBudgetBatchSampler(lengths, budget=8192, seed=3)
    first, second = list(sampler), list(sampler)
    for batches in (first, second):
        assert sorted(i for batch in batches for i in batch) == list(range(500))
        assert all(lengths[batch].sum() <= 8192 for batch in batches)
    assert first != second  # the epoch advances with each pass
    assert first == TokenBudgetBatchSampler(lengths, budget=8192, seed=3).batches(0)  # reproducible
    assert sampler.fill() > 0.8  # next fit in a random order: the share of each packed row that is real tokens


def test_token_budget_training_packs_each_micro_batch_into_one_row(shard, tmp_path, tiny_cache):
    trainer = build_trainer(tiny_config(shard, tmp_path / "run", "padding_free=true", "max_tokens_per_batch=1200",
                                        "max_steps=2"))
    lengths = trainer.train_dataset[trainer.args.length_column_name]
    batches = list(trainer.get_train_dataloader().batch_sampler)
    assert all(sum(lengths[i] for i in batch) <= 1200 for batch in batches if len(batch) > 1)
    assert max(len(batch) for batch in batches) > 1  # more than one sample per packed row
    seen = {}
    trainer.model.register_forward_pre_hook(lambda m, a, kw: seen.update(kw), with_kwargs=True)
    trainer.train()
    assert trainer.state.global_step == 2 and seen["input_ids"].shape[0] == 1  # one packed row per micro-batch
