"""Methods that embed both views with one encoder + projector and compare the embeddings:
SimCLR (Chen et al. 2020), Barlow Twins (Zbontar et al. 2021), VICReg (Bardes et al. 2022).
"""

from __future__ import annotations

import torch
from torch import nn

from rlrep.losses import barlow_twins, contrastive_accuracy, nt_xent_logits, vicreg
from rlrep.losses.contrastive import _check_temperature
from rlrep.methods.base import AuxOutput, Method, features_dim_of
from rlrep.methods.heads import mlp
from rlrep.metrics import feature_std

__all__ = ["BarlowTwins", "SimCLR", "VICReg"]


class _SharedProjection(Method):
    def __init__(
        self, encoder: nn.Module, projector: nn.Module, gather_distributed: bool = False
    ) -> None:
        super().__init__(encoder, gather_distributed)
        self.projector = projector

    def embed(self, view_a: torch.Tensor, view_b: torch.Tensor, features_a: torch.Tensor | None):
        """Features of both views (see :meth:`encode_pair`) and their projections z_a, z_b,
        gathered from all ranks when ``gather_distributed`` (global statistics and negatives)."""
        features = self.encode_pair(view_a, view_b, features_a)
        z_a, z_b = self.projector(features).chunk(2)
        return features, self.gather(z_a), self.gather(z_b)


class SimCLR(_SharedProjection):
    """NT-Xent over the 2B embeddings of a projection MLP (paper: 2048 → 2048 → 128).

    :param temperature: τ (0.5 on CIFAR, 0.1 on ImageNet).
    :param gather_distributed: negatives from every rank (:class:`~rlrep.methods.base.Method`)."""

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 512,
        out_dim: int = 128,
        temperature: float = 0.5,
        gather_distributed: bool = False,
    ) -> None:
        _check_temperature(temperature, "SimCLR")
        projector = mlp(features_dim_of(encoder), hidden_dim, out_dim, batch_norm=False)
        super().__init__(encoder, projector, gather_distributed)
        self.temperature = temperature

    def forward(
        self, view_a: torch.Tensor, view_b: torch.Tensor, features_a: torch.Tensor | None = None
    ) -> AuxOutput:
        features, z_a, z_b = self.embed(view_a, view_b, features_a)
        logits, positives = nt_xent_logits(z_a, z_b, self.temperature)
        loss = nn.functional.cross_entropy(logits, positives)
        metrics = {
            "accuracy": contrastive_accuracy(logits.detach(), positives),
            "feature_std": feature_std(features.detach()),
        }
        return AuxOutput(loss, metrics)


class BarlowTwins(_SharedProjection):
    """Cross-correlation loss on a 3-layer BN projector (paper: 8192 wide). :param lambd: λ 5e-3.
    :param gather_distributed: the correlation over every rank's batch."""

    #: Its sum over the projector's D² correlation terms starts near 800 (D = 1024): × 0.005
    #: gives ≈ 4, the contrastive losses' scale (solo-learn scales it too, ``scale_loss``).
    default_aux_weight = 0.005

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 1024,
        out_dim: int = 1024,
        lambd: float = 5e-3,
        gather_distributed: bool = False,
    ) -> None:
        projector = mlp(features_dim_of(encoder), hidden_dim, out_dim, num_layers=3)
        super().__init__(encoder, projector, gather_distributed)
        self.lambd = lambd

    def forward(
        self, view_a: torch.Tensor, view_b: torch.Tensor, features_a: torch.Tensor | None = None
    ) -> AuxOutput:
        features, z_a, z_b = self.embed(view_a, view_b, features_a)
        loss = barlow_twins(z_a, z_b, self.lambd)
        return AuxOutput(loss, {"feature_std": feature_std(features.detach())})


class VICReg(_SharedProjection):
    """Variance-invariance-covariance loss on a 3-layer BN expander (paper: 8192 wide).
    :param gather_distributed: variance and covariance over every rank's batch."""

    #: 25 · invariance + 25 · variance + covariance starts near 22: × 0.25 gives ≈ 5.5.
    default_aux_weight = 0.25

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
        super().__init__(encoder, projector, gather_distributed)
        self.weights = (sim_weight, var_weight, cov_weight)

    def forward(
        self, view_a: torch.Tensor, view_b: torch.Tensor, features_a: torch.Tensor | None = None
    ) -> AuxOutput:
        features, z_a, z_b = self.embed(view_a, view_b, features_a)
        loss = vicreg(z_a, z_b, *self.weights)
        return AuxOutput(loss, {"feature_std": feature_std(features.detach())})
