"""The offline tiny Qwen2.5-VL: tokenizer, chat template, config rules, save/load round trip, generation."""

import pytest
import torch

from vst.models import loading
from vst.models.tiny import QWEN_SPECIAL_TOKENS, SIZES, build_config, build_tokenizer, mrope_section, save_tiny


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.mark.parametrize(("head_dim", "expected"), [(16, [2, 3, 3]), (32, [4, 6, 6]), (128, [16, 24, 24])])
def test_mrope_section_sums_to_half_head_dim(head_dim, expected):
    # 128 -> [16, 24, 24] is Qwen2.5-VL-7B's own config.
    assert mrope_section(head_dim) == expected
    assert sum(expected) == head_dim // 2


def test_special_tokens_are_single_ids_and_text_round_trips(tokenizer):
    for token in QWEN_SPECIAL_TOKENS:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.bos_token is None
    text = "<think>距离 3.5 m — ok</think>B. north"  # bytes outside the training corpus still round-trip
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_chat_template_renders_like_qwen(tokenizer):
    messages = [
        {"role": "user", "content": [
            {"type": "image"}, {"type": "video", "video": b"x"}, {"type": "image", "image": b"y"},
            {"type": "text", "text": "Where?"},
        ]},
        {"role": "assistant", "content": "Here."},
    ]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_vision_id=True, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>"
        "Video 1: <|vision_start|><|video_pad|><|vision_end|>"
        "Picture 2: <|vision_start|><|image_pad|><|vision_end|>Where?<|im_end|>\n"
        "<|im_start|>assistant\nHere.<|im_end|>\n<|im_start|>assistant\n"
    )
    with_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert tokenizer.apply_chat_template(with_system, tokenize=False).startswith("<|im_start|>system\nBe brief.<|im_end|>")


def test_small_size_is_about_twenty_million_parameters(tokenizer):
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(build_config(tokenizer, SIZES["small"]))
    assert 15e6 < sum(p.numel() for p in model.parameters()) < 30e6


def test_saved_folder_reloads_offline_with_the_same_weights(tiny_folder):
    from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2_5_VLProcessor

    processor = AutoProcessor.from_pretrained(tiny_folder)
    model = AutoModelForImageTextToText.from_pretrained(tiny_folder)
    again = AutoModelForImageTextToText.from_pretrained(tiny_folder)
    assert isinstance(processor, Qwen2_5_VLProcessor)
    assert processor.video_processor is not None
    assert model.config.image_token_id == processor.image_token_id
    assert model.config.video_token_id == processor.video_token_id
    for (name, weight), (_, other) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(weight, other), name


def test_save_tiny_reuses_a_complete_folder(tiny_folder):
    stamp = (tiny_folder / "model.safetensors").stat().st_mtime_ns
    assert save_tiny(tiny_folder) == tiny_folder
    assert (tiny_folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert not list(tiny_folder.parent.glob("*.incomplete*"))


def test_greedy_generation_is_the_same_with_and_without_cache(tiny_model):
    model, processor = tiny_model
    messages = [{"role": "user", "content": [{"type": "text", "text": "How far is the chair?"}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    kwargs = {"max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False}
    with torch.no_grad():
        cached = model.generate(**inputs, use_cache=True, **kwargs)
        uncached = model.generate(**inputs, use_cache=False, **kwargs)
    assert cached.shape == (1, inputs["input_ids"].shape[1] + 6)
    assert torch.equal(cached, uncached)


def test_load_model_names_and_cache_dir(tiny_folder, monkeypatch):
    monkeypatch.setenv("VST_CACHE", str(tiny_folder.parent))
    assert loading.cache_dir() == tiny_folder.parent
    assert loading.resolve("tiny") == str(tiny_folder)
    assert loading.resolve("Qwen/Qwen2.5-VL-3B-Instruct") == "Qwen/Qwen2.5-VL-3B-Instruct"
    model, _ = loading.load_model(str(tiny_folder), dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16 and not model.training
    with pytest.raises(ValueError, match="unknown dtype"):
        loading.load_model(str(tiny_folder), dtype="float33")


def test_a_missing_shipped_checkpoint_says_how_to_make_it(monkeypatch, tmp_path):
    from vst.models import loading

    monkeypatch.setitem(loading.SHIPPED_MODELS, "tiny-base", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="vst train base --config configs/train/tiny-base.yaml"):
        loading.resolve("tiny-base")
