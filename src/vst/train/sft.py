"""Supervised fine-tuning (VST stages 1 and 2) with TRL's `SFTTrainer` and our multimodal collator.

Flow: `load_config` (YAML, then `key=value` overrides) -> `VSTSFTConfig` -> `train_sft`: shards (`load_shards`:
parquet rows, images kept as bytes) -> `vst.train.collate.SampleCollator` (-> `processing.encode_for_training`, the one
processing path shared with eval and infer) -> `VSTSFTTrainer` -> a `save_pretrained` folder (model + processor)
that `vst.models.loading.load_model` reads back.

Hyper-parameters follow spec paper.md §4.1 (stage 1: lr 5e-5, vit_lr 5e-6, cosine, warmup 0.1) and §4.2 (cold start:
lr 1e-5, vit_lr 1e-6, warmup 0.03); TRL settings follow spec training.md §7.2 and §7.4.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml
from trl import SFTConfig, SFTTrainer

from vst.data.sample import Sample
from vst.data.shards import open_shard, read_samples, verify_shard
from vst.models.processing import Budgets
from vst.train.collate import PaddingFreeMixin, SampleCollator, TokenBudgetMixin
from vst.train.curves import SFT_KEYS, logged_keys, plot_history

logger = logging.getLogger(__name__)

# Parameter-name patterns of Qwen2.5-VL in transformers 5.x (`model.visual.*`, `model.language_model.*`, `lm_head.*`).
VISUAL_PREFIX = "visual."
MERGER_PREFIX = "visual.merger."
LLM_PREFIXES = ("language_model.", "lm_head.")


def _has(name: str, prefix: str) -> bool:
    """True when `prefix` starts a dotted segment of the parameter name (`model.visual.x` has `visual.`)."""
    return name.startswith(prefix) or f".{prefix}" in name


def is_vision_tower(name: str) -> bool:
    """A parameter of the ViT proper: `visual.*` except the merger."""
    return _has(name, VISUAL_PREFIX) and not _has(name, MERGER_PREFIX)


def is_visual(name: str) -> bool:
    """Any parameter under `visual.`: the ViT and its patch merger."""
    return _has(name, VISUAL_PREFIX)


def is_merger(name: str) -> bool:
    return _has(name, MERGER_PREFIX)


def is_llm(name: str) -> bool:
    return any(_has(name, prefix) for prefix in LLM_PREFIXES)


@dataclass
class VSTSFTConfig(SFTConfig):
    """TRL's `SFTConfig` plus the vst fields below; YAML keys are TRL's own names.

    Defaults that differ from TRL 1.16: `learning_rate` 5e-5, `lr_scheduler_type` "cosine", `warmup_steps` 0.1 (a float
    below 1 is a ratio in transformers 5), `num_train_epochs` 1 (VST stage 1, spec paper.md §4.1); `max_length` None
    (truncation cuts into image tokens, spec training.md §3.3; `max_seq_len` budgets rows instead);
    `remove_unused_columns` False and `dataset_kwargs` {"skip_prepare_dataset": True} (our collator does all the
    processing, spec training.md §7.4); `report_to` "none".
    """

    learning_rate: float = field(default=5e-5, metadata={"help": "Peak AdamW learning rate of the LLM and merger."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule after warmup."})
    warmup_steps: float = field(
        default=0.1, metadata={"help": "Warmup steps, or a ratio of all steps when a float in [0, 1)."}
    )
    num_train_epochs: float = field(default=1.0, metadata={"help": "Passes over the shards."})
    max_length: int | None = field(
        default=None, metadata={"help": "TRL truncation length; keep None, rows are budgeted by `max_seq_len`."}
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Must stay False: the collator needs the raw rows."}
    )
    dataset_kwargs: dict[str, Any] | str | None = field(
        default_factory=lambda: {"skip_prepare_dataset": True},
        metadata={"help": "Kept at skip_prepare_dataset=True: the collator tokenizes."},
    )
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Loggers (wandb, tensorboard, ...)."})

    # vst fields
    shards: list[str] = field(default_factory=list, metadata={"help": "Parquet shards of Samples to train on."})
    model_name_or_path: str = field(
        default="tiny",
        metadata={"help": "Model to fine-tune: 'tiny'/'tiny-small' (offline), a save_pretrained folder or a hub id."},
    )
    vit_lr: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the visual parameters (see vit_lr_scope); None uses learning_rate."},
    )
    vit_lr_scope: str = field(
        default="visual", metadata={"help": "Which parameters take vit_lr: 'visual' = every visual.* parameter, the "
                                    "patch merger included (VST's get_param_groups); 'tower' = the ViT without the "
                                    "merger, which then trains at learning_rate."})
    max_tokens_per_batch: int | None = field(
        default=None, metadata={"help": "Form each micro-batch by tokens, up to this many (VST: 16,384 with "
                                "padding_free, one packed row), instead of per_device_train_batch_size rows; needs the "
                                "shards' length column (or computes it) and memory-mapped shards."})
    rank_uniform_vision: bool | None = field(
        default=None, metadata={"help": "One vision-tower call per forward on every rank (vst.models.vision), so "
                                "FSDP2/ZeRO-3 ranks with different media never hang; None: on when training on more "
                                "than one process."})
    freeze_vision: bool = field(default=False, metadata={"help": "Freeze the vision tower (visual.* but merger)."})
    freeze_merger: bool = field(default=False, metadata={"help": "Freeze the patch merger (visual.merger.*)."})
    freeze_llm: bool = field(default=False, metadata={"help": "Freeze the language model and lm_head."})
    image_min_pixels: int = field(default=Budgets.image_min_pixels, metadata={"help": "Min pixels of one image."})
    image_max_pixels: int = field(default=Budgets.image_max_pixels, metadata={"help": "Max pixels of one image."})
    max_seq_len: int = field(
        default=Budgets.max_seq_len, metadata={"help": "Max tokens of one row; longer rows raise (VST skips them)."}
    )
    video_total_pixels: int | None = field(
        default=None, metadata={"help": "Pixel budget of a video or image set; None: max_seq_len * 28^2 * 0.8."}
    )
    video_min_pixels: int = field(default=Budgets.video_min_pixels, metadata={"help": "Min pixels of a video frame."})
    video_fps: float = field(default=Budgets.video_fps, metadata={"help": "Video sampling rate, frames per second."})
    video_max_frames: int | None = field(default=None, metadata={"help": "Frame cap; None derives it from budgets."})
    streaming: bool = field(
        default=False, metadata={"help": "Read the shards lazily, one row group at a time (needs max_steps)."}
    )
    shuffle_buffer: int = field(
        default=1000, metadata={"help": "Streaming: rows held in the shuffle buffer; 0 keeps shard order."}
    )

    def budgets(self) -> Budgets:
        """The media/token budgets handed to `encode_for_training`."""
        return Budgets(
            image_min_pixels=self.image_min_pixels, image_max_pixels=self.image_max_pixels,
            max_seq_len=self.max_seq_len, total_pixels=self.video_total_pixels,
            video_min_pixels=self.video_min_pixels, video_fps=self.video_fps, video_max_frames=self.video_max_frames,
        )


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 scalars: only true/false are booleans, so `save_strategy: no` stays the string TRL expects (YAML 1.1
    reads False), and `5e-5` is a float (PyYAML's YAML 1.1 reads a string)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"), list("-+0123456789.")
)


def _parse_yaml(text: str, where: str = "config") -> Any:
    """YAML 1.2 values, safely (no `!!python` tags); a malformed file is one line naming `where`, line and problem."""
    try:
        return yaml.load(text, Loader=_Yaml12Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{where}:{line} invalid YAML ({problem})") from None


def _type_problem(value: Any, hint: Any) -> str | None:
    """Why `value` does not fit the field type `hint` (None when it fits or the type is not a plain one): a YAML
    typo such as `max_steps: "abc"` or `shards: 5` is caught here, before a traceback deep inside the trainer."""
    import types
    import typing

    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        problems = [_type_problem(value, option) for option in arguments]
        return None if any(problem is None for problem in problems) else problems[0]
    if hint is type(None):
        return None if value is None else "expected null"
    if value is None:
        return None  # TRL fills many None defaults itself
    if hint is str:
        return None  # string fields take what YAML gives (TRL converts, e.g. `fsdp: true`)
    names = {int: "an integer", float: "a number", bool: "true or false"}
    if hint in names:
        fits = (isinstance(value, (int, float)) and not isinstance(value, bool) if hint is float
                else isinstance(value, int) and not isinstance(value, bool) if hint is int
                else isinstance(value, hint))
        return None if fits else f"expected {names[hint]}, got {value!r}"
    if origin is list:
        if not isinstance(value, list):
            return f"expected a list, got {value!r}"
        inner = arguments[0] if arguments else None
        problems = [_type_problem(item, inner) for item in value] if inner in names else []
        return next((f"item {i}: {p}" for i, p in enumerate(problems) if p), None)
    return None


def _field_types(config_class: type) -> dict[str, Any]:
    """Field name -> type of a config dataclass (TRL's and ours); {} where the annotations cannot be resolved."""
    import typing

    try:
        return typing.get_type_hints(config_class)
    except Exception:  # noqa: BLE001 - a forward reference we cannot resolve only costs the type check
        return {}


def load_config(path: str | Path | None, overrides: Sequence[str] = (), config_class: type | None = None):
    """A `config_class` (default `VSTSFTConfig`; `vst.train.rl` passes `VSTGRPOConfig`) from a YAML mapping (TRL key
    names) then `key=value` overrides (values parsed as YAML).

    Raises ValueError naming the file (or override) and key for an unknown key or a malformed file/override.
    """
    config_class = config_class or VSTSFTConfig
    where = f"not a field of {config_class.__name__} / TRL {config_class.__mro__[1].__name__}"
    known = {f.name for f in dataclasses.fields(config_class) if f.init}
    values: dict[str, Any] = {}
    if path is not None:
        text = Path(path).read_text()
        loaded = _parse_yaml(text, str(path)) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of TRL/vst config keys, got {type(loaded).__name__}")
        for key in loaded:
            if key not in known:
                raise ValueError(f"{path}: {key}: unknown key ({where})")
        values.update(loaded)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected key=value")
        if key not in known:
            raise ValueError(f"override {item!r}: {key}: unknown key ({where})")
        values[key] = _parse_yaml(raw, f"override {item!r}") if raw.strip() else None
    hints = _field_types(config_class)
    for key, value in values.items():
        problem = _type_problem(value, hints.get(key))
        if problem:
            raise ValueError(f"{path or 'overrides'}: {key}: {problem}")
    try:
        return config_class(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path or 'overrides'}: {error}") from error


def _shard_rows(files: list[str], repeat: bool = False):
    """Rows of the shards, normalised through `Sample` (released VST rows gain the vst columns), read lazily; with
    `repeat`, pass after pass (a pass that yields nothing ends it)."""
    while True:
        rows = 0
        for sample in read_samples(files):
            rows += 1
            yield sample.to_row()
        if not repeat or rows == 0:
            return


def expand_shards(paths: str | Path | Sequence[str | Path]) -> list[str]:
    """Shard paths with globs expanded, in order; raises FileNotFoundError naming a missing file or pattern."""
    import glob

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    expanded = [match for path in paths
                for match in (sorted(glob.glob(str(path))) if glob.has_magic(str(path)) else [str(path)])]
    if not expanded:
        raise FileNotFoundError(f"shards: no file matches {[str(p) for p in paths]}")
    for path in expanded:
        open_shard(path)  # a missing file, a non-parquet or a foreign schema: one error naming file and column
        verify_shard(path)  # against the sha256 in its manifest, when it has one
    return expanded


def shard_lengths(paths: Sequence[str], column: str = "length") -> list[int] | None:
    """The integer `column` of every shard, in row order, when all of them carry it (written once, e.g. with
    pyarrow, so that no rank has to estimate token counts at start-up); None otherwise."""
    import pyarrow.parquet as pq

    if not all(column in pq.read_schema(path).names for path in paths):
        return None
    return [int(value) for path in paths for value in pq.read_table(path, columns=[column])[column].to_pylist()]


def load_shards(paths: str | Path | Sequence[str | Path], streaming: bool = False, repeat: bool = False):
    """A `datasets` dataset of the shards' rows (VST's parquet schema, images as bytes), in order; globs expand.

    Rows go through `Sample.from_row` / `to_row` once, so released VST rows are normalised and a bad row fails with
    its file and row. `streaming=True` gives an
    `IterableDataset` that reads one row group at a time, for stage-1 scale (VST: 1.8 M rows with images); `repeat`
    makes it endless (training stops at `max_steps`). Otherwise the rows are written once to an Arrow file in the
    `datasets` cache (`HF_DATASETS_CACHE`) and memory-mapped, so every rank shares them through the page cache
    instead of holding its own copy of every image; the cache is keyed by the files' sizes and modification times.
    """
    import datasets

    from vst.data.shards import SCHEMA

    expanded = expand_shards(paths)
    features = datasets.Features.from_arrow_schema(SCHEMA)
    if streaming:  # one generator shard per file, so ranks and dataloader workers split the files
        return datasets.IterableDataset.from_generator(_shard_rows, features=features,
                                                       gen_kwargs={"files": expanded, "repeat": repeat})
    import pyarrow.parquet as pq

    if sum(pq.read_metadata(path).num_rows for path in expanded) == 0:
        raise ValueError(f"{expanded}: the shards hold no rows")
    return datasets.Dataset.from_generator(_shard_rows, features=features, gen_kwargs={"files": expanded},
                                           fingerprint=files_fingerprint("vst-rows", expanded))


def files_fingerprint(kind: str, files: Sequence[str]) -> str:
    """A `datasets` cache fingerprint of what is built from `files`: their paths, sizes and modification times, the
    kind of rows and the vst version, so a changed or regenerated shard is never served from a stale cache."""
    import hashlib
    import os

    from vst import __version__

    stamps = [(str(Path(f).resolve()), os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps([kind, __version__, stamps]).encode()).hexdigest()[:32]


def in_vit_group(name: str, args) -> bool:
    """Whether parameter `name` trains at `vit_lr` (`vit_lr_scope`: 'visual' or 'tower')."""
    scope = getattr(args, "vit_lr_scope", "visual")
    if scope not in ("visual", "tower"):
        raise ValueError(f"vit_lr_scope: expected 'visual' or 'tower', got {scope!r}")
    return is_visual(name) if scope == "visual" else is_vision_tower(name)


class VitLrMixin:
    """Trainer mixin whose optimizer gives the vision tower its own learning rate (`args.vit_lr`).

    Why: transformers 5.24 / TRL 1.16 have no per-module learning rate, and an optimizer built before the trainer
    would miss FSDP/DeepSpeed wrapping. Only `create_optimizer` changes. Shared by SFT and RL (`vst.train.rl`).
    """

    def create_optimizer(self, model=None):
        vit_lr = getattr(self.args, "vit_lr", None)
        if self.optimizer is not None or vit_lr is None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(model))
        weight_decay = self.args.weight_decay
        groups: dict[tuple[bool, bool], list] = {}
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                # With no weight decay the decay split is moot: one group per learning rate.
                decayed = name in decay and weight_decay > 0
                groups.setdefault((in_vit_group(name, self.args), decayed), []).append(parameter)
        param_groups = [
            {"params": params, "weight_decay": weight_decay if decayed else 0.0,
             **({"lr": vit_lr} if vision else {})}
            for (vision, decayed), params in sorted(groups.items())
        ]
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer


def load_checkpoint_weights(model, folder: str | Path) -> None:
    """Load the weights of a `save_pretrained` folder (one safetensors file or an index of shards) into `model`,
    undoing the key renaming that `save_pretrained` applied (transformers 5 writes Qwen2.5-VL in the hub layout,
    `visual.*` / `model.layers.*`, while the module holds `model.visual.*` / `model.language_model.*`).

    Raises RuntimeError when a checkpoint key has no parameter or a parameter (other than a tied copy) no key.
    """
    import safetensors.torch
    from transformers.core_model_loading import revert_weight_conversion

    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    files = (sorted({folder / name for name in json.loads(index.read_text())["weight_map"].values()})
             if index.is_file() else [folder / "model.safetensors"])
    model_key = {}  # saved key -> model key, through the same conversion save_pretrained ran
    for key, tensor in model.state_dict().items():
        reverted = revert_weight_conversion(model, {key: tensor})
        if len(reverted) != 1:
            raise RuntimeError(f"{type(model).__name__}: {key}: saved through a many-to-one weight conversion, which "
                               "this loader does not undo; resume with a fresh from_pretrained of the checkpoint")
        model_key[next(iter(reverted))] = key
    state = {}
    for file in files:
        for key, tensor in safetensors.torch.load_file(str(file), device="cpu").items():
            if key not in model_key:
                raise RuntimeError(f"{file}: {key}: no such parameter in {type(model).__name__}")
            state[model_key[key]] = tensor
    tied = ({name for name, _ in model.named_parameters(remove_duplicate=False)}
            - {name for name, _ in model.named_parameters()})
    missing = set(model.load_state_dict(state, strict=False).missing_keys) - tied
    if missing:
        raise RuntimeError(f"{folder}: no weights for {sorted(missing)[:5]} ({len(missing)} keys)")


class CheckpointResumeMixin:
    """Trainer mixin whose resume, and whose `load_best_model_at_end`, actually load the checkpoint's weights.

    Why: in transformers 5.24 `Trainer._load_from_checkpoint` and `_load_best_model` read `model.safetensors` with a
    plain `load_state_dict(strict=False)`, but `save_pretrained` wrote the keys in the hub layout, so for Qwen2.5-VL
    no key matches and training silently resumes from the initial weights with the checkpoint's optimizer (or ends
    on the last weights instead of the best) (huggingface/transformers#43701). DeepSpeed, FSDP and PEFT checkpoints
    take transformers' own paths.
    """

    def _loads_plain(self, folder: Path) -> bool:
        plain = (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file()
        return plain and not (self.is_deepspeed_enabled or self.is_fsdp_enabled or hasattr(self.model, "peft_config"))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        if not self._loads_plain(Path(resume_from_checkpoint)):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_checkpoint_weights(self.model if model is None else model, resume_from_checkpoint)

    def _load_best_model(self):
        folder = Path(self.state.best_model_checkpoint)
        if not self._loads_plain(folder):
            return super()._load_best_model()
        logger.info("loading the best model from %s (score %s)", folder, self.state.best_metric)
        load_checkpoint_weights(self.model, folder)


class VSTSFTTrainer(CheckpointResumeMixin, VitLrMixin, TokenBudgetMixin, PaddingFreeMixin, SFTTrainer):
    """`SFTTrainer` whose optimizer gives the vision tower its own learning rate (`args.vit_lr`, `VitLrMixin`), whose
    resume loads the checkpoint's weights (`CheckpointResumeMixin`), which batches by tokens with
    `max_tokens_per_batch` (`TokenBudgetMixin`) and trains padding-free on multimodal rows when `padding_free` is
    set (`PaddingFreeMixin`); the training loop is TRL's."""


def apply_freezing(model, config) -> None:
    """Turn off gradients of the parts the config freezes (vision tower, merger, LLM)."""
    for name, parameter in model.named_parameters():
        if (config.freeze_vision and is_vision_tower(name) or config.freeze_merger and is_merger(name)
                or config.freeze_llm and is_llm(name)):
            parameter.requires_grad_(False)


def uniform_vision(model, config) -> bool:
    """Install `vst.models.vision.make_rank_uniform` when `config.rank_uniform_vision` says so (None: when more
    than one process trains: sharded ranks must run the same collectives, and DDP every rank's tower)."""
    wanted = config.rank_uniform_vision
    if wanted is None:
        wanted = config.world_size > 1
    if not wanted or model is None or isinstance(model, str):
        return False
    from vst.models.vision import make_rank_uniform

    return make_rank_uniform(model)


def build_trainer(config: VSTSFTConfig) -> VSTSFTTrainer:
    """The trainer of `config`: model and processor loaded, parts frozen, shards read, collator attached."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vst.models.loading import resolve

    if not config.shards:
        raise ValueError("shards: give at least one parquet shard to train on")
    source = resolve(config.model_name_or_path)
    processor = AutoProcessor.from_pretrained(source)
    model = AutoModelForImageTextToText.from_pretrained(source, **(config.model_init_kwargs or {}))
    apply_freezing(model, config)
    uniform_vision(model, config)
    with config.main_process_first(desc="reading the shards"):  # one process writes the Arrow cache, the rest map it
        rows = training_rows(config, processor)
    return VSTSFTTrainer(
        model=model, args=config, train_dataset=rows, processing_class=processor,
        data_collator=SampleCollator(processor, config.budgets()),
    )


def training_rows(config: VSTSFTConfig, processor=None):
    """The dataset `config` trains on: its shards memory-mapped, or streamed (`streaming`) through a seeded shuffle
    buffer.

    With `train_sampling_strategy: group_by_length` (or `batch_rebalance`) the mapped rows get the `length` column
    transformers' samplers read: the shards' own `length` column when they all carry one, else each row's token count
    from media headers (`processing.estimate_tokens`; it needs `processor`). A streamed dataset is not dispatched
    from rank 0: accelerate's dispatcher slices every tensor of a batch by row, which would cut `pixel_values`
    (patches, not rows) wrongly; each rank reads its own files (or every
    n-th batch when there are fewer files than ranks) instead. The stream repeats until `max_steps`, so a rank whose
    files hold fewer rows never runs dry while the others wait for it in a collective."""
    files = expand_shards(config.shards)
    dataset = load_shards(files, streaming=config.streaming, repeat=config.streaming)
    if not config.streaming:
        by_length = config.train_sampling_strategy in ("group_by_length", "batch_rebalance") or config.max_tokens_per_batch
        if by_length and config.length_column_name not in dataset.column_names:
            lengths = shard_lengths(files, config.length_column_name)
            if lengths is None:
                if processor is None:
                    raise ValueError(f"train_sampling_strategy={config.train_sampling_strategy}: token counts need "
                                     "the processor (or a length column in the shards)")
                from vst.models.processing import estimate_tokens

                budgets = config.budgets()
                lengths = [estimate_tokens(Sample.from_row(row), processor, budgets) for row in dataset]
            dataset = dataset.add_column(config.length_column_name, lengths)
        return dataset
    if config.max_tokens_per_batch:
        raise ValueError("max_tokens_per_batch: batching by tokens needs memory-mapped shards (streaming: false)")
    if config.max_steps <= 0:
        raise ValueError("streaming: set max_steps; a streamed dataset has no length to derive epochs from")
    if config.shuffle_buffer > 0:
        dataset = dataset.shuffle(seed=config.seed, buffer_size=config.shuffle_buffer)
    config.accelerator_config.dispatch_batches = False
    return dataset


def save_run(trainer, output_dir: str | Path, curve_keys: Sequence[str]) -> Path:
    """Save model + processor to `output_dir` as one plain HF folder (every rank takes part: FSDP/ZeRO gather there;
    under FSDP with SHARDED_STATE_DICT checkpoints the final save is switched to a full state dict), then on the main
    process `trainer_state.json` (the log history) and `curves.png` (`vst.train.curves`, the `curve_keys` logged)."""
    output = Path(output_dir)
    if trainer.is_fsdp_enabled:  # (transformers: the accelerator state holds an fsdp_plugin)
        plugin = trainer.accelerator.state.fsdp_plugin
        if "FULL_STATE_DICT" not in str(plugin.state_dict_type):
            # checkpoints were DCP shards (SHARDED_STATE_DICT: no gather, optimizer state sharded); the finished model
            # is one plain HF folder, gathered here (transformers' save_model writes no weights at all under SHARDED)
            plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(output))
    if trainer.is_world_process_zero():
        trainer.state.save_to_json(str(output / "trainer_state.json"))
        if logged_keys(trainer.state.log_history, curve_keys):
            plot_history(trainer.state.log_history, output / "curves.png", curve_keys)
    return output


def train_sft(config: VSTSFTConfig) -> Path:
    """Train as configured and save model + processor (+ `trainer_state.json`, the logged losses, and `curves.png`)
    to `config.output_dir`; returns that folder, which `vst.models.loading.load_model` reads back."""
    trainer = build_trainer(config)
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    return save_run(trainer, config.output_dir, SFT_KEYS)
