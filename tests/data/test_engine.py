"""The data engine end to end on small procedural scenes: shards, determinism, resume, bad scenes, readers."""

import hashlib
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vst.data.engine import EngineConfig, run
from vst.data.formats import from_llava, from_verl, to_llava, to_verl
from vst.data.inspect import preview_html, shard_stats
from vst.data.recipes import Recipe, load_recipe
from vst.data.sample import Sample
from vst.data.shards import read_samples
from vst.scene.generate import generate_scenes

DEPTH_ONLY = Recipe("depth-only", {"si_depth_comparison": 1.0})


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, small_config):
    folder = tmp_path_factory.mktemp("scenes")
    generate_scenes(folder, 3, seed=1, config=small_config)
    return folder


def config(scenes, out, **kwargs):
    return EngineConfig(**{"scenes": scenes, "out": out, "recipe": DEPTH_ONLY, "n": 24, "seed": 0, **kwargs})


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shard_loads_with_datasets_and_counts_match(scenes, tmp_path):
    manifest = run(config(scenes, tmp_path))
    shard = tmp_path / manifest["shard"]
    import datasets

    rows = datasets.load_dataset("parquet", data_files=str(shard), split="train")
    assert len(rows) == manifest["rows"] == manifest["counts_per_skill"]["si_depth_comparison"] > 0
    assert set(rows.column_names) >= {"id", "data_source", "type", "conversations", "images", "meta_info", "skill", "modality", "answer", "reward"}
    assert len(set(rows["id"])) == len(rows)
    assert manifest["token_estimate"] > 0 and manifest["scenes"] and not manifest["skipped_scenes"]


def test_same_seed_same_bytes_and_resume_equals_uninterrupted(scenes, tmp_path):
    first = run(config(scenes, tmp_path / "a"))
    run(config(scenes, tmp_path / "b"))
    shard_a, shard_b = tmp_path / "a" / first["shard"], tmp_path / "b" / first["shard"]
    assert digest(shard_a) == digest(shard_b)
    # simulate a kill after the first scene: later parts, the shard and its manifest are gone
    parts = sorted((tmp_path / "b" / ".parts").rglob("*.json"))
    for record in [p for p in parts if p.name != "run.json"][1:]:
        record.unlink()
        record.with_suffix(".parquet").unlink()
    shard_b.unlink()
    (tmp_path / "b" / first["shard"].replace(".parquet", ".manifest.json")).unlink()
    resumed = run(config(scenes, tmp_path / "b", resume=True))
    assert digest(shard_b) == digest(shard_a) and resumed["rows"] == first["rows"]


def test_worker_processes_write_the_same_bytes(scenes, tmp_path):
    mixed = Recipe("mixed", {"si_depth_comparison": 1.0, "mi_camera_motion": 1.0, "si_3d_detection": 1.0})
    seen = {1: [], 2: []}
    shards = {}
    for workers in (1, 2):
        manifest = run(config(scenes, tmp_path / str(workers), recipe=mixed, n=30),
                       lambda name, rows, skipped, w=workers: seen[w].append((name, rows)), workers=workers)
        shards[workers] = tmp_path / str(workers) / manifest["shard"]
        assert manifest["rows"] > 0 and len(manifest["counts_per_skill"]) == 3
    assert digest(shards[1]) == digest(shards[2])
    assert sorted(seen[1]) == sorted(seen[2]) and len(seen[1]) == 3  # every scene reported (as it finishes)


def test_existing_shard_needs_resume(scenes, tmp_path):
    run(config(scenes, tmp_path))
    with pytest.raises(ValueError, match="pass --resume"):
        run(config(scenes, tmp_path))
    with pytest.raises(ValueError, match="fingerprint"):
        run(config(scenes, tmp_path, seed=5, resume=True))


def test_bad_scene_is_skipped_and_reported(scenes, tmp_path):
    broken = tmp_path / "scenes"
    shutil.copytree(scenes, broken)
    scene_file = sorted(broken.glob("*/scene.json"))[0]
    data = json.loads(scene_file.read_text())
    data["objects"][0]["box"]["size"] = [1, -1, 1]
    scene_file.write_text(json.dumps(data))
    manifest = run(config(broken, tmp_path / "out"))
    assert list(manifest["skipped_scenes"]) == [scene_file.parent.name]
    assert "objects[0].box.size: sizes must be >= 0" in manifest["skipped_scenes"][scene_file.parent.name]
    assert manifest["rows"] > 0


@pytest.mark.parametrize("damage", ["truncated", "not_an_image", "non_utf8_json"])
def test_a_bad_frame_or_file_costs_its_scene_not_the_run(damage, scenes, tmp_path):
    """A truncated JPEG or a frame that is not an image never reaches the shard (unmarked frames are copied as bytes,
    so they are decoded first); the rest of the run completes, and a re-run gives the same result."""
    import io

    from PIL import Image

    broken = tmp_path / "scenes"
    shutil.copytree(scenes, broken)
    scene_dir = sorted(p.parent for p in broken.glob("*/scene.json"))[0]
    frames = json.loads((scene_dir / "scene.json").read_text())["frames"]
    if damage == "non_utf8_json":
        (scene_dir / "scene.json").write_bytes(b"\xff\xfe" + (scene_dir / "scene.json").read_bytes())
    for frame in frames:
        image = scene_dir / frame["image_path"]
        image.write_bytes(image.read_bytes()[: len(image.read_bytes()) // 2] if damage == "truncated" else b"plain text")
    recipe = Recipe("mixed", {"si_depth_comparison": 1.0, "si_measurement": 1.0, "si_scene_caption": 1.0})
    for attempt in ("first", "again"):
        manifest = run(config(broken, tmp_path / "out", recipe=recipe, resume=attempt == "again"))
        assert manifest["rows"] > 0  # the other scenes
        samples = list(read_samples(tmp_path / "out" / manifest["shard"]))
        for sample in samples:
            for media in sample.images:
                Image.open(io.BytesIO(media.bytes)).load()  # every image in the shard decodes
        scene_ids = {s.meta_info["scene_id"] for s in samples}
        assert scene_ids and json.loads((scenes / scene_dir.name / "scene.json").read_text())["scene_id"] not in scene_ids
        reported = {**manifest["skipped_scenes"], **manifest.get("skill_errors", {})}
        assert any(scene_dir.name in key for key in reported), reported
        if damage == "non_utf8_json":
            assert "not UTF-8" in manifest["skipped_scenes"][scene_dir.name]
        else:
            assert any("not a readable image" in message for message in reported.values()), reported


def test_shards_partition_the_scenes(scenes, tmp_path):
    whole = run(config(scenes, tmp_path / "one"))
    ids = set()
    for index in range(2):
        manifest = run(config(scenes, tmp_path / "two", shard_index=index, num_shards=2))
        ids |= {s.id for s in read_samples(tmp_path / "two" / manifest["shard"])}
    assert ids == {s.id for s in read_samples(tmp_path / "one" / whole["shard"])}


def test_released_vst_row_loads_through_the_same_reader(tmp_path):
    row = {  # the released vst_500k schema: no vst columns, <|image_pad|>, meta_info a JSON string
        "id": "mi_camera_motion_000001", "data_source": "scannet", "type": "mi_camera_motion",
        "conversations": [{"from": "human", "value": "<|image_pad|><|image_pad|>Did the camera move left or right?"}, {"from": "gpt", "value": "Left"}],
        "images": [{"bytes": b"\xff\xd8jpeg-1", "path": "a.jpg"}, {"bytes": b"\xff\xd8jpeg-2", "path": "b.jpg"}],
        "meta_info": json.dumps([{"height": -1, "width": -1}]),
    }
    path = tmp_path / "vst_500k.parquet"
    pq.write_table(pa.Table.from_pylist([row]), path)
    (sample,) = list(read_samples(path))
    assert sample.modality == "multi" and sample.skill == "mi_camera_motion" and sample.response == "Left"
    assert sample.question.count("<|image_pad|>") == 2 and sample.images[1].path == "b.jpg"
    legacy = Sample.from_row({**row, "conversations": [{"from": "human", "value": "<video>\nHow many chairs?"}, {"from": "gpt", "value": "3"}], "type": "video"})
    assert legacy.modality == "video" and legacy.question.startswith("<|video_pad|>")
    with pytest.raises(ValueError, match="conversations"):
        Sample.from_row({"id": "x", "conversations": "oops"})


@pytest.mark.parametrize("image_path, error", [
    ("frames/a.jpg", None),
    ("/etc/passwd", r"row 0: images\[0\].path: must be a relative path inside"),
    ("../outside.jpg", r"row 0: images\[0\].path: must be a relative path inside"),
    ("frames/missing.jpg", r"row 0: images\[0\]: no bytes, and no file at .*missing.jpg"),
])
def test_path_only_images_are_read_from_inside_the_shard_folder(image_path, error, tmp_path):
    """Rows other tools wrote may name images by path only: read relative to the shard, never outside it."""
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "a.jpg").write_bytes(b"\xff\xd8jpeg-a")
    (tmp_path / "outside.jpg").write_bytes(b"secret")
    row = {"id": "x", "type": "image", "images": [{"bytes": None, "path": image_path}],
           "conversations": [{"from": "human", "value": "<|image_pad|>Which?"}, {"from": "gpt", "value": "A"}]}
    (tmp_path / "shards").mkdir()
    path = tmp_path / "shards" / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([row]), path)
    if error is None:
        (tmp_path / "shards" / "frames").mkdir()
        (tmp_path / "shards" / "frames" / "a.jpg").write_bytes(b"\xff\xd8jpeg-a")
        assert list(read_samples(path))[0].images[0].bytes == b"\xff\xd8jpeg-a"
        return
    with pytest.raises(ValueError, match=error):
        list(read_samples(path))


def test_llava_and_verl_round_trips(scenes, tmp_path):
    manifest = run(config(scenes, tmp_path))
    samples = list(read_samples(tmp_path / manifest["shard"]))
    back = from_llava(to_llava(samples, tmp_path / "llava"))
    assert [(s.id, s.question, s.response, s.answer, s.images[0].bytes) for s in back] == [(s.id, s.question, s.response, s.answer, s.images[0].bytes) for s in samples]
    rows = to_verl(samples, tmp_path / "rl.parquet")
    assert rows == len(samples)
    restored = from_verl(tmp_path / "rl.parquet")
    assert [(s.id, s.answer, s.reward) for s in restored] == [(s.id, s.answer, s.reward) for s in samples]
    table = pq.read_table(tmp_path / "rl.parquet")
    assert {"prompt", "reward_model", "problem", "answer", "images"} <= set(table.column_names)


def test_llava_rows_never_read_media_outside_their_folder(tmp_path):
    (tmp_path / "outside.jpg").write_bytes(b"not for the shard")
    (tmp_path / "llava").mkdir()
    row = {"id": "0", "image": "../outside.jpg",
           "conversations": [{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "A"}]}
    (tmp_path / "llava" / "data.json").write_text(json.dumps([row]))
    with pytest.raises(ValueError, match=r"data.json: \[0\].image: must be a relative path inside"):
        from_llava(tmp_path / "llava" / "data.json")


def test_stats_and_preview(scenes, tmp_path):
    manifest = run(config(scenes, tmp_path))
    shard = tmp_path / manifest["shard"]
    stats = shard_stats([shard])
    assert stats["rows"] == manifest["rows"] and stats["skills"] == manifest["counts_per_skill"]
    letters = stats["letters"]["si_depth_comparison"]
    assert sum(letters.values()) == stats["answer_types"].get("mc", 0)
    page = preview_html([shard], tmp_path / "p.html", n=5).read_text()
    assert page.count('class="card"') == 5 and "data:image/jpeg;base64," in page


def test_recipe_quotas_and_errors(tmp_path):
    recipe = load_recipe("vst-p")
    quotas = recipe.quotas(2000)
    assert len(quotas) == 19 and min(quotas.values()) >= 9  # min_fraction keeps rare video skills present
    assert quotas["si_3d_detection"] > quotas["si_depth_comparison"] > quotas["video_route_plan"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("skills:\n  si_depth_comparison: -1\n")
    with pytest.raises(ValueError, match="bad.yaml: skills.si_depth_comparison: weight must be a number >= 0"):
        load_recipe(str(bad))
    with pytest.raises(ValueError, match="unknown recipe"):
        load_recipe("nope")


def test_stats_name_an_undecodable_image(tmp_path):
    row = {"id": "bad-1", "type": "image", "images": [{"bytes": b"\xff\xd8truncated", "path": "a.jpg"}],
           "conversations": [{"from": "human", "value": "<|image_pad|>Which?"}, {"from": "gpt", "value": "A"}]}
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "rows.parquet")
    with pytest.raises(ValueError, match=r"sample bad-1: images\[0\]: not a readable image"):
        shard_stats([tmp_path / "rows.parquet"])


def test_the_manifest_checksum_catches_a_changed_shard(scenes, tmp_path):
    from vst.data.shards import file_sha256, verify_shard
    from vst.train.sft import expand_shards

    manifest = run(config(scenes, tmp_path))
    shard = tmp_path / manifest["shard"]
    assert manifest["sha256"] == hashlib.sha256(shard.read_bytes()).hexdigest() == file_sha256(shard)
    assert verify_shard(shard) and shard_stats([shard])["rows"] == manifest["rows"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the file
    shard.write_bytes(bytes(data))
    for check in (lambda: verify_shard(shard), lambda: shard_stats([shard]), lambda: expand_shards([shard])):
        with pytest.raises(ValueError, match=r"sha256 differs from shard-.*manifest.json"):
            check()


def test_scene_roots_mix_by_weight(tmp_path):
    """Several roots with weights: each root's share of every skill's total, split by largest remainders, and one
    global index per scene (seeds); one root keeps its old part names and fingerprint."""
    from vst.data.engine import EngineConfig, _split, plan_scenes
    from vst.data.recipes import load_recipe

    assert _split(10, [0.75, 0.25]) == [8, 2] and _split(7, [1, 1, 1]) == [3, 2, 2] and sum(_split(101, [0.4, 0.3, 0.3])) == 101
    roots = []
    for name, count in (("a", 3), ("b", 1)):
        for i in range(count):
            (tmp_path / name / f"s{i}").mkdir(parents=True)
            (tmp_path / name / f"s{i}" / "scene.json").write_text("{}")
        roots.append(tmp_path / name)
    recipe = load_recipe("vst-p")
    config = EngineConfig(scenes=roots, out=tmp_path / "out", recipe=recipe, n=100, scene_weights=[0.75, 0.25])
    totals = {"si_distance": 40, "si_measurement": 9}
    plan = plan_scenes(config, totals)
    assert [p.name for p in plan] == ["0-s0", "0-s1", "0-s2", "1-s0"] and [p.index for p in plan] == [0, 1, 2, 3]
    assert sum(p.quotas["si_distance"] for p in plan[:3]) == 30 and plan[3].quotas["si_distance"] == 10
    assert sum(p.quotas["si_measurement"] for p in plan) == 9
    single = EngineConfig(scenes=roots[0], out=tmp_path / "out", recipe=recipe, n=100)
    assert [p.name for p in plan_scenes(single, totals)] == ["s0", "s1", "s2"]
    assert single.fingerprint() != EngineConfig(scenes=roots, out=tmp_path, recipe=recipe, n=100).fingerprint()
