"""An offline tiny Qwen2.5-VL: random weights, a locally trained tokenizer, Qwen's chat template and processors.

Tests and CPU smoke runs use it instead of a downloaded checkpoint (spec training.md §3.2, §7.1). Everything a real
Qwen2.5-VL folder has is here, spelled the same way, so code written against the tiny model runs unchanged on
`Qwen/Qwen2.5-VL-7B-Instruct` or a VST checkpoint:

- a byte-level BPE tokenizer (trained with `tokenizers` on a few spatial/chat sentences) carrying Qwen's special
  tokens exactly (`<|im_start|>`, `<|vision_start|>`, `<|image_pad|>`, `<|video_pad|>`, ...);
- a chat template that renders like Qwen2.5-VL's (default system turn, vision items as
  `<|vision_start|><|image_pad|><|vision_end|>`, `add_vision_id`, `add_generation_prompt`);
- `Qwen2VLImageProcessor` and `Qwen2VLVideoProcessor` (patch 14, merge 2, temporal patch 2) in a
  `Qwen2_5_VLProcessor`;
- a `Qwen2_5_VLForConditionalGeneration` from a `Qwen2_5_VLConfig` whose `mrope_section` sums to head_dim / 2.

`build_tiny` makes the objects in memory; `save_tiny` writes them as a Hugging Face folder (`save_pretrained`) that
`from_pretrained` reads back with no network.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Same behaviour as Qwen2.5-VL-Instruct's template (spec training.md §7.1); string content is emitted as is.
QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# What the tokenizer learns merges from: enough chat, spatial and reasoning words that answers are a few tokens.
TOKENIZER_CORPUS = (
    "You are a helpful assistant.",
    "You should first think about the reasoning process in the mind and then provide the user with the answer.",
    "<think> The chair is left of the table, so the answer is A. </think> A. left",
    "How far is the chair from the table in meters? Answer: 1.5",
    "Which object is closer to the camera, the sofa or the lamp? The sofa.",
    "These are frames of a video. How many chairs are in the room? 3",
    "Options: A. north B. south C. east D. west. Answer with the option's letter.",
    "Detect the 3D bounding boxes of the bed and the desk: [x, y, z, w, h, l, yaw, pitch, roll]",
    "The camera moved forward and turned right by 30 degrees between the two images.",
    "What is the height of the door in centimeters? About 200 cm.",
    "Is the bottle on the shelf above the printer? Yes. No.",
    "0 1 2 3 4 5 6 7 8 9 10 0.25 -1.75 { } [ ] ( ) , . : ; ? !",
    "system user assistant",
)


@dataclass(frozen=True)
class TinySize:
    """Widths and depths of one tiny model; `text_*` for the language model, `vision_*` for the ViT."""

    vocab: int
    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    vision_hidden: int
    vision_depth: int
    vision_heads: int


SIZES = {
    # ~0.4 M parameters (spec training.md §3.2): fast enough for unit tests on one CPU core.
    "tiny": TinySize(vocab=1024, text_hidden=64, text_layers=2, text_heads=4, text_kv_heads=2,
                     vision_hidden=64, vision_depth=2, vision_heads=4),
    # ~2.5 M parameters: the `vst demo` model, big enough to learn answer priors and simple cues in minutes on 2 cores.
    "medium": TinySize(vocab=1024, text_hidden=128, text_layers=4, text_heads=4, text_kv_heads=2,
                       vision_hidden=128, vision_depth=2, vision_heads=4),
    # ~22 M parameters: the CPU throughput model of spec training.md §3.7 / §7.8.
    "small": TinySize(vocab=1024, text_hidden=384, text_layers=4, text_heads=6, text_kv_heads=2,
                      vision_hidden=384, vision_depth=4, vision_heads=6),
}
IMAGE_MIN_PIXELS = 56 * 56
IMAGE_MAX_PIXELS = 256 * 28 * 28
VIDEO_MIN_PIXELS = 56 * 56
VIDEO_MAX_PIXELS = 256 * 28 * 28


def mrope_section(head_dim: int) -> list[int]:
    """Multimodal RoPE split (temporal, height, width) of head_dim / 2 frequencies; [16, 24, 24] for head_dim 128."""
    half = head_dim // 2
    spatial = (half - half // 4) // 2
    return [half - 2 * spatial, spatial, spatial]


def build_tokenizer(vocab: int = 1024, corpus: Sequence[str] = TOKENIZER_CORPUS):
    """A byte-level BPE `PreTrainedTokenizerFast` with Qwen's special tokens, eos `<|im_end|>`, pad `<|endoftext|>`,
    its merges learnt from `corpus` (default: a few chat/spatial sentences)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab - len(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(corpus) * 20, trainer=trainer)
    backend.add_special_tokens(list(QWEN_SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        chat_template=QWEN_CHAT_TEMPLATE,
    )


def build_processor(tokenizer):
    """`Qwen2_5_VLProcessor` with Qwen2-VL image and video processors (patch 14, merge 2, temporal patch 2)."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    shared = {"patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": IMAGE_MIN_PIXELS, "longest_edge": IMAGE_MAX_PIXELS}, **shared
    )
    video_processor = Qwen2VLVideoProcessor(
        size={"shortest_edge": VIDEO_MIN_PIXELS, "longest_edge": VIDEO_MAX_PIXELS}, **shared
    )
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN_CHAT_TEMPLATE,
    )


def build_config(tokenizer, size: TinySize):
    """`Qwen2_5_VLConfig` (transformers 5 layout: rope settings under `text_config.rope_parameters`)."""
    from transformers import Qwen2_5_VLConfig

    ids = tokenizer.convert_tokens_to_ids
    head_dim = size.text_hidden // size.text_heads
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": size.text_hidden,
        "intermediate_size": 2 * size.text_hidden if size.text_hidden < 128 else 4 * size.text_hidden,
        "num_hidden_layers": size.text_layers,
        "num_attention_heads": size.text_heads,
        "num_key_value_heads": size.text_kv_heads,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "mrope_section": mrope_section(head_dim), "rope_theta": 1e6},
        "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": ids("<|im_end|>"),
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision_config = {
        "depth": size.vision_depth,
        "hidden_size": size.vision_hidden,
        "intermediate_size": 2 * size.vision_hidden if size.vision_hidden < 128 else 4 * size.vision_hidden,
        "num_heads": size.vision_heads,
        "out_hidden_size": size.text_hidden,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [size.vision_depth - 1],
        "tokens_per_second": 2,
    }
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )


def build_tiny(size: str = "tiny", seed: int = 0, vocab: int | None = None, corpus: Sequence[str] | None = None):
    """(model, processor): a randomly initialised Qwen2.5-VL of `size` ("tiny" | "medium" | "small"), in memory, fp32.

    `vocab` and `corpus` replace the size's vocabulary and the tokenizer's training text (`vst train base` trains its
    tokenizer on the base data so that every vocabulary word is one token)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    if size not in SIZES:
        raise ValueError(f"unknown tiny model size {size!r}; choose one of {sorted(SIZES)}")
    dims = SIZES[size]
    if vocab is not None:
        dims = dataclasses.replace(dims, vocab=vocab)
    tokenizer = build_tokenizer(dims.vocab, TOKENIZER_CORPUS if corpus is None else corpus)
    processor = build_processor(tokenizer)
    config = build_config(tokenizer, dims)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    # A model built from a config has no generation defaults; without these `generate` never stops at <|im_end|>.
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = config.text_config.bos_token_id
    model.eval()
    return model, processor


def save_tiny(path: str | Path, size: str = "tiny", seed: int = 0, vocab: int | None = None,
              corpus: Sequence[str] | None = None) -> Path:
    """Write a tiny model + processor folder at `path` (unless one is already complete there) and return it.

    The folder is written under a per-process staging name and renamed at the end, so an interrupted build never
    passes for a finished one and concurrent builders (one per rank) never write into each other's files: the first
    rename wins and the others discard their copy. A folder with `config.json` and `tokenizer.json` is complete.
    """
    path = Path(path)
    if is_complete(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f"{path.name}.incomplete-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model, processor = build_tiny(size, seed, vocab, corpus)
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        if path.exists() and not is_complete(path):
            shutil.rmtree(path)
        try:
            staging.rename(path)
        except OSError:
            if not is_complete(path):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def is_complete(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
