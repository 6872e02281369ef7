"""Training: rewards (pure), SFT and GRPO on Qwen2.5-VL. Importing this package does not import torch."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def train_stage(config: str | Path, overrides: Sequence[str] = (), stage: str = "sft") -> Path:
    """Train one stage from its YAML plus `key=value` overrides; returns the checkpoint folder. Stages "sft" and
    "coldstart" run the SFT trainer, "rl" runs GRPO. Used by `vst train` and by the pipeline (`vst demo`)."""
    config = Path(config)
    if not config.is_file():
        raise FileNotFoundError(f"{config}: config file not found")
    if stage == "rl":
        from vst.train.rl import load_config, train_rl as train
    elif stage == "base":  # without held-out scores: `vst.pipeline.build_base` (`vst train base`) adds them
        from vst.train.base import load_base_config as load_config, train_base as train
    else:
        from vst.train.sft import load_config, train_sft as train
    return train(load_config(config, overrides))
