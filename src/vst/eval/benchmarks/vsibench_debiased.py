"""VSI-Bench-Debiased: the pruned subset of VSI-Bench from "Benchmark Designers Should Train on the Test Set"
(arXiv 2511.04655), HF `nyu-visionx/VSI-Bench` config "debiased" (spec/benchmarks.md §2.1).

Same schema, prompt, protocols and scoring as `vsibench` (official code: vision-x-nyu/thinking-in-space:
lmms_eval/tasks/vsibench/utils.py; lmms-eval task `vsibench_debiased`); only the registry name and the HF config
differ. Pin `revision` when loading: the card warns that numbers may move with data refinements.
"""

from __future__ import annotations

from vst.eval.benchmarks import vsibench
from vst.eval.benchmarks.vsibench import (
    CATEGORIES,
    DEFAULT_SOURCE,
    GENERATION,
    MEDIA_BUDGET,
    PROTOCOLS,
    ROW_FIELDS,
    aggregate,
    build_prompt,
    score_item,
)

__all__ = [
    "CATEGORIES", "DEFAULT_SOURCE", "GENERATION", "MEDIA_BUDGET", "NAME", "PROTOCOLS", "ROW_FIELDS", "aggregate",
    "build_prompt", "load_rows", "score_item",
]  # the shared names are re-exported: the registry reads them from this module

NAME = "vsibench-debiased"
HF_CONFIG = "debiased"


# A local snapshot of the HF repo holds the full set (`test.jsonl`) beside the debiased one: read only the latter.
LOCAL_PATTERNS = ("test_debiased.parquet", "test_debiased.jsonl")


def load_rows(source: str, revision: str | None = None, limit: int | None = None) -> list[dict]:
    """Rows from a local folder (`test_debiased.parquet`, never the full `test.jsonl` beside it) or from the HF
    dataset's "debiased" config (see `vsibench.load_rows`)."""
    return vsibench.load_rows(source, revision=revision, limit=limit, config=HF_CONFIG, patterns=LOCAL_PATTERNS)
