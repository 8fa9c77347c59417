"""Multi-process helpers (``torchrun``): gathering embeddings *with* their gradients.

A plain ``all_gather`` returns tensors cut off from autograd, so negatives from other ranks
would carry no gradient back to the rank that computed them, and an ``all_reduce`` of the loss
scales gradients wrongly (the bug class lightly fixed in #1528 / #1977). :func:`gather` is an
autograd function: forward concatenates every rank's tensor; backward sums, over all ranks, the
gradient each rank's loss sends to each piece and hands every rank the part for its own piece.
With every rank computing the same loss on the gathered batch and DDP averaging parameter
gradients, the result equals one process on the whole global batch.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["gather", "init_from_environment", "is_distributed", "rank", "world_size"]


def init_from_environment(device: torch.device) -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1); True if started here."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or torch.distributed.is_initialized():
        return False
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.size = dist.get_rank(), x.shape[0]
        pieces = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(pieces, x.contiguous())
        return torch.cat(pieces)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every rank's loss contributes to every piece
        return grad[ctx.rank * ctx.size : (ctx.rank + 1) * ctx.size]


def gather(x: torch.Tensor) -> torch.Tensor:
    """``(n, …)`` on each of W ranks (equal n) → ``(W·n, …)``, rank order, gradients kept.
    The identity in a single process."""
    return _Gather.apply(x) if is_distributed() else x
