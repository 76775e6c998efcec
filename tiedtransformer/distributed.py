"""The one collective the project needs outside Lightning's own: gathering Python objects."""

from __future__ import annotations

import torch.distributed as dist


def all_gather_objects(obj) -> list:
    """``obj`` from every rank, in rank order; ``[obj]`` when not distributed."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        out = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]
