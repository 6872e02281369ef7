"""ARKitScenes 3D object detection (Omni3D test split, 640x480), VST's second grounding benchmark (spec paper.md §5.1).

Rows, prompt and scoring: `vst.eval.benchmarks.det3d` (official = VST's `benchmark/det3d`, Yangr116/VST, scoring with
facebookresearch/omni3d:cubercnn/evaluation/omni3d_evaluation.py, all boxes at score 1.0). Source file in HF
`rayruiyang/vst_3d_grounding_benchmark`: `arkit_omni3d_test_640x480_prompt_v4_norm.json`. VST published no
ARKitScenes numbers (paper.md §5.4).
"""

from __future__ import annotations

from vst.eval.benchmarks import det3d
from vst.eval.benchmarks.det3d import (CATEGORIES, DEFAULT_SOURCE, GENERATION, HF_DATASET, PROTOCOLS, ROW_FIELDS, aggregate,
                                       build_prompt, score_item)

NAME = "det3d-arkitscenes"
DATA_FILE = "arkit_omni3d_test_640x480_prompt_v4_norm.json"

__all__ = ["NAME", "DEFAULT_SOURCE", "GENERATION", "PROTOCOLS", "ROW_FIELDS", "CATEGORIES", "load_rows", "build_prompt", "score_item", "aggregate"]


def load_rows(source: str = HF_DATASET, revision: str | None = None, limit: int | None = None) -> list[dict]:
    return det3d.load_rows(source, revision, limit, data_file=DATA_FILE)
