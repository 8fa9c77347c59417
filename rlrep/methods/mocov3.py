"""MoCo v3 (Chen, Xie & He 2021): symmetric InfoNCE against in-batch momentum keys."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rlrep.losses import info_nce, info_nce_logits
from rlrep.losses.checks import check_temperature
from rlrep.methods.base import AuxOutput, Method, contrastive_metrics
from rlrep.methods.ema import check_momentum, make_target
from rlrep.methods.heads import mlp

__all__ = ["MoCoV3"]


class MoCoV3(Method):
    """Queries ``q = predictor(projector(encoder(x)))``, keys ``k = projector_t(encoder_t(x))``
    from the momentum networks without gradient; no queue: the other keys of the batch are the
    negatives. ``L = 2τ · [ctr(q_a, k_b) + ctr(q_b, k_a)]``, ``ctr`` the cosine InfoNCE at τ —
    the paper's Alg. 1, whose 2τ factor keeps the gradient scale independent of τ.

    :param hidden_dim: / :param out_dim: heads (paper: 4096 → 256; 3-layer BN projector,
        2-layer BN predictor). :param temperature: τ (paper: 1.0 for ResNet, 0.2 for ViT).
    :param momentum: EMA momentum 0.99, rising to ``final_momentum`` 1 along the cosine
        schedule ``rlrep pretrain`` applies (``None``: constant).
    :param gather_distributed: keys and queries of every rank (Alg. 1's ``concat_all_gather``).
    """

    default_aux_weight = 0.25

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 1024,
        out_dim: int = 256,
        temperature: float = 0.2,
        momentum: float = 0.99,
        final_momentum: float | None = 1.0,
        gather_distributed: bool = False,
    ) -> None:
        check_temperature(temperature, "MoCoV3")
        super().__init__(encoder, gather_distributed)
        self.projector = mlp(self.features_dim, hidden_dim, out_dim, num_layers=3)
        self.predictor = mlp(out_dim, hidden_dim, out_dim)
        self.target_encoder = make_target(encoder)
        self.target_projector = make_target(self.projector)
        self.temperature = temperature
        self.momentum = check_momentum(momentum, "MoCoV3: momentum")
        if final_momentum is not None:
            final_momentum = check_momentum(final_momentum, "MoCoV3: final_momentum")
        self.final_momentum = final_momentum

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        self.check_views(local_views)
        features = self.encode_views((view_a, view_b), features_a)
        q_a, q_b = self.predictor(self.projector(torch.cat(features))).chunk(2)
        with torch.no_grad():
            k_a, k_b = self.target_projector(
                self.target_encoder(torch.cat([view_a, view_b]))
            ).chunk(2)
        q_a, q_b, k_a, k_b = (self.gather(t) for t in (q_a, q_b, k_a, k_b))
        t = self.temperature
        logits = info_nce_logits(q_a, k_b, temperature=t)  # kept for metrics
        ctr_ab = F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))
        loss = 2 * t * (ctr_ab + info_nce(q_b, k_a, temperature=t))
        return AuxOutput(loss, contrastive_metrics(logits, ctr_ab, features[0], features[1]))

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.encoder, self.target_encoder), (self.projector, self.target_projector)]
