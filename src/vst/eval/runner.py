"""`vst eval run`: benchmark rows -> prompts -> backend responses -> predictions.jsonl (resumable) -> scores.

Each predictions line is the item's native row (media fields dropped) plus `vst_index` (position in the loaded rows),
`benchmark`, `protocol` and `response`. Lines already in the file are kept and their items skipped, so a killed run
continues where it stopped. Scores are written to `scores.json` beside it and returned.

What made the predictions (model, benchmark, protocol, source, revision, generation settings) is kept in `run.json`
beside them and copied into `scores.json` under "run". A re-run into the same folder with anything else refuses to mix
answers (`overwrite=True` / `--overwrite` starts the folder afresh), so one model's answers are never reported as
another's.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vst.eval.benchmarks.registry import check_protocol, generation, get_benchmark
from vst.eval.predictions import read_predictions, score_file
from vst.scene.types import atomic_write_text

PREDICTIONS_FILE = "predictions.jsonl"
SCORES_FILE = "scores.json"
RUN_FILE = "run.json"
MEDIA_FIELDS = ("image", "images", "video", "image_1", "image_2", "image_3", "image_4")


@dataclass
class RunConfig:
    benchmark: str
    out: Path
    source: str | None = None  # HF dataset id or local folder; None = the benchmark's default
    revision: str | None = None
    limit: int | None = None
    protocol: str = "official"
    batch_size: int = 8
    max_new_tokens: int | None = None  # None: the benchmark x protocol's GENERATION setting
    temperature: float | None = None
    model: str | None = None  # what answered (a backend spec): recorded, and checked against earlier predictions
    overwrite: bool = False  # discard predictions of another run in `out` instead of refusing

    def generation(self, module) -> dict:
        """The benchmark x protocol's generation settings, with this run's explicit overrides."""
        overrides = {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature}
        return {**generation(module, self.protocol), **{k: v for k, v in overrides.items() if v is not None}}

    def identity(self, source: str, generation: dict) -> dict:
        """What the predictions depend on (`limit` is not: a larger limit extends a run)."""
        return {"model": self.model, "benchmark": self.benchmark, "protocol": self.protocol, "source": source,
                "revision": self.revision, "generation": generation}


def read_run(folder: Path) -> dict | None:
    """What made the predictions in `folder` (its run.json), or None when it has none."""
    manifest = folder / RUN_FILE
    if not manifest.is_file():
        return None
    try:
        return json.loads(manifest.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{manifest}: not valid JSON; remove it or run with --overwrite") from None


def check_run(out: Path, identity: dict, overwrite: bool) -> None:
    """Refuse to add to predictions another run made (other model, source, settings); with `overwrite`, remove them.
    Predictions without a `run.json` (from before it existed) are taken as this run's."""
    predictions = out / PREDICTIONS_FILE
    if not predictions.is_file():
        return
    earlier = read_run(out)
    changed = [key for key in identity if earlier is not None and earlier.get(key) != identity[key]]
    if not changed:
        return
    if overwrite:
        predictions.unlink()
        (out / SCORES_FILE).unlink(missing_ok=True)
        return
    what = ", ".join(f"{key} {earlier.get(key)!r} -> {identity[key]!r}" for key in changed)
    raise ValueError(f"{predictions}: made by another run ({what}); use another --out, or --overwrite to discard them")


def _jsonable(row: dict) -> dict:
    kept = {}
    for key, value in row.items():
        if key in MEDIA_FIELDS or key.startswith("_"):  # media and loader bookkeeping (e.g. _media_root)
            continue
        try:
            json.dumps(value)
        except TypeError:
            continue  # decoded media objects and other binary payloads are not predictions fields
        kept[key] = value
    return kept


def run(config: RunConfig, backend, on_batch: Callable[[int, int], None] | None = None) -> dict:
    """Generate missing predictions with `backend`, then score the whole file."""
    module = get_benchmark(config.benchmark)
    check_protocol(module, config.protocol)
    source = config.source or getattr(module, "DEFAULT_SOURCE", None)
    if source is None:
        raise ValueError(f"benchmark {config.benchmark}: --source is required (no default dataset)")
    rows = module.load_rows(source, revision=config.revision, limit=config.limit)
    if hasattr(module, "expand_rows"):  # e.g. MMSI's circular protocol asks every rotation of the options
        rows = module.expand_rows(rows, config.protocol)
    if not rows:
        raise ValueError(f"{source}: no {config.benchmark} items to evaluate")
    config.out.mkdir(parents=True, exist_ok=True)
    settings = config.generation(module)
    media = getattr(module, "MEDIA_BUDGET", {}).get(config.protocol)  # e.g. VSI-Bench's fps / pixel budget per protocol
    identity = {**config.identity(str(source), settings), "media": dataclasses.asdict(media) if media else None}
    check_run(config.out, identity, config.overwrite)
    atomic_write_text(config.out / RUN_FILE, json.dumps(identity, indent=1) + "\n")
    path = config.out / PREDICTIONS_FILE
    done = {row["vst_index"]: row for _, row in read_predictions(path)} if path.is_file() else {}
    todo = [i for i in range(len(rows)) if i not in done]
    for start in range(0, len(todo), config.batch_size):
        batch = todo[start : start + config.batch_size]
        prompts = [module.build_prompt(rows[i], config.protocol) for i in batch]
        responses = backend.generate(prompts, media=media, **settings)
        for i, response in zip(batch, responses):
            done[i] = {**_jsonable(rows[i]), "vst_index": i, "benchmark": config.benchmark, "protocol": config.protocol, "response": response}
        lines = "".join(json.dumps(done[i], ensure_ascii=False) + "\n" for i in sorted(done))
        atomic_write_text(path, lines)  # after every batch: an interruption loses at most one batch
        if on_batch:
            on_batch(len(done), len(rows))
    scores = {**score_file(config.benchmark, path, config.protocol), "run": identity}
    atomic_write_text(config.out / SCORES_FILE, json.dumps(scores, indent=1) + "\n")
    return scores
