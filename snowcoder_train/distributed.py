"""Multi-GPU training with FSDP2 (`torch.distributed.fsdp.fully_shard`) under torchrun.

    torchrun --nproc-per-node 8 -m snowcoder_train --manifest M --phase phase1

Only taken when WORLD_SIZE > 1; the tests run it on a CPU with two gloo processes (the NCCL
and multi-node paths are untested here). Each decoder layer is one FSDP unit and the root holds the
(tied) embedding, final norm and LM head. Checkpoints gather full state dicts to rank 0, which
alone writes them; resume loads full state on every rank and re-shards.
With one process every helper falls through to the plain single-device call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.world_size > 1


def env_rank() -> int:
    """This process's rank as torchrun sets it (0 when not under torchrun)."""
    return int(os.environ.get("RANK", "0"))


def init_distributed() -> Dist:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Dist(dist.get_rank(), world_size, local_rank)


def shard_model(model: torch.nn.Module, ctx: Dist) -> torch.nn.Module:
    if not ctx.sharded:
        return model
    from torch.distributed.fsdp import fully_shard

    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    return model


def _full_options(**extra: Any) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True, **extra)


def full_model_state(model: torch.nn.Module, ctx: Dist) -> dict[str, Any] | None:
    """The whole model's state on rank 0 (None single-process: save_pretrained reads the model)."""
    if not ctx.sharded:
        return None
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    state = get_model_state_dict(model, options=_full_options())
    if model.config.tie_word_embeddings:  # gathered copies are no longer one tensor
        state.pop("lm_head.weight", None)
    return state


def full_optimizer_state(model: torch.nn.Module, optimizer: Any, ctx: Dist) -> dict[str, Any]:
    if not ctx.sharded:
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=_full_options())


def load_optimizer_state(model: torch.nn.Module, optimizer: Any, state: Any, ctx: Dist) -> None:
    if not ctx.sharded:
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=_full_options())


def mean_over_ranks(value: float, device: torch.device, ctx: Dist) -> float:
    if not ctx.sharded:
        return value
    tensor = torch.tensor([value], device=device, dtype=torch.float64)
    dist.all_reduce(tensor)  # SUM: gloo has no AVG
    return tensor.item() / ctx.world_size


def barrier(ctx: Dist) -> None:
    if ctx.sharded:
        dist.barrier()


def shutdown(ctx: Dist) -> None:
    if ctx.sharded and dist.is_initialized():
        dist.destroy_process_group()
