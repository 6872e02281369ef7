"""OCRBench (1,000 items: text recognition, scene-text and document VQA, key information extraction, handwritten
mathematical expressions), VST's general-ability column "OCRB" (paper.md §5.2), scored as VLMEvalKit scores it
(open-compass/VLMEvalKit @e8e78f0 vlmeval/dataset/image_vqa.py `OCRBench.evaluate`).

Rows: VLMEvalKit's `OCRBench.tsv` (`index, image (base64), question, answer (a Python list literal of accepted
answers), category`), from `--source vlmevalkit` (download, md5-checked) or a local file / folder.
Protocols: "official" = the question alone, image first (VLMEvalKit's default VQA prompt); "vst" = Qwen2VLChat's
custom VQA prompt, the question + "\\nPlease try to answer the question with short words or phrases if possible.".
Scoring (both): an item is right when any accepted answer, lower-cased and stripped (for handwritten math: with
spaces and newlines removed, case kept), is a substring of the response treated the same way. The official "Final
Score" counts right items out of 1,000 in five groups; here each group and the overall are percent of their items
(overall = Final Score / 10 on the full set).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict

from vst.common.parsing import percent
from vst.eval.benchmarks import image_mcq
from vst.eval.benchmarks.registry import VLMEVALKIT_QWEN, Aggregate, ItemScore, Prompt, check_protocol

NAME = "ocrbench"
DEFAULT_SOURCE = "vlmevalkit"
FILE = "OCRBench.tsv"
URL = "https://opencompass.openxlab.space/utils/VLMEval/OCRBench.tsv"
MD5 = "e953d98a987cc6e26ef717b61260b778"
PROTOCOLS = ("official", "vst")
GENERATION = {"official": VLMEVALKIT_QWEN, "vst": VLMEVALKIT_QWEN}
ROW_FIELDS = ("index", "question", "answer", "category")
MEDIA_FIELDS = ("image",)
VQA_PROMPT = "\nPlease try to answer the question with short words or phrases if possible."
HME = "Handwritten Mathematical Expression Recognition"
GROUPS = {  # the official report's five groups and the categories they sum
    "Text Recognition": ("Regular Text Recognition", "Irregular Text Recognition", "Artistic Text Recognition",
                         "Handwriting Recognition", "Digit String Recognition", "Non-Semantic Text Recognition"),
    "Scene Text-centric VQA": ("Scene Text-centric VQA",),
    "Doc-oriented VQA": ("Doc-oriented VQA",),
    "Key Information Extraction": ("Key Information Extraction",),
    HME: (HME,),
}
CATEGORIES = tuple(GROUPS)


def load_rows(source: str = DEFAULT_SOURCE, revision: str | None = None, limit: int | None = None) -> list[dict]:
    return image_mcq.load_rows(source, FILE, URL, MD5, limit, required=ROW_FIELDS)


def answers(row: dict) -> list[str]:
    """The accepted answers: VLMEvalKit `eval`s the cell; a plain string is one answer."""
    value = row["answer"]
    if isinstance(value, str) and value.startswith("["):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"{NAME} item {row.get('index')}: answer: not a list literal: {value[:60]!r}") from None
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    check_protocol(sys.modules[__name__], protocol)
    text = str(row["question"]) + (VQA_PROMPT if protocol == "vst" else "")
    return Prompt(text=text, images=[row["image"]])


def _normalise(text: str, category: str) -> str:
    if category == HME:
        return text.strip().replace("\n", " ").replace(" ", "")
    return text.lower().strip().replace("\n", " ")


def score_item(row: dict, response: str, protocol: str = "official") -> ItemScore:
    category = str(row["category"])
    said = _normalise(str(response), category)
    hit = any(_normalise(answer, category) in said for answer in answers(row))
    return ItemScore(category=category, score=float(hit), parsed=hit, unparsed=not str(response).strip())


def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    by_category = defaultdict(list)
    for item in items:
        by_category[item.category].append(item.score)
    categories = {group: percent([s for name in members for s in by_category[name]])
                  for group, members in GROUPS.items() if any(by_category[name] for name in members)}
    return Aggregate(overall=percent([item.score for item in items]) if items else 0.0, categories=categories)
