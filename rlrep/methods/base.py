"""The contract of a representation method: two (or more) views in, an auxiliary loss and
metrics out."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import nn

from rlrep import distributed
from rlrep.losses import contrastive_accuracy
from rlrep.methods.ema import cosine_momentum, update_momentum
from rlrep.metrics import alignment, feature_std, info_nce_bound, uniformity

__all__ = [
    "AuxOutput",
    "Method",
    "contrastive_metrics",
    "features_dim_of",
    "target_pairs",
    "view_metrics",
]


class AuxOutput(NamedTuple):
    """What a method returns for one batch.

    :param loss: scalar auxiliary loss (gradient flows to the online encoder and heads only).
    :param metrics: detached scalar tensors for logging (``accuracy`` where it applies,
        ``feature_std``); read with ``.item()`` at log time to avoid a sync per step.
    """

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]


def features_dim_of(encoder: nn.Module) -> int:
    """The output size of ``encoder``: its ``features_dim`` (rlrep and SB3 encoders)."""
    dim = getattr(encoder, "features_dim", None)
    if not isinstance(dim, int):
        raise ValueError(
            f"{type(encoder).__name__} has no integer 'features_dim'; rlrep methods need the "
            "encoder's output size (rlrep.encoders and SB3 features extractors define it)"
        )
    return dim


def view_metrics(features_a: torch.Tensor, features_b: torch.Tensor) -> dict[str, torch.Tensor]:
    """The health metrics every method logs, from the features of two views ``(B, D)`` each:
    ``feature_std`` of the first, ``alignment`` of the pair and ``uniformity`` of the first
    (:mod:`rlrep.metrics`), detached, without a host sync."""
    a, b = features_a.detach(), features_b.detach()
    return {
        "feature_std": feature_std(a),
        "alignment": alignment(a, b),
        "uniformity": uniformity(a),
    }


def contrastive_metrics(
    logits: torch.Tensor,
    loss: torch.Tensor,
    features_a: torch.Tensor,
    features_b: torch.Tensor,
    positives: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`view_metrics` and a contrastive method's own: top-1 ``accuracy`` of ``logits``
    ``(N, M)`` at ``positives`` (default: the diagonal) and ``mi_bound``, InfoNCE's
    ``log M − loss`` with M candidates per query."""
    return {
        "accuracy": contrastive_accuracy(logits.detach(), positives),
        "mi_bound": info_nce_bound(loss.detach(), logits.shape[1]),
        **view_metrics(features_a, features_b),
    }


def target_pairs(num_views: int, num_targets: int = 2) -> list[tuple[int, int]]:
    """The ``(target, predictor)`` view pairs of multi-crop training (Caron et al. 2020): each
    of the first ``num_targets`` (global) views is predicted from every other view. Two views
    give ``[(0, 1), (1, 0)]``, the symmetric loss of BYOL, SimSiam and SwAV."""
    return [(g, v) for g in range(min(num_targets, num_views)) for v in range(num_views) if v != g]


class Method(nn.Module, abc.ABC):
    """A self-supervised objective over an online ``encoder``; owns its heads and targets.

    ``forward(view_a, view_b, *local_views)`` takes two augmentations of the same batch
    ``(B, C, H, W)`` (the *global* views) and, for methods with :attr:`multi_view`, any number of
    further views (multi-crop's smaller *local* crops, Caron et al. 2020; they may have another
    size); it returns :class:`AuxOutput`. ``features_a = encoder(view_a)``, when the caller has
    it already (e.g. from the RL loss's forward), is reused instead of encoding ``view_a`` again.
    Call :meth:`update_targets` after each optimiser step.

    Momentum targets (solo-learn's pattern): a method declares its ``(online, target)`` pairs in
    :meth:`momentum_pairs` and its base ``momentum`` (and ``final_momentum``, for BYOL's cosine
    schedule); :meth:`update_targets` and :meth:`momentum_at` are the one EMA step and schedule.

    :param encoder: the online encoder (needs ``features_dim``).
    :param gather_distributed: under ``torchrun``, compute the loss over every rank's embeddings
        (:func:`rlrep.distributed.gather`, gradients kept); off unless asked (``rlrep pretrain``
        turns it on for multi-process runs). Taken by methods whose loss compares samples
        across the batch.
    """

    #: The SB3 plug-in's ``aux_weight`` when none is given: chosen per method so that the
    #: weighted loss starts within 10× of SAC's critic loss on the synthetic task and on DMC
    #: (``experiments/aux_scales.py``; docs/benchmarks.md), since the plug-in adds it to the RL loss under
    #: one optimiser, where its size sets its pull on the encoder.
    default_aux_weight: float = 1.0

    #: Whether ``forward`` takes views beyond the two global ones (multi-crop).
    multi_view: bool = False

    #: Whether ``forward`` needs ``index=``, each sample's instance (a memory bank's row) in
    #: ``range(self.num_instances)``.
    needs_index: bool = False

    def __init__(self, encoder: nn.Module, gather_distributed: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.features_dim = features_dim_of(encoder)
        self.gather_distributed = bool(gather_distributed)
        self.momentum: float | None = None  # EMA momentum of the targets, if any
        self.final_momentum: float | None = None  # None: constant ``momentum``

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` of every rank, concatenated, when ``gather_distributed``; else ``x``."""
        return distributed.gather(x) if self.gather_distributed else x

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """The ``(online, target)`` module pairs the EMA step moves; none by default."""
        return []

    def momentum_at(self, step: int, total_steps: int) -> float | None:
        """The momentum after ``step`` of ``total_steps`` optimiser steps: ``momentum`` rising to
        ``final_momentum`` along BYOL's cosine (constant without a final value); ``None`` for a
        method without targets."""
        if self.momentum is None:
            return None
        final = self.momentum if self.final_momentum is None else self.final_momentum
        return cosine_momentum(step, total_steps, base=self.momentum, final=final)

    @abc.abstractmethod
    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        """Auxiliary loss and metrics for two (global) views of one batch, and the local views
        of a multi-crop where the method takes them (:attr:`multi_view`)."""

    def check_views(self, local_views: tuple[torch.Tensor, ...]) -> None:
        """``ValueError`` if local views are given to a method that compares exactly two."""
        if local_views and not self.multi_view:
            raise ValueError(
                f"{type(self).__name__} compares exactly two views, got {2 + len(local_views)}; "
                "drop the multi-crop (local views) or use a method that takes them "
                "(rlrep.methods.MULTI_VIEW lists them)"
            )

    def encode_views(
        self, views: tuple[torch.Tensor, ...], features_a: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Online features ``(B, D)`` of each view, one encoder pass per run of consecutive
        views of equal shape (so the two global views share a pass and BatchNorm sees both);
        ``features_a``, when given, stands for the first view's."""
        out: list[torch.Tensor] = []
        start = 0
        if features_a is not None:
            out.append(features_a)
            start = 1
        while start < len(views):
            end = start + 1
            while end < len(views) and views[end].shape == views[start].shape:
                end += 1
            batch = views[start].shape[0]
            out.extend(self.encoder(torch.cat(views[start:end])).split(batch))
            start = end
        return out

    def update_targets(self, momentum: float | None = None) -> None:
        """Move momentum targets one EMA step toward the online networks (no-op without any).

        :param momentum: this step's momentum (from :meth:`momentum_at`); ``None``: the base
            ``momentum``.
        """
        m = self.momentum if momentum is None else momentum
        for online, target in self.momentum_pairs():
            update_momentum(online, target, m)

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters of the method itself (heads, W), not the encoder's."""
        encoder_ids = {id(p) for p in self.encoder.parameters()}
        for p in self.parameters():
            if p.requires_grad and id(p) not in encoder_ids:
                yield p
