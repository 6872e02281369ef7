"""SUN RGB-D 3D object detection (Total3DUnderstanding val split), VST's AP@15 benchmark (spec paper.md §5.1, §5.4).

Rows, prompt and scoring: `vst.eval.benchmarks.det3d` (official = VST's `benchmark/det3d`, Yangr116/VST, scoring with
facebookresearch/omni3d:cubercnn/evaluation/omni3d_evaluation.py, all boxes at score 1.0). Source file in HF
`rayruiyang/vst_3d_grounding_benchmark`: `sunrgbd_val_total3d-prompt_v4_norm.json`. VST keeps its ground truth in a
separate `sunrgbd_total3d_val_metaqa_20250321.json` [unverified layout]; vst's rows carry the boxes themselves.
Targets (AP@15): VST-7B-RL 44.2, VST-7B-SFT 41.6, VST-3B-RL 40.1, VST-3B-SFT 37.3.
"""

from __future__ import annotations

from vst.eval.benchmarks import det3d
from vst.eval.benchmarks.det3d import (CATEGORIES, DEFAULT_SOURCE, GENERATION, HF_DATASET, PROTOCOLS, ROW_FIELDS, aggregate,
                                       build_prompt, score_item)

NAME = "det3d-sunrgbd"
DATA_FILE = "sunrgbd_val_total3d-prompt_v4_norm.json"

__all__ = ["NAME", "DEFAULT_SOURCE", "GENERATION", "PROTOCOLS", "ROW_FIELDS", "CATEGORIES", "load_rows", "build_prompt", "score_item", "aggregate"]


def load_rows(source: str = HF_DATASET, revision: str | None = None, limit: int | None = None) -> list[dict]:
    return det3d.load_rows(source, revision, limit, data_file=DATA_FILE)
