"""`vst data stats` and `vst data preview`: what is in a set of shards, and a page a person can eyeball."""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np

from vst.data.engine import estimate_tokens
from vst.data.sample import Sample
from vst.data.shards import read_samples, verify_shard


def shard_stats(paths: Iterable[str | Path]) -> dict:
    """Counts per skill, modality and answer type, letter balance per skill, token estimates."""
    skills, modalities, answer_types, tokens = Counter(), Counter(), Counter(), Counter()
    letters: dict[str, Counter] = {}
    rows = 0
    paths = list(paths)
    for path in paths:
        verify_shard(path)
    for sample in read_samples(paths):
        rows += 1
        skills[sample.skill] += 1
        modalities[sample.modality] += 1
        answer_types[sample.answer.get("type", "?")] += 1
        tokens[sample.skill] += estimate_tokens(sample)
        if sample.answer.get("type") == "mc":
            letters.setdefault(sample.skill, Counter())[sample.answer["value"]] += 1
    return {
        "rows": rows,
        "skills": dict(sorted(skills.items())),
        "modalities": dict(sorted(modalities.items())),
        "answer_types": dict(sorted(answer_types.items())),
        "letters": {skill: dict(sorted(c.items())) for skill, c in sorted(letters.items())},
        "tokens": {"total": sum(tokens.values()), "per_skill_mean": {s: round(tokens[s] / skills[s]) for s in sorted(skills)}},
    }


def _media_html(sample: Sample) -> str:
    if sample.modality == "video":
        data = base64.b64encode(sample.images[0].bytes).decode()
        return f'<video controls muted width="320" src="data:video/mp4;base64,{data}"></video>'
    return "".join(f'<img src="data:image/jpeg;base64,{base64.b64encode(m.bytes).decode()}" width="320">' for m in sample.images)


def preview_html(paths: Iterable[str | Path], out: str | Path, n: int = 24, seed: int = 0) -> Path:
    """An HTML page with `n` samples spread over the skills: media (markers drawn), question, answer, provenance."""
    samples = list(read_samples(list(paths)))
    if not samples:
        raise ValueError("no samples in the given shards")
    rng = np.random.default_rng(seed)
    by_skill: dict[str, list[Sample]] = {}
    for sample in samples:
        by_skill.setdefault(sample.skill, []).append(sample)
    chosen: list[Sample] = []
    while len(chosen) < min(n, len(samples)):  # round-robin over skills so every skill shows up
        for skill in sorted(by_skill):
            pool = [s for s in by_skill[skill] if s not in chosen]
            if pool and len(chosen) < n:
                chosen.append(pool[int(rng.integers(len(pool)))])
    cards = []
    for sample in chosen:
        meta = {k: v for k, v in sample.meta_info.items() if k not in ("license",)}
        cards.append(
            f'<div class="card"><h3>{html.escape(sample.skill)} <small>{html.escape(sample.id)}</small></h3>{_media_html(sample)}'
            f"<p class=q>{html.escape(sample.question).replace(chr(10), '<br>')}</p>"
            f"<p class=a><b>Answer:</b> {html.escape(sample.response)}</p>"
            f"<details><summary>provenance</summary><pre>{html.escape(json.dumps(meta, indent=1)[:3000])}</pre></details></div>"
        )
    page = (
        "<!doctype html><meta charset=utf-8><title>vst data preview</title><style>"
        "body{font-family:sans-serif;background:#f4f4f4} .card{background:#fff;margin:10px;padding:10px;display:inline-block;"
        "vertical-align:top;width:640px;border-radius:6px} img,video{margin:2px} .q{white-space:normal} pre{font-size:11px}"
        f"</style><h1>vst data preview: {len(chosen)} of {len(samples)} samples</h1>" + "".join(cards)
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out
