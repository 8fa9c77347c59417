"""CPC (van den Oord, Li & Vinyals 2018, "Representation Learning with Contrastive Predictive
Coding", §2): an autoregressive context of past latents predicts future latents, scored by
InfoNCE against the other samples' latents."""

from __future__ import annotations

import torch
from torch import nn

from rlrep.methods.base import AuxOutput
from rlrep.methods.temporal import (
    TemporalMethod,
    check_offset,
    masked_contrastive_metrics,
    masked_mean,
    rowwise_info_nce,
)

__all__ = ["CPC"]


class CPC(TemporalMethod):
    """Contrastive Predictive Coding over a window of ``C + K`` observations.

    Latents ``z_j = encoder(obs_{t+j})`` for ``j = 0 … C+K−1``, all from the online encoder in
    one pass (no momentum target: gradients flow through both context and targets, as in the
    paper). A GRU reads ``z_0 … z_{C−1}`` from a zero state; its last output is the context
    ``c`` (``context_dim``). For each ``k = 1 … K`` the paper's bilinear score
    ``f_k = exp(z_{C−1+k}ᵀ W_k c)`` (Eq. 3) gives logits ``(W_k c_i) · z_{C−1+k, j}`` over the
    (gathered) batch, row max subtracted; InfoNCE (Eq. 4) takes row ``i``'s own future latent
    (the diagonal) as positive and the other samples' latents at the same ``k`` as negatives.

    Masking: row ``i`` counts for step ``k`` only when all its ``C`` context observations and
    its target ``obs_{t+C−1+k}`` are valid; the loss is the mean of the per-row cross-entropies
    over the counted ``(sample, k)`` pairs. Latents of invalid observations still serve as
    negatives of the other rows (as ATC's and the reference codes' ignored labels do): they are
    real frames, only not this window's future.

    Differences from the paper: one prediction origin per window (the buffer samples windows at
    random) instead of a context at every step of a long sequence, and a context of the last
    ``C`` latents instead of the whole past; negatives come from the batch only.

    Metrics: ``accuracy`` (over the counted rows) and ``mi_bound`` of the ``k = 1`` logits and
    loss, the nearest and easiest prediction; ``feature_std``, ``alignment`` and
    ``uniformity`` of the encoder's latents of the last context frame and the ``k = 1`` target.

    :param encoder: online encoder (``features_dim`` D).
    :param context_steps: ``C``, observations the GRU reads (≥ 1).
    :param prediction_steps: ``K``, future steps predicted from the context (≥ 1).
    :param context_dim: the GRU's hidden size (the paper: 256).
    :param gather_distributed: negatives from every rank under ``torchrun``.
    """

    default_aux_weight = 0.25

    def __init__(
        self,
        encoder: nn.Module,
        context_steps: int = 3,
        prediction_steps: int = 3,
        context_dim: int = 256,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(encoder, gather_distributed)
        self.context_steps = check_offset(context_steps, "CPC: context_steps")
        self.prediction_steps = check_offset(prediction_steps, "CPC: prediction_steps")
        self.context_dim = check_offset(context_dim, "CPC: context_dim")
        self.offsets = tuple(range(self.context_steps + self.prediction_steps))
        self.gru = nn.GRU(self.features_dim, self.context_dim, batch_first=True)
        # W_k maps the context into latent space: score_k(x, c) = zᵀ W_k c (Eq. 3).
        self.W = nn.ModuleList(
            nn.Linear(self.context_dim, self.features_dim, bias=False)
            for _ in range(self.prediction_steps)
        )

    def forward(  # type: ignore[override]
        self,
        views: torch.Tensor,
        actions: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        """Loss and metrics for windows ``views`` ``(B, C+K, C_img, H, W)``; ``valid``
        ``(B, C+K)``; ``features_a`` ``(B, D)`` the encoder's latents of ``views[:, 0]``."""
        valid = self.check_window(views, actions, valid)
        b = views.shape[0]
        if features_a is not None and tuple(features_a.shape) != (b, self.features_dim):
            raise ValueError(
                f"CPC: features_a must be the encoder's features of views[:, 0], "
                f"(B, D) = {(b, self.features_dim)}, got {tuple(features_a.shape)}"
            )
        z = self.encode_window(views, features_a).float()  # (B, C+K, D)
        # The GRU and the unnormalised bilinear logits in float32 even under bfloat16 autocast:
        # in bfloat16 (8 bits of mantissa) the logits of similar frames round to one value and
        # CPC collapses (cartpole frames, rlrep pretrain --amp on: uniformity 0, chance loss).
        with torch.autocast(views.device.type, enabled=False):
            return self._predict(z, valid)

    def _predict(self, z: torch.Tensor, valid: torch.Tensor) -> AuxOutput:
        """Loss and metrics from the window's latents ``z`` ``(B, C+K, D)``."""
        c = self.context_steps
        context = self.gru(z[:, :c])[0][:, -1]  # (B, context_dim): c at offset C−1
        context_ok = valid[:, :c].all(dim=1)  # (B,)

        per_row, counted, all_logits = [], [], []
        for k, W_k in enumerate(self.W, start=1):
            # (N, D) each, N = B × ranks; positives on the diagonal of the (N, N) logits.
            rows, logits = rowwise_info_nce(
                self.gather(W_k(context)), self.gather(z[:, c - 1 + k]), "CPC"
            )
            per_row.append(rows)
            all_logits.append(logits)
            # As floats, like ATC's: the gather is an autograd function meant for float tensors.
            counted.append(self.gather((context_ok & valid[:, c - 1 + k]).float()) > 0)
        rows, mask = torch.stack(per_row, 1), torch.stack(counted, 1)  # (N, K) each
        loss = masked_mean(rows, mask)
        loss_1 = masked_mean(rows[:, 0], mask[:, 0])
        metrics = masked_contrastive_metrics(
            all_logits[0], loss_1, mask[:, 0], z[:, c - 1], z[:, c]
        )
        return AuxOutput(loss, metrics)
