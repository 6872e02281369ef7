"""The main job (vst.pipeline / `vst demo`): config errors, chance baselines by hand, and a whole tiny run that resumes."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from vst.data.sample import Sample, Turn
from vst.common.parsing import mean_relative_accuracy
from vst.pipeline import chance_scores, load_pipeline_config

TINY_RUN = {
    "model": "tiny",
    "answer_form": "text",  # the name-answer form end to end (the default, "letter", is what the other tests generate)
    "tokenizer": "data",  # the tiny model's tokenizer trained on the run's training text
    "scenes": {"n": 2, "seed": 0, "image_size": 96, "stills": 2, "pairs": 1, "video": True, "video_frames": [8, 10]},
    "heldout": {"n": 1, "seed": 7, "samples": 24},
    "vst_p": {"recipe": "recipe.yaml", "n": 40},
    "vst_r": {"recipe": "vst-r", "n": 16},
    "general": {"samples": 12, "seed": 5},
    "eval": {"batch_size": 8, "max_new_tokens": 4, "think_max_new_tokens": 8},
    "stages": {
        "sft": {"config": "{root}/configs/train/tiny-cpu-sft.yaml", "overrides": ["max_steps=3"]},
        "coldstart": {"config": "{root}/configs/train/tiny-cpu-coldstart.yaml", "overrides": ["max_steps=2"]},
        "rl": {"config": "{root}/configs/train/tiny-cpu-grpo.yaml", "overrides": ["max_steps=1", "max_completion_length=4"]},
    },
}


def test_config_errors_name_file_and_field(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("scenes: {n: 0}\n")
    with pytest.raises(ValueError, match=r"p.yaml: scenes.n: Input should be greater than or equal to 1"):
        load_pipeline_config(path)
    path.write_text("stages: {pretrain: {config: x.yaml}}\n")
    with pytest.raises(ValueError, match="stages.pretrain: unknown stage"):
        load_pipeline_config(path)
    path.write_text("colour: red\n")
    with pytest.raises(ValueError, match="p.yaml: colour: Extra inputs are not permitted"):
        load_pipeline_config(path)
    path.write_text("tokenizer: data\nmodel: Qwen/Qwen2.5-VL-3B-Instruct\n")  # checked before any data is made
    with pytest.raises(ValueError, match=r"p.yaml: tokenizer: data builds a tiny model; model 'Qwen/Qwen2.5-VL-3B-Instruct'"):
        load_pipeline_config(path)
    path.write_text("vocab: 2048\n")
    with pytest.raises(ValueError, match=r"p.yaml: vocab sizes the tokenizer"):
        load_pipeline_config(path)
    config, folder = load_pipeline_config("configs/pipeline/tiny-cpu.yaml", {"out": "elsewhere", "seed": None})
    assert config.out == "elsewhere" and config.seed == 0 and (folder / config.stages["sft"].config).is_file()
    assert (folder / config.vst_p.recipe).is_file()


def test_chance_by_hand():
    rows = [{"skill": "a", "answer": {"type": "mc", "value": "A", "options": ["A. x", "B. y"]}},
            {"skill": "a", "answer": {"type": "mc", "value": "B", "options": ["A. x", "B. y", "C. z", "D. w"]}},
            {"skill": "b", "answer": {"type": "order", "value": ["A", "B", "C"]}},
            {"skill": "c", "answer": {"type": "number", "value": 3.0}},
            {"skill": "d", "answer": {"type": "text", "value": "a caption"}}]
    train = [Sample("t", [Turn("human", "q"), Turn("gpt", str(v))], skill="c", answer={"type": "number", "value": v})
             for v in (1.0, 2.0, 10.0)]
    chance = chance_scores(rows, train)
    assert chance["a"] == pytest.approx(100 * (0.5 + 0.25) / 2)
    assert chance["b"] == pytest.approx(100 / 6)
    assert chance["c"] == pytest.approx(100 * mean_relative_accuracy(2.0, 3.0))  # median of 1, 2, 10 is 2
    assert "d" not in chance


def test_tiny_pipeline_runs_every_stage_writes_the_report_and_resumes(tmp_path, tiny_folder, monkeypatch):
    from pathlib import Path

    from typer.testing import CliRunner

    from vst.cli import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VST_CACHE", str(tiny_folder.parent))
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "recipe.yaml").write_text("name: t\nskills: {si_depth_comparison: 2, mi_camera_motion: 1, video_counting: 1}\n")
    config = json.loads(json.dumps(TINY_RUN).replace("{root}", str(root)))
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["demo", "--config", str(tmp_path / "pipeline.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "items answered" in result.output  # evaluations report progress as they go
    for stage in ("base", "sft", "coldstart", "rl"):
        scores = json.loads((out / "eval" / stage / "scores.json").read_text())
        assert scores["benchmark"] == "vst-synth" and scores["n"] > 0
    report = (out / "report.md").read_text()
    assert "| skill | chance | base | sft | coldstart | rl |" in report
    data = json.loads((out / "report.json").read_text())
    assert set(data["stages"]) == {"base", "sft", "coldstart", "rl"} and data["wall_s"] > 0
    assert data["answer_form"] == "text" and "`answer_form: text`" in report
    for shard in ("vst-p", "heldout"):  # every shard the run wrote asks for option texts, not letters
        answers = [json.loads(a) for a in pq.read_table(out / "data" / shard / "shard-00000-of-00001.parquet")["answer"].to_pylist()]
        assert not any(a["type"] == "mc" for a in answers), shard
    assert any(a["type"] == "text" and a.get("options") for a in answers)
    from transformers import AutoTokenizer

    from vst.data.shards import read_samples

    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    names = {sample.response for sample in read_samples(out / "data" / "vst-p" / "shard-00000-of-00001.parquet")
             if sample.response.replace(" ", "").isalpha()}
    assert names and all(len(tokenizer.tokenize(name)) == len(name.split()) for name in names), names  # a token a word
    assert json.loads((out / "eval" / "base" / "scores.json").read_text())["run"]["model"] == str(out / "model")
    built = json.loads((out / "model" / "vst_build.json").read_text())  # a rerun with other settings rebuilds it
    assert built["model"] == "tiny" and built["vocab"] is None and len(built["corpus_sha256"]) == 64
    for block in data["stages"].values():
        assert block["n"] > 0 and block["ci95"][0] <= block["overall"] <= block["ci95"][1]
        assert set(block["modalities"]) <= {"single_image", "multi_image", "video"} and block["skills"]
    assert set(data["general"]) == {"base", "rl"} and 0 < data["general_detail"]["base"]["n"] <= 12
    assert len((out / "eval-general" / "base" / "predictions.jsonl").read_text().splitlines()) == 12  # all asked
    assert any(t["target"].startswith("SFT: overall") for t in data["targets"])
    assert "bootstrap 95 % intervals" in report
    assert "si_depth_comparison" in report and "## Examples" in report
    for picture in ("accuracy.png", "curves.png"):
        assert (out / "report" / picture).stat().st_size > 10_000
    assert list((out / "report" / "examples").glob("*.jpg"))
    # a rerun finds every step finished: nothing is retrained
    stamp = (out / "checkpoints" / "sft" / "trainer_state.json").stat().st_mtime_ns
    again = CliRunner().invoke(app, ["demo", "--config", str(tmp_path / "pipeline.yaml"), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "is finished: kept" in again.output
    assert (out / "checkpoints" / "sft" / "trainer_state.json").stat().st_mtime_ns == stamp
    assert np.isfinite(json.loads((out / "eval" / "rl" / "scores.json").read_text())["overall"])
    # a re-run with other evaluation settings redoes the evaluations instead of mixing or refusing them
    changed = {**config, "eval": {**config["eval"], "max_new_tokens": 5}}
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(changed))
    third = CliRunner().invoke(app, ["demo", "--config", str(tmp_path / "pipeline.yaml"), "--out", str(out)])
    assert third.exit_code == 0, third.output
    assert json.loads((out / "eval" / "sft" / "scores.json").read_text())["run"]["generation"]["max_new_tokens"] == 5
