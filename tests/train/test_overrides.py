"""vst overrides private methods of TRL and transformers (VSTGRPOTrainer, the SFT trainer's resume fix, the vit_lr
optimizer, the rank-uniform vision hook). Those signatures are not a public API: this test pins the ones our code
was written against, so an upgrade that changes one fails here, loudly and by name, instead of training wrongly.
pyproject pins `trl>=1.16,<1.17` for the same reason. To upgrade: re-read each method upstream, adapt the override,
then update its entry below."""

import inspect

import pytest
import transformers
import trl
from transformers import GenerationMixin, Trainer
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel
from trl import GRPOTrainer

from vst.train.rl import VSTGRPOTrainer
from vst.train.sft import CheckpointResumeMixin, VitLrMixin

PINNED = {
    # TRL 1.16 GRPOTrainer: overridden by VSTGRPOTrainer
    (GRPOTrainer, "_tokenize_prompts"): ["self", "prompts"],
    (GRPOTrainer, "_generate_single_turn"): ["self", "prompt_ids", "images", "multimodal_fields", "num_generations",
                                             "has_tool_images"],
    (GRPOTrainer, "_calculate_rewards"): ["self", "inputs", "prompts", "completions", "completion_ids_list"],
    (GRPOTrainer, "_generate_and_score_completions"): ["self", "inputs"],
    (GRPOTrainer, "_compute_loss"): ["self", "model", "inputs"],
    (GRPOTrainer, "_get_per_token_logps_and_entropies"): [
        "self", "model", "input_ids", "attention_mask", "logits_to_keep", "batch_size", "compute_entropy",
        "compute_aux_loss", "pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes",
        "num_tiles", "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids"],
    # transformers 5.24 Trainer: CheckpointResumeMixin and VitLrMixin
    (Trainer, "_load_from_checkpoint"): ["self", "resume_from_checkpoint", "model"],
    (Trainer, "_load_best_model"): ["self"],
    (Trainer, "create_optimizer"): ["self", "model"],
    (Trainer, "get_decay_parameter_names"): ["self", "model"],
    (Trainer, "get_optimizer_cls_and_kwargs"): ["args", "model"],
    # transformers 5.24 generation and Qwen2.5-VL: vst.models.vision
    (GenerationMixin, "_prepare_multimodal_encoder_kwargs_for_generation"): ["self", "model_kwargs"],
    (Qwen2_5_VLModel, "forward"): ["self", "input_ids", "attention_mask", "position_ids", "cache", "inputs_embeds",
                                   "use_cache", "pixel_values", "pixel_values_videos", "image_grid_thw",
                                   "video_grid_thw", "mm_token_type_ids", "second_per_grid_ts", "mm_encoder_outputs",
                                   "kwargs"],
}


@pytest.mark.parametrize("owner, name", list(PINNED), ids=[f"{o.__name__}.{n}" for o, n in PINNED])
def test_overridden_upstream_signatures_are_the_pinned_ones(owner, name):
    method = getattr(owner, name, None)
    assert method is not None, f"{owner.__module__}.{owner.__name__}.{name} is gone (trl {trl.__version__}, " \
                               f"transformers {transformers.__version__}): re-read it upstream and adapt vst's override"
    got = list(inspect.signature(method).parameters)
    assert got == PINNED[owner, name], (f"{owner.__name__}.{name} changed signature in trl {trl.__version__} / "
                                        f"transformers {transformers.__version__}: {got}")


def test_our_overrides_still_override_something():
    for cls, names in ((VSTGRPOTrainer, ["_tokenize_prompts", "_generate_single_turn", "_calculate_rewards",
                                         "_generate_and_score_completions", "_compute_loss",
                                         "_get_per_token_logps_and_entropies"]),
                       (CheckpointResumeMixin, ["_load_from_checkpoint", "_load_best_model"]),
                       (VitLrMixin, ["create_optimizer"])):
        for name in names:
            assert name in vars(cls), f"{cls.__name__}.{name} no longer defined here: update PINNED"


def test_trl_is_the_pinned_minor():
    assert trl.__version__.startswith("1.16."), trl.__version__
