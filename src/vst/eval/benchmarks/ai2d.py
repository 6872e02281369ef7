"""AI2D test (science diagrams, VLMEvalKit's AI2D_TEST).

VST's general-ability column "AI2D" (paper.md §5.2), scored as VLMEvalKit scores it: see `image_mcq` for the
layout, prompts, matcher and report. `--source vlmevalkit` downloads VLMEvalKit's `AI2D_TEST.tsv` (md5-checked); a
local file or a folder holding it is read as is.
"""

from __future__ import annotations

from vst.eval.benchmarks import image_mcq
from vst.eval.benchmarks.image_mcq import GENERATION, PROTOCOLS, ROW_FIELDS

NAME = "ai2d"
DEFAULT_SOURCE = "vlmevalkit"
FILE = "AI2D_TEST.tsv"
URL = "https://opencompass.openxlab.space/utils/VLMEval/AI2D_TEST.tsv"
MD5 = "0f593e0d1c7df9a3d69bf1f947e71975"
CIRCULAR = False
CATEGORIES = ()  # from the data: l2-category, then category (VLMEvalKit's report_acc)
MEDIA_FIELDS = ("image",)

__all__ = ["NAME", "DEFAULT_SOURCE", "GENERATION", "PROTOCOLS", "ROW_FIELDS", "CATEGORIES", "load_rows",
           "build_prompt", "score_item", "aggregate"]


load_rows, build_prompt, score_item, aggregate = image_mcq.functions(__name__)
