"""The CLI as a user runs it: generate (deterministic, resumable), render a hand-written layout, show, errors."""

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.scene.test_types import MINIMAL
from vst.cli import app

runner = CliRunner()
SMALL = ["--image-size", "96", "--stills", "1", "--pairs", "1", "--video-frames", "30", "32"]


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def make_shard(tmp_path: Path, skills: dict[str, int], n: int) -> Path:
    """One small procedural scene -> a VST-P shard with the given skill weights, through the CLI."""
    scenes, data = tmp_path / "scenes", tmp_path / "data"
    assert invoke("scenes", "generate", "--n", 1, "--out", scenes, *SMALL).exit_code == 0
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: small\nskills:\n" + "".join(f"  {skill}: {weight}\n" for skill, weight in skills.items()))
    assert invoke("data", "generate", "--scenes", scenes, "--recipe", recipe, "--n", n, "--out", data).exit_code == 0
    return data / "shard-00000-of-00001.parquet"


def test_generate_is_byte_identical_and_resumes(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert invoke("scenes", "generate", "--n", 2, "--seed", 0, "--out", first, *SMALL).exit_code == 0
    assert invoke("scenes", "generate", "--n", 2, "--seed", 0, "--out", second, *SMALL).exit_code == 0
    assert digest(first) == digest(second)
    assert len(digest(first)) > 2 * 3 * 30

    # an interrupted run: one scene half-written (left as .incomplete), one scene missing
    before = digest(first)
    (first / "procedural-s0-00001").rename(first / "procedural-s0-00001.incomplete")
    result = invoke("scenes", "generate", "--n", 2, "--seed", 0, "--out", first, *SMALL)
    assert result.exit_code == 0 and "1 generated, 1 already there" in result.output
    assert digest(first) == before

    # growing a run keeps the first scenes as they were
    assert invoke("scenes", "generate", "--n", 3, "--seed", 0, "--out", first, *SMALL).exit_code == 0
    grown = digest(first)
    assert {k: v for k, v in grown.items() if not k.startswith(("procedural-s0-00002", "manifest"))} == {k: v for k, v in before.items() if k != "manifest.json"}
    assert json.loads((first / "manifest.json").read_text())["scenes"] == [f"procedural-s0-0000{i}" for i in range(3)]


def test_generate_refuses_a_folder_from_another_config(tmp_path):
    assert invoke("scenes", "generate", "--n", 1, "--out", tmp_path, *SMALL).exit_code == 0
    result = invoke("scenes", "generate", "--n", 1, "--out", tmp_path, "--seed", 9, *SMALL)
    assert result.exit_code == 1
    assert "manifest.json: fingerprint:" in result.output and "Traceback" not in result.output


def test_two_workers_give_the_same_bytes(tmp_path):
    assert invoke("scenes", "generate", "--n", 2, "--out", tmp_path / "one", *SMALL).exit_code == 0
    assert invoke("scenes", "generate", "--n", 2, "--out", tmp_path / "two", "--workers", 2, *SMALL).exit_code == 0
    assert digest(tmp_path / "one") == digest(tmp_path / "two")


def test_render_a_hand_written_layout_then_show(tmp_path):
    layout = json.loads(json.dumps(MINIMAL))
    layout["frames"][0]["visibility"] = {}
    (tmp_path / "scene.json").write_text(json.dumps(layout))
    result = invoke("scenes", "render", tmp_path)
    assert result.exit_code == 0, result.output
    scene = json.loads((tmp_path / "scene.json").read_text())
    frame = scene["frames"][0]
    assert (tmp_path / frame["image_path"]).is_file() and (tmp_path / frame["depth_path"]).is_file()
    assert "1" in frame["visibility"] and frame["visibility"]["1"]["pixels"] > 100
    result = invoke("scenes", "show", tmp_path, "--out", tmp_path / "preview.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "preview.png").stat().st_size > 20_000


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d["objects"][0]["box"].__setitem__("size", [1, -1, 1]), "scene.json: objects[0].box.size: sizes must be >= 0"),
        (lambda d: d["frames"][0]["cam_to_world"][0].__setitem__(3, float("nan")), "scene.json: frames[0].cam_to_world[0][3]: must be a finite number"),
    ],
)
def test_bad_scene_is_one_line_and_exit_1(tmp_path, change, expected):
    layout = json.loads(json.dumps(MINIMAL))
    change(layout)
    (tmp_path / "scene.json").write_text(json.dumps(layout))
    result = invoke("scenes", "render", tmp_path)
    assert result.exit_code == 1
    assert expected in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    with pytest.raises(Exception):
        runner.invoke(app, ["--debug", "scenes", "render", str(tmp_path)], catch_exceptions=False)


@pytest.mark.parametrize("damage", ["depth_path", "instance_path"])
def test_truncated_depth_or_id_png_via_show_is_one_line(damage, rendered_scene, tmp_path):
    import shutil

    _, folder = rendered_scene
    shutil.copytree(folder, tmp_path / "scene")
    frame = json.loads((tmp_path / "scene" / "scene.json").read_text())["frames"][0]
    png = tmp_path / "scene" / frame[damage]
    png.write_bytes(png.read_bytes()[:200])
    result = invoke("scenes", "show", tmp_path / "scene", "--out", tmp_path / "p.png")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "not a readable" in result.output and png.name in result.output


def test_a_frame_smaller_than_its_intrinsics_is_named(rendered_scene, tmp_path):
    import shutil

    from PIL import Image

    from vst.data.context import SceneContext
    from vst.scene.types import Scene, SceneError

    _, folder = rendered_scene
    shutil.copytree(folder, tmp_path / "scene")
    scene = Scene.load(tmp_path / "scene")
    frame = scene.frames[0]
    image = tmp_path / "scene" / frame.image_path
    Image.open(image).resize((32, 24)).save(image)
    with pytest.raises(SceneError, match=f"frame {frame.frame_id}: image is 32x24, its intrinsics say"):
        SceneContext(scene, tmp_path / "scene").image(frame)


def test_missing_frame_file_via_show(tmp_path):
    (tmp_path / "scene.json").write_text(json.dumps(MINIMAL))
    result = invoke("scenes", "show", tmp_path, "--out", tmp_path / "p.png")
    assert result.exit_code == 1 and "frames[0].image_path: file not found" in result.output


def test_train_sft_then_evaluate_the_checkpoint(tmp_path, tiny_folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VST_CACHE", str(tiny_folder.parent))
    shard = make_shard(tmp_path, {"si_depth_comparison": 1, "mi_camera_motion": 1}, 16)
    out = tmp_path / "ckpt"
    result = invoke("train", "sft", "--config", "configs/train/tiny-cpu-sft.yaml", f"shards=[{shard}]", f"output_dir={out}", "max_steps=4")
    assert result.exit_code == 0, result.output
    assert (out / "config.json").is_file()
    result = invoke("eval", "run", "--model", out, "--benchmark", "vst-synth", "--source", shard, "--limit", 4, "--out", tmp_path / "eval", "--max-new-tokens", 4)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval" / "scores.json").read_text())["n"] == 4
    bad = invoke("train", "sft", "--config", "configs/train/tiny-cpu-sft.yaml", "learnin_rate=1")
    assert bad.exit_code == 1 and "learnin_rate" in bad.output
    result = invoke("train", "rl", "--config", "configs/train/tiny-cpu-grpo.yaml", f"shards=[{shard}]", f"model_name_or_path={out}",
                    f"output_dir={tmp_path / 'rl'}", "max_steps=1")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rl" / "config.json").is_file()


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == "0.1.0"


def test_data_generate_stats_preview_export(tmp_path):
    scenes = tmp_path / "scenes"
    result = invoke("scenes", "generate", "--n", 2, "--out", scenes, *SMALL)
    assert result.exit_code == 0, result.output
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: small\nskills:\n  si_depth_comparison: 2\n  mi_camera_motion: 1\n  video_counting: 1\n")
    result = invoke("data", "generate", "--scenes", scenes, "--recipe", recipe, "--n", 30, "--out", tmp_path / "data")
    assert result.exit_code == 0, result.output
    shard = tmp_path / "data" / "shard-00000-of-00001.parquet"
    manifest = json.loads((tmp_path / "data" / "shard-00000-of-00001.manifest.json").read_text())
    assert manifest["rows"] > 0 and manifest["recipe"]["name"] == "small"
    stats = invoke("data", "stats", shard, "--json")
    assert stats.exit_code == 0 and json.loads(stats.output)["rows"] == manifest["rows"]
    assert invoke("data", "preview", shard, "--n", 4, "--out", tmp_path / "p.html").exit_code == 0
    assert (tmp_path / "p.html").read_text().count('class="card"') == min(4, manifest["rows"])
    assert invoke("data", "export", shard, "--to", "llava", "--out", tmp_path / "llava").exit_code == 0
    assert len(json.loads((tmp_path / "llava" / "data.json").read_text())) == manifest["rows"]
    again = invoke("data", "generate", "--scenes", scenes, "--recipe", recipe, "--n", 30, "--out", tmp_path / "data")
    assert again.exit_code == 1 and "pass --resume" in again.output
    unknown = invoke("data", "generate", "--scenes", scenes, "--recipe", "nope", "--out", tmp_path / "x")
    assert unknown.exit_code == 1 and "unknown recipe 'nope'" in unknown.output
    text = invoke("data", "generate", "--scenes", scenes, "--recipe", recipe, "--n", 30, "--out", tmp_path / "text", "--answer-form", "text")
    assert text.exit_code == 0, text.output
    answers = [json.loads(a) for a in pq.read_table(tmp_path / "text" / "shard-00000-of-00001.parquet", columns=["answer"])["answer"].to_pylist()]
    assert not any(a["type"] == "mc" for a in answers) and any(a["type"] == "text" and "options" in a for a in answers)
    bad = invoke("data", "generate", "--scenes", scenes, "--recipe", recipe, "--out", tmp_path / "y", "--answer-form", "word")
    assert bad.exit_code == 2 and "--answer-form" in bad.output


def test_data_reason_writes_cot_and_rl_and_names_bad_general_input(tmp_path):
    scenes = tmp_path / "scenes"
    assert invoke("scenes", "generate", "--n", 1, "--out", scenes, *SMALL).exit_code == 0
    result = invoke("data", "reason", "--scenes", scenes, "--out", tmp_path / "r", "--n", 12)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["outputs"]["cot"]["rows"] > 0 and manifest["trace_source"] == "template"
    assert "no sources given" in result.output
    bad = invoke("data", "reason", "--scenes", scenes, "--out", tmp_path / "r2", "--general", "gr_math")
    assert bad.exit_code == 1 and "expected CATEGORY=FILE" in bad.output
    missing = invoke("data", "reason", "--scenes", scenes, "--out", tmp_path / "r3", "--general", f"gr_math={tmp_path / 'no.jsonl'}")
    assert missing.exit_code == 1 and "no.jsonl" in missing.output


@pytest.mark.slow
def test_default_demo_runs_end_to_end(tmp_path):
    """The README's main job with its default config (~10 min on 2 cores): every stage evaluated, report written,
    and SFT learns the answer formats (docs/demo.md has the measured numbers)."""
    result = invoke("demo", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    scores = {stage: json.loads((tmp_path / "eval" / stage / "scores.json").read_text()) for stage in ("base", "sft", "coldstart", "rl")}
    assert scores["sft"]["n_unparsed"] < scores["base"]["n_unparsed"] / 4
    assert scores["sft"]["overall"] > scores["base"]["overall"] + 20
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report" / "accuracy.png").is_file()


def test_eval_run_score_and_report_with_an_openai_compatible_server(tmp_path, monkeypatch):
    from tests.eval.test_backends import FakeServer

    shard = make_shard(tmp_path, {"si_depth_comparison": 1}, 8)
    expected = min(5, json.loads(shard.with_name("shard-00000-of-00001.manifest.json").read_text())["rows"])
    assert expected >= 2
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = FakeServer()
    try:
        model = f"openai:{server.base_url}#fake-model"
        args = ("eval", "run", "--model", model, "--benchmark", "vst-synth", "--source", shard, "--limit", 5, "--out", tmp_path / "run")
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        scores = json.loads((tmp_path / "run" / "scores.json").read_text())
        assert scores["benchmark"] == "vst-synth" and scores["n"] == expected and set(scores) >= {"overall", "categories", "n_unparsed", "protocol"}
        requests = len(server.requests)
        assert requests == expected
        assert invoke(*args).exit_code == 0 and len(server.requests) == requests  # resumed: nothing asked twice
    finally:
        server.close()
    predictions = tmp_path / "run" / "predictions.jsonl"
    rescored = invoke("eval", "score", "vst-synth", predictions)
    assert rescored.exit_code == 0 and json.loads(rescored.output) == scores
    refused = invoke("eval", "score", "cvbench", predictions)
    assert refused.exit_code == 1 and "holds vst-synth predictions, not cvbench" in refused.output
    report = invoke("eval", "report", tmp_path / "run" / "scores.json", "--out", tmp_path / "report.md")
    assert report.exit_code == 0, report.output
    assert "vst-synth" in (tmp_path / "report.md").read_text() and (tmp_path / "report.png").is_file()


def test_eval_score_unknown_benchmark_lists_names(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"response": "A"}\n')
    result = invoke("eval", "score", "nope", tmp_path / "p.jsonl")
    assert result.exit_code == 1 and "unknown benchmark 'nope'; known benchmarks: 3dsrbench, ai2d, blink" in result.output


@pytest.mark.parametrize("error", [RuntimeError("[rank0]: gloo [/] failed on [1, 2]"), OSError("disk full"),
                                   KeyError("unknown reward 'x'")])
def test_errors_print_as_one_plain_line(error, capsys):
    """Brackets in a message (gloo's "[rank0]", a list) are text, not rich markup: the message arrives whole."""
    import typer

    from vst.cli import reporting_errors

    with pytest.raises(typer.Exit) as exit_info:
        with reporting_errors():
            raise error
    assert exit_info.value.exit_code == 1
    out = " ".join(capsys.readouterr().err.split())
    expected = error.args[0] if isinstance(error, KeyError) else str(error)
    assert out == f"error: {expected}"


def test_part_progress_shows_items_their_rate_and_failed_parts():
    """Issue 18.2: a job over scenes (in process, workers or Ray tasks) shows parts done, samples written and their
    rate, and the parts that failed, each one printed with its reason."""
    import io

    from rich.console import Console
    from rich.progress import Progress

    from vst.cli import part_progress

    output = io.StringIO()
    progress = Progress(console=Console(file=output, width=200))
    on_part = part_progress(progress, "scenes", 3, "samples")
    on_part("a", 10, None)
    on_part("b", 0, "b/scene.json: not valid JSON [line 1]")
    on_part("c", 5, None)
    task = progress.tasks[0]
    assert task.completed == 3 and task.total == 3
    assert "15 samples" in task.description and "samples/s" in task.description and "1 failed" in task.description
    assert "skipped b: b/scene.json: not valid JSON [line 1]" in output.getvalue()  # brackets kept (no markup)
