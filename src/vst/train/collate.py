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


class TokenBudgetBatchSampler:
    """Batches of dataset indices whose token counts sum to at most `budget` (VeOmni's dynamic batching: VST's
    global batch of 128 counts packed 16,384-token rows, not samples).

    Each epoch is a seeded shuffle of the indices (`rng([seed, epoch])`), cut into batches in that order: a batch
    takes the next sample while the total stays within `budget` (next fit, so the order stays random; a sample
    longer than the budget is a batch of its own, which the collator then drops). All ranks compute the same list;
    accelerate's `prepare` deals it out, every world-th batch to each rank. The epoch advances with every pass (and
    `set_epoch`), so passes differ but a run is reproducible.
    """

    def __init__(self, lengths: Sequence[int], budget: int, seed: int = 0):
        import numpy as np

        if budget <= 0:
            raise ValueError(f"max_tokens_per_batch must be positive, got {budget}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.budget, self.seed, self.epoch = int(budget), int(seed), 0
        self._passes = 0
        self._cached: tuple[int, list[list[int]]] | None = None  # (epoch, its batches): len(), fill() and a pass share it

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self, epoch: int) -> list[list[int]]:
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, self._cut(epoch))
        return self._cached[1]

    def _cut(self, epoch: int) -> list[list[int]]:
        import numpy as np

        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.lengths))
        batches, current, used = [], [], 0
        for index in order.tolist():
            length = int(self.lengths[index])
            if current and used + length > self.budget:
                batches.append(current)
                current, used = [], 0
            current.append(index)
            used += length
        if current:
            batches.append(current)
        return batches

    def fill(self, epoch: int = 0) -> float:
        """Mean share of the budget a batch fills (padding-free rows: the share of each row's tokens that are real)."""
        batches = self.batches(epoch)
        return float(sum(min(self.lengths[b].sum(), self.budget) for b in batches) / (len(batches) * self.budget))

    def __iter__(self):
        epoch = max(self.epoch, self._passes)
        self._passes = epoch + 1
        yield from self.batches(epoch)

    def __len__(self) -> int:
        return len(self.batches(max(self.epoch, self._passes)))


class TokenBudgetMixin:
    """Trainer mixin: with `max_tokens_per_batch`, micro-batches are formed by token count (`TokenBudgetBatchSampler`
    over the dataset's length column) instead of `per_device_train_batch_size` rows; with `padding_free` each one
    is then one packed row. Why a mixin: transformers' Trainer builds its dataloader from a per-sample sampler."""

    def get_train_dataloader(self):
        budget = getattr(self.args, "max_tokens_per_batch", None)
        if not budget:
            return super().get_train_dataloader()
        from torch.utils.data import DataLoader

        dataset = self.train_dataset
        column = self.args.length_column_name
        if not hasattr(dataset, "column_names") or column not in dataset.column_names:
            raise ValueError(f"max_tokens_per_batch: the dataset needs its {column!r} column (memory-mapped shards, "
                             "not streaming)")
        sampler = TokenBudgetBatchSampler(dataset[column], budget, seed=self.args.seed)
        logger.info("max_tokens_per_batch=%d: %d micro-batches per epoch, filled to %.1f %% of the budget on average",
                    budget, len(sampler.batches(0)), 100 * sampler.fill())
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                            num_workers=self.args.dataloader_num_workers, pin_memory=self.args.dataloader_pin_memory)
        return self.accelerator.prepare(loader)
