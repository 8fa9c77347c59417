"""CURL (Laskin, Srinivas & Abbeel 2020): bilinear InfoNCE against a momentum key encoder."""

from __future__ import annotations

import torch
from torch import nn

from rlrep.losses import info_nce_logits
from rlrep.methods.base import AuxOutput, Method, contrastive_metrics
from rlrep.methods.ema import check_momentum, make_target

__all__ = ["CURL"]


class CURL(Method):
    """Query = ``encoder(view_a)`` with gradient; key = ``target_encoder(view_b)`` without;
    logits ``q W kᵀ`` (row max subtracted), cross-entropy with the diagonal as positives. No
    temperature and no projection head, as in the paper's code.

    :param encoder: online encoder (``features_dim`` D).
    :param target_encoder: the key encoder. ``None``: an EMA copy owned and updated here. In
        CURL-SAC it is the critic target's encoder, updated by the agent (τ = 0.05), so it is kept
        as a reference and :meth:`update_targets` leaves it alone.
    :param momentum: EMA momentum of an owned key encoder (CURL: 1 − 0.05, constant).
    :param gather_distributed: negatives from every rank under ``torchrun`` (see
        :class:`~rlrep.methods.base.Method`).
    """

    #: CURL's uniform-init W makes large bilinear logits: the loss starts near 23 on the
    #: synthetic task (92× SAC's critic loss there at weight 1; docs/benchmarks.md, aux_scales.py).
    default_aux_weight = 0.1

    def __init__(
        self,
        encoder: nn.Module,
        target_encoder: nn.Module | None = None,
        momentum: float = 0.95,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(encoder, gather_distributed)
        self.W = nn.Parameter(torch.rand(self.features_dim, self.features_dim))
        self.momentum = check_momentum(momentum, "CURL: momentum")
        self.owns_target = target_encoder is None
        if self.owns_target:
            self.target_encoder = make_target(encoder)
        else:
            # A list keeps a module owned elsewhere out of this module's parameters/state_dict.
            self._external_target = [target_encoder]

    @property
    def key_encoder(self) -> nn.Module:
        return self.target_encoder if self.owns_target else self._external_target[0]

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        self.check_views(local_views)
        query = self.encoder(view_a) if features_a is None else features_a
        with torch.no_grad():
            key = self.key_encoder(view_b)
        logits = info_nce_logits(self.gather(query), self.gather(key), self.W)
        labels = torch.arange(logits.shape[0], device=logits.device)
        loss = nn.functional.cross_entropy(logits, labels)
        return AuxOutput(loss, contrastive_metrics(logits, loss, query, key, labels))

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        # An external key encoder (CURL-SAC's critic target) is moved by its owner.
        return [(self.encoder, self.target_encoder)] if self.owns_target else []
