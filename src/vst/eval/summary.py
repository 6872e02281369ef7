"""Scores with their uncertainty: per skill, per modality and overall, each with n and a bootstrap 95 % interval.

A vst-synth predictions file is re-scored item by item (`vst_synth.score_item`); a group's score is the mean over its
skills of each skill's mean item score (vst-synth's own aggregate: skills weigh equally), and its interval is the
2.5 / 97.5 percentiles of that statistic over `resamples` bootstrap draws of the items (with replacement, within
each skill, so every skill keeps its n). Items the benchmark leaves out (unscored types) are left out here too.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

MODALITIES = {"single": "single_image", "multi": "multi_image", "video": "video", "text": "text"}
RESAMPLES = 1000


def item_scores(predictions: str | Path) -> list[dict]:
    """[{skill, modality, score, unparsed}] for every scored item of a vst-synth predictions file."""
    from vst.eval.benchmarks import vst_synth
    from vst.eval.predictions import read_predictions

    items = []
    for _, row in read_predictions(predictions):
        scored = vst_synth.score_item(row, row.get("response") or "")
        if scored.parsed.get("excluded") or "record" in scored.parsed:  # unscored, or box AP (dataset-level)
            continue
        answer = row["answer"] if isinstance(row["answer"], dict) else {}
        items.append({"skill": row["skill"], "modality": MODALITIES.get(row.get("modality", ""), "other"),
                      "kind": answer.get("type"), "score": float(scored.score), "unparsed": bool(scored.unparsed)})
    return items


def skill_mean(scores_by_skill: dict[str, np.ndarray]) -> float:
    return float(np.mean([values.mean() for values in scores_by_skill.values()])) if scores_by_skill else float("nan")


def bootstrap(scores_by_skill: dict[str, np.ndarray], resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval (percent) of the skill-mean score, resampling items within each skill."""
    if not scores_by_skill:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = np.zeros(resamples)
    for values in scores_by_skill.values():
        picks = rng.integers(0, len(values), size=(resamples, len(values)))
        draws += values[picks].mean(axis=1)
    draws /= len(scores_by_skill)
    low, high = np.percentile(draws, [2.5, 97.5])
    return 100.0 * float(low), 100.0 * float(high)


def _group(items: list[dict]) -> dict[str, np.ndarray]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for item in items:
        grouped[item["skill"]].append(item["score"])
    return {skill: np.asarray(values) for skill, values in sorted(grouped.items())}


def summarise(items: list[dict], resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """`{overall, ci95, n, n_unparsed, modalities: {m: {score, ci95, n}}, skills: {s: {score, ci95, n}}}` (percent)."""
    def block(subset: list[dict]) -> dict:
        grouped = _group(subset)
        low, high = bootstrap(grouped, resamples, seed)
        return {"score": round(100.0 * skill_mean(grouped), 2), "ci95": [round(low, 2), round(high, 2)],
                "n": len(subset)}

    overall = block(items)
    modalities = {m: block([i for i in items if i["modality"] == m]) for m in sorted({i["modality"] for i in items})}
    skills = {s: block([i for i in items if i["skill"] == s]) for s in sorted({i["skill"] for i in items})}
    return {"overall": overall["score"], "ci95": overall["ci95"], "n": overall["n"],
            "n_unparsed": sum(i["unparsed"] for i in items), "modalities": modalities, "skills": skills}


def chance_summary(chance_by_item: list[dict]) -> dict:
    """Chance in the same shape (no interval): items carry the expected score of a guess as `score`."""
    summary = summarise(chance_by_item, resamples=1)
    return {"overall": summary["overall"], "modalities": {m: v["score"] for m, v in summary["modalities"].items()},
            "skills": {s: v["score"] for s, v in summary["skills"].items()}}
