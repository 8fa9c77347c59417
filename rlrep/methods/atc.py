"""ATC (Stooke, Lee, Abbeel & Laskin 2021, "Decoupling representation learning from
reinforcement learning"): Augmented Temporal Contrast of ``obs_t`` against ``obs_{t+k}``."""

from __future__ import annotations

import torch
from torch import nn

from rlrep.methods.base import AuxOutput
from rlrep.methods.ema import check_momentum, make_target
from rlrep.methods.heads import mlp
from rlrep.methods.temporal import (
    TemporalMethod,
    check_offset,
    masked_contrastive_metrics,
    masked_mean,
    rowwise_info_nce,
)

__all__ = ["ATC"]


class ATC(TemporalMethod):
    """The anchor is the augmented ``obs_t``, its positive the augmented ``obs_{t+k}`` of the same
    episode; every other sample's ``obs_{t+k}`` is a negative.

    Anchor: online encoder → compressor ``c = Linear(D → latent_dim)`` → residual predictor
    ``c + MLP(c)`` → ``W``; positive: momentum copies of encoder and compressor, without
    gradient. Logits ``W(anchor) · positiveᵀ`` (row max subtracted), cross-entropy with the
    diagonal as positives over the samples whose ``obs_{t+k}`` is valid; the others are left out
    of the mean, as the reference code's ``IGNORE_INDEX`` labels, and still serve as negatives.

    Differences from astooke/rlpyt ``ul/``: the compressor reads the encoder's features
    (e.g. CURL's 50-d LayerNorm output) instead of branching off its conv maps, since a method
    here sees the encoder as a whole.

    :param encoder: online encoder (``features_dim`` D).
    :param delta_t: ``k``, the steps between anchor and positive (reference: 1 on DMC).
    :param latent_dim: compressor size (reference: 128).
    :param hidden_dim: the residual predictor's hidden width (reference: 512).
    :param momentum: EMA momentum of the target encoder and compressor (reference:
        ``ul_target_update_tau = 0.01`` every update, i.e. 0.99).
    :param gather_distributed: negatives from every rank under ``torchrun``.
    """

    default_aux_weight = 0.25

    def __init__(
        self,
        encoder: nn.Module,
        delta_t: int = 1,
        latent_dim: int = 128,
        hidden_dim: int = 512,
        momentum: float = 0.99,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(encoder, gather_distributed)
        self.offsets = (0, check_offset(delta_t, "ATC: delta_t"))
        check_offset(latent_dim, "ATC: latent_dim")
        check_offset(hidden_dim, "ATC: hidden_dim")
        self.momentum = check_momentum(momentum, "ATC: momentum")
        self.compressor = nn.Linear(self.features_dim, latent_dim)
        self.predictor = mlp(latent_dim, hidden_dim, latent_dim, batch_norm=False)
        self.W = nn.Linear(latent_dim, latent_dim, bias=False)
        self.target_encoder = make_target(encoder)
        self.target_compressor = make_target(self.compressor)

    def forward(  # type: ignore[override]
        self,
        views: torch.Tensor,
        actions: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        valid = self.check_window(views, actions, valid)
        features = self.encoder(views[:, 0]) if features_a is None else features_a
        latent = self.compressor(features)
        query = self.W(latent + self.predictor(latent))  # the residual predictor, then W
        with torch.no_grad():
            key = self.target_compressor(self.target_encoder(views[:, 1]))
        # As floats: the gather is an autograd function meant for float tensors.
        counted = self.gather(valid[:, 1].float()) > 0
        per_row, logits = rowwise_info_nce(self.gather(query), self.gather(key), "ATC")
        loss = masked_mean(per_row, counted)
        return AuxOutput(loss, masked_contrastive_metrics(logits, loss, counted, latent, key))

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.encoder, self.target_encoder), (self.compressor, self.target_compressor)]
