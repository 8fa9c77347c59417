"""Predictive (non-contrastive) losses: BYOL's normalised MSE and SimSiam's negative cosine."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["byol", "negative_cosine"]


def _check(p: torch.Tensor, z: torch.Tensor, fn: str) -> None:
    if p.dim() != 2 or p.shape != z.shape:
        raise ValueError(
            f"{fn}: expected prediction and target of equal shape (N, D), got "
            f"{tuple(p.shape)} and {tuple(z.shape)}"
        )
    if p.shape[0] == 0:
        raise ValueError(f"{fn}: got an empty batch (N=0); pass at least one sample")


def byol(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's loss (Grill et al. 2020, Eq. 2): ``‖p̄ − z̄‖² = 2 − 2·cos(p, z)``, batch mean.

    The caller detaches the target ``z`` (it comes from the momentum network).

    :param p: ``(N, D)`` online predictions; :param z: ``(N, D)`` target projections.
    :return: scalar in [0, 4].
    """
    _check(p, z, "byol")
    return (2.0 - 2.0 * F.cosine_similarity(p, z, dim=1)).mean()


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's ``D(p, z) = −cos(p, z)`` (Chen & He 2021, Eq. 1), batch mean; detach ``z``
    for the stop-gradient.

    :param p: ``(N, D)``; :param z: ``(N, D)``. :return: scalar in [−1, 1].
    """
    _check(p, z, "negative_cosine")
    return -F.cosine_similarity(p, z, dim=1).mean()
