"""CircularEval (MMBench, VLMEvalKit; 3DSRBench's official metric): the variants of one question (its options rotated,
or otherwise re-asked) share `ItemScore.group`, and the question counts as right only if every variant is right.

Shared by every benchmark with a circular protocol (3DSRBench, MMSI-Bench "circular", BLINK_circular).
"""

from __future__ import annotations

from vst.eval.benchmarks.registry import ItemScore


def merge_groups(items: list[ItemScore]) -> list[ItemScore]:
    """One ItemScore per group, in order of first appearance: score = product of the variants' scores (1 only if all
    are right), category = the first variant's (as the official 3DSRBench script does), unparsed = any variant's.
    Items without a group stay on their own."""
    merged: dict[object, ItemScore] = {}
    for position, item in enumerate(items):
        key = ("group", item.group) if item.group is not None else ("item", position)
        first = merged.get(key)
        if first is None:
            merged[key] = ItemScore(item.category, item.score, [item.parsed], item.unparsed, item.group)
        else:
            first.score *= item.score
            first.parsed.append(item.parsed)
            first.unparsed = first.unparsed or item.unparsed
    return list(merged.values())
