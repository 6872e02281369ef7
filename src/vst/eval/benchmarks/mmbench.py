"""MMBench dev (English), CircularEval: every rotation of a question's options must be answered right.

VST's general-ability column "MMBench" (paper.md §5.2), scored as VLMEvalKit scores it: see `image_mcq` for the
layout, prompts, matcher and report. `--source vlmevalkit` downloads VLMEvalKit's `MMBench_DEV_EN.tsv` (md5-checked); a
local file or a folder holding it is read as is.
"""

from __future__ import annotations

from vst.eval.benchmarks import image_mcq
from vst.eval.benchmarks.image_mcq import GENERATION, PROTOCOLS, ROW_FIELDS

NAME = "mmbench"
DEFAULT_SOURCE = "vlmevalkit"
FILE = "MMBench_DEV_EN.tsv"
URL = "https://opencompass.openxlab.space/utils/benchmarks/MMBench/MMBench_DEV_EN.tsv"
MD5 = "b6caf1133a01c6bb705cf753bb527ed8"
CIRCULAR = True
CATEGORIES = ()  # from the data: l2-category, then category (VLMEvalKit's report_acc)
MEDIA_FIELDS = ("image",)

__all__ = ["NAME", "DEFAULT_SOURCE", "GENERATION", "PROTOCOLS", "ROW_FIELDS", "CATEGORIES", "load_rows",
           "build_prompt", "score_item", "aggregate"]


load_rows, build_prompt, score_item, aggregate = image_mcq.functions(__name__)
