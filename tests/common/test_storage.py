"""Outputs at an fsspec URL (`--out s3://…`): the store writes whole files or nothing, and a VST-P shard and VST-R
outputs written through `memory://` (a file system with no local path at all) and `file://` are the bytes of a run
into a local folder; resume reads the URL's parts; a protocol whose package is missing names the package."""

import hashlib
import json

import fsspec
import pytest

from vst.common.storage import Store, is_url
from vst.data.engine import EngineConfig, run
from vst.data.recipes import Recipe
from vst.scene.generate import generate_scenes

RECIPE = Recipe("depth-and-distance", {"si_depth_comparison": 1.0, "si_distance": 1.0})


@pytest.fixture
def memory():
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/vst-test", recursive=True) if fs.exists("/vst-test") else None


def test_a_file_is_in_place_only_when_its_block_ends(memory, tmp_path):
    store = Store("memory://vst-test/run")
    assert store.is_url and is_url("s3://b/x") and not is_url(str(tmp_path)) and not Store(tmp_path).is_url
    with pytest.raises(RuntimeError, match="boom"):
        with store.local_file("a", "part.parquet") as path:
            path.write_bytes(b"half")
            raise RuntimeError("boom")
    assert not store.exists("a", "part.parquet")  # a failed writer leaves nothing
    with store.local_file("a", "part.parquet") as path:
        path.write_bytes(b"whole")
        assert not store.exists("a", "part.parquet")  # not before the block ends
    assert memory.cat_file("/vst-test/run/a/part.parquet") == b"whole"
    store.write_text('{"x": 1}\n', "a", "record.json")
    assert json.loads(store.read_text("a", "record.json")) == {"x": 1}
    with store.fetch([("a", "part.parquet"), ("a", "record.json")]) as local:
        assert local[0].read_bytes() == b"whole" and local[1].suffix == ".json"
        folder = local[0].parent
    assert not folder.exists()  # the downloads are cleaned up
    assert store.display("a", "part.parquet") == "memory://vst-test/run/a/part.parquet"


def test_file_urls_rename_into_place_and_local_roots_are_plain_paths(tmp_path):
    url = Store(f"file://{tmp_path}/out")
    with url.local_file("x.txt") as path:
        path.write_text("hi")
    assert (tmp_path / "out" / "x.txt").read_text() == "hi" and not list((tmp_path / "out").glob("*.tmp-*"))
    local = Store(tmp_path / "plain")
    with local.local_file("y.txt") as path:
        assert path == tmp_path / "plain" / "y.txt"  # written in place: the writers rename their own temp files
        path.write_text("ok")
    assert local.exists("y.txt") and local.read_text("y.txt") == "ok"


def test_a_protocol_without_its_package_names_the_package():
    pytest.importorskip("fsspec")
    try:
        import s3fs  # noqa: F401
        pytest.skip("s3fs is installed")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="s3fs"):
        Store("s3://bucket/vst-p").exists("x")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, small_config):
    folder = tmp_path_factory.mktemp("storage-scenes")
    generate_scenes(folder, 2, seed=3, config=small_config)
    return folder


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_shard_at_a_url_is_the_local_shard_and_resumes_from_the_url(scenes, tmp_path, memory):
    local = run(EngineConfig(scenes=scenes, out=tmp_path / "local", recipe=RECIPE, n=40, seed=0))
    shard = (tmp_path / "local" / local["shard"]).read_bytes()
    remote = run(EngineConfig(scenes=scenes, out="memory://vst-test/vst-p", recipe=RECIPE, n=40, seed=0))
    assert memory.cat_file(f"/vst-test/vst-p/{local['shard']}") == shard
    assert remote["sha256"] == local["sha256"] == _sha(shard)
    manifest = json.loads(memory.cat_file("/vst-test/vst-p/shard-00000-of-00001.manifest.json"))
    assert manifest == remote and manifest["rows"] == local["rows"] > 0
    # a second run refuses to overwrite; --resume keeps the parts found at the URL, a lost part is made again
    with pytest.raises(ValueError, match="memory://vst-test/vst-p/shard-00000-of-00001.manifest.json: this shard exists"):
        run(EngineConfig(scenes=scenes, out="memory://vst-test/vst-p", recipe=RECIPE, n=40, seed=0))
    records = sorted(p for p in memory.find("/vst-test/vst-p/.parts") if p.endswith(".json") and "run.json" not in p)
    memory.rm(records[0])
    memory.rm(records[0].replace(".json", ".parquet"))
    again = run(EngineConfig(scenes=scenes, out="memory://vst-test/vst-p", recipe=RECIPE, n=40, seed=0, resume=True))
    assert again["sha256"] == local["sha256"]


def test_the_cli_writes_a_shard_to_a_file_url_with_worker_processes(scenes, tmp_path):
    from typer.testing import CliRunner

    from vst.cli import app

    args = ["data", "generate", "--scenes", str(scenes), "--recipe", "vst-p", "--n", "60"]
    assert CliRunner().invoke(app, [*args, "--out", str(tmp_path / "local")]).exit_code == 0
    result = CliRunner().invoke(app, [*args, "--out", f"file://{tmp_path}/url", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert f"file://{tmp_path}/url/shard-00000-of-00001.parquet" in result.output.replace("\n", "")
    name = "shard-00000-of-00001.parquet"
    assert (tmp_path / "url" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
