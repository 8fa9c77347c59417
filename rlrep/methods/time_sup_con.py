"""Time positives for SupCon's multi-positive loss: the frames of one episode within a window
are each other's positives (Khosla et al. 2020's ``L_out`` with window labels; the
multi-frame form of time-contrastive learning, Sermanet et al. 2018)."""

from __future__ import annotations

import torch
from torch import nn

from rlrep.losses import sup_con_rows
from rlrep.losses.checks import check_temperature
from rlrep.methods.base import AuxOutput, view_metrics
from rlrep.methods.heads import mlp
from rlrep.methods.temporal import TemporalMethod, check_offset, masked_mean

__all__ = ["TimeSupCon"]


class TimeSupCon(TemporalMethod):
    """SupCon over the ``window + 1`` observations ``obs_t … obs_{t+window}`` of each sample.

    Every observation (augmented on its own) is encoded by the online encoder and projected by
    an MLP (SimCLR's head); the embeddings of one window's valid observations are each other's
    positives, those of every other window in the (gathered) batch the negatives. Observations
    that are not valid (past the end of ``obs_t``'s episode, or held out in pretraining) take
    no part: neither anchors nor positives nor negatives. The loss is the mean of
    :func:`~rlrep.losses.sup_con_rows` over the anchors with at least one valid positive; a
    batch without any (every window cut after ``obs_t``) gives 0.

    Windows are labelled by sample, not by episode: two windows of one episode in a batch are
    negatives of each other, as ATC's ``obs_{t+k}`` of other samples are.

    Metrics: ``accuracy``, the share of counted anchors whose most similar other embedding
    is in their own window; ``feature_std``, ``alignment`` and ``uniformity`` of the encoder's
    features of ``obs_t`` and ``obs_{t+1}``.

    :param encoder: online encoder (``features_dim`` D).
    :param window: observations after ``obs_t`` that are positives of it (≥ 1).
    :param hidden_dim: / :param out_dim: the projection MLP (SimCLR's form, no batch norm).
    :param temperature: τ (SupCon: 0.1).
    :param gather_distributed: negatives from every rank under ``torchrun``.
    """

    default_aux_weight = 0.25

    def __init__(
        self,
        encoder: nn.Module,
        window: int = 2,
        hidden_dim: int = 512,
        out_dim: int = 128,
        temperature: float = 0.1,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(encoder, gather_distributed)
        self.offsets = tuple(range(check_offset(window, "TimeSupCon: window") + 1))
        check_offset(hidden_dim, "TimeSupCon: hidden_dim")
        check_offset(out_dim, "TimeSupCon: out_dim")
        check_temperature(temperature, "TimeSupCon")
        self.temperature = temperature
        self.projector = mlp(self.features_dim, hidden_dim, out_dim, batch_norm=False)

    def forward(  # type: ignore[override]
        self,
        views: torch.Tensor,
        actions: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        """Loss and metrics for windows ``views`` ``(B, window + 1, C, H, W)``; ``valid``
        ``(B, window + 1)``; ``features_a`` ``(B, D)`` the encoder's features of ``views[:, 0]``."""
        valid = self.check_window(views, actions, valid)
        t = views.shape[1]
        features = self.encode_window(views, features_a)  # (B, T, D)
        z = self.projector(features.flatten(0, 1))  # (B·T, E), window-major
        # Gathered whole windows (N = B × ranks): (N·T, E), labels = the window's row.
        z = self.gather(z.unflatten(0, (-1, t)).flatten(1)).unflatten(1, (t, -1)).flatten(0, 1)
        keep = (self.gather(valid.float()) > 0).flatten()  # floats: gather is for float tensors
        labels = torch.arange(keep.shape[0], device=z.device) // t
        rows, counted, logits = sup_con_rows(z, labels, self.temperature, keep)
        loss = masked_mean(rows, counted)
        nearest_in_window = (labels[logits.detach().argmax(dim=1)] == labels).float()
        metrics = view_metrics(features[:, 0], features[:, 1])
        metrics["accuracy"] = masked_mean(nearest_in_window, counted)
        return AuxOutput(loss, metrics)
