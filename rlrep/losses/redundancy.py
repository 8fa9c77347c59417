"""Redundancy-reduction losses: Barlow Twins and VICReg."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlrep.losses.checks import check_loss_weights

__all__ = ["barlow_twins", "off_diagonal", "vicreg"]


def _check(z1: torch.Tensor, z2: torch.Tensor, fn: str) -> None:
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"{fn}: expected z1, z2 of equal shape (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if z1.shape[0] < 2:
        raise ValueError(
            f"{fn}: needs a batch of at least 2 samples to estimate its batch statistics, got "
            f"N={z1.shape[0]}; use a batch size >= 2"
        )


def off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square ``(D, D)`` matrix as a flat ``(D·(D−1),)`` tensor."""
    d = m.shape[0]
    return m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


def barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3) -> torch.Tensor:
    """Barlow Twins (Zbontar et al. 2021, Eq. 1): ``Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²``.

    ``C = z̃1ᵀ z̃2 / N`` is the cross-correlation of the embeddings standardised over the batch
    (mean 0, biased std 1 with eps 1e-5, as the reference code's ``BatchNorm1d(affine=False)``).

    :param z1: ``(N, D)``; :param z2: ``(N, D)``; :param lambd: λ (paper: 5e-3).
    :return: scalar loss.
    """
    _check(z1, z2, "barlow_twins")
    check_loss_weights("barlow_twins", lambd=lambd)
    n = z1.shape[0]
    c = (
        F.batch_norm(z1, None, None, training=True).T
        @ F.batch_norm(z2, None, None, training=True)
        / n
    )
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    return on_diag + lambd * off_diagonal(c).pow(2).sum()


def vicreg(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
    eps: float = 1e-4,
) -> torch.Tensor:
    """VICReg (Bardes, Ponce & LeCun 2022, Eqs. 1–6 and reference code):

    ``λ·MSE(z1, z2) + μ·[v(z1) + v(z2)]/2 + ν·[c(z1) + c(z2)]`` with
    ``v(z) = mean_j relu(1 − sqrt(Var(z_j) + ε))`` (unbiased variance) and
    ``c(z) = Σ_{i≠j} Cov(z)_ij² / D``.

    :param z1: ``(N, D)``; :param z2: ``(N, D)``.
    :param sim_weight: λ = 25; :param var_weight: μ = 25; :param cov_weight: ν = 1.
    :return: scalar loss.
    """
    _check(z1, z2, "vicreg")
    check_loss_weights("vicreg", sim_weight=sim_weight, var_weight=var_weight,
                       cov_weight=cov_weight)  # fmt: skip
    n, d = z1.shape
    invariance = F.mse_loss(z1, z2)
    z1, z2 = z1 - z1.mean(dim=0), z2 - z2.mean(dim=0)
    std1, std2 = (z1.var(dim=0) + eps).sqrt(), (z2.var(dim=0) + eps).sqrt()
    variance = (F.relu(1 - std1).mean() + F.relu(1 - std2).mean()) / 2
    cov1, cov2 = z1.T @ z1 / (n - 1), z2.T @ z2 / (n - 1)
    covariance = off_diagonal(cov1).pow(2).sum() / d + off_diagonal(cov2).pow(2).sum() / d
    return sim_weight * invariance + var_weight * variance + cov_weight * covariance
