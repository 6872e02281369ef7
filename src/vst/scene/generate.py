"""Generate many procedural scenes to disk: one folder per scene, a manifest, resume, worker processes.

Layout: `<out>/<scene_id>/scene.json` + `frames/`, and `<out>/manifest.json` written last. Each scene is built
in `<out>/<scene_id>.incomplete/` and renamed when complete, so an interrupted run leaves no half scene;
re-running the same command skips finished scenes and redoes the rest. Scene `i` of seed `s` is drawn from
`np.random.default_rng([s, i])`, so output is byte-identical across runs, worker counts and `--n` values.
A scene that fails is reported in the manifest and the run goes on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from vst import __version__
from vst.parallel import collect, map_jobs
from vst.scene.capture import render_scene
from vst.scene.procedural import ProceduralConfig, generate_layout
from vst.scene.types import SCENE_FILE, atomic_write_text
from vst.scene.video import write_scene_video

MANIFEST_FILE = "manifest.json"
INCOMPLETE_SUFFIX = ".incomplete"


@dataclass
class GenerationResult:
    out: Path
    generated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0


def scene_id(seed: int, index: int) -> str:
    return f"procedural-s{seed}-{index:05d}"


def config_fingerprint(seed: int, config: ProceduralConfig) -> str:
    payload = json.dumps({"seed": seed, "config": dataclasses.asdict(config), "version": __version__}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


_worker_renderer = None


def build_scene(out: Path, seed: int, index: int, config: ProceduralConfig) -> tuple[str, int]:
    """Lay out, render and atomically publish scene `index`; returns (scene id, frame count)."""
    global _worker_renderer
    from vst.scene.render import Renderer

    identifier = scene_id(seed, index)
    staging = out / f"{identifier}{INCOMPLETE_SUFFIX}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        scene = generate_layout(np.random.default_rng([seed, index]), identifier, config)
        if _worker_renderer is None:
            _worker_renderer = Renderer()
        scene = render_scene(scene, staging, _worker_renderer)
        write_scene_video(scene, staging)  # the engine's video questions read it instead of encoding per run
        final = out / identifier
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        return identifier, len(scene.frames)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _build_or_error(args) -> tuple[str, int, str | None]:
    out, seed, index, config = args
    try:
        identifier, frames = build_scene(out, seed, index, config)
        return identifier, frames, None
    except Exception as error:  # one bad scene must not stop the run; it is reported in the manifest
        return scene_id(seed, index), 0, f"{type(error).__name__}: {error}"


def generate_scenes(
    out: str | Path,
    n: int,
    seed: int = 0,
    config: ProceduralConfig | None = None,
    workers: int = 1,
    on_scene: Callable[[str, int, str | None], None] | None = None,
    ray_address: str | None = None,
) -> GenerationResult:
    """Generate scenes 0..n-1 of `seed` into `out`, skipping scenes already complete there (`workers` processes, or
    Ray tasks at `ray_address`: vst.parallel)."""
    config = config or ProceduralConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = config_fingerprint(seed, config)
    manifest_path = out / MANIFEST_FILE
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text())
        if previous.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{manifest_path}: fingerprint: this folder holds scenes from another seed, config or vst version "
                f"({previous.get('fingerprint')} != {fingerprint}); choose another --out"
            )
    result = GenerationResult(out)
    todo = []
    for index in range(n):
        identifier = scene_id(seed, index)
        if (out / identifier / SCENE_FILE).is_file():
            result.skipped.append(identifier)
            if on_scene:
                on_scene(identifier, 0, None)
        else:
            todo.append((out, seed, index, config))
    result.frames += collect(map_jobs(_build_or_error, todo, workers, ray_address), result.generated, result.failed, on_scene)
    _write_manifest(out, n, seed, config, fingerprint, result)
    return result


def _write_manifest(out: Path, n: int, seed: int, config: ProceduralConfig, fingerprint: str, result: GenerationResult) -> None:
    scenes = sorted(p.name for p in out.iterdir() if p.is_dir() and (p / SCENE_FILE).is_file())
    manifest = {
        "source": "procedural",
        "seed": seed,
        "n": n,
        "vst_version": __version__,
        "fingerprint": fingerprint,
        "config": dataclasses.asdict(config),
        "scenes": scenes,
        "failed": dict(sorted(result.failed.items())),
    }
    atomic_write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")
