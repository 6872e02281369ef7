"""VLMEvalKit's `ImageMCQDataset`, shared by the general benchmarks VST reports to show that spatial tuning keeps
general ability (paper.md §5.2: MMStar, MMBench, RealWorldQA, AI2D): what VLMEvalKit does, because VLMEvalKit is
how those numbers are made (open-compass/VLMEvalKit vlmeval/dataset/image_mcq.py and
vlmeval/dataset/utils/multiple_choice.py, read at e8e78f0).

Rows: VLMEvalKit's TSV for the benchmark (`index, question, A, B, …, answer, category, [l2-category, hint, split],
image`; `image` base64, or for a repeated picture the index of the row that holds it), read from a local file or
folder, or downloaded from VLMEvalKit's URL and checked against its md5.

Protocols:
- "official": VLMEvalKit's default prompt ("Hint: …\\nQuestion: …\\nOptions:\\nA. …\\nPlease select the correct answer
  from the options above. \\n", images first) and its current rule matcher (`vlmevalkit_choice` version "2026-06").
- "vst": what VST ran (Qwen2VLChat `use_custom_prompt`: the same text right-stripped) with the matcher of the
  VLMEvalKit current when VST was evaluated ("2025-08", from 2025-08-04 until 2026-06-17; VST's own pin is
  [unverified]).
Scoring: `hit` per row; MMBench-style benchmarks (CIRCULAR) group rows by `index % 1e6` and a question is right only
if all its rotations are. Report: overall, then each `l2-category`, then each `category` (sorted, as `report_acc`).
The LLM judge VLMEvalKit may use when the rules fail is not reproduced (offline): such answers count as unparsed.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections import defaultdict
from pathlib import Path

from vst.common.parsing import percent, vlmevalkit_choice
from vst.eval.benchmarks.registry import VLMEVALKIT_QWEN, Aggregate, ItemScore, Prompt, check_protocol
from vst.eval.circular import merge_groups
from vst.eval.prompts import present, qwen_mcq_prompt, row_options, vlmevalkit_mcq_prompt
from vst.eval.rows import read_vlmevalkit_tsv

PROTOCOLS = ("official", "vst")
GENERATION = {"official": VLMEVALKIT_QWEN, "vst": VLMEVALKIT_QWEN}
MATCHERS = {"official": "2026-06", "vst": "2025-08"}
ROW_FIELDS = ("index", "question", "A", "B", "answer")
CIRCULAR_OFFSET = 1_000_000  # VLMEvalKit: rotations of question i have index i + k * 1e6


def download(url: str, md5: str, file_name: str) -> Path:
    """VLMEvalKit's TSV for a benchmark, cached under $VST_CACHE (default ~/.cache/vst)/vlmevalkit and checked
    against VLMEvalKit's md5; written under a temporary name, then renamed."""
    import urllib.request

    folder = Path(os.environ.get("VST_CACHE", "~/.cache/vst")).expanduser() / "vlmevalkit"
    target = folder / file_name
    if target.is_file() and _md5(target) == md5:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    urllib.request.urlretrieve(url, partial)  # noqa: S310 - VLMEvalKit's published https URL
    if _md5(partial) != md5:
        raise ValueError(f"{url}: md5 {_md5(partial)} differs from VLMEvalKit's {md5}; the file has changed upstream")
    partial.replace(target)
    return target


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - VLMEvalKit publishes md5 checksums
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_rows(source: str, file_name: str, url: str, md5: str, limit: int | None = None,
              required: tuple[str, ...] = ROW_FIELDS) -> list[dict]:
    """Rows of the benchmark's TSV: `source` is the TSV, a folder holding `file_name`, or "vlmevalkit" (download)."""
    path = Path(source)
    if source == "vlmevalkit":
        path = download(url, md5, file_name)
    elif path.is_dir():
        path = path / file_name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (VLMEvalKit's {file_name}; --source vlmevalkit downloads it)")
    rows = read_vlmevalkit_tsv(path)[:limit]
    missing = [name for name in required if rows and name not in rows[0]]
    if missing:
        raise ValueError(f"{path}: column(s) {', '.join(missing)} missing: not VLMEvalKit's {file_name}")
    return rows


def build_prompt(row: dict, protocol: str) -> Prompt:
    hint = row.get("hint") if present(row.get("hint")) else None
    make = vlmevalkit_mcq_prompt if protocol == "official" else qwen_mcq_prompt
    images = row["image"] if isinstance(row.get("image"), list) else [row["image"]]
    return Prompt(text=make(str(row["question"]), row_options(row), hint), images=images)


def score_item(row: dict, response: str, protocol: str, circular: bool) -> ItemScore:
    parsed = vlmevalkit_choice(response, row_options(row), MATCHERS[protocol])
    group = str(int(row["index"]) % CIRCULAR_OFFSET) if circular else None
    category = "|".join(str(row.get(key) or "") for key in ("l2-category", "category"))
    return ItemScore(category=category, score=float(parsed == str(row["answer"]).strip()), parsed=parsed,
                     unparsed=parsed is None, group=group)


def aggregate(items: list[ItemScore]) -> Aggregate:
    """Overall, then each l2-category, then each category (sorted), over questions (circular groups merged)."""
    questions = merge_groups(items)
    by_level: list[dict[str, list[float]]] = [defaultdict(list), defaultdict(list)]
    for question in questions:
        for level, name in enumerate(question.category.split("|")):
            if name:
                by_level[level][name].append(question.score)
    categories = {name: percent(scores) for level in by_level for name, scores in sorted(level.items())}
    return Aggregate(overall=percent([q.score for q in questions]) if questions else 0.0, categories=categories)


def functions(name: str):
    """`load_rows, build_prompt, score_item, aggregate` for the benchmark module `name`, a VLMEvalKit ImageMCQ
    benchmark described by its constants FILE, URL, MD5 and CIRCULAR (read at call time)."""

    def module():
        return sys.modules[name]

    def load(source: str = "vlmevalkit", revision: str | None = None, limit: int | None = None) -> list[dict]:
        return load_rows(source, module().FILE, module().URL, module().MD5, limit)

    def prompt(row: dict, protocol: str = "official") -> Prompt:
        check_protocol(module(), protocol)
        return build_prompt(row, protocol)

    def score(row: dict, response: str, protocol: str = "official") -> ItemScore:
        return score_item(row, response, protocol, module().CIRCULAR)

    def means(items: list[ItemScore], protocol: str = "official") -> Aggregate:
        return aggregate(items)

    return load, prompt, score, means
