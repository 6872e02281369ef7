"""`--ray` on a real local Ray cluster (`ray start --head`, 2 CPUs, started and stopped here): VST-P shards, VST-R
outputs and scenes in the same bytes as one process, a worker killed mid-task retried with nothing lost or doubled,
and a resume after the driver is killed."""

import filecmp
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vst.parallel import map_jobs

pytest.importorskip("ray")
RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    # a private test cluster: no token authentication (Ray 2.5x enables it by default and keeps the token in ~/.ray,
    # which another cluster on the same machine, or an earlier one, may have replaced)
    previous = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # for the connections this process makes
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0"}
    temp = Path("/tmp") / f"vst-ray-{port}"  # Ray's socket paths must stay short
    started = subprocess.run([str(RAY), "start", "--head", "--num-cpus", "2", "--port", str(port), "--temp-dir",
                              str(temp), "--include-dashboard=false", "--disable-usage-stats"],
                             env=env, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
        if previous is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = previous


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, small_config):
    from vst.scene.generate import generate_scenes

    folder = tmp_path_factory.mktemp("ray-scenes")
    generate_scenes(folder, 4, seed=5, config=small_config)
    return folder


def _generate(scenes, out, *extra, env=None):
    command = [sys.executable, "-m", "vst.cli", "data", "generate", "--scenes", str(scenes), "--out", str(out),
               "--n", "160", "--seed", "0", *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_ray_shard_is_byte_identical_to_one_process(cluster, scenes, tmp_path):
    address, env = cluster
    assert _generate(scenes, tmp_path / "one").returncode == 0
    result = _generate(scenes, tmp_path / "ray", "--ray", address, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    name = "shard-00000-of-00001.parquet"
    assert filecmp.cmp(tmp_path / "one" / name, tmp_path / "ray" / name, shallow=False)
    # the tasks write their parts through fsspec to a URL (file:// here, s3:// on a cluster): the same bytes
    result = _generate(scenes, f"file://{tmp_path}/ray-url", "--ray", address, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert filecmp.cmp(tmp_path / "one" / name, tmp_path / "ray-url" / name, shallow=False)


def test_ray_scene_generation_is_byte_identical(cluster, tmp_path, small_config):
    from vst.scene.generate import generate_scenes

    address, _ = cluster
    generate_scenes(tmp_path / "one", 2, seed=9, config=small_config)
    result = generate_scenes(tmp_path / "ray", 2, seed=9, config=small_config, ray_address=address)
    assert len(result.generated) == 2 and not result.failed
    for scene in (tmp_path / "one").iterdir():
        if scene.is_dir():
            for file in scene.rglob("*"):
                if file.is_file():
                    assert filecmp.cmp(file, tmp_path / "ray" / file.relative_to(tmp_path / "one"), shallow=False), file


def test_a_worker_killed_mid_task_is_retried(cluster, tmp_path):
    address, _ = cluster
    results = sorted(map_jobs(__import__("tests.parallel.jobs", fromlist=["crash_once"]).crash_once,
                              [(str(tmp_path), n) for n in range(5)], ray_address=address))
    assert results == [0, 1, 4, 9, 16]  # nothing lost, nothing doubled
    assert (tmp_path / "crashed-2").is_file()  # the worker did die once


def test_resume_after_the_driver_is_killed(cluster, scenes, tmp_path):
    address, env = cluster
    command = [sys.executable, "-m", "vst.cli", "data", "generate", "--scenes", str(scenes), "--out",
               str(tmp_path / "ray"), "--n", "160", "--seed", "0", "--ray", address]
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    parts = tmp_path / "ray" / ".parts" / "shard-00000-of-00001"
    deadline = time.time() + 120
    while time.time() < deadline and not list(parts.glob("*.json")):
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver dies with scenes done and scenes to do
    driver.wait()
    assert not (tmp_path / "ray" / "shard-00000-of-00001.parquet").exists() or list(parts.glob("*.json"))
    result = _generate(scenes, tmp_path / "ray", "--ray", address, "--resume", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _generate(scenes, tmp_path / "one").returncode == 0
    name = "shard-00000-of-00001.parquet"
    assert filecmp.cmp(tmp_path / "one" / name, tmp_path / "ray" / name, shallow=False)


def test_ray_flag_without_ray_is_a_clear_error(monkeypatch):
    from vst.parallel import connect_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RuntimeError, match="pip install 'vst\\[ray\\]'"):
        connect_ray("local")


def test_ray_reason_outputs_are_byte_identical(cluster, scenes, tmp_path):
    address, env = cluster
    runs = {}
    for name, extra in (("one", []), ("ray", ["--ray", address])):
        command = [sys.executable, "-m", "vst.cli", "data", "reason", "--scenes", str(scenes), "--out",
                   str(tmp_path / name), "--n", "60", "--seed", "0", *extra]
        runs[name] = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert runs[name].returncode == 0, runs[name].stderr[-2000:]
    for file in ("vst-r-cot.parquet", "vst-r-rl.parquet"):
        assert filecmp.cmp(tmp_path / "one" / file, tmp_path / "ray" / file, shallow=False)
