"""Load a model and its processor: the offline tiny model by name, or any Hugging Face Qwen2.5-VL folder / hub id.

Checkpoints stay plain `save_pretrained` folders (DESIGN.md "Models"), so released VST checkpoints, Qwen2.5-VL
base models and our own training outputs all load through `from_pretrained` here.
"""

from __future__ import annotations

import os
from pathlib import Path

from vst.models.tiny import save_tiny

# Names that build an offline tiny model instead of reading a checkpoint: name -> `tiny.SIZES` key.
TINY_MODELS = {"tiny": "tiny", "tiny-medium": "medium", "tiny-small": "small"}
# Pretrained checkpoints shipped inside the package: name -> folder. `tiny-base` is the tiny Qwen2.5-VL pretrained by
# `vst train base` on general, non-spatial data (its model card: README.md in the folder).
SHIPPED_MODELS = {"tiny-base": Path(__file__).parent / "weights" / "tiny-base"}


def cache_dir() -> Path:
    """Where tiny models are built: $VST_CACHE, else ~/.cache/vst."""
    return Path(os.environ.get("VST_CACHE") or Path.home() / ".cache" / "vst")


def resolve(path_or_name: str, cache: str | Path | None = None) -> str:
    """The folder or hub id to load: a tiny model name is built (once) under `cache` (default `cache_dir()`)."""
    if path_or_name in TINY_MODELS:
        return str(save_tiny(Path(cache or cache_dir()) / path_or_name, size=TINY_MODELS[path_or_name]))
    if path_or_name in SHIPPED_MODELS:
        folder = SHIPPED_MODELS[path_or_name]
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder}: the shipped {path_or_name} checkpoint is missing; rebuild it with "
                                    "`vst train base --config configs/train/tiny-base.yaml output_dir=" f"{folder}`")
        return str(folder)
    return str(path_or_name)


def load_model(
    path_or_name: str = "tiny", device: str = "cpu", dtype: str = "float32", cache: str | Path | None = None
):
    """(model, processor) in eval mode on `device`.

    path_or_name: "tiny" / "tiny-medium" / "tiny-small" (offline, built under `cache`), "tiny-base" (shipped), a local Hugging Face folder, or a hub id
    (needs network unless already in the hub cache). dtype: "float32", "bfloat16", "float16", "auto" (the
    checkpoint's) or a torch dtype.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    source = resolve(path_or_name, cache)
    looks_local = source.startswith((".", "/", "~")) or Path(source).exists()
    if looks_local and not (Path(source).expanduser() / "config.json").is_file():
        raise FileNotFoundError(f"{source}: not a model folder (no config.json); give a save_pretrained folder, a hub id or 'tiny'")
    if isinstance(dtype, str) and dtype != "auto":
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use float32, bfloat16, float16 or auto")
        dtype = getattr(torch, dtype)
    processor = AutoProcessor.from_pretrained(source)
    model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype)
    return model.to(device).eval(), processor
