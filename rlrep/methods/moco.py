"""MoCo v2 (He et al. 2020; Chen et al. 2020): momentum encoder + queue of negative keys."""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from rlrep.losses import contrastive_accuracy, moco_logits
from rlrep.losses.contrastive import _check_temperature
from rlrep.methods.base import AuxOutput, Method
from rlrep.methods.ema import check_momentum, make_target
from rlrep.methods.heads import mlp
from rlrep.metrics import feature_std

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
    :param gather_distributed: enqueue every rank's keys (:class:`~rlrep.methods.base.Method`).
    """

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 512,
        out_dim: int = 128,
        queue_size: int = 4096,
        temperature: float = 0.2,
        momentum: float = 0.99,
        final_momentum: float | None = 1.0,
        gather_distributed: bool = False,
    ) -> None:
        integer = isinstance(queue_size, numbers.Integral) and not isinstance(queue_size, bool)
        if not integer or queue_size < 1:
            raise ValueError(
                f"MoCo: queue_size must be an integer >= 1 (negative keys kept from earlier "
                f"batches), got {queue_size!r}; the default is 4096 (MoCo v2: 65536)"
            )
        _check_temperature(temperature, "MoCo")
        momentum = check_momentum(momentum, "MoCo: momentum")
        if final_momentum is not None:
            final_momentum = check_momentum(final_momentum, "MoCo: final_momentum")
        super().__init__(encoder, gather_distributed)
        self.final_momentum = final_momentum
        self.projector = mlp(self.features_dim, hidden_dim, out_dim, batch_norm=False)
        self.target_encoder = make_target(encoder)
        self.target_projector = make_target(self.projector)
        self.temperature, self.momentum = temperature, momentum
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, out_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        k = self.queue.shape[0]
        n = min(keys.shape[0], k)
        idx = (self.queue_ptr + torch.arange(n, device=keys.device)) % k
        self.queue[idx] = keys[:n].to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + n) % k)

    def forward(
        self, view_a: torch.Tensor, view_b: torch.Tensor, features_a: torch.Tensor | None = None
    ) -> AuxOutput:
        features = self.encoder(view_a) if features_a is None else features_a
        query = self.projector(features)
        with torch.no_grad():
            key = F.normalize(self.target_projector(self.target_encoder(view_b)), dim=1)
        logits = moco_logits(query, key, self.queue.clone(), self.temperature)
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        loss = F.cross_entropy(logits, labels)
        if self.training:
            self._enqueue(self.gather(key))  # gathered: every rank's queue holds all keys
        metrics = {
            "accuracy": contrastive_accuracy(logits.detach(), labels),
            "feature_std": feature_std(features.detach()),
        }
        return AuxOutput(loss, metrics)

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.encoder, self.target_encoder), (self.projector, self.target_projector)]
