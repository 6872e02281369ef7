"""`vst train base`: a 2-step run through the CLI writes a loadable model with its card, resumes from its checkpoint,
and its tokenizer keeps every vocabulary word whole."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vst.cli import app
from vst.data import pretrain
from vst.train.base import EXPORT_FILES

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "tiny-base.yaml"
SMALL = ["base_size=tiny", "data_samples=48", "heldout_samples=16", "rooms=1", "heldout_rooms=1",
         "per_device_train_batch_size=4", "logging_steps=1", "save_steps=1", "dataloader_num_workers=0",
         "eval_batch_size=8"]


@pytest.fixture(scope="module")
def two_steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    result = CliRunner().invoke(app, ["train", "base", "--config", str(CONFIG), *SMALL, "max_steps=2",
                                      f"output_dir={out}", "keep_checkpoints=true", f"export_dir={out}-export"])
    assert result.exit_code == 0, result.output
    return out


def test_two_steps_write_a_model_card_and_an_export(two_steps):
    from vst.models.loading import load_model

    state = json.loads((two_steps / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2]
    card = json.loads((two_steps / "base_card.json").read_text())
    assert card["steps"] == 2 and card["loss_on"] == "all" and card["heldout"]["n"] == 16
    assert "vst train base --config configs/train/tiny-base.yaml" in (two_steps / "README.md").read_text()
    exported = Path(f"{two_steps}-export")
    assert {p.name for p in exported.iterdir()} <= set(EXPORT_FILES) and (exported / "model.safetensors").is_file()
    model, processor = load_model(str(exported))
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
    # the tokenizer learnt its merges from the base data: every word of its vocabulary is one token
    split = [w for w in pretrain.WORDS if " " not in w and len(processor.tokenizer.encode(" " + w)) != 1]
    assert not split, split


def test_a_rerun_resumes_from_the_newest_checkpoint(two_steps):
    result = CliRunner().invoke(app, ["train", "base", "--config", str(CONFIG), *SMALL, "max_steps=3",
                                      f"output_dir={two_steps}"])
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.output and "checkpoint-2" in result.output
    assert "base-train.parquet: kept" in result.output  # the data is not generated again
    state = json.loads((two_steps / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]
    assert not list(two_steps.glob("checkpoint-*"))  # a finished run keeps only the model
