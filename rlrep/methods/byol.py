"""BYOL (Grill et al. 2020) and SimSiam (Chen & He 2021): predict one view's projection from
the other's; BYOL's target is a momentum copy, SimSiam's the same network under stop-gradient.

Both take multi-crop views: every view predicts the target of each global view but its own
(:func:`~rlrep.methods.base.target_pairs`); with two views this is the papers' symmetric loss.
"""

from __future__ import annotations

import torch
from torch import nn

from rlrep.losses import byol, negative_cosine
from rlrep.methods.base import AuxOutput, Method, target_pairs, view_metrics
from rlrep.methods.ema import check_momentum, make_target
from rlrep.methods.heads import mlp

__all__ = ["BYOL", "SimSiam"]


class BYOL(Method):
    """``L = [byol(q(g(f(a))), g_t(f_t(b))) + byol(q(g(f(b))), g_t(f_t(a)))] / 2`` with
    ``byol(p, z) = 2 − 2 cos(p, z)`` (the paper sums the two terms; the mean keeps the scale of
    one). Targets follow by EMA: momentum 0.996 rising to ``final_momentum`` 1 along the
    paper's cosine over training (:meth:`momentum_at`; ``rlrep pretrain`` applies it, callers
    that do not know the run's length pass nothing and keep 0.996; ``final_momentum=None``
    keeps it constant).

    :param hidden_dim: projector / predictor width (paper: 4096); :param out_dim: 256.
    """

    multi_view = True

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 1024,
        out_dim: int = 256,
        momentum: float = 0.996,
        final_momentum: float | None = 1.0,
    ) -> None:
        super().__init__(encoder)
        self.projector = mlp(self.features_dim, hidden_dim, out_dim)
        self.predictor = mlp(out_dim, hidden_dim, out_dim)
        self.target_encoder = make_target(encoder)
        self.target_projector = make_target(self.projector)
        self.momentum = check_momentum(momentum, "BYOL: momentum")
        if final_momentum is not None:
            final_momentum = check_momentum(final_momentum, "BYOL: final_momentum")
        self.final_momentum = final_momentum

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        views = (view_a, view_b, *local_views)
        features = self.encode_views(views, features_a)
        # One head pass over every view's features (BatchNorm sees them all, as in the papers).
        predictions = self.predictor(self.projector(torch.cat(features))).chunk(len(views))
        with torch.no_grad():
            target_features = self.target_encoder(torch.cat([view_a, view_b]))
            targets = self.target_projector(target_features).chunk(2)
        loss = torch.stack([byol(predictions[v], targets[g]) for g, v in target_pairs(len(views))])
        return AuxOutput(loss.mean(), view_metrics(features[0], features[1]))

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.encoder, self.target_encoder), (self.projector, self.target_projector)]


class SimSiam(Method):
    """``L = [D(p_a, stopgrad(z_b)) + D(p_b, stopgrad(z_a))] / 2``, ``D = −cos`` (Chen & He 2021,
    Eq. 2); projector with BN on its output, bottleneck predictor (``out_dim / 4``).

    :param hidden_dim: projector width (paper: 2048); :param out_dim: embedding size (2048).
    """

    multi_view = True

    def __init__(self, encoder: nn.Module, hidden_dim: int = 512, out_dim: int = 512) -> None:
        super().__init__(encoder)
        self.projector = mlp(
            self.features_dim, hidden_dim, out_dim, num_layers=3, last_batch_norm=True
        )
        self.predictor = mlp(out_dim, max(out_dim // 4, 1), out_dim)

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        views = (view_a, view_b, *local_views)
        features = self.encode_views(views, features_a)
        z = self.projector(torch.cat(features))
        predictions = self.predictor(z).chunk(len(views))
        targets = z.detach().chunk(len(views))  # the stop-gradient
        loss = torch.stack(
            [negative_cosine(predictions[v], targets[g]) for g, v in target_pairs(len(views))]
        )
        return AuxOutput(loss.mean(), view_metrics(features[0], features[1]))
