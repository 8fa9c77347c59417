"""Representation-health figures, to catch collapse while training, and what contrastive
learning is said to optimise: alignment and uniformity (Wang & Isola 2020), InfoNCE's bound."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["alignment", "effective_rank", "feature_std", "info_nce_bound", "uniformity"]


@torch.no_grad()
def feature_std(features: torch.Tensor) -> torch.Tensor:
    """Std over the batch of L2-normalised features, averaged over dimensions, times √D
    (SimSiam, Chen & He 2021, §4.1): ≈ 1 for i.i.d. Gaussian features, 0 at collapse. Untrained
    encoders on similar RL frames already read 0.01–0.4 (docs/benchmarks.md, ``experiments/aux_scales.py``):
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


@torch.no_grad()
def alignment(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Alignment of positive pairs, ``E ‖f(x) − f(y)‖₂^α`` on L2-normalised features (Wang &
    Isola 2020, Eq. 4; α = 2): 0 when both views map to the same point, at most 2^α.

    :param x: ``(N, D)`` features of one view; :param y: ``(N, D)`` of the other (row-aligned).
    :return: scalar tensor (lower is better aligned).
    """
    if x.dim() != 2 or x.shape != y.shape:
        raise ValueError(
            f"alignment: expected two (N, D) feature tensors of equal shape, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    d = F.normalize(x.float(), dim=1) - F.normalize(y.float(), dim=1)
    return d.norm(dim=1).pow(alpha).mean()


@torch.no_grad()
def uniformity(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Uniformity, ``log E exp(−t ‖f(x) − f(y)‖²)`` over distinct pairs of the batch on
    L2-normalised features (Wang & Isola 2020, Eq. 5; t = 2): 0 when collapsed to one point,
    more negative the more uniformly the features cover the sphere.

    :param x: ``(N, D)`` features, N >= 2. :return: scalar tensor (lower is more uniform).
    """
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(
            f"uniformity: expected (N, D) features with N >= 2 (it compares pairs), got "
            f"{tuple(x.shape)}"
        )
    z = F.normalize(x.float(), dim=1)
    return torch.pdist(z).pow(2).mul(-t).exp().mean().log()


def info_nce_bound(loss: torch.Tensor | float, num_candidates: int) -> torch.Tensor | float:
    """The mutual-information lower bound an InfoNCE loss certifies, ``I ≥ log N − L``
    (van den Oord et al. 2018, Eq. 10), in nats; N counts the positive and its negatives.
    It cannot exceed ``log N``: a bound near it says the batch, not the encoder, is the limit.

    :param loss: the InfoNCE loss ``L`` (a scalar tensor or float).
    :param num_candidates: ``N`` (CURL: batch size; NT-Xent: 2B − 1; MoCo: 1 + queue size).
    """
    if not isinstance(num_candidates, int) or num_candidates < 2:
        raise ValueError(
            f"info_nce_bound: num_candidates must be an int >= 2 (the positive and at least "
            f"one negative), got {num_candidates!r}"
        )
    return math.log(num_candidates) - loss
