"""Representation-health figures, to catch collapse while training."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["effective_rank", "feature_std"]


@torch.no_grad()
def feature_std(features: torch.Tensor) -> torch.Tensor:
    """Std over the batch of L2-normalised features, averaged over dimensions, times √D
    (SimSiam, Chen & He 2021, §4.1): ≈ 1 for i.i.d. Gaussian features, 0 at collapse. Untrained
    encoders on similar RL frames already read 0.01–0.4 (README, ``experiments/aux_scales.py``):
    compare a run with its encoder's random-init value, and with :func:`effective_rank`.

    :param features: ``(N, D)``. :return: scalar tensor (no host sync).
    """
    z = F.normalize(features.float(), dim=1)
    return z.std(dim=0).mean() * features.shape[1] ** 0.5


@torch.no_grad()
def effective_rank(features: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Effective rank (Roy & Vetterli 2007): ``exp(H(σ / Σσ))`` of the singular values of the
    centred features; between 1 (collapsed to a line) and ``min(N, D)``.

    :param features: ``(N, D)``. :return: scalar tensor.
    """
    z = features.float() - features.float().mean(dim=0)
    s = torch.linalg.svdvals(z)
    p = s / (s.sum() + eps)
    return torch.exp(-(p * (p + eps).log()).sum())
