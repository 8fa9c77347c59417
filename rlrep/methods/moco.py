"""MoCo v2 (He et al. 2020; Chen et al. 2020): momentum encoder + queue of negative keys."""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from rlrep.losses import contrastive_loss, mochi_negatives, moco_logits
from rlrep.losses.checks import check_temperature
from rlrep.methods import ring
from rlrep.methods.base import AuxOutput, Method, contrastive_metrics
from rlrep.methods.ema import check_momentum, make_target
from rlrep.methods.heads import mlp

__all__ = ["MoCo"]


class MoCo(Method):
    """q = normalise(proj(enc(view_a))), k = normalise(proj_t(enc_t(view_b))) without gradient;
    InfoNCE over [k, queue] at temperature τ; then the keys are enqueued (oldest dropped).

    :param encoder: online encoder.
    :param hidden_dim: projector width; :param out_dim: embedding size (MoCo v2: 2048 → 128).
    :param queue_size: negatives kept (MoCo v2: 65,536 on ImageNet; the default 4,096 suits
        small datasets and the non-stationary data of RL, where old keys go stale).
    :param temperature: τ (0.2). :param momentum: EMA momentum (0.999 in MoCo v2; the default
        0.99 follows the encoder faster, as RL needs).
    :param final_momentum: where the momentum ends along the cosine schedule that
        ``rlrep pretrain`` applies (1, as BYOL, MoCo v3 and solo-learn's MoCo v2+; the MoCo v2
        paper keeps it constant: ``None``).
    :param tau_plus: / :param beta: debiased (Chuang et al. 2020) and hard-negative (Robinson
        et al. 2021) InfoNCE over the queue (:func:`~rlrep.losses.contrastive_loss`); 0: off.
    :param mochi: ``(n_hard, n_mix_pairs, n_mix_query)``: MoCHi's synthetic hard negatives
        (Kalantidis et al. 2020; paper: N = 1024, s = 1024, s′ = 256 with a 65k queue), mixed
        from each query's ``n_hard`` hardest queue keys (and with the query), added to its
        logits while training; ``None``: off.
    :param gather_distributed: enqueue every rank's keys (:class:`~rlrep.methods.base.Method`).
    """

    default_aux_weight = 0.25

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 512,
        out_dim: int = 128,
        queue_size: int = 4096,
        temperature: float = 0.2,
        momentum: float = 0.99,
        final_momentum: float | None = 1.0,
        tau_plus: float = 0.0,
        beta: float = 0.0,
        mochi: tuple[int, int, int] | None = None,
        gather_distributed: bool = False,
    ) -> None:
        integer = isinstance(queue_size, numbers.Integral) and not isinstance(queue_size, bool)
        if not integer or queue_size < 1:
            raise ValueError(
                f"MoCo: queue_size must be an integer >= 1 (negative keys kept from earlier "
                f"batches), got {queue_size!r}; the default is 4096 (MoCo v2: 65536)"
            )
        check_temperature(temperature, "MoCo")
        momentum = check_momentum(momentum, "MoCo: momentum")
        if final_momentum is not None:
            final_momentum = check_momentum(final_momentum, "MoCo: final_momentum")
        if mochi is not None and (len(mochi) != 3 or not 1 <= mochi[0] <= queue_size):
            raise ValueError(
                f"MoCo: mochi must be (n_hard, n_mix_pairs, n_mix_query) with 1 <= n_hard <= "
                f"queue_size = {queue_size}, got {mochi!r}"
            )
        super().__init__(encoder, gather_distributed)
        self.final_momentum = final_momentum
        self.tau_plus, self.beta = tau_plus, beta
        self.mochi = None if mochi is None else tuple(int(v) for v in mochi)
        self.projector = mlp(self.features_dim, hidden_dim, out_dim, batch_norm=False)
        self.target_encoder = make_target(encoder)
        self.target_projector = make_target(self.projector)
        self.temperature, self.momentum = temperature, momentum
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, out_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        self.check_views(local_views)
        features = self.encoder(view_a) if features_a is None else features_a
        query = self.projector(features)
        with torch.no_grad():
            key_features = self.target_encoder(view_b)
            key = F.normalize(self.target_projector(key_features), dim=1)
        logits = moco_logits(query, key, self.queue.clone(), self.temperature)
        if self.mochi is not None and self.training:
            hard = mochi_negatives(query, self.queue, *self.mochi)  # (B, s + s', D), constants
            mixed = torch.einsum("nd,nsd->ns", F.normalize(query, dim=1), hard)
            logits = torch.cat([logits, mixed / self.temperature], dim=1)
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        loss = contrastive_loss(logits, labels, self.tau_plus, self.beta, self.temperature)
        if self.training:
            ring.push(
                self.queue, self.queue_ptr, self.gather(key)
            )  # gathered: every rank's queue holds all keys
        metrics = contrastive_metrics(logits, loss, features, key_features, labels)
        return AuxOutput(loss, metrics)

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.encoder, self.target_encoder), (self.projector, self.target_projector)]
