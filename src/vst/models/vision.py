"""Rank-uniform vision passes for sharded training (FSDP2, ZeRO-3).

transformers' Qwen2.5-VL runs its vision tower once for a batch's images and once more for its videos, each only
when present. Under FSDP2 or ZeRO-3 every vision forward all-gathers the tower's sharded parameters (and every
backward reduce-scatters its gradients), so two ranks whose batches hold different modalities (images + a video on
one, images only or text only on the other) run different numbers of collectives and hang: "collective mismatch"
on gloo, a silent hang on NCCL. VST avoids it with a dummy visual forward under FSDP (Yangr116/VST `vst/train.py`).

`make_rank_uniform(model)` installs a forward pre-hook on the multimodal core (`model.model`) so that every call
runs the vision tower exactly once: the batch's images and videos concatenated into one call (the tower attends
within each item's own `grid_thw`, so one call gives the same features as two), or, when the batch has neither,
a dummy 2 x 2-patch image whose features join the graph with weight zero. The features go to the model as
`mm_encoder_outputs` (transformers >= 5.17), so the placement of visual tokens and the 3D RoPE positions are the
model's own. `generate` encodes media before its prefill step (`_prepare_multimodal_encoder_kwargs_for_generation`
calls the tower once per modality): the model's instance gets a version of that step that encodes them in the same
single call, so prefill and every decode step also call the tower exactly once. Loss and gradients are unchanged (tested against the model without the hook); the dummy costs one
tiny vision forward per text-only step, which is why the hook is installed only where ranks shard parameters.
"""

from __future__ import annotations

import inspect

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

DUMMY_GRID = (1, 2, 2)  # one temporal patch, 2 x 2 spatial patches: one visual token after the 2 x 2 merge
HOOK_ATTRIBUTE = "_vst_rank_uniform_vision"


def dummy_pixels(visual) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero patches for the smallest image the tower accepts, and its grid."""
    config = visual.config
    width = config.in_channels * config.temporal_patch_size * config.patch_size**2
    patches = DUMMY_GRID[0] * DUMMY_GRID[1] * DUMMY_GRID[2]
    parameter = next(visual.parameters())
    return torch.zeros(patches, width, dtype=parameter.dtype, device=parameter.device), torch.tensor([DUMMY_GRID], device=parameter.device)


def encode_once(core, kwargs: dict) -> dict:
    """`kwargs` of `core.forward` with pixel inputs replaced by `mm_encoder_outputs` from one vision call."""
    if kwargs.get("mm_encoder_outputs"):
        return kwargs
    visual = core.visual
    pixels, grids, kinds = [], [], []
    for kind, pixel_key, grid_key in (("image", "pixel_values", "image_grid_thw"), ("video", "pixel_values_videos", "video_grid_thw")):
        values = kwargs.pop(pixel_key, None)
        if values is not None:
            pixels.append(values)
            grids.append(kwargs[grid_key])
            kinds.append((kind, kwargs[grid_key]))
    dummy = not pixels
    if dummy:
        values, grid = dummy_pixels(visual)
        pixels, grids = [values], [grid]
    dtype = next(visual.parameters()).dtype
    merged = visual(torch.cat(pixels).to(dtype), grid_thw=torch.cat(grids)).pooler_output
    unit = visual.spatial_merge_size**2
    outputs, offset = {}, 0
    for kind, grid in kinds:
        counts = (grid.prod(-1) // unit).tolist()
        outputs[kind] = BaseModelOutputWithPooling(pooler_output=torch.split(merged[offset:offset + sum(counts)], counts))
        offset += sum(counts)
    kwargs["mm_encoder_outputs"] = outputs
    if dummy:  # joins the graph with weight 0, so backward reduce-scatters the tower's gradients on every rank too
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            embeds = core.get_input_embeddings()(kwargs["input_ids"])
        kwargs["inputs_embeds"] = embeds + (merged.sum() * 0).to(embeds.dtype)
    return kwargs


def _pre_hook(core, args, kwargs):
    if args:  # transformers calls the core with keywords only; anything else is passed through untouched
        return None
    return args, encode_once(core, dict(kwargs))


def _encode_for_generation(model, original):
    """`generate`'s pre-prefill media encoding, done in one tower call (see the module docstring)."""
    def prepare(model_kwargs: dict) -> dict:
        core = model.model
        if all(model_kwargs.get(key) is None for key in ("pixel_values", "pixel_values_videos")):
            return original(model_kwargs)  # no media: the prefill forward runs the dummy
        keys = set()  # what transformers would hand to the encoders, and then drop from the forward's kwargs
        for encoder in (core.get_image_features, core.get_video_features):
            keys |= {key for key in inspect.signature(encoder).parameters if key != "kwargs" and key in model_kwargs}
        encoded = encode_once(core, {key: model_kwargs[key] for key in keys})
        model_kwargs.setdefault("mm_encoder_outputs", {}).update(encoded["mm_encoder_outputs"])
        for key in keys:
            model_kwargs.pop(key, None)
        return model_kwargs

    return prepare


def make_rank_uniform(model) -> bool:
    """Install the hook on `model`'s multimodal core and the one-call encoding in its `generate` (once); False when
    the model has no vision tower."""
    core = getattr(model, "model", model)
    if not hasattr(core, "visual") or getattr(core, HOOK_ATTRIBUTE, False):
        return bool(getattr(core, HOOK_ATTRIBUTE, False))
    core.register_forward_pre_hook(_pre_hook, with_kwargs=True)
    original = getattr(model, "_prepare_multimodal_encoder_kwargs_for_generation", None)
    if original is not None and model is not core:
        model._prepare_multimodal_encoder_kwargs_for_generation = _encode_for_generation(model, original)
    setattr(core, HOOK_ATTRIBUTE, True)
    return True
