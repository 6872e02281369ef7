"""`python -m torch.distributed.run … tests/train/fsdp_cpu.py train sft …`: the vst CLI under accelerate's real FSDP2
path on CPU/gloo, for tests.

accelerate turns FSDP on only for accelerator devices (`AcceleratorState` keeps MULTI_CPU when `fsdp_plugin` is
given on a CPU machine and silently runs DDP). This launcher makes the state take the FSDP branch it would take on
GPUs — the one change — so the Trainer prepares the model with `fully_shard`, saves `SHARDED_STATE_DICT` checkpoints
through torch.distributed.checkpoint and resumes through transformers' FSDP path, as on a GPU cluster. Each rank
writes `fsdp-rank<R>.json` into `$VST_FSDP_REPORT` saying whether every trainable parameter was a DTensor at every
optimizer step.
"""

import json
import os
import sys
from pathlib import Path

from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

_init = AcceleratorState.__init__


def _fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        # what accelerate's GPU branch does: the type, the plugin, and the type copied into PartialState (which every
        # later AcceleratorState() reads back)
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP


AcceleratorState.__init__ = _fsdp_on_cpu

import transformers.trainer  # noqa: E402
from transformers import TrainerCallback  # noqa: E402


class ShardedCheck(TrainerCallback):
    def __init__(self):
        self.steps, self.sharded = 0, True

    def on_step_end(self, args, state, control, model=None, **kwargs):
        from torch.distributed.tensor import DTensor

        self.steps += 1
        self.sharded &= all(isinstance(p, DTensor) for p in model.parameters() if p.requires_grad)

    def on_train_end(self, args, state, control, **kwargs):
        folder = os.environ.get("VST_FSDP_REPORT")
        if folder:
            rank = int(os.environ.get("RANK", 0))
            Path(folder, f"fsdp-rank{rank}.json").write_text(json.dumps({"steps": self.steps, "sharded": self.sharded}))


transformers.trainer.DEFAULT_CALLBACKS = [*transformers.trainer.DEFAULT_CALLBACKS, ShardedCheck]

if __name__ == "__main__":
    from vst.cli import app

    sys.exit(app(sys.argv[1:]))
