"""NNCLR (Dwibedi et al. 2021): the positive is the nearest neighbour in a support set."""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from rlrep.losses import info_nce, info_nce_logits
from rlrep.losses.checks import check_temperature
from rlrep.methods import ring
from rlrep.methods.base import AuxOutput, Method, contrastive_metrics
from rlrep.methods.heads import mlp

__all__ = ["NNCLR"]


class NNCLR(Method):
    """``z = projector(encoder(x))``, ``p = predictor(z)``; ``NN(z)`` is the support-set entry
    with the largest cosine to ``z`` (no gradient). Loss (Dwibedi et al. 2021, Eq. 2,
    symmetrised as in the paper): ``[info_nce(NN(z_a), p_b) + info_nce(NN(z_b), p_a)] / 2`` at
    τ = 0.1, cosine logits, the batch's other predictions as negatives. The support set is a
    FIFO queue of the first view's normalised ``z`` (paper: 98,304).

    :param hidden_dim: / :param out_dim: projector and predictor (paper: 2048 → 256, predictor
        4096 wide). :param support_size: support-set size (the default 4096 suits small data
        and RL, where old embeddings go stale). :param temperature: τ (0.1).
    :param gather_distributed: batch negatives and enqueued embeddings from every rank.
    """

    default_aux_weight = 0.25

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 512,
        out_dim: int = 128,
        support_size: int = 4096,
        temperature: float = 0.1,
        gather_distributed: bool = False,
    ) -> None:
        if not isinstance(support_size, numbers.Integral) or support_size < 1:
            raise ValueError(
                f"NNCLR: support_size must be an integer >= 1 (embeddings searched for the "
                f"nearest neighbour), got {support_size!r}; the default is 4096"
            )
        check_temperature(temperature, "NNCLR")
        super().__init__(encoder, gather_distributed)
        self.projector = mlp(self.features_dim, hidden_dim, out_dim, num_layers=3)
        self.predictor = mlp(out_dim, hidden_dim, out_dim)
        self.temperature = temperature
        self.register_buffer("support", F.normalize(torch.randn(support_size, out_dim), dim=1))
        self.register_buffer("support_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def nearest_neighbour(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` → the ``(B, D)`` support-set rows with the largest cosine to each row."""
        index = (F.normalize(z, dim=1) @ self.support.T).argmax(dim=1)
        return self.support[index]

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        self.check_views(local_views)
        features = self.encode_views((view_a, view_b), features_a)
        z = self.projector(torch.cat(features))
        p_a, p_b = self.predictor(z).chunk(2)
        z_a, z_b = z.chunk(2)
        nn_a, nn_b = self.nearest_neighbour(z_a), self.nearest_neighbour(z_b)
        p_a, p_b, nn_a, nn_b = (self.gather(t) for t in (p_a, p_b, nn_a, nn_b))
        logits = info_nce_logits(nn_a, p_b, temperature=self.temperature)  # kept for metrics
        diagonal = torch.arange(logits.shape[0], device=logits.device)
        loss_ab = F.cross_entropy(logits, diagonal)
        loss = (loss_ab + info_nce(nn_b, p_a, temperature=self.temperature)) / 2
        if self.training:
            ring.push(self.support, self.support_ptr, F.normalize(self.gather(z_a.detach()), dim=1))
        return AuxOutput(loss, contrastive_metrics(logits, loss_ab, features[0], features[1]))
