"""An auxiliary objective: the one object every driver calls for views, loss, targets and metrics.

The SB3 plug-in, the agents and ``rlrep pretrain`` all train a representation the same way::

    objective = AuxObjective(augment, method)
    out = objective.loss(obs)                                  # two random views of the batch
    out = objective.loss(view_a=rl_view, features_a=features)  # or reuse the caller's anchor
    (rl_loss + weight * out.loss).backward(); optimizer.step()
    objective.update_targets(momentum)                         # EMA step after the optimiser step
    objective.pop_metrics()                                    # means since the last call

A new method is one :class:`~rlrep.methods.Method` module plus a registry entry; it then works in
all three drivers through this object.
"""

from __future__ import annotations

import torch
from torch import nn

from rlrep.augment.base import Augmentation
from rlrep.methods.base import AuxOutput, Method
from rlrep.metrics import effective_rank

__all__ = ["AuxObjective"]


class AuxObjective(nn.Module):
    """Views from ``augment``, the loss of ``method``, its target step, and running metrics.

    :param augment: makes the random views (:func:`rlrep.augment.make`).
    :param method: the loss, heads and momentum targets (:func:`rlrep.methods.make`).
    :param rank_every: on every ``rank_every``-th :meth:`loss` call given ``features_a``, record
        the effective rank of those features (an SVD; a collapse alarm); ``0`` for never.
    """

    def __init__(self, augment: Augmentation, method: Method, rank_every: int = 100) -> None:
        super().__init__()
        if not isinstance(rank_every, int) or rank_every < 0:
            raise ValueError(f"rank_every must be an int >= 0, got {rank_every!r}")
        self.augment, self.method, self.rank_every = augment, method, rank_every
        self.calls = 0  # loss() calls so far (drives rank_every)
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    @property
    def encoder(self) -> nn.Module:
        """The online encoder the method trains."""
        return self.method.encoder

    def views(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independent random views of ``obs`` ``(B, C, H, W)``."""
        return self.augment.random(obs, generator), self.augment.random(obs, generator)

    def loss(
        self,
        obs: torch.Tensor | None = None,
        *,
        view_a: torch.Tensor | None = None,
        view_b: torch.Tensor | None = None,
        features_a: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> AuxOutput:
        """The method's loss on a batch, with its metrics recorded.

        Views not given are drawn from ``obs``; ``features_a = encoder(view_a)``, when the
        caller has it (e.g. from the RL loss's forward), is reused instead of a second pass.

        :param obs: ``(B, C, H, W)`` observations the missing views are drawn from.
        :param view_a: / :param view_b: ``(B, C, h, w)`` views already made.
        :param features_a: ``(B, D)`` online features of ``view_a``, with their graph.
        :return: :class:`~rlrep.methods.AuxOutput` (loss with gradient, detached metrics).
        """
        if features_a is not None and view_a is None:
            raise ValueError("features_a needs the view it was computed from: pass view_a too")
        if obs is None and (view_a is None or view_b is None):
            raise ValueError("pass obs (the views are drawn from it) or both view_a and view_b")
        if view_a is None:
            view_a = self.augment.random(obs, generator)
        if view_b is None:
            view_b = self.augment.random(obs, generator)
        out = self.method(view_a, view_b, features_a=features_a)
        self.calls += 1
        self._add("loss", out.loss.detach())
        for key, value in out.metrics.items():
            self._add(key, value)
        if features_a is not None and self.rank_every and self.calls % self.rank_every == 0:
            self._add("effective_rank", effective_rank(features_a.detach()))
        return out

    forward = loss  # DistributedDataParallel(objective)(...) syncs the gradients of loss()

    def update_targets(self, momentum: float | None = None) -> None:
        """The method's EMA step, after the optimiser step (``None``: its base momentum; in
        pretraining, :meth:`~rlrep.methods.Method.momentum_at` gives the scheduled one)."""
        self.method.update_targets(momentum)

    def _add(self, key: str, value: torch.Tensor) -> None:
        value = value.detach().float()
        self._sums[key] = self._sums[key] + value if key in self._sums else value
        self._counts[key] = self._counts.get(key, 0) + 1

    def pop_metrics(self) -> dict[str, float]:
        """Means of the recorded metrics since the last call (one host sync), then reset.

        Keys: ``loss``, the method's metrics (``accuracy`` for contrastive methods,
        ``feature_std``), and ``effective_rank`` when one was computed.
        """
        if not self._sums:
            return {}
        keys = list(self._sums)
        means = torch.stack([self._sums[k] / self._counts[k] for k in keys]).tolist()
        self._sums, self._counts = {}, {}
        return dict(zip(keys, means, strict=True))
