"""MMMU (validation), VST's general-ability column "MMMU" (paper.md §5.2), as VLMEvalKit runs it: `MMMU_DEV_VAL.tsv`
(open-compass/VLMEvalKit @e8e78f0 vlmeval/dataset/image_mcq.py `MMMUDataset`; Qwen2VLChat `_build_mmmu_prompt`).

Rows: `index, question (with "<image k>" marks), A, B, …, answer, category (subject), split (dev / validation),
image` (one base64 picture, or a list literal of them), from `--source vlmevalkit` or a local file / folder. The
reported overall and per-subject scores use the validation split only (VLMEvalKit's primary metric
"split=validation|Overall"); dev rows are scored but left out of the means.
Prompts: both protocols show every image first, then the ImageMCQ text ("vst": Qwen2VLChat's MMMU prompt, which
does exactly that; "official": VLMEvalKit's default places each picture at its "<image k>" mark, which vst's
prompts, media before text, cannot express: the marks stay in the text).
Scoring: multiple choice by VLMEvalKit's rule matcher, as `image_mcq`; a question without options (MMMU's open
questions) is right when its answer, lower-cased, appears in the lower-cased response, since VLMEvalKit leaves
those to its LLM judge, which is not reproduced here.
"""

from __future__ import annotations

import sys
from collections import defaultdict

from vst.common.parsing import percent
from vst.eval.benchmarks import image_mcq
from vst.eval.benchmarks.image_mcq import GENERATION, PROTOCOLS
from vst.eval.benchmarks.registry import Aggregate, ItemScore, Prompt, check_protocol
from vst.eval.prompts import row_options

NAME = "mmmu"
DEFAULT_SOURCE = "vlmevalkit"
FILE = "MMMU_DEV_VAL.tsv"
URL = "https://opencompass.openxlab.space/utils/VLMEval/MMMU_DEV_VAL.tsv"
MD5 = "585e8ad75e73f75dcad265dfd0417d64"
ROW_FIELDS = ("index", "question", "answer", "category")  # and `split` where the TSV has it (DEV_VAL does)
CATEGORIES = ()  # the subjects, from the data
MEDIA_FIELDS = ("image",)

__all__ = ["NAME", "DEFAULT_SOURCE", "GENERATION", "PROTOCOLS", "ROW_FIELDS", "CATEGORIES", "load_rows",
           "build_prompt", "score_item", "aggregate"]


def load_rows(source: str = DEFAULT_SOURCE, revision: str | None = None, limit: int | None = None) -> list[dict]:
    return image_mcq.load_rows(source, FILE, URL, MD5, limit, required=ROW_FIELDS)


def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    check_protocol(sys.modules[__name__], protocol)
    return image_mcq.build_prompt(row, "vst")  # images first, the text right-stripped (see the module docstring)


def score_item(row: dict, response: str, protocol: str = "official") -> ItemScore:
    split = str(row.get("split") or "validation")
    if row_options(row):
        item = image_mcq.score_item(row, response, protocol, circular=False)
        return ItemScore(category=f"{split}|{row['category']}", score=item.score, parsed=item.parsed,
                         unparsed=item.unparsed)
    answer = str(row["answer"]).strip().lower()
    said = str(response).lower()
    return ItemScore(category=f"{split}|{row['category']}", score=float(bool(answer) and answer in said),
                     parsed=said.strip() or None, unparsed=not said.strip())


def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    by_subject = defaultdict(list)
    scored = []
    for item in items:
        split, subject = item.category.split("|", 1)
        if split == "validation":
            by_subject[subject].append(item.score)
            scored.append(item.score)
    return Aggregate(overall=percent(scored) if scored else 0.0,
                     categories={subject: percent(scores) for subject, scores in sorted(by_subject.items())})
