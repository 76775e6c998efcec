"""Collectives the project needs outside Lightning's own: gathering Python objects, and sharding the
network with FSDP2 (``fully_shard``) under Lightning's ``ModelParallelStrategy``."""

from __future__ import annotations

import torch
import torch.distributed as dist

from tiedtransformer.model.network import TiedTransformer


def all_gather_objects(obj) -> list:
    """``obj`` from every rank, in rank order; ``[obj]`` when not distributed."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        out = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def shard(net: TiedTransformer, mesh) -> None:
    """FSDP2 on ``net``, in place. Each encoder and decoder layer is one group; the root group holds
    the rest, among it the token matrices, so a tied matrix stays one Parameter, sharded once,
    gathered once per step and its gradients (summed over every role) reduce-scattered once.
    ``mesh``: 1-D shards over all its ranks; 2-D replicates over the first dimension and shards over
    the second (HSDP). ``output_inputs`` (the training forward) gathers the root's weights as
    ``forward`` does."""
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    for block in (*net.encoder, *net.decoder):
        fully_shard(block, mesh=mesh)
    fully_shard(net, mesh=mesh)
    register_fsdp_forward_method(net, "output_inputs")


def is_sharded(net: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(net, FSDPModule)


def full_copy(net: TiedTransformer) -> TiedTransformer:
    """A plain (unsharded, eval-mode) copy of a sharded ``net`` with its full weights, tied as the
    original. Collective: every rank must call it, and every rank gets the copy."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(net, options=StateDictOptions(full_state_dict=True))
    device = next(iter(state.values())).device
    copy = TiedTransformer(net.cfg).to(device)
    copy.load_state_dict(state)
    return copy.eval()


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every tensor is finite on every rank. Sharded (DTensor) tensors are checked shard by
    shard and the verdict agreed by all ranks, so that they all skip or stop together."""
    from torch.distributed.tensor import DTensor

    local = [t.to_local() if isinstance(t, DTensor) else t for t in tensors]
    ok = torch.stack(torch._foreach_norm(local)).isfinite().all() if local else torch.tensor(True)
    if any(isinstance(t, DTensor) for t in tensors) and dist.is_initialized():
        ok = ok.to(torch.int32)
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok)
