"""Benchmark registry. A benchmark is one module exposing the four functions below plus constants:

    NAME: str                       registry name, e.g. "vsibench"
    PROTOCOLS: tuple[str, ...]       "official" first (the default), then e.g. "vst"
    ROW_FIELDS: tuple[str, ...]      native row fields every row (and predictions line) carries
    CATEGORIES: tuple[str, ...]      official category names, in report order
    load_rows(source, revision=None, limit=None) -> list[dict]     HF dataset id or local folder
    build_prompt(row, protocol) -> Prompt                           text + media the model sees
    score_item(row, response, protocol) -> ItemScore                parse and score one response
    aggregate(items: list[ItemScore], protocol) -> Aggregate        official aggregation (percent)
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from vst.common.clients import Prompt  # noqa: F401  (benchmarks build prompts: the client type, re-exported here)

BENCHMARKS: dict[str, ModuleType] = {}

# Generation settings a benchmark x protocol is run with (`GENERATION[protocol]` in each module; keys are the
# backends' `generate` arguments). `vst eval run --max-new-tokens/--temperature` override them; `scores.json` records
# what was used.
GENERATION_KEYS = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")
GREEDY = {"max_new_tokens": 64, "temperature": 0.0}  # a letter or a short phrase, no sampling
# VLMEvalKit's Qwen2VLChat defaults, with which VST scored CV-Bench, BLINK, 3DSRBench and MMSI (spec benchmarks.md §10).
VLMEVALKIT_QWEN = {"max_new_tokens": 2048, "temperature": 0.01, "top_p": 0.001, "top_k": 1, "repetition_penalty": 1.0}


def generation(module: ModuleType, protocol: str) -> dict[str, Any]:
    """The benchmark's generation settings for `protocol` (greedy, 64 tokens where it declares none)."""
    settings = dict(getattr(module, "GENERATION", {}).get(protocol, GREEDY))
    unknown = set(settings) - set(GENERATION_KEYS)
    if unknown:
        raise ValueError(f"benchmark {module.NAME}: GENERATION[{protocol!r}]: unknown keys {sorted(unknown)}")
    return settings


@dataclass
class ItemScore:
    category: str  # official category of the item
    score: float  # in [0, 1]
    parsed: Any  # what was extracted from the response (None when unparsed)
    unparsed: bool  # the response could not be parsed (scores 0, counted in n_unparsed)
    group: str | None = None  # for circular evaluation: items sharing a group must all be right


@dataclass
class Aggregate:
    overall: float  # percent
    categories: dict[str, float]  # percent per official category


def register_benchmark(module: ModuleType) -> ModuleType:
    name = module.NAME
    if name in BENCHMARKS:
        raise ValueError(f"benchmark {name!r} is registered twice")
    for attribute in ("PROTOCOLS", "ROW_FIELDS", "CATEGORIES", "load_rows", "build_prompt", "score_item", "aggregate"):
        if not hasattr(module, attribute):
            raise TypeError(f"benchmark module {module.__name__} lacks {attribute}")
    BENCHMARKS[name] = module
    return module


def get_benchmark(name: str) -> ModuleType:
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known benchmarks: {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[name]


def check_protocol(module: ModuleType, protocol: str) -> str:
    if protocol not in module.PROTOCOLS:
        raise ValueError(f"benchmark {module.NAME}: unknown protocol {protocol!r}; choose from {', '.join(module.PROTOCOLS)}")
    return protocol
