"""Projection / prediction MLP heads (SimCLR, MoCo v2, BYOL, SimSiam, Barlow Twins, VICReg)."""

from __future__ import annotations

from torch import nn

__all__ = ["mlp"]


def mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    num_layers: int = 2,
    batch_norm: bool = True,
    last_batch_norm: bool = False,
) -> nn.Sequential:
    """``num_layers`` Linear layers, ``(BatchNorm1d,) ReLU`` between them.

    :param in_dim: input features; :param hidden_dim: hidden width; :param out_dim: output size.
    :param batch_norm: BatchNorm1d after each hidden Linear (BYOL, SimSiam, Barlow, VICReg).
    :param last_batch_norm: BatchNorm1d (no affine) on the output (SimSiam's projector).
    """
    if num_layers < 1:
        raise ValueError(f"mlp: num_layers must be >= 1, got {num_layers}")
    layers: list[nn.Module] = []
    d = in_dim
    for _ in range(num_layers - 1):
        layers.append(nn.Linear(d, hidden_dim, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden_dim))
        layers.append(nn.ReLU())
        d = hidden_dim
    layers.append(nn.Linear(d, out_dim))
    if last_batch_norm:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)
