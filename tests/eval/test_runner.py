"""`vst eval run` resumes only its own run: predictions carry what made them (run.json, scores.json["run"]), another
model / source / setting into the same folder is refused or, with overwrite, started afresh; a predictions file that
holds an item twice is an error, not a larger n."""

import json

import pytest

from tests.eval.test_run_with_tiny import cvbench_folder
from vst.eval.benchmarks import load_all
from vst.eval.predictions import score_file
from vst.eval.runner import PREDICTIONS_FILE, RUN_FILE, RunConfig, run


class Scripted:
    """Answers every prompt with `answer` and counts the prompts it was sent."""

    def __init__(self, answer):
        self.answer, self.sent = answer, 0

    def generate(self, prompts, **kwargs):
        self.sent += len(prompts)
        return [self.answer] * len(prompts)


@pytest.fixture
def source(tmp_path):
    load_all()
    folder = tmp_path / "source"
    folder.mkdir()
    cvbench_folder(folder)
    return folder


def test_a_rerun_of_the_same_run_sends_nothing_and_names_the_model(source, tmp_path):
    out = tmp_path / "out"
    first = run(RunConfig("cvbench", out, source=str(source), model="model-a"), Scripted("(A)"))
    again = Scripted("(B)")
    second = run(RunConfig("cvbench", out, source=str(source), model="model-a"), again)
    assert again.sent == 0 and second["overall"] == first["overall"]
    assert second["run"]["model"] == "model-a" and second["run"]["source"] == str(source)
    assert json.loads((out / RUN_FILE).read_text()) == second["run"]
    assert json.loads((out / "scores.json").read_text())["run"]["generation"] == {"max_new_tokens": 64, "temperature": 0.0}


@pytest.mark.parametrize("change", [{"model": "model-b"}, {"max_new_tokens": 8}, {"temperature": 0.7}])
def test_another_run_into_the_same_folder_is_refused_or_overwritten(change, source, tmp_path):
    out = tmp_path / "out"
    run(RunConfig("cvbench", out, source=str(source), model="model-a"), Scripted("(A)"))
    other = Scripted("(B)")
    with pytest.raises(ValueError, match=f"made by another run.*{next(iter(change))}.*--overwrite"):
        run(RunConfig("cvbench", out, source=str(source), **{"model": "model-a", **change}), other)
    assert other.sent == 0
    result = run(RunConfig("cvbench", out, source=str(source), overwrite=True, **{"model": "model-a", **change}), other)
    assert other.sent == 2 and result["n"] == 2
    assert all(json.loads(line)["response"] == "(B)" for line in (out / PREDICTIONS_FILE).read_text().splitlines())


def test_a_larger_limit_extends_the_same_run(source, tmp_path):
    out = tmp_path / "out"
    run(RunConfig("cvbench", out, source=str(source), model="m", limit=1), Scripted("(A)"))
    more = Scripted("(A)")
    assert run(RunConfig("cvbench", out, source=str(source), model="m"), more)["n"] == 2 and more.sent == 1


def test_an_item_twice_in_a_predictions_file_is_an_error(source, tmp_path):
    out = tmp_path / "out"
    run(RunConfig("cvbench", out, source=str(source), model="m"), Scripted("(A)"))
    path = out / PREDICTIONS_FILE
    path.write_text(path.read_text() * 2)
    with pytest.raises(ValueError, match=r"line 3: item vst_index 0 again \(first on line 1\)"):
        score_file("cvbench", path)


def test_a_source_without_items_says_so(tmp_path):
    import pyarrow.parquet as pq

    from vst.data.shards import SCHEMA

    load_all()
    pq.write_table(SCHEMA.empty_table(), tmp_path / "empty.parquet")
    with pytest.raises(ValueError, match=r"empty.parquet: no vst-synth items to evaluate"):
        run(RunConfig("vst-synth", tmp_path / "out", source=str(tmp_path / "empty.parquet"), model="m"), Scripted("A"))


def test_malformed_prediction_lines_are_named_or_scored_as_unparsed(tmp_path):
    load_all()
    box = [0, 0, 3, 1, 1, 1, 0, 0, 0]
    good = {"id": 0, "category": "chair", "boxes": [box], "benchmark": "det3d-sunrgbd", "vst_index": 0}
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({**good, "response": None}) + "\n" + json.dumps({**good, "vst_index": 1, "response": 5}) + "\n")
    assert score_file("det3d-sunrgbd", path)["n_unparsed"] == 2
    path.write_text(json.dumps({**good, "boxes": [[0, 0, 3, 1, 1, None, 0, 0, 0]], "response": "[]"}) + "\n")
    with pytest.raises(ValueError, match=r"p.jsonl: line 1: boxes\[0\]: expected 9 finite numbers"):
        score_file("det3d-sunrgbd", path)


class Recording(Scripted):
    def generate(self, prompts, **kwargs):
        self.kwargs = kwargs
        return super().generate(prompts, **kwargs)


@pytest.mark.parametrize("benchmark, protocol, expected", [
    ("cvbench", "official", {"max_new_tokens": 64, "temperature": 0.0}),
    ("cvbench", "vst", {"max_new_tokens": 2048, "temperature": 0.01, "top_p": 0.001, "top_k": 1, "repetition_penalty": 1.0}),
])
def test_each_protocol_generates_with_its_own_settings(benchmark, protocol, expected, source, tmp_path):
    """VST scored CV-Bench through VLMEvalKit's Qwen2VLChat defaults; the official protocol answers greedily."""
    backend = Recording("(A)")
    result = run(RunConfig(benchmark, tmp_path / "out", source=str(source), protocol=protocol, model="m"), backend)
    assert {k: v for k, v in backend.kwargs.items() if k != "media"} == expected == result["run"]["generation"]
    overridden = Recording("(A)")
    run(RunConfig(benchmark, tmp_path / "o2", source=str(source), protocol=protocol, model="m", max_new_tokens=7), overridden)
    assert overridden.kwargs["max_new_tokens"] == 7


def test_det3d_leaves_room_for_every_box():
    from vst.eval.benchmarks import get_benchmark
    from vst.eval.benchmarks.registry import generation

    load_all()
    for name in ("det3d-sunrgbd", "det3d-arkitscenes"):
        assert generation(get_benchmark(name), "official") == {"max_new_tokens": 1024, "temperature": 0.2, "top_p": 0.95}
