"""Scenes + recipe -> shards of samples: quotas, per-(scene, skill) seeds, bad-scene skipping, resume.

Scenes are the sub-folders of `--scenes` holding a scene.json, sorted by name; scene j belongs to shard
j % num_shards, so shards are independent (any scheduler can run them: SLURM arrays, indexed jobs, Ray).
A skill's quota is spread evenly over all scenes; scene j and skill s draw from rng([seed, j, s]), so output
depends only on (scenes, recipe, n, seed), never on sharding history: a resumed run equals an uninterrupted one.

Several scene roots (e.g. imported ScanNet, ARKitScenes and procedural rooms) can be mixed with weights: root r
gets the share w_r / sum(w) of every skill's total, spread evenly over its own scenes (docs/data.md, "Mixing
sources"). Without weights all scenes of all roots share the totals evenly, as one root does.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from vst import __version__
from vst.parallel import map_jobs
from vst.data.choices import check_answer_form
from vst.data.context import SceneContext
from vst.data.recipes import Recipe
from vst.data.sample import Sample
from vst.common.storage import Store
from vst.data.shards import concatenate, file_sha256, json_text, shard_name, start_parts, write_samples
from vst.data.skills import SKILLS, get_skill
from vst.scene.types import SCENE_FILE, Scene, SceneError

PARTS_DIR = ".parts"
IMAGE_TOKEN_PIXELS = 28 * 28  # Qwen2.5-VL: one visual token per 28x28 pixels after the 2x2 merge


@dataclass
class EngineConfig:
    scenes: Path
    out: Path | str  # a folder, or an fsspec URL (s3://bucket/vst-p) every worker can write to
    recipe: Recipe
    n: int
    seed: int = 0
    shard_index: int = 0
    num_shards: int = 1
    options: dict = field(default_factory=dict)  # skill switches, e.g. {"fov_unify": True}
    resume: bool = False
    scene_weights: list[float] | None = None  # with several roots in `scenes`: each root's share of the samples

    def __post_init__(self):
        check_answer_form({**self.recipe.options, **self.options})

    @property
    def roots(self) -> list[Path]:
        return [Path(p) for p in self.scenes] if isinstance(self.scenes, (list, tuple)) else [Path(self.scenes)]

    def fingerprint(self) -> str:
        payload = {"recipe": [self.recipe.name, sorted(self.recipe.weights.items()), self.recipe.min_fraction], "n": self.n, "seed": self.seed,
                   "num_shards": self.num_shards, "options": self.options, "version": __version__}
        if self.recipe.options:  # (recipes without options keep the fingerprint they always had)
            payload["recipe_options"] = self.recipe.options
        if len(self.roots) > 1 or self.scene_weights:  # (one root keeps the fingerprint it always had)
            payload["roots"] = [str(root) for root in self.roots]
            payload["scene_weights"] = self.scene_weights
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class PlannedScene:
    folder: Path
    index: int  # global: seeds rng([seed, index, skill])
    name: str  # its part file's name (root-prefixed when several roots are mixed)
    quotas: dict[str, int]


def plan_scenes(config: EngineConfig, totals: dict[str, int]) -> list[PlannedScene]:
    """Every scene of every root with its global index and its samples per skill."""
    roots = config.roots
    per_root = [list_scenes(root) for root in roots]
    weights = config.scene_weights
    if weights is not None and (len(weights) != len(roots) or min(weights) < 0 or sum(weights) <= 0):
        raise ValueError(f"scene weights {weights}: need one non-negative weight per scenes root ({len(roots)}), not all 0")
    prefix = len(roots) > 1
    plan, index = [], 0
    if weights is None:  # one pool: totals spread evenly over all scenes
        pool = [(r, folder) for r, folders in enumerate(per_root) for folder in folders]
        for j, (r, folder) in enumerate(pool):
            plan.append(PlannedScene(folder, j, f"{r}-{folder.name}" if prefix else folder.name, scene_quotas(totals, j, len(pool))))
        return plan
    shares = [_split(total, weights) for total in totals.values()]
    for r, folders in enumerate(per_root):
        root_totals = {skill: share[r] for skill, share in zip(totals, shares)}
        for i, folder in enumerate(folders):
            plan.append(PlannedScene(folder, index, f"{r}-{folder.name}" if prefix else folder.name,
                                     scene_quotas(root_totals, i, len(folders))))
            index += 1
    return plan


def _split(total: int, weights: list[float]) -> list[int]:
    """`total` split in proportion to `weights`, rounded so that the parts sum to `total` (largest remainders)."""
    exact = np.asarray(weights, dtype=np.float64) / sum(weights) * total
    parts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - parts), kind="stable")[: total - parts.sum()]:
        parts[i] += 1
    return parts.tolist()


def list_scenes(scenes: Path) -> list[Path]:
    if not scenes.is_dir():
        raise FileNotFoundError(f"{scenes}: scenes folder not found")
    folders = sorted(p for p in scenes.iterdir() if (p / SCENE_FILE).is_file())
    if not folders:
        raise ValueError(f"{scenes}: no scene folders (sub-folders with a {SCENE_FILE}); generate some with `vst scenes generate`")
    return folders


def scene_quotas(total_per_skill: dict[str, int], scene_index: int, scene_count: int) -> dict[str, int]:
    """This scene's share of each skill's total: totals spread evenly, remainders to the first scenes."""
    return {skill: total // scene_count + (1 if scene_index < total % scene_count else 0) for skill, total in total_per_skill.items()}


def generate_scene_samples(ctx: SceneContext, quotas: dict[str, int], seed: int, scene_index: int, errors: dict[str, str]) -> list[Sample]:
    """Up to quota samples per skill for one scene; a skill that raises is recorded in `errors` and skipped."""
    skill_order = sorted(SKILLS)
    samples: list[Sample] = []
    for skill_name, quota in quotas.items():
        if quota <= 0:
            continue
        rng = np.random.default_rng([seed, scene_index, skill_order.index(skill_name)])
        try:
            samples += list(itertools.islice(get_skill(skill_name).samples(ctx, rng), quota))
        except Exception as error:  # one broken skill on one scene must not stop the run; it is reported
            errors[skill_name] = f"{type(error).__name__}: {error}"
    return samples


def estimate_tokens(sample: Sample, video_frame_size: tuple[int, int] = (448, 448)) -> int:
    """Rough prompt + answer length in Qwen2.5-VL tokens: 4 characters per text token, 28x28 pixels per visual token."""
    text = sum(len(t.value) for t in sample.conversations) // 4
    if sample.modality == "video":
        frames = len(sample.meta_info.get("frame_ids") or [0] * 32)
        per_frame = video_frame_size[0] * video_frame_size[1] // IMAGE_TOKEN_PIXELS
        return text + per_frame * max(frames // 2, 1)  # Qwen2.5-VL merges 2 frames per temporal patch
    visual = 0
    for number, media in enumerate(sample.images):
        try:
            with Image.open(io.BytesIO(media.bytes)) as image:  # reads the header only
                visual += image.width * image.height // IMAGE_TOKEN_PIXELS
        except (OSError, SyntaxError, ValueError, TypeError) as error:
            raise ValueError(f"sample {sample.id}: images[{number}]: not a readable image ({error})") from None
    return text + visual


def run(config: EngineConfig, on_scene: Callable[[str, int, str | None], None] | None = None, workers: int = 1,
        ray_address: str | None = None) -> dict:
    """Generate this shard; returns its manifest (also written next to the shard).

    Scenes are independent: with `workers` > 1 they run in that many processes, and the shard is byte-identical to
    a one-process run (each scene's samples depend only on the seed and the scene's index; parts join in scene order).
    With `ray_address` the scenes are Ray tasks (vst.parallel), each writing its part to `out` (shared
    storage), the shard and manifest written here last: the same bytes again. `on_scene` hears of scenes as they
    finish.
    """
    unknown = [s for s in config.recipe.weights if s not in SKILLS]
    if unknown:
        raise ValueError(f"recipe {config.recipe.name}: skills.{unknown[0]}: unknown skill; known skills: {', '.join(sorted(SKILLS))}")
    if not 0 <= config.shard_index < config.num_shards:
        raise ValueError(f"--shard-index {config.shard_index} must be in [0, {config.num_shards})")
    totals = config.recipe.quotas(config.n)
    plan = plan_scenes(config, totals)
    name = shard_name(config.shard_index, config.num_shards)
    store = Store(config.out)
    parts = (PARTS_DIR, name)
    shard_file, manifest_file = f"{name}.parquet", f"{name}.manifest.json"
    fingerprint = config.fingerprint()
    start_parts(store, parts, manifest_file, fingerprint, config.resume, "shard", "recipe, n, seed or vst version")

    mine = [planned for planned in plan if planned.index % config.num_shards == config.shard_index]
    records, todo = {}, []
    for planned in mine:
        if store.exists(*parts, f"{planned.name}.json"):  # finished before an interruption: keep it
            records[planned.name] = json.loads(store.read_text(*parts, f"{planned.name}.json"))
            if on_scene:
                on_scene(planned.name, records[planned.name].get("rows", 0), records[planned.name].get("skipped"))
        else:
            todo.append((config, planned, store, (*parts, f"{planned.name}.parquet")))
    for folder_name, record in map_jobs(_part_job, todo, workers, ray_address):
        store.write_text(json_text(record), *parts, f"{folder_name}.json")
        records[folder_name] = record
        if on_scene:
            on_scene(folder_name, record.get("rows", 0), record.get("skipped"))

    part_files, kept, skipped, skill_errors = [], [], {}, {}
    for planned in mine:
        record = records[planned.name]
        if record.get("skipped"):
            skipped[planned.name] = record["skipped"]
        else:
            part_files.append((*parts, f"{planned.name}.parquet"))
            kept.append(record)
        skill_errors.update({f"{planned.name}/{k}": v for k, v in record.get("skill_errors", {}).items()})
    with store.fetch(part_files) as local_parts, store.local_file(shard_file) as shard_path:
        rows = concatenate(local_parts, shard_path)
        sha256 = file_sha256(shard_path)
    manifest = _manifest(config, fingerprint, shard_file, sha256, [f[-1] for f in part_files], kept, totals, skipped,
                         skill_errors, rows)
    store.write_text(json_text(manifest), manifest_file)
    return manifest


def _part_job(job: tuple) -> tuple[str, dict]:
    config, planned, store, part = job
    return planned.name, _generate_part(config, planned.folder, planned.index, planned.quotas, store, part)


def _generate_part(config: EngineConfig, folder: Path, scene_index: int, quotas: dict[str, int], store: Store,
                   part: tuple[str, ...]) -> dict:
    """One scene's part file and record. Everything done with the scene's files is inside one error boundary: a bad
    scene (invalid scene.json, a frame that is not an image, ...) is recorded as skipped with the reason, and the run
    goes on with the other scenes."""
    try:
        scene = Scene.load(folder)
        ctx = SceneContext(scene, folder, {**config.recipe.options, **config.options})
        errors: dict[str, str] = {}
        samples = generate_scene_samples(ctx, quotas, config.seed, scene_index, errors)
        stats = {"skills": dict(Counter(s.skill for s in samples)), "answer_types": dict(Counter(s.answer.get("type", "") for s in samples)),
                 "tokens": sum(estimate_tokens(s) for s in samples), "letters": _letters(samples)}
    except SceneError as error:
        return {"skipped": str(error), "rows": 0}
    except Exception as error:  # noqa: BLE001 - any other failure on this scene's files skips the scene, reported
        return {"skipped": f"{folder}: {type(error).__name__}: {error}", "rows": 0}
    with store.local_file(*part) as path:
        rows = write_samples(path, samples)
    return {"rows": rows, "skill_errors": errors, **stats}


def _letters(samples: list[Sample]) -> dict[str, dict[str, int]]:
    letters: dict[str, Counter] = {}
    for sample in samples:
        if sample.answer.get("type") == "mc":
            letters.setdefault(sample.skill, Counter())[sample.answer["value"]] += 1
    return {skill: dict(sorted(counter.items())) for skill, counter in letters.items()}


def _manifest(config, fingerprint, shard_file, sha256, part_files, part_records, totals, skipped, skill_errors,
              rows) -> dict:
    skills, answer_types, letters, tokens = Counter(), Counter(), {}, 0
    for record in part_records:
        skills.update(record["skills"])
        answer_types.update(record["answer_types"])
        tokens += record["tokens"]
        for skill, counts in record["letters"].items():
            letters.setdefault(skill, Counter()).update(counts)
    return {
        "shard": shard_file, "rows": rows, "sha256": sha256, "fingerprint": fingerprint, "vst_version": __version__, "seed": config.seed,
        "n_requested": config.n, "recipe": {"name": config.recipe.name, "weights": config.recipe.weights, "min_fraction": config.recipe.min_fraction},
        "options": {**config.recipe.options, **config.options}, "shard_index": config.shard_index, "num_shards": config.num_shards,
        "scenes": sorted(Path(p).stem for p in part_files), "skipped_scenes": skipped, "skill_errors": skill_errors,
        "requested_per_skill": {k: v for k, v in totals.items()}, "counts_per_skill": dict(sorted(skills.items())),
        "counts_per_answer_type": dict(sorted(answer_types.items())), "letters_per_skill": {k: dict(sorted(v.items())) for k, v in sorted(letters.items())},
        "token_estimate": tokens,
    }
