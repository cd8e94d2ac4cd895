"""Identical masks on every rank: decisions use shared inputs and rank 0 has the last word."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast_masks(masks: list[Tensor]) -> None:
    """Copy rank 0's masks to every rank (bool is sent as uint8, which every backend carries)."""
    for mask in masks:
        buf = mask.to(torch.uint8)
        dist.broadcast(buf, src=0)
        mask.copy_(buf.bool())


def average_(tensors: list[Tensor]) -> None:
    """All-reduce in place to the mean over ranks (dense gradients for RigL-style growth)."""
    world = dist.get_world_size()
    for t in tensors:
        dist.all_reduce(t)
        t.div_(world)


def all_true(flag: bool) -> bool:
    """True only if ``flag`` holds on every rank, so all ranks take the same branch."""
    t = torch.tensor([int(flag)], dtype=torch.int32)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())
