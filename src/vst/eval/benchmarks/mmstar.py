"""MMStar (Lin-Chen/MMStar, 1,500 items; 6 core capabilities as `category`, 18 axes as `l2-category`).

VST's general-ability column "MMStar" (paper.md §5.2), scored as VLMEvalKit scores it: see `image_mcq` for the
layout, prompts, matcher and report. `--source vlmevalkit` downloads VLMEvalKit's `MMStar.tsv` (md5-checked); a
local file or a folder holding it is read as is.
"""

from __future__ import annotations

from vst.eval.benchmarks import image_mcq
from vst.eval.benchmarks.image_mcq import GENERATION, PROTOCOLS, ROW_FIELDS

NAME = "mmstar"
DEFAULT_SOURCE = "vlmevalkit"
FILE = "MMStar.tsv"
URL = "https://opencompass.openxlab.space/utils/VLMEval/MMStar.tsv"
MD5 = "e1ecd2140806c1b1bbf54b43372efb9e"
CIRCULAR = False
CATEGORIES = ()  # from the data: l2-category, then category (VLMEvalKit's report_acc)
MEDIA_FIELDS = ("image",)

__all__ = ["NAME", "DEFAULT_SOURCE", "GENERATION", "PROTOCOLS", "ROW_FIELDS", "CATEGORIES", "load_rows",
           "build_prompt", "score_item", "aggregate"]


load_rows, build_prompt, score_item, aggregate = image_mcq.functions(__name__)
