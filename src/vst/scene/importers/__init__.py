"""Real 3D scans -> vst scenes: `vst scenes import FORMAT SRC --out DIR`.

One module per format, registered in `FORMATS`; each exposes `LICENSE`, `list_scenes(src, options) -> [scene ids]` and
`read_scene(src, scene_id, options) -> RawScene` (vst.scene.importers.common). `import_scenes` drives them: one
scene per task (optionally in worker processes), a bad scene reported by name and skipped, finished scenes skipped
on a re-run, `manifest.json` written last. docs/scenes.md lists, per format, the layout read and what was verified.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from vst.parallel import collect, map_jobs
from vst.scene.importers.common import ImportOptions, RawScene, write_scene
from vst.scene.types import SCENE_FILE, atomic_write_text

FORMATS = ("scannet", "scannetpp", "arkitscenes", "embodiedscan", "hypersim", "ca1m")
MANIFEST_FILE = "manifest.json"


def reader(fmt: str):
    """The module that reads `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown scan format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return importlib.import_module(f"vst.scene.importers.{fmt}")


@dataclass
class ImportResult:
    out: Path
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0


def _import_one(args) -> tuple[str, int, str | None]:
    fmt, src, out, scene_id, options = args
    final = Path(out) / scene_id.replace("/", "__")
    try:
        raw: RawScene = reader(fmt).read_scene(Path(src), scene_id, options)
        raw.scene_id = final.name  # a folder-safe id (EmbodiedScan's "scannet/scene0000_00" -> "scannet__scene0000_00")
        # written into a temporary sibling, then renamed: a killed import never leaves a half scene behind
        work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=out))
        try:
            scene = write_scene(raw, work, options)
            if final.exists():
                shutil.rmtree(final)
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return scene_id, len(scene.frames), None
    except Exception as error:  # one bad scene must not stop a long import; it is reported by name
        return scene_id, 0, f"{type(error).__name__}: {error}"


def import_scenes(fmt: str, src: str | Path, out: str | Path, scene_ids: list[str] | None = None,
                  options: ImportOptions | None = None, workers: int = 1,
                  on_scene: Callable[[str, int, str | None], None] | None = None,
                  ray_address: str | None = None) -> ImportResult:
    """Import the scenes of `src` (all, or `scene_ids`) into `out`, skipping scenes already there (`workers`
    processes, or Ray tasks at `ray_address`: vst.parallel)."""
    module = reader(fmt)
    options = options or ImportOptions()
    src, out = Path(src), Path(out)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    out.mkdir(parents=True, exist_ok=True)
    ids = list(scene_ids) if scene_ids else module.list_scenes(src, options)
    if not ids:
        raise ValueError(f"{src}: no {fmt} scene found (layout: docs/scenes.md, 'Importing real scans')")
    result, todo = ImportResult(out), []
    for scene_id in ids:
        if (out / scene_id.replace("/", "__") / SCENE_FILE).is_file():
            result.skipped.append(scene_id)
            if on_scene:
                on_scene(scene_id, 0, None)
        else:
            todo.append((fmt, str(src), str(out), scene_id, options))
    result.frames += collect(map_jobs(_import_one, todo, workers, ray_address), result.imported, result.failed, on_scene)
    manifest = {"source": fmt, "src": str(src), "options": asdict(options), "license": module.LICENSE,
                "scenes": sorted(p.name for p in out.iterdir() if p.is_dir() and (p / SCENE_FILE).is_file()),
                "failed": dict(sorted(result.failed.items()))}
    atomic_write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")
    return result
