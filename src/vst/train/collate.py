"""Training batches: the SFT collator (rows -> one right-padded batch) and padding-free packing of those batches.

Both go through `vst.models.processing` (the one place where samples become tensors): `SampleCollator` calls
`encode_for_training`; `PaddingFreeMixin` packs a collated batch with `pack_batch` right before the model's forward.
"""

from __future__ import annotations

import logging
from typing import Sequence

from vst.data.sample import Sample
from vst.models.processing import Budgets, SequenceTooLong, encode_for_training

logger = logging.getLogger(__name__)


class SampleCollator:
    """Rows or Samples -> one right-padded batch with labels on assistant turns (`encode_for_training`).

    Single images, image sets and videos share a batch (spec training.md §7.4). Samples longer than
    `max_seq_len` are dropped from their batch and counted in `skipped` (VST skips them too; truncating would cut
    into image tokens); a batch with nothing left is an error.
    """

    def __init__(self, processor, budgets: Budgets = Budgets(), loss_on: str = "assistant"):
        self.processor = processor
        self.budgets = budgets
        self.loss_on = loss_on  # "assistant" (SFT) or "all" (pretraining the base: `vst train base`)
        self.skipped: list[str] = []

    def __call__(self, rows: Sequence[dict | Sample]):
        samples = [row if isinstance(row, Sample) else Sample.from_row(row) for row in rows]
        try:
            return encode_for_training(samples, self.processor, self.budgets, self.loss_on)
        except SequenceTooLong as error:
            kept = [sample for sample in samples if sample.id not in error.ids]
            self.skipped += error.ids
            limit = self.budgets.max_seq_len
            logger.warning("skipping %d sample(s) longer than max_seq_len=%d: %s", len(error.ids), limit, error.ids)
            if not kept:
                raise ValueError(f"every sample of a batch is longer than max_seq_len={limit}: {error.ids}") from None
            return encode_for_training(kept, self.processor, self.budgets, self.loss_on)


class PaddingFreeMixin:
    """Trainer mixin for padding-free training of Qwen2.5-VL (`padding_free: true`).

    Why: TRL 1.16 refuses `padding_free` for vision datasets and for custom collators. Here the collator still pads
    (TRL's token metrics read its attention mask), and a forward pre-hook on the model turns every training forward
    (one with `labels` and `attention_mask`) into one packed row with no padding (`processing.pack_batch`), its 3D
    RoPE positions computed per sample by the model's own `get_rope_index`. Flash-attention reads the sample
    boundaries from the text positions (varlen kernel); sdpa and eager build a block-diagonal (N x N) mask, fine on
    CPU and for short rows, quadratic in memory for long packed rows on GPU.
    """

    def __init__(self, *args, **kwargs):
        config = kwargs.get("args", args[1] if len(args) > 1 else None)  # SFTTrainer(model, args, ...)
        self.padding_free_vl = bool(getattr(config, "padding_free", False))
        if self.padding_free_vl:
            config.padding_free = False  # keep TRL's own padding-free path (text-only, its collator) out of the way
        try:
            super().__init__(*args, **kwargs)
        finally:
            if self.padding_free_vl:
                config.padding_free = True
        if self.padding_free_vl:
            inner = getattr(self.model, "model", self.model)
            self._rope_index = getattr(inner, "get_rope_index", None)
            if self._rope_index is None:
                raise ValueError(f"padding_free: {type(self.model).__name__} has no get_rope_index (3D RoPE); "
                                 "padding-free packing supports Qwen2-VL-style models only")
            attention = getattr(self.model.config, "_attn_implementation", None)
            if attention is not None and "flash" not in attention:
                logger.warning("padding_free with attn_implementation=%s builds an N x N block mask per packed row; "
                               "use flash_attention_2 on GPU", attention)
            self.pack_hook = self.model.register_forward_pre_hook(self._pack_inputs, with_kwargs=True)

    def _pack_inputs(self, module, args, kwargs):
        training_forward = kwargs.get("labels") is not None and kwargs.get("attention_mask") is not None
        if not training_forward or kwargs.get("position_ids") is not None:
            return None
        import torch

        from vst.models.processing import pack_batch

        types = kwargs.get("mm_token_type_ids")
        if types is None:
            types = torch.zeros_like(kwargs["input_ids"])
        with torch.no_grad():
            rope, _ = self._rope_index(
                input_ids=kwargs["input_ids"], mm_token_type_ids=types, image_grid_thw=kwargs.get("image_grid_thw"),
                video_grid_thw=kwargs.get("video_grid_thw"), second_per_grid_ts=kwargs.get("second_per_grid_ts"),
                attention_mask=kwargs["attention_mask"],
            )
        # no cache: transformers reads packed boundaries from the positions only when there is none
        return args, {**pack_batch({**kwargs, "mm_token_type_ids": types}, rope), "use_cache": False}
