"""Methods that embed both views with one encoder + projector and compare the embeddings:
SimCLR (Chen et al. 2020), Barlow Twins (Zbontar et al. 2021), VICReg (Bardes et al. 2022).
"""

from __future__ import annotations

import torch
from torch import nn

from rlrep.losses import (
    barlow_twins,
    contrastive_accuracy,
    contrastive_loss,
    nt_xent_logits,
    sup_con,
    vicreg,
)
from rlrep.losses.checks import check_loss_weights, check_temperature
from rlrep.methods.base import AuxOutput, Method, features_dim_of, view_metrics
from rlrep.methods.heads import mlp
from rlrep.metrics import info_nce_bound

__all__ = ["BarlowTwins", "SimCLR", "VICReg"]


class _SharedProjection(Method):
    def __init__(
        self, encoder: nn.Module, projector: nn.Module, gather_distributed: bool = False
    ) -> None:
        super().__init__(encoder, gather_distributed)
        self.projector = projector

    def embed(
        self, views: tuple[torch.Tensor, ...], features_a: torch.Tensor | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Features of each view (:meth:`encode_views`) and their projections, one projector
        pass over all views; projections gathered from all ranks when ``gather_distributed``
        (global statistics and negatives)."""
        features = self.encode_views(views, features_a)
        z = self.projector(torch.cat(features)).chunk(len(views))
        return features, [self.gather(z_v) for z_v in z]


class SimCLR(_SharedProjection):
    """NT-Xent over the 2B embeddings of a projection MLP (paper: 2048 → 2048 → 128); with V > 2
    views (multi-crop), the multi-positive form: each embedding's positives are the other V − 1
    views of its image (:func:`~rlrep.losses.sup_con` with image labels, which is NT-Xent for
    V = 2), as SwAV's multi-crop SimCLR.

    :param temperature: τ (0.5 on CIFAR, 0.1 on ImageNet).
    :param tau_plus: / :param beta: debiased (Chuang et al. 2020; 0.1 on CIFAR-10) and
        hard-negative (Robinson et al. 2021; β 0.5–1) NT-Xent
        (:func:`~rlrep.losses.contrastive_loss`); two views only; 0: plain.
    :param gather_distributed: negatives from every rank (:class:`~rlrep.methods.base.Method`)."""

    multi_view = True

    default_aux_weight = 0.25

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 512,
        out_dim: int = 128,
        temperature: float = 0.5,
        tau_plus: float = 0.0,
        beta: float = 0.0,
        gather_distributed: bool = False,
    ) -> None:
        check_temperature(temperature, "SimCLR")
        projector = mlp(features_dim_of(encoder), hidden_dim, out_dim, batch_norm=False)
        super().__init__(encoder, projector, gather_distributed)
        self.temperature, self.tau_plus, self.beta = temperature, tau_plus, beta

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        features, z = self.embed((view_a, view_b, *local_views), features_a)
        logits, positives = nt_xent_logits(z[0], z[1], self.temperature)
        metrics = view_metrics(features[0], features[1])
        if len(z) == 2:
            t = self.temperature
            loss = contrastive_loss(logits, positives, self.tau_plus, self.beta, t)
            metrics["mi_bound"] = info_nce_bound(loss.detach(), logits.shape[1] - 1)
        else:
            if self.tau_plus or self.beta:
                raise ValueError(
                    "SimCLR: tau_plus / beta apply to two views; drop them or the local views"
                )
            labels = torch.arange(z[0].shape[0], device=z[0].device).repeat(len(z))
            loss = sup_con(torch.cat(z), labels, self.temperature)
        metrics["accuracy"] = contrastive_accuracy(logits.detach(), positives)  # global views
        return AuxOutput(loss, metrics)


class BarlowTwins(_SharedProjection):
    """Cross-correlation loss on a 3-layer BN projector (paper: 8192 wide). :param lambd: λ 5e-3.
    :param gather_distributed: the correlation over every rank's batch."""

    #: Its sum over the projector's D² correlation terms starts near 800 (D = 1024): × 0.002
    #: gives ≈ 1.6, SAC's critic-loss scale (solo-learn scales it too, ``scale_loss``).
    default_aux_weight = 0.002

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 1024,
        out_dim: int = 1024,
        lambd: float = 5e-3,
        gather_distributed: bool = False,
    ) -> None:
        projector = mlp(features_dim_of(encoder), hidden_dim, out_dim, num_layers=3)
        check_loss_weights("BarlowTwins", lambd=lambd)  # before any step
        super().__init__(encoder, projector, gather_distributed)
        self.lambd = lambd

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        self.check_views(local_views)
        features, (z_a, z_b) = self.embed((view_a, view_b), features_a)
        loss = barlow_twins(z_a, z_b, self.lambd)
        return AuxOutput(loss, view_metrics(features[0], features[1]))


class VICReg(_SharedProjection):
    """Variance-invariance-covariance loss on a 3-layer BN expander (paper: 8192 wide).
    :param gather_distributed: variance and covariance over every rank's batch."""

    #: 25 · invariance + 25 · variance + covariance starts near 22: × 0.05 gives ≈ 1.1.
    default_aux_weight = 0.05

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 1024,
        out_dim: int = 1024,
        sim_weight: float = 25.0,
        var_weight: float = 25.0,
        cov_weight: float = 1.0,
        gather_distributed: bool = False,
    ) -> None:
        projector = mlp(features_dim_of(encoder), hidden_dim, out_dim, num_layers=3)
        check_loss_weights("VICReg", sim_weight=sim_weight, var_weight=var_weight,
                           cov_weight=cov_weight)  # fmt: skip
        super().__init__(encoder, projector, gather_distributed)
        self.weights = (sim_weight, var_weight, cov_weight)

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        self.check_views(local_views)
        features, (z_a, z_b) = self.embed((view_a, view_b), features_a)
        loss = vicreg(z_a, z_b, *self.weights)
        return AuxOutput(loss, view_metrics(features[0], features[1]))
