"""A first-in-first-out ring of embeddings kept in buffers (MoCo's queue, NNCLR's support set)."""

from __future__ import annotations

import torch

__all__ = ["push"]


@torch.no_grad()
def push(ring: torch.Tensor, ptr: torch.Tensor, rows: torch.Tensor) -> None:
    """Write ``rows`` ``(n, D)`` into ``ring`` ``(K, D)`` from position ``ptr`` (a 0-dim long
    tensor), wrapping around and overwriting the oldest rows; ``ptr`` advances by ``n``. Rows
    beyond the ring's size are dropped. In place, on the device (no host sync)."""
    k = ring.shape[0]
    n = min(rows.shape[0], k)
    idx = (ptr + torch.arange(n, device=rows.device)) % k
    ring[idx] = rows[:n].to(ring.dtype)
    ptr.copy_((ptr + n) % k)
