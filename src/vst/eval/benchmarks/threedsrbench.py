"""3DSRBench: single-image 3D spatial reasoning on MS-COCO images, 2- and 4-option MCQ (spec/benchmarks.md §6).

Official scoring: `compute_3dsrbench_results_circular.py` in the HF dataset ccvl/3DSRBench, run on VLMEvalKit's
`hit` column; public copy johnson111788/SpatialReasoner:src/eval/compute_3dsrbench_results.py. Prompt and `hit`:
open-compass/VLMEvalKit:vlmeval/dataset/image_mcq.py (`ImageMCQDataset.build_prompt`) and
vlmeval/utils/matching_util.py (`can_infer`). The rows to score are those of `3dsrbench_v1_vlmevalkit_circular.tsv`:
each base question `qid` with its option rotations `qid-1`, `qid-2`, … and its flipped question `qid-flip`,
`qid-flip-1`, … (2-option questions have C/D null).

Protocols:
- "official": VLMEvalKit's default MCQ prompt ("Question: …\\nOptions:\\nA. …\\nPlease select the correct answer from
  the options above. \\n"), the image first; the answer letter by VLMEvalKit's rule matching (`vlmevalkit_choice`:
  the `exact_matching` judge; the authors' files used a GPT judge where the rules fail, which cannot be reproduced
  offline). CircularEval: group rows by `qid` with a trailing "-N" removed (so "-flip" rows stay their own group), a
  group is right only if all its rows are; overall and categories are means over groups, a group's category being
  its first row's.
- "vst": what VST ran (§9: VLMEvalKit `3DSRBench` as a plain ImageMCQDataset, Qwen2VLChat `use_custom_prompt`): the
  Qwen MCQ prompt (instruction without " \\n", right-stripped), the same rule matching, and VLMEvalKit's vanilla
  report: the item mean over all rows, rotations and flips included (§6.2: probably how VST's 60.1 was computed).
- "flip" / "flip_circular": VLMEvalKit `_3DSRBench`'s other settings with the default prompt: a question and its
  flip must both be right (group = qid without "-flip"), or every rotation of both (group = the base qid).

Categories: the 4 official types (height, location, orientation, multi_object), then the 12 subtypes (the row's
`category`), in the official script's column order; only those with items are reported.

Rows: from the hub, `3dsrbench_v1_vlmevalkit_circular.tsv` of the dataset repo (downloaded with huggingface_hub;
columns index, qid, question, A-D, answer, category, image (base64), image_source, image_url), since the repo's
parquet has base questions only, with no qid and no image. From a local folder: that TSV, or *.parquet / *.jsonl in
its schema with `image` a path relative to the folder, or encoded bytes.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from vst.eval.benchmarks.registry import VLMEVALKIT_QWEN, Aggregate, ItemScore, Prompt, check_protocol
from vst.eval.circular import merge_groups
from vst.common.parsing import percent, vlmevalkit_choice
from vst.eval.prompts import qwen_mcq_prompt, row_options, vlmevalkit_mcq_prompt
from vst.eval.rows import image_input, is_local, load_local_rows, read_vlmevalkit_tsv

NAME = "3dsrbench"
DEFAULT_SOURCE = "ccvl/3DSRBench"  # its default parquet holds base questions only; circular rows come from the TSV
PROTOCOLS = ("official", "vst", "flip", "flip_circular")
# Every protocol is VLMEvalKit's (the official circular script consumes its matcher): Qwen2VLChat defaults.
GENERATION = {protocol: VLMEVALKIT_QWEN for protocol in PROTOCOLS}
ROW_FIELDS = ("qid", "question", "A", "B", "answer", "category")  # C and D are null or absent on 2-option questions
MEDIA_FIELDS = ("image",)
# The VLMEvalKit matcher the official circular script consumed: the version current when 3DSRBench v1 and its
# VLMEvalKit TSVs were released (2025-01), before PR #1175 (2025-08) changed `can_infer` (vst.common.parsing).
MATCHER = "2024"
CIRCULAR_TSV = "3dsrbench_v1_vlmevalkit_circular.tsv"  # in the HF dataset repo: every rotation and flip, base64 images
LOCAL_PATTERNS = (CIRCULAR_TSV, "*.tsv", "*.parquet", "*.jsonl")
FLIP = "-flip"

TYPES = {
    "height": ("height_higher",),
    "location": ("location_above", "location_closer_to_camera", "location_next_to"),
    "orientation": ("orientation_in_front_of", "orientation_on_the_left", "orientation_viewpoint"),
    "multi_object": (
        "multi_object_closer_to",
        "multi_object_facing",
        "multi_object_viewpoint_towards_object",
        "multi_object_parallel",
        "multi_object_same_direction",
    ),
}
SUBTYPES = tuple(subtype for subtypes in TYPES.values() for subtype in subtypes)
CATEGORIES = (*TYPES, *SUBTYPES)


def _check(protocol: str) -> None:
    check_protocol(sys.modules[__name__], protocol)


def load_rows(source: str, revision: str | None = None, limit: int | None = None) -> list[dict]:
    """Rows with qid, options and image. From the hub: the dataset repo's circular TSV (its parquet has base
    questions only, no `qid` and no image); from a local folder: that TSV, or *.parquet / *.jsonl in its schema."""
    if is_local(source):
        folder = Path(source)
        rows = load_local_rows(folder, patterns=LOCAL_PATTERNS, media_fields=MEDIA_FIELDS, id_field="qid", limit=limit)
        where = folder
    else:
        from huggingface_hub import hf_hub_download

        where = Path(hf_hub_download(source, CIRCULAR_TSV, repo_type="dataset", revision=revision))
        rows = read_vlmevalkit_tsv(where)[:limit]
    missing = [name for name in (*ROW_FIELDS, "image") if rows and name not in rows[0]]
    if missing:
        raise ValueError(f"{where}: column(s) {', '.join(missing)} missing: not 3DSRBench's circular layout "
                         f"({CIRCULAR_TSV}: index, qid, question, A-D, answer, category, image, ...)")
    return rows


def build_prompt(row: dict, protocol: str = "official") -> Prompt:
    _check(protocol)
    image = image_input(row.get("image"))
    if image is None:
        raise ValueError(f"3dsrbench: item {row.get('qid')}: the row has no image (`image`: a path or bytes)")
    template = qwen_mcq_prompt if protocol == "vst" else vlmevalkit_mcq_prompt
    return Prompt(text=template(row["question"], row_options(row)), images=[image])


def circular_key(qid: str) -> str:
    """The official group: `qid` without a trailing "-N" ("X-2" -> "X", "X-flip-1" and "X-flip" -> "X-flip")."""
    return qid[:-2] if len(qid) > 2 and qid[-2] == "-" else qid


def group_key(qid: str, protocol: str) -> str | None:
    qid = str(qid)
    if protocol == "official":
        return circular_key(qid)
    if protocol == "flip":
        return qid.replace(FLIP, "")
    if protocol == "flip_circular":
        return circular_key(qid).replace(FLIP, "")
    return None  # "vst": every row on its own


def score_item(row: dict, response: str, protocol: str = "official") -> ItemScore:
    _check(protocol)
    parsed = vlmevalkit_choice(response, row_options(row), version=MATCHER)
    return ItemScore(
        category=row["category"],
        score=float(parsed == str(row["answer"]).strip()),
        parsed=parsed,
        unparsed=parsed is None,
        group=group_key(row["qid"], protocol),
    )



def aggregate(items: list[ItemScore], protocol: str = "official") -> Aggregate:
    """Means over groups (over rows for "vst"): overall, each type (groups whose subtype it holds), each subtype."""
    _check(protocol)
    questions = merge_groups(items)
    by_subtype = defaultdict(list)
    for question in questions:
        by_subtype[question.category].append(question.score)
    categories = {}
    for type_name, subtypes in TYPES.items():
        scores = [score for subtype in subtypes for score in by_subtype[subtype]]
        if scores:
            categories[type_name] = percent(scores)
    for subtype in [*SUBTYPES, *sorted(set(by_subtype) - set(SUBTYPES))]:
        if by_subtype[subtype]:
            categories[subtype] = percent(by_subtype[subtype])
    overall = percent([question.score for question in questions]) if questions else 0.0
    return Aggregate(overall=overall, categories=categories)
