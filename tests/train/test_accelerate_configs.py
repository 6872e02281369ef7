"""configs/accelerate/*.yaml: each loads through accelerate's own config class and launcher, and yields the plugin
settings it promises (FSDP2 full shard with full-state-dict saves, ZeRO-3 with trainer-driven clipping, DDP)."""

import os
from pathlib import Path
from unittest import mock

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

ACCELERATE = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
WRAPPED = ["Qwen2_5_VLDecoderLayer", "Qwen2_5_VLVisionBlock"]


def launch_args(name):
    """What `accelerate launch --config_file <name> -m vst.cli train sft` resolves before starting processes."""
    args = launch_command_parser().parse_args(["--config_file", str(ACCELERATE / name), "-m", "vst.cli", "train", "sft"])
    args, defaults, _ = _validate_launch_command(args)
    return args, defaults


@pytest.mark.parametrize("name, distributed_type", [
    ("fsdp2.yaml", DistributedType.FSDP), ("zero3.yaml", DistributedType.DEEPSPEED),
    ("ddp.yaml", DistributedType.MULTI_GPU)])
def test_config_loads_with_accelerates_own_class(name, distributed_type):
    config = load_config_from_file(str(ACCELERATE / name))
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type == distributed_type
    assert (config.mixed_precision, config.num_processes, config.use_cpu) == ("bf16", 8, False)
    # accelerate checks only the top-level keys; nested keys become launch options, so each must be one
    options = {action.dest for action in launch_command_parser()._actions}
    nested = {**config.fsdp_config, **config.deepspeed_config}
    assert set(nested) <= options, set(nested) - options


def test_fsdp2_is_full_shard_of_the_qwen_layers_with_sharded_checkpoints():
    args, _ = launch_args("fsdp2.yaml")
    assert args.use_fsdp and not args.use_deepspeed
    with mock.patch.dict(os.environ, prepare_multi_gpu_env(args)):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.transformer_cls_names_to_wrap == WRAPPED
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"  # the final save is full (vst.train.sft.save_run)


def test_fsdp2_wrap_classes_exist_in_qwen2_5_vl(tiny_model):
    names = {type(module).__name__ for module in tiny_model[0].modules()}
    assert set(WRAPPED) <= names


def test_zero3_leaves_clipping_and_accumulation_to_the_trainer():
    args, defaults = launch_args("zero3.yaml")
    assert args.use_deepspeed and not args.use_fsdp
    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)  # as `launch_command` does
    _, env = prepare_deepspeed_cmd_env(args)
    with mock.patch.dict(os.environ, env):
        config = DeepSpeedPlugin().deepspeed_config
    assert config["zero_optimization"]["stage"] == 3
    assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    # "auto": transformers fills these from max_grad_norm / gradient_accumulation_steps of the train YAML
    assert config["gradient_clipping"] == "auto" and config["gradient_accumulation_steps"] == "auto"


def test_ddp_launches_one_process_per_gpu():
    args, _ = launch_args("ddp.yaml")
    assert args.multi_gpu and not (args.use_fsdp or args.use_deepspeed)
    assert args.num_processes == 8 and args.gpu_ids == "all"
