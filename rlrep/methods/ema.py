"""Momentum (EMA) target networks: one in-place, foreach update used by every method."""

from __future__ import annotations

import copy
import math
import numbers

import torch
from torch import nn

__all__ = ["check_momentum", "cosine_momentum", "make_target", "update_momentum"]


def check_momentum(momentum: float, name: str = "momentum") -> float:
    """``momentum`` as a float in [0, 1], or ``ValueError`` naming ``name``."""
    real = isinstance(momentum, numbers.Real) and not isinstance(momentum, bool)
    if not (real and 0.0 <= momentum <= 1.0):
        raise ValueError(
            f"{name} must be in [0, 1] (1 freezes the target, 0 copies the online network), "
            f"got {momentum!r}; typical values are 0.95–0.999"
        )
    return float(momentum)


def make_target(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` to follow it by EMA: same weights, ``requires_grad=False``."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """``θ_target ← m·θ_target + (1 − m)·θ_online`` for every parameter, in place, as one
    foreach kernel per dtype (MoCo, He et al. 2020, Eq. 2; SB3's ``polyak_update`` with
    ``τ = 1 − m``). Buffers (BatchNorm statistics) are copied, as SB3 does.

    :param online: the network being trained.
    :param target: its EMA copy (same architecture).
    :param momentum: ``m`` in [0, 1]; 1 freezes the target, 0 copies the online network.
    """
    check_momentum(momentum, "update_momentum: momentum")
    online_params, target_params = list(online.parameters()), list(target.parameters())
    if len(online_params) != len(target_params):
        raise ValueError(
            f"update_momentum: online has {len(online_params)} parameters, target "
            f"{len(target_params)}; the target must be a copy of the online network"
        )
    if target_params:
        torch._foreach_lerp_(target_params, online_params, 1.0 - momentum)
    for online_buffer, target_buffer in zip(online.buffers(), target.buffers(), strict=True):
        target_buffer.copy_(online_buffer)


def cosine_momentum(step: int, total_steps: int, base: float = 0.996, final: float = 1.0) -> float:
    """BYOL's schedule (Grill et al. 2020, §3.2): ``m = final − (final − base)·(cos(π t / T) + 1)/2``,
    ``base`` at step 0 rising to ``final`` at ``total_steps``."""
    t = min(max(step, 0), total_steps) / max(total_steps, 1)
    return final - (final - base) * (math.cos(math.pi * t) + 1) / 2
