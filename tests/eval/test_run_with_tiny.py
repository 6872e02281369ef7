"""End to end through `vst.eval.runner.run` with the offline tiny model: a fixture in each benchmark's native
schema (written by the tests of that benchmark) -> prompts -> generation on CPU -> predictions.jsonl -> contract JSON."""

import json

import pytest

from tests.eval import (test_blink, test_cvbench, test_det3d, test_general_mcq, test_mmsi, test_sunrgbd3d,
                        test_threedsrbench, test_vsibench)
from vst.eval.benchmarks import det3d_arkitscenes
from vst.eval.benchmarks import BENCHMARKS, load_all
from vst.eval.runner import PREDICTIONS_FILE, RunConfig, run


def vsibench_folder(folder):
    test_vsibench._write_folder(folder)


def cvbench_folder(folder):
    (folder / "img").mkdir()
    (folder / "img" / "a.png").write_bytes(test_cvbench.png_bytes("red"))
    rows = [test_cvbench.make_row(0, "Count", "ADE20K"), test_cvbench.make_row(1, "Depth", "Omni3D")]
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def blink_folder(folder):
    for name, color in (("x1.png", "red"), ("x2.png", "green")):
        (folder / name).write_bytes(test_cvbench.png_bytes(color))
    rows = [test_blink.make_row("Multi-view_Reasoning", 0, images=("x1.png", "x2.png")), test_blink.make_row("Counting", 1, images=("x2.png",))]
    (folder / "val.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def vsibench_debiased_folder(folder):
    """A snapshot of nyu-visionx/VSI-Bench: the full test.jsonl beside test_debiased.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    test_vsibench._write_folder(folder)
    pq.write_table(pa.Table.from_pylist([row for row, _, _ in test_vsibench.ROWS][:2]), folder / "test_debiased.parquet")


FIXTURES = {
    "vsibench": vsibench_folder,
    "cvbench": cvbench_folder,
    "blink": blink_folder,
    "mmsi": lambda folder: test_mmsi._folder(folder),
    "3dsrbench": lambda folder: test_threedsrbench.write_circular_tsv(folder),  # the published TSV
    "det3d-sunrgbd": lambda folder: test_det3d.write_released_set(folder),  # prompts + metaqa + image archive
    "mmbench": lambda folder: test_general_mcq.write_tsv(folder / "MMBench_DEV_EN.tsv", test_general_mcq.MMBENCH),
    "mmstar": lambda folder: test_general_mcq.write_tsv(folder / "MMStar.tsv", test_general_mcq.MMBENCH[3:]),
    "realworldqa": lambda folder: test_general_mcq.write_tsv(folder / "RealWorldQA.tsv", test_general_mcq.MMBENCH[3:]),
    "ai2d": lambda folder: test_general_mcq.write_tsv(folder / "AI2D_TEST.tsv", test_general_mcq.MMBENCH[:1]),
    "ocrbench": lambda folder: test_general_mcq.write_ocrbench(folder),
    "mmmu": lambda folder: test_general_mcq.write_mmmu(folder),
    "det3d-arkitscenes": lambda folder: test_det3d.write_released_set(
        folder, module=det3d_arkitscenes, truth_name="arkit_omni3d_test_metaqa.json"),
    "vsibench-debiased": vsibench_debiased_folder,
    "sunrgbd-3d": lambda folder: test_sunrgbd3d.write_rows(folder),
}


class TinyBackend:
    """The transformers backend on the session's tiny model (built once, offline)."""

    def __init__(self, tiny_folder):
        from vst.eval.backends import TransformersBackend

        self.backend = TransformersBackend("tiny", device="cpu", dtype="float32", cache=tiny_folder.parent)

    def generate(self, prompts, **kwargs):
        return self.backend.generate(prompts, **{**kwargs, "max_new_tokens": 4})


@pytest.fixture(scope="module")
def tiny_backend(tiny_folder):
    return TinyBackend(tiny_folder)


def test_every_registered_benchmark_has_a_fixture_here():
    load_all()
    assert set(BENCHMARKS) - {"vst-synth"} == set(FIXTURES)  # vst-synth: the demo runs it end to end


@pytest.mark.parametrize("benchmark", sorted(FIXTURES))
def test_native_fixture_runs_end_to_end(benchmark, tiny_backend, tmp_path):
    load_all()
    source = tmp_path / "source"
    source.mkdir()
    FIXTURES[benchmark](source)
    result = run(RunConfig(benchmark, tmp_path / "out", source=str(source), limit=3, batch_size=2), tiny_backend)
    assert set(result) == {"benchmark", "protocol", "overall", "categories", "n", "n_unparsed", "run"}
    assert result["benchmark"] == benchmark and result["n"] >= 1 and 0 <= result["overall"] <= 100
    lines = (tmp_path / "out" / PREDICTIONS_FILE).read_text().splitlines()
    assert len(lines) == result["n"] and all("response" in json.loads(line) for line in lines)
