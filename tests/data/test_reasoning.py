"""VST-R: templated traces are true to the scene and pass the reward checks; the teacher path keeps right traces,
rejects wrong ones, retries failures and resumes; RL prompts carry difficulty; general data readers; the recipe."""

import hashlib
import json
import re
import threading

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vst.data.bev import object_facts, render_bev
from vst.data.context import SceneContext
from vst.data.reasoning import (
    CATEGORIES,
    ReasonConfig,
    difficulty,
    load_reason_recipe,
    passes,
    run_reason,
)
from vst.data.general import read_general
from vst.data.teacher import Teacher, normalise_trace
from vst.data.shards import read_samples
from vst.scene.generate import generate_scenes
from vst.scene.types import Scene
from vst.common.rewards import score

from tests.chat_server import ChatServer, completion, error


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, small_config):
    folder = tmp_path_factory.mktemp("reason") / "scenes"
    generate_scenes(folder, 3, seed=0, config=small_config)
    return folder


@pytest.fixture(scope="module")
def templated(scenes, tmp_path_factory):
    out = tmp_path_factory.mktemp("reason-out") / "run"
    manifest = run_reason(ReasonConfig(scenes=scenes, out=out, recipe=load_reason_recipe("vst-r"), n=80, seed=0))
    return out, manifest


def _level(pose):
    """(right, forward) unit floor vectors of a camera pose, computed here from the pose alone."""
    forward = pose[:2, 2] / np.linalg.norm(pose[:2, 2])
    return np.array([forward[1], -forward[0]]), forward


def test_every_templated_trace_passes_format_and_its_reward(templated):
    out, manifest = templated
    samples = list(read_samples(out / "vst-r-cot.parquet"))
    assert len(samples) == manifest["outputs"]["cot"]["rows"] >= 30
    assert {s.skill for s in samples} == set(CATEGORIES)
    for sample in samples:
        assert sample.type.endswith("_thought") and sample.meta_info["trace"] == "template"
        assert score("format", sample.response, sample.answer) == 1.0
        assert score(sample.reward["fn"], sample.response, sample.answer) == 1.0, sample.response
        assert passes(sample, sample.response)
        assert "directly" not in sample.question


def test_text_answer_form_gives_traces_that_end_in_the_option_text_and_pass_their_reward(templated, scenes, tmp_path):
    from vst.data.choices import LETTERS

    out, _ = templated
    config = ReasonConfig(scenes=scenes, out=tmp_path / "text", recipe=load_reason_recipe("vst-r"), n=80, seed=0,
                          options={"answer_form": "text"})
    run_reason(config)
    assert config.fingerprint() != ReasonConfig(scenes=scenes, out=out, recipe=config.recipe, n=80, seed=0).fingerprint()
    lettered = {s.id: s for s in read_samples(out / "vst-r-rl.parquet")}
    texts = list(read_samples(tmp_path / "text" / "vst-r-rl.parquet"))
    assert [s.id for s in texts] == list(lettered)  # the same items, drawn from the same streams
    converted = 0
    for sample in texts:
        before = lettered[sample.id]
        if before.answer["type"] == "mc":
            options = [o.split(". ", 1)[1] for o in before.answer["options"]]
            assert sample.answer["value"] == options[LETTERS.index(before.answer["value"])] and sample.reward == {"fn": "option_text"}
            converted += 1
    assert converted >= 5
    for sample in read_samples(tmp_path / "text" / "vst-r-cot.parquet"):
        assert sample.answer["type"] != "mc" and score(sample.reward["fn"], sample.response, sample.answer) == 1.0, sample.response
        assert "Options:\nA. " not in sample.question


def test_short_traces_keep_only_the_rule_and_still_pass_their_reward(templated, scenes, tmp_path):
    """`trace: short` (configs/pipeline/tiny-cpu-reason.yaml): the rule applied to the facts, then the answer."""
    recipe = load_reason_recipe(str(Path(__file__).resolve().parents[2] / "configs" / "pipeline" / "tiny-cpu-reason.yaml"))
    assert recipe.trace == "short"
    run_reason(ReasonConfig(scenes=scenes, out=tmp_path / "short", recipe=recipe, n=80, seed=0))
    short = list(read_samples(tmp_path / "short" / "vst-r-cot.parquet"))
    full = {s.meta_info["source_id"]: s.response for s in read_samples(templated[0] / "vst-r-cot.parquet")}
    assert len(short) >= 30
    for sample in short:
        assert score("format", sample.response, sample.answer) == 1.0
        assert score(sample.reward["fn"], sample.response, sample.answer) == 1.0, sample.response
    shared = [s for s in short if s.meta_info["source_id"] in full]
    assert shared and all(len(s.response) < len(full[s.meta_info["source_id"]]) for s in shared)
    assert np.median([len(s.response) for s in short]) < 0.6 * np.median([len(r) for r in full.values()])


def test_numbers_in_traces_match_the_scene_geometry(templated, scenes):
    out, _ = templated
    checked = {"depth": 0, "motion": 0, "layout": 0}
    for sample in read_samples(out / "vst-r-cot.parquet"):
        scene = Scene.load(scenes / sample.meta_info["scene_id"])
        by_name = {o.category.replace("_", " "): o for o in scene.objects if not o.is_structure}
        frames = [scene.frame(f) for f in sample.meta_info["frame_ids"]]
        trace = sample.response.split("</think>")[0]
        views = re.split(r"(?=In image \d|Image \d shows|Looking at image \d)", trace)
        for view in views:
            index = re.match(r"(?:In image |Image |Looking at image )(\d)", view)
            frame = frames[int(index.group(1)) - 1] if index else frames[0]
            for name, side, depth in re.findall(r"the ([a-z ]+?) (on the left|in the middle|on the right) at about ([\d.]+) m depth", view):
                obj = by_name[name]
                camera = np.linalg.inv(frame.pose) @ np.append(obj.box.center, 1.0)
                assert abs(camera[2] - float(depth)) <= 0.051, (name, camera[2], depth)
                x0, _, x1, _ = frame.visibility[obj.instance_id].bbox_2d
                u = (x0 + x1) / 2 / frame.intrinsics.width
                assert side == ("on the left" if u < 1 / 3 else "on the right" if u > 2 / 3 else "in the middle")
                checked["depth"] += 1
        motion = re.search(r"the camera moved ([\d.]+) m to the (left|right) and ([\d.]+) m (forward|backward), and turned about (\d+) degrees to the (left|right)", trace)
        if motion:
            right_axis, forward_axis = _level(frames[0].pose)
            offset = frames[1].pose[:2, 3] - frames[0].pose[:2, 3]
            right, forward = offset @ right_axis, offset @ forward_axis
            assert abs(abs(right) - float(motion.group(1))) <= 0.006 and (right >= 0) == (motion.group(2) == "right")
            assert abs(abs(forward) - float(motion.group(3))) <= 0.006 and (forward >= 0) == (motion.group(4) == "forward")
            _, second_forward = _level(frames[1].pose)
            turn = np.degrees(np.arctan2(second_forward[1], second_forward[0]) - np.arctan2(forward_axis[1], forward_axis[0]))
            turn = (turn + 180) % 360 - 180  # counter-clockwise = left
            assert abs(abs(turn) - int(motion.group(5))) <= 0.51 and (turn <= 0) == (motion.group(6) == "right")
            checked["motion"] += 1
        for name, across, side, ahead, where in re.findall(r"the ([a-z ]+?) is ([\d.]+) m to the (left|right) and ([\d.]+) m (ahead|behind)", trace):
            right_axis, forward_axis = _level(frames[0].pose)
            offset = np.asarray(by_name[name].box.center[:2]) - frames[0].pose[:2, 3]
            assert abs(abs(offset @ right_axis) - float(across)) <= 0.051 and (offset @ right_axis >= 0) == (side == "right")
            assert abs(abs(offset @ forward_axis) - float(ahead)) <= 0.051 and (offset @ forward_axis >= 0) == (where == "ahead")
            checked["layout"] += 1
    assert min(checked.values()) >= 5, checked


def test_same_seed_gives_byte_identical_outputs_and_resume_equals_uninterrupted(templated, scenes, tmp_path):
    out, _ = templated
    again = tmp_path / "again"
    config = ReasonConfig(scenes=scenes, out=again, recipe=load_reason_recipe("vst-r"), n=80, seed=0)
    run_reason(config)
    first_scene = sorted(p for p in (again / ".parts").glob("*.json") if p.name != "run.json")[0]
    first_scene.unlink()  # as if the run had been interrupted during this scene
    (again / "vst-r-cot.parquet").unlink()
    config.resume = True
    run_reason(config)
    for name in ("vst-r-cot.parquet", "vst-r-rl.parquet"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    with pytest.raises(ValueError, match="--resume"):
        run_reason(ReasonConfig(scenes=scenes, out=again, recipe=load_reason_recipe("vst-r"), n=80, seed=0))


def test_rl_prompts_carry_reward_spec_and_difficulty_from_the_margin(templated):
    out, manifest = templated
    samples = list(read_samples(out / "vst-r-rl.parquet"))
    assert samples and sum(manifest["difficulty"].values()) == len(samples)
    for sample in samples:
        assert sample.reward["fn"] in ("multiple_choice", "option_text", "mra", "order")
        assert score(sample.reward["fn"], sample.response, sample.answer) == 1.0  # the stored answer is the ground truth
        tag, margin, unit = difficulty(sample.meta_info)
        assert sample.meta_info["difficulty"] == tag and sample.meta_info["margin"] == margin and unit in ("m", "deg")
    assert difficulty({"margin_m": 0.19})[0] == "hard" and difficulty({"margin_m": 0.21})[0] == "medium"
    assert difficulty({"margin_deg": 24.9})[0] == "medium" and difficulty({"margin_deg": 25.0})[0] == "easy"
    assert difficulty({})[0] == "unknown"


# -- teacher against a fake OpenAI-compatible server -----------------------------------------------------------------
class FakeTeacher(ChatServer):
    """Answers `<think>…</think>` + the prompt's correct answer, except: prompts whose hash is 0 mod 3 get a wrong
    answer, and while `broken` is set, prompts whose hash is 1 mod 4 get HTTP 500 every time."""

    def __init__(self):
        self.broken, self.requests, self.lock = True, 0, threading.Lock()
        super().__init__(self.respond)
        self.url = self.base_url

    def respond(self, path, body):
        text = body["messages"][-1]["content"][-1]["text"]
        with self.lock:
            self.requests += 1
        bucket = int(hashlib.sha256(text.encode()).hexdigest(), 16)
        if self.broken and bucket % 4 == 1:
            return error(500, "overloaded")
        answer = re.search(r"Correct answer: (.*)", text).group(1)
        if bucket % 3 == 0:
            answer = "Z. nowhere" if re.match(r"[A-F]\.", answer) else "12345"
        return completion(body["model"], f"<think>Image 1 shows the room. I compare the views carefully.</think> {answer}")


def test_teacher_keeps_right_traces_rejects_wrong_retries_failures_and_resumes(scenes, tmp_path):
    server = FakeTeacher()
    try:
        config = ReasonConfig(scenes=scenes, out=tmp_path / "teach", recipe=load_reason_recipe("vst-r"), n=24, seed=0,
                              teacher_url=server.url, teacher_model="fake-teacher", teacher_concurrency=4,
                              teacher_options={"retries": 1, "backoff_s": 0.01})
        first = run_reason(config)
        stats = first["teacher"]
        assert stats["failed"] > 0 and stats["kept"] > 0 and stats["rejected"] > 0, stats
        assert any("failed for good" in e for e in first["errors"].values())
        server.broken, sent = False, server.requests
        config.resume = True
        second = run_reason(config)
        assert second["teacher"]["failed"] == 0 and second["errors"] == {}
        # answers of the first run come from the cache or finished scenes: only the failed requests are sent again
        assert server.requests - sent == stats["failed"]
        assert second["teacher"]["kept"] + second["teacher"]["rejected"] == stats["kept"] + stats["rejected"] + stats["failed"]
        kept = list(read_samples(config.out / "vst-r-cot.parquet"))
        assert len(kept) == second["teacher"]["kept"] > stats["kept"]
        for sample in kept:
            assert sample.meta_info["trace"] == "teacher:fake-teacher" and passes(sample, sample.response)
            assert "12345" not in sample.response.split("</think>")[-1] and "Z. nowhere" not in sample.response
    finally:
        server.close()


def test_normalise_trace():
    assert normalise_trace(" <think> a \n</think>\n B. lamp ") == "<think>a</think>B. lamp"
    assert normalise_trace("no think at all") is None
    assert normalise_trace("<think>a</think>") is None
    assert normalise_trace("<think>a<think>b</think>C") is None


# -- general reasoning data and the recipe ---------------------------------------------------------------------------
def test_read_general_from_json_jsonl_parquet_reports_bad_rows(tmp_path):
    Image.new("RGB", (32, 32), "red").save(tmp_path / "chart.png")
    rows = [{"problem": "What is 2+3?", "solution": "5", "reasoning": "2 plus 3 is 5."},
            {"question": "<image>What colour is it?", "answer": "red", "thought": "It is red.", "images": ["chart.png"]},
            {"question": "no answer here"},
            {"question": "Where?", "answer": "x", "thought": "t", "images": ["missing.png"]}]
    (tmp_path / "mix.json").write_text(json.dumps(rows))
    (tmp_path / "mix.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pq.write_table(pa.table({"question": ["What is 2+3?", "<image>What colour is it?"], "answer": ["5", "red"],
                             "images": [[], ["chart.png"]]}), tmp_path / "mix.parquet")
    for name in ("mix.json", "mix.jsonl"):
        samples, problems = read_general(tmp_path / name, "gr_math", "cot")
        assert len(samples) == 2 and len(problems) == 2
        assert "row 2: answer: missing" in problems[0] and "missing.png" in problems[1]
        assert samples[0].response == "<think>2 plus 3 is 5.</think>5" and samples[0].modality == "text"
        assert samples[0].type == "gr_math_thought" and samples[0].reward["fn"] == "math"
        assert samples[1].modality == "single" and samples[1].question.startswith("<|image_pad|>")
        assert score("math", "<think>x</think>5", samples[0].answer) == 1.0
    samples, problems = read_general(tmp_path / "mix.parquet", "gr_ocr", "rl")
    assert [s.response for s in samples] == ["5", "red"] and samples[0].reward["fn"] == "exact" and not problems
    _, problems = read_general(tmp_path / "mix.parquet", "gr_math", "cot")
    assert len(problems) == 2 and all("thought: missing" in p for p in problems)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_general(tmp_path / "nope.json", "gr_math", "cot")


def test_general_items_never_read_images_outside_their_folder(tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), "red").save(secret)
    (tmp_path / "data").mkdir()
    rows = [{"question": "<image>Which?", "answer": "a", "thought": "t", "images": [str(secret)]},
            {"question": "<image>Which?", "answer": "a", "thought": "t", "images": ["../secret.png"]}]
    (tmp_path / "data" / "items.json").write_text(json.dumps(rows))
    samples, problems = read_general(tmp_path / "data" / "items.json", "gr_math", "cot")
    assert not samples and len(problems) == 2
    assert all("images: must be a relative path inside the scene folder" in p for p in problems)


def test_general_items_join_in_the_recipe_proportion(scenes, tmp_path):
    rows = [{"id": f"m{i}", "problem": f"{i}+1?", "solution": str(i + 1), "reasoning": "add one"} for i in range(200)]
    (tmp_path / "math.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    recipe = load_reason_recipe("vst-r")
    manifest = run_reason(ReasonConfig(scenes=scenes, out=tmp_path / "mix", recipe=recipe, n=40, seed=0,
                                       general={"gr_math": tmp_path / "math.jsonl"}))
    expected = recipe.general_quotas(40)
    assert manifest["counts"]["cot"]["gr_math"] == expected[("cot", "gr_math")] == round(40 * 31 / 52)
    assert manifest["counts"]["rl"]["gr_math"] == expected[("rl", "gr_math")]
    assert any("gr_ocr" in p for p in manifest["general_problems"])


def test_recipe_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cot: {sr_flying: 3}\n")
    with pytest.raises(ValueError, match="cot.sr_flying: unknown category"):
        load_reason_recipe(str(bad))
    bad.write_text("cot: {sr_single_image: -1}\n")
    with pytest.raises(ValueError, match="cot.sr_single_image: weight"):
        load_reason_recipe(str(bad))
    bad.write_text("trace: long\ncot: {sr_single_image: 1}\n")
    with pytest.raises(ValueError, match="trace: expected one of full, short"):
        load_reason_recipe(str(bad))
    quotas = load_reason_recipe("vst-r").spatial_quotas(520)
    assert quotas[("cot", "sr_single_image")] == 150 and quotas[("rl", "sr_object_object")] == 50


# -- BEV ---------------------------------------------------------------------------------------------------------------
def test_bev_render_is_deterministic_and_marks_cameras_and_reference_objects(scenes):
    folder = sorted(p for p in scenes.iterdir() if p.is_dir())[0]
    scene = Scene.load(folder)
    frames = [f for f in scene.frames if f.sequence.startswith("pair")][:2]
    target = next(o for o in scene.objects if not o.is_structure)
    plain = np.asarray(render_bev(scene, frames, [], size_px=400))
    marked = np.asarray(render_bev(scene, frames, [target.instance_id], size_px=400))
    assert plain.shape == (400, 400, 3)
    assert np.array_equal(marked, np.asarray(render_bev(scene, frames, [target.instance_id], size_px=400)))
    red = lambda image: np.sum((image[..., 0] > 180) & (image[..., 1] < 80) & (image[..., 2] < 80))  # noqa: E731
    assert red(marked) > red(plain) > 0  # frusta are red; the highlighted footprint adds a red outline
    facts = {f["id"]: f for f in object_facts(scene, frames)}
    right, forward = _level(frames[0].pose)
    offset = np.asarray(target.box.center[:2]) - frames[0].pose[:2, 3]
    assert facts[target.instance_id]["Cam-1"]["right_m"] == pytest.approx(offset @ right, abs=0.006)
    assert facts[target.instance_id]["Cam-1"]["forward_m"] == pytest.approx(offset @ forward, abs=0.006)


def test_teacher_prompt_shows_images_then_the_bev_and_the_ground_truth(scenes, tmp_path):
    from vst.data.reasoning import source_items

    folder = sorted(p for p in scenes.iterdir() if p.is_dir())[0]
    ctx = SceneContext(Scene.load(folder), folder)
    item = next(source_items(ctx, "sr_object_object", 0, 0, "cot"))
    teacher = Teacher("http://127.0.0.1:9/v1", "m", tmp_path)
    prompt = teacher.prompt(ctx, item)
    assert len(prompt.images) == len(item.images) + 1 and prompt.images[-1][:8] == b"\x89PNG\r\n\x1a\n"
    assert "Correct answer:" in prompt.text and '"Cam-1"' in prompt.text and "<think>" in prompt.system


def test_worker_processes_give_the_same_bytes(templated, scenes, tmp_path):
    out, _ = templated
    run_reason(ReasonConfig(scenes=scenes, out=tmp_path / "two", recipe=load_reason_recipe("vst-r"), n=80, seed=0),
               workers=2)
    for name in ("vst-r-cot.parquet", "vst-r-rl.parquet"):
        assert (tmp_path / "two" / name).read_bytes() == (out / name).read_bytes()


def test_outputs_at_a_url_are_the_local_outputs(templated, scenes):
    """`--out memory://…` (fsspec, no local path): the CoT and RL parquets and the manifest of the local run."""
    import fsspec

    out, manifest = templated
    fs = fsspec.filesystem("memory")
    try:
        remote = run_reason(ReasonConfig(scenes=scenes, out="memory://vst-test-reason/run",
                                         recipe=load_reason_recipe("vst-r"), n=80, seed=0))
        for name in ("vst-r-cot.parquet", "vst-r-rl.parquet"):
            assert fs.cat_file(f"/vst-test-reason/run/{name}") == (out / name).read_bytes()
        assert remote == manifest == json.loads(fs.cat_file("/vst-test-reason/run/manifest.json"))
    finally:
        fs.rm("/vst-test-reason", recursive=True)
