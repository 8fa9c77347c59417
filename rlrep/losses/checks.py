"""Argument checks shared by the losses: clear ``ValueError``s before any arithmetic."""

from __future__ import annotations

import math
import numbers

import torch

__all__ = ["check_loss_weights", "check_pair", "check_temperature"]


def check_pair(
    a: torch.Tensor, b: torch.Tensor, fn: str, names: str = "query, key", min_batch: int = 1
) -> None:
    """Equal ``(N, D)`` shapes with ``N >= min_batch`` (2 where the batch supplies negatives)."""
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(
            f"{fn}: expected {names} of equal shape (N, D), got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[0] < min_batch:
        why = "the other samples of the batch are the negatives" if min_batch > 1 else "no loss"
        raise ValueError(
            f"{fn}: needs a batch of at least {min_batch} samples ({why}), got N={a.shape[0]}; "
            f"use a batch size >= {min_batch}"
        )


def check_temperature(temperature: float, fn: str) -> None:
    """``ValueError`` unless ``temperature`` is a finite number > 0 (0 gives NaN logits).

    A tensor (a learnable temperature) is not checked: reading it would sync with the device.
    """
    if isinstance(temperature, torch.Tensor):
        return
    ok = isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
    if not (ok and math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            f"{fn}: temperature must be a finite number > 0, got {temperature!r}; "
            "typical values are 0.1–0.5 (SimCLR 0.5, MoCo v2 0.2; 1 for CURL)"
        )


def check_loss_weights(fn: str, **weights: float) -> None:
    """``ValueError`` naming the term unless every weight is a finite number >= 0 (a negative
    one rewards what its term penalises: correlated or collapsed dimensions)."""
    for name, value in weights.items():
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (ok and math.isfinite(value) and value >= 0):
            raise ValueError(f"{fn}: {name} must be a finite number >= 0, got {value!r}")
