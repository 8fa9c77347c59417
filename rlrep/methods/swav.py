"""SwAV (Caron et al. 2020): online clustering with swapped prediction over multi-crop views."""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from rlrep import distributed
from rlrep.losses import sinkhorn, swapped_prediction
from rlrep.losses.checks import check_temperature
from rlrep.methods import ring
from rlrep.methods.base import AuxOutput, Method, view_metrics
from rlrep.methods.heads import mlp

__all__ = ["SwAV"]


def _check_count(value: object, name: str, minimum: int, default: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"SwAV: {name} must be an integer >= {minimum}, got {value!r} ({default})")
    return int(value)


class SwAV(Method):
    """Embeddings ``z = normalise(projector(encoder(x)))`` of every view are scored against K
    L2-normalised prototypes; the codes of the two global views come from
    :func:`~rlrep.losses.sinkhorn` (no gradient) and each is predicted from every other view
    (:func:`~rlrep.losses.swapped_prediction`, τ = 0.1). Local views (multi-crop) only predict.

    As in the paper's code: the prototypes are re-normalised before each training forward and
    get no gradient for the first ``freeze_prototypes_steps`` training forwards; with
    ``queue_size > 0`` the codes are computed over the batch *and* the last ``queue_size``
    embeddings of each global view (small batches: a batch of 128 cannot be spread evenly over
    512 prototypes), once the queue has filled.

    :param encoder: online encoder. :param hidden_dim: / :param out_dim: projector (paper:
        2048 → 128). :param num_prototypes: K (paper: 3000 on ImageNet).
    :param temperature: τ of the swapped prediction (0.1).
    :param epsilon: / :param sinkhorn_iterations: Sinkhorn–Knopp's ε (0.05) and iterations (3).
    :param queue_size: past embeddings per global view used for the codes (0: none).
    :param freeze_prototypes_steps: training forwards before the prototypes learn.
    :param gather_distributed: codes over every rank's batch (the paper's distributed Sinkhorn).
    """

    multi_view = True

    default_aux_weight = 0.25

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 512,
        out_dim: int = 128,
        num_prototypes: int = 512,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        queue_size: int = 0,
        freeze_prototypes_steps: int = 100,
        gather_distributed: bool = False,
    ) -> None:
        check_temperature(temperature, "SwAV")
        num_prototypes = _check_count(num_prototypes, "num_prototypes", 2, 512)
        queue_size = _check_count(queue_size, "queue_size", 0, 0)
        freeze = _check_count(freeze_prototypes_steps, "freeze_prototypes_steps", 0, 100)
        sinkhorn(torch.zeros(1, 1), epsilon, sinkhorn_iterations)  # validates both
        super().__init__(encoder, gather_distributed)
        self.projector = mlp(self.features_dim, hidden_dim, out_dim)
        self.prototypes = nn.Linear(out_dim, num_prototypes, bias=False)
        self.temperature, self.epsilon = temperature, epsilon
        self.sinkhorn_iterations, self.freeze_prototypes_steps = sinkhorn_iterations, freeze
        # A ring of the two global views' past embeddings: row i holds both views of a sample.
        self.register_buffer("queue", torch.zeros(queue_size, 2, out_dim))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queued", torch.zeros((), dtype=torch.long))  # rows filled
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training forwards

    def forward(
        self,
        view_a: torch.Tensor,
        view_b: torch.Tensor,
        *local_views: torch.Tensor,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        views = (view_a, view_b, *local_views)
        features = self.encode_views(views, features_a)
        z = F.normalize(self.projector(torch.cat(features)), dim=1)
        prototypes = self.prototypes.weight
        if self.training:
            with torch.no_grad():
                prototypes.copy_(F.normalize(prototypes, dim=1))
            if int(self.steps) < self.freeze_prototypes_steps:
                prototypes = prototypes.detach()
        scores = (z @ prototypes.T).chunk(len(views))
        codes = [self._codes(g, scores[g]) for g in range(2)]
        loss = swapped_prediction(scores, codes, self.temperature)
        if self.training:
            self._enqueue(*z[: 2 * view_a.shape[0]].detach().chunk(2))
            self.steps += 1
        metrics = view_metrics(features[0], features[1])
        # How evenly the batch uses the prototypes: exp(entropy) of the mean assignment.
        usage = F.softmax(scores[0].detach() / self.temperature, dim=1).mean(dim=0)
        metrics["prototypes_used"] = torch.exp(-(usage * usage.clamp_min(1e-12).log()).sum())
        return AuxOutput(loss, metrics)

    @torch.no_grad()
    def _codes(self, g: int, scores: torch.Tensor) -> torch.Tensor:
        """Sinkhorn codes of global view ``g``'s ``(B, K)`` scores, over the gathered batch and
        the queue (when full); the rows of this rank's samples."""
        batch = self.gather(scores)
        own = distributed.rank() * scores.shape[0] if self.gather_distributed else 0
        queue = self.queue[:, g]
        if queue.shape[0] and int(self.queued) >= queue.shape[0]:
            batch = torch.cat([queue @ self.prototypes.weight.T, batch])
            own += queue.shape[0]
        codes = sinkhorn(batch, self.epsilon, self.sinkhorn_iterations)
        return codes[own : own + scores.shape[0]]

    @torch.no_grad()
    def _enqueue(self, z_a: torch.Tensor, z_b: torch.Tensor) -> None:
        """Push the global views' embeddings (gathered) into the ring, over the oldest."""
        size = self.queue.shape[0]
        if size == 0:
            return
        rows = torch.stack([self.gather(z_a), self.gather(z_b)], dim=1)
        ring.push(self.queue, self.queue_ptr, rows)
        self.queued.copy_(torch.clamp(self.queued + rows.shape[0], max=size))
