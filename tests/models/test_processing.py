"""Samples/messages -> tensors: messages, budgets, label masking, padding sides, token counts, a learning check."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vst.data.sample import Media, Sample, Turn
from vst.models.processing import (
    DEFAULT_SYSTEM_PROMPT,
    IGNORE_INDEX,
    THINKING_SYSTEM_PROMPT,
    Budgets,
    encode_for_generation,
    encode_for_training,
    load_video,
    prompt_messages,
    sample_to_messages,
)

# Small budgets so that a batch is ~120 tokens: images of 28^2..84^2 pixels, 4 x 56^2 pixels for an image set.
SMALL = Budgets(image_max_pixels=84 * 84, total_pixels=4 * 56 * 56, video_min_pixels=28 * 28, video_fps=2.0)


@pytest.fixture(scope="module")
def training_batch(tiny_model, mixed_samples):
    return encode_for_training(mixed_samples, tiny_model[1], SMALL)


# -- messages --------------------------------------------------------------------------------------------------------
def test_messages_keep_placeholder_order_and_pick_the_system_prompt(mixed_samples):
    single, multi, video = mixed_samples
    messages = sample_to_messages(single)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"][0]["text"] == DEFAULT_SYSTEM_PROMPT
    # VST strips the text around placeholders: "<|image_pad|>\nQ" -> [image, "Q"].
    assert messages[1]["content"] == [{"type": "image", "image": single.images[0].bytes},
                                      {"type": "text", "text": "What is left of the chair?"}]
    assert messages[2]["content"] == [{"type": "text", "text": "The table."}]
    assert sample_to_messages(multi)[0]["content"][0]["text"] == THINKING_SYSTEM_PROMPT
    assert [item["type"] for item in sample_to_messages(video)[1]["content"]] == ["video", "text"]
    assert sample_to_messages(single, system_prompt="Be brief.")[0]["content"][0]["text"] == "Be brief."
    assert [m["role"] for m in prompt_messages(single)] == ["system", "user"]


def test_interleaved_placeholders_consume_media_in_order():
    sample = Sample("s", [Turn("human", "A <|image_pad|> then B <|image_pad|> end"), Turn("gpt", "ok")],
                    [Media(b"first"), Media(b"second")], modality="multi")
    content = sample_to_messages(sample)[1]["content"]
    assert content == [{"type": "text", "text": "A"}, {"type": "image", "image": b"first"},
                       {"type": "text", "text": "then B"}, {"type": "image", "image": b"second"},
                       {"type": "text", "text": "end"}]


def test_media_without_placeholders_go_first_and_mismatches_raise():
    legacy = Sample("legacy", [Turn("human", "Describe."), Turn("gpt", "A room.")], [Media(b"a"), Media(b"b")])
    assert [item["type"] for item in sample_to_messages(legacy)[1]["content"]] == ["image", "image", "text"]
    broken = Sample("broken", [Turn("human", "<|image_pad|><|image_pad|>Q"), Turn("gpt", "A")], [Media(b"a")])
    with pytest.raises(ValueError, match="broken: 2 media placeholders but 1"):
        sample_to_messages(broken)


# -- budgets ---------------------------------------------------------------------------------------------------------
def test_vst_budget_defaults():
    budgets = Budgets()
    assert budgets.pixel_budget == int(16384 * 28 * 28 * 0.8)
    assert budgets.image_max_pixels_for(1) == 4096 * 28 * 28
    assert budgets.image_max_pixels_for(4) == int(budgets.pixel_budget / 4)
    assert budgets.image_max_pixels_for(1000) == int(128 * 28 * 28 * 1.05)  # floor: 1.05 x video min pixels
    assert budgets.max_frames == budgets.pixel_budget * 2 // int(128 * 28 * 28 * 1.05)


def test_video_is_sampled_by_fps_and_capped_by_max_frames(mp4_bytes):
    frames, metadata = load_video(mp4_bytes, SMALL)
    assert len(frames) == 4  # 2 s at 2 fps
    assert metadata == {"total_num_frames": 8, "fps": 4.0, "frames_indices": [0, 2, 5, 7]}
    assert all(frame.size[0] % 28 == 0 and frame.size[1] % 28 == 0 for frame in frames)
    capped, _ = load_video(mp4_bytes, Budgets(total_pixels=4 * 56 * 56, video_min_pixels=28 * 28, video_max_frames=2))
    assert len(capped) == 2
    given, metadata = load_video([np.zeros((56, 56, 3), np.uint8)] * 6, SMALL)
    assert len(given) == 6 and metadata["frames_indices"] == list(range(6))


# -- training batches ------------------------------------------------------------------------------------------------
def test_training_batch_mixes_images_image_sets_and_video(training_batch):
    assert training_batch["input_ids"].shape[0] == 3
    assert training_batch["image_grid_thw"].shape == (3, 3)  # 1 + 2 images
    assert training_batch["video_grid_thw"].shape == (1, 3)
    assert training_batch["video_grid_thw"][0, 0] == 2  # 4 frames / temporal patch 2
    assert torch.allclose(training_batch["second_per_grid_ts"], torch.tensor([1.0]))  # 2 frames per grid at 2 fps


def test_pad_token_counts_match_the_grids(tiny_model, training_batch):
    processor = tiny_model[1]
    merge = processor.image_processor.merge_size ** 2
    ids = training_batch["input_ids"]
    assert (ids == processor.image_token_id).sum() == training_batch["image_grid_thw"].prod(dim=-1).sum() // merge
    assert (ids == processor.video_token_id).sum() == training_batch["video_grid_thw"].prod(dim=-1).sum() // merge
    assert training_batch["pixel_values"].shape[0] == training_batch["image_grid_thw"].prod(dim=-1).sum()


def test_labels_cover_exactly_the_answers(tiny_model, mixed_samples, training_batch):
    tokenizer = tiny_model[1].tokenizer
    for row, sample in enumerate(mixed_samples):
        labels = training_batch["labels"][row]
        kept = labels != IGNORE_INDEX
        assert tokenizer.decode(training_batch["input_ids"][row][kept]) == sample.response + "<|im_end|>"
        assert torch.equal(labels[kept], training_batch["input_ids"][row][kept])


def test_multi_turn_labels_every_assistant_turn(tiny_model):
    sample = Sample("turns", [Turn("human", "Q1"), Turn("gpt", "A1"), Turn("human", "Q2"), Turn("gpt", "A2")],
                    modality="text")
    batch = encode_for_training([sample], tiny_model[1], SMALL)
    kept = batch["labels"][0] != IGNORE_INDEX
    assert tiny_model[1].tokenizer.decode(batch["input_ids"][0][kept]) == "A1<|im_end|>A2<|im_end|>"


def test_all_token_labels_cover_every_text_token(tiny_model, mixed_samples):
    """`loss_on="all"` (pretraining the base): every real token is a label except padding and visual placeholders."""
    processor = tiny_model[1]
    batch = encode_for_training(mixed_samples, processor, SMALL, loss_on="all")
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    media = torch.isin(ids, torch.tensor([processor.tokenizer.convert_tokens_to_ids(t)
                                          for t in ("<|image_pad|>", "<|video_pad|>")]))
    assert media.any() and not mask.all()  # the batch has both visual tokens and padding to leave out
    kept = labels != IGNORE_INDEX
    assert torch.equal(kept, mask.bool() & ~media)
    assert torch.equal(labels[kept], ids[kept])
    assistant = encode_for_training(mixed_samples, processor, SMALL)["labels"] != IGNORE_INDEX
    assert (assistant & ~kept).sum() == 0 and kept.sum() > 3 * assistant.sum()
    with pytest.raises(ValueError, match="loss_on"):
        encode_for_training(mixed_samples, processor, SMALL, loss_on="answers")


def test_training_pads_right_and_generation_pads_left(tiny_model, mixed_samples, training_batch):
    mask = training_batch["attention_mask"]
    assert mask[:, 0].all() and not mask[:, -1].all()
    generation = encode_for_generation(mixed_samples, tiny_model[1], SMALL)
    mask = generation["attention_mask"]
    assert mask[:, -1].all() and not mask[:, 0].all()
    header = tiny_model[1].tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
    assert all(row[-len(header):].tolist() == header for row in generation["input_ids"])
    assert "labels" not in generation


def test_rows_over_max_seq_len_raise(tiny_model, mixed_samples):
    with pytest.raises(ValueError, match="single-0"):
        encode_for_training(mixed_samples[:1], tiny_model[1], Budgets(image_max_pixels=84 * 84, max_seq_len=20))


def test_forward_loss_is_finite_and_batched_generation_runs(tiny_model, mixed_samples, training_batch):
    model, processor = tiny_model
    with torch.no_grad():
        loss = model(**training_batch).loss
        prompts = encode_for_generation(mixed_samples, processor, SMALL)
        generated = model.generate(**prompts, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert torch.isfinite(loss)
    assert generated.shape == (3, prompts["input_ids"].shape[1] + 4)


def test_loss_goes_down_on_one_batch(tiny_folder, training_batch):
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(tiny_folder).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(**training_batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_estimated_tokens_equal_the_encoded_length_without_decoding_pixels(tiny_model):
    """Single images, image sets and videos (mp4 bytes and frame lists): the header-only estimate is exact."""
    from tests.train.test_rl import video_samples
    from vst.scene.video import encode_mp4
    from vst.data.sample import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, Media, Sample, Turn
    from vst.models.processing import Budgets, encode_for_training, estimate_tokens

    _, processor = tiny_model
    rng = np.random.default_rng(4)

    def jpeg(h, w):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buffer, format="JPEG")
        return buffer.getvalue()

    single = Sample(id="one", conversations=[Turn("human", f"{IMAGE_PLACEHOLDER}\nWhich is closer?"),
                                             Turn("gpt", "A. the chair")], images=[Media(jpeg(480, 640))])
    pair = Sample(id="two", conversations=[Turn("human", f"{IMAGE_PLACEHOLDER}{IMAGE_PLACEHOLDER}\nSame object?"),
                                           Turn("gpt", "yes")], images=[Media(jpeg(300, 500)), Media(jpeg(720, 960))])
    frames = [rng.integers(0, 255, (90, 160, 3), dtype=np.uint8) for _ in range(13)]
    long_video = Sample(id="video", conversations=[Turn("human", f"{VIDEO_PLACEHOLDER}\nHow far did it move?"),
                                                   Turn("gpt", "2.5")],
                        images=[Media(encode_mp4(frames, fps=4.0))], type="video", modality="video")
    for budgets in (Budgets(image_min_pixels=3136, image_max_pixels=50176, video_min_pixels=3136, total_pixels=200704),
                    Budgets()):
        for sample in [single, pair, long_video, *video_samples(1)]:
            encoded = int(encode_for_training([sample], processor, budgets)["attention_mask"].sum())
            assert estimate_tokens(sample, processor, budgets) == encoded, (sample.id, budgets)


def test_collapse_placeholders_keeps_one_token_per_medium():
    from vst.models.processing import collapse_placeholders

    # <vs> pad pad pad <ve> <vs> pad pad <ve> text pad-of-video x2
    ids = [1, 7, 7, 7, 2, 1, 7, 7, 2, 5, 5, 8, 8]
    assert collapse_placeholders(ids, [7, 8]) == [1, 7, 2, 1, 7, 2, 5, 5, 8]
    assert collapse_placeholders([], [7]) == [] and collapse_placeholders([7], [7]) == [7]
