"""RealWorldQA (xAI, 765 real-world driving and indoor pictures).

VST's general-ability column "RealWorldQA" (paper.md §5.2), scored as VLMEvalKit scores it: see `image_mcq` for the
layout, prompts, matcher and report. `--source vlmevalkit` downloads VLMEvalKit's `RealWorldQA.tsv` (md5-checked); a
local file or a folder holding it is read as is.
"""

from __future__ import annotations

from vst.eval.benchmarks import image_mcq
from vst.eval.benchmarks.image_mcq import GENERATION, PROTOCOLS, ROW_FIELDS

NAME = "realworldqa"
DEFAULT_SOURCE = "vlmevalkit"
FILE = "RealWorldQA.tsv"
URL = "https://opencompass.openxlab.space/utils/VLMEval/RealWorldQA.tsv"
MD5 = "4de008f55dc4fd008ca9e15321dc44b7"
CIRCULAR = False
CATEGORIES = ()  # from the data: l2-category, then category (VLMEvalKit's report_acc)
MEDIA_FIELDS = ("image",)

__all__ = ["NAME", "DEFAULT_SOURCE", "GENERATION", "PROTOCOLS", "ROW_FIELDS", "CATEGORIES", "load_rows",
           "build_prompt", "score_item", "aggregate"]


load_rows, build_prompt, score_item, aggregate = image_mcq.functions(__name__)
