"""An auxiliary objective: the one object every driver calls for views, loss, targets and metrics.

The SB3 plug-in, the agents and ``rlrep pretrain`` all train a representation the same way::

    objective = AuxObjective(augment, method)
    out = objective.loss(obs)                                  # two random views of the batch
    out = objective.loss(obs, view_a=rl_view, features_a=features)  # reuse the caller's anchor
    out = objective.loss(views=objective.views(obs))           # views made beforehand
    (rl_loss + weight * out.loss).backward(); optimizer.step()
    objective.update_targets(momentum)                         # EMA step after the optimiser step
    objective.pop_metrics()                                    # means since the last call

Methods that learn from time (:class:`~rlrep.methods.TemporalMethod`: ATC, CPC, SPR, SAC-AE)
take windows instead: ``objective.sequence_loss(windows, actions, valid)``, with the windows
from :meth:`rlrep.sb3.FrameStackReplayBuffer.get_sequences` or a sequence dataset.

A new method is one :class:`~rlrep.methods.Method` module plus a registry entry; it then works in
all three drivers through this object.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rlrep.augment.base import Augmentation
from rlrep.augment.multicrop import MultiCrop
from rlrep.methods.base import AuxOutput, Method
from rlrep.methods.temporal import TemporalMethod
from rlrep.metrics import effective_rank

__all__ = ["AuxObjective"]


class AuxObjective(nn.Module):
    """Views from ``augment``, the loss of ``method``, its target step, and running metrics.

    :param augment: makes the random views (:func:`rlrep.augment.make`), or a
        :class:`~rlrep.augment.MultiCrop` for 2 global + V local views (methods in
        :data:`rlrep.methods.MULTI_VIEW`).
    :param method: the loss, heads and momentum targets (:func:`rlrep.methods.make`).
    :param rank_every: on every ``rank_every``-th :meth:`loss` call given ``features_a``, record
        the effective rank of those features (an SVD; a collapse alarm); ``0`` for never.
    """

    def __init__(self, augment: Augmentation, method: Method, rank_every: int = 100) -> None:
        super().__init__()
        if not isinstance(rank_every, int) or rank_every < 0:
            raise ValueError(f"rank_every must be an int >= 0, got {rank_every!r}")
        if isinstance(augment, MultiCrop) and augment.num_local and not method.multi_view:
            raise ValueError(
                f"{type(method).__name__} compares exactly two views, but the multi-crop gives "
                f"{augment.num_views}; use num_local=0 or a method in rlrep.methods.MULTI_VIEW"
            )
        if isinstance(augment, MultiCrop) and isinstance(method, TemporalMethod):
            raise ValueError(
                f"{type(method).__name__} reads windows of time, one view per observation; "
                "multi-crop is for the two-view methods in rlrep.methods.MULTI_VIEW"
            )
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
    ) -> list[torch.Tensor]:
        """Independent random views of ``obs`` ``(B, C, H, W)``: two, or a multi-crop's
        globals then locals."""
        if isinstance(self.augment, MultiCrop):
            return self.augment.views(obs, generator)
        return [self.augment.random(obs, generator), self.augment.random(obs, generator)]

    def loss(
        self,
        obs: torch.Tensor | None = None,
        *,
        view_a: torch.Tensor | None = None,
        view_b: torch.Tensor | None = None,
        views: Sequence[torch.Tensor] | None = None,
        features_a: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        index: torch.Tensor | None = None,
    ) -> AuxOutput:
        """The method's loss on a batch, with its metrics recorded.

        Views not given are drawn from ``obs`` (with a multi-crop, its local views too);
        ``features_a = encoder(view_a)``, when the caller has it (e.g. from the RL loss's
        forward), is reused instead of a second pass.

        :param obs: ``(B, C, H, W)`` observations the missing views are drawn from.
        :param view_a: / :param view_b: ``(B, C, h, w)`` views already made.
        :param views: all views already made (two globals, then any locals), instead of
            ``view_a`` / ``view_b``.
        :param features_a: ``(B, D)`` online features of the first view, with their graph.
        :param index: ``(B,)`` instance of each sample (dataset index, replay slot), passed to
            methods that need it (:attr:`~rlrep.methods.Method.needs_index`) and ignored by
            the rest.
        :return: :class:`~rlrep.methods.AuxOutput` (loss with gradient, detached metrics).
        """
        if self.temporal:
            raise ValueError(
                f"{type(self.method).__name__} learns from windows of time: call "
                "sequence_loss(windows, actions, valid) (rlrep.sb3 does, given "
                "rlrep.sb3.FrameStackReplayBuffer)"
            )
        if features_a is not None and view_a is None and views is None:
            raise ValueError("features_a needs the view it was computed from: pass view_a too")
        if views is not None:
            if view_a is not None or view_b is not None or len(views) < 2:
                raise ValueError("pass views (two or more) or view_a / view_b, not both")
            view_a, view_b, *local_views = views
        else:
            if obs is None and (view_a is None or view_b is None):
                raise ValueError(
                    "pass obs (the views are drawn from it), both view_a and view_b, or views"
                )
            if view_a is None:
                view_a = self.augment.random(obs, generator)
            if view_b is None:
                view_b = self.augment.random(obs, generator)
            local_views = []
            if isinstance(self.augment, MultiCrop) and obs is not None:
                local = self.augment.local_augment
                local_views = [local.random(obs, generator) for _ in range(self.augment.num_local)]
        extra = {"index": index} if self.method.needs_index else {}
        out = self.method(view_a, view_b, *local_views, features_a=features_a, **extra)
        return self._record(out, features_a)

    @property
    def temporal(self) -> bool:
        """Whether the method learns from windows of time (:meth:`sequence_loss`)."""
        return isinstance(self.method, TemporalMethod)

    def sequence_loss(
        self,
        windows: torch.Tensor,
        actions: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        *,
        view_first: torch.Tensor | None = None,
        features_first: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> AuxOutput:
        """A temporal method's loss on a batch of windows, with its metrics recorded.

        The observations at the method's :attr:`~rlrep.methods.TemporalMethod.offsets` are
        augmented independently (one random view each; ``view_first``, when given, stands for
        the first, e.g. the RL loss's view, and ``features_first`` for its features).

        :param windows: ``(B, L + 1, C, H, W)`` observations ``obs_t … obs_{t+L}``, ``L`` at least
            the method's :attr:`~rlrep.methods.TemporalMethod.horizon`.
        :param actions: ``(B, L, A)`` or ``(B, L)`` actions ``a_t … a_{t+L−1}`` (methods that
            :attr:`~rlrep.methods.TemporalMethod.needs_actions`).
        :param valid: ``(B, L + 1)`` bool, which observations may be used (``None``: all).
        :param view_first: ``(B, C, h, w)`` view of ``obs_t`` already made.
        :param features_first: ``(B, D)`` online features of ``view_first``, with their graph.
        """
        method = self.method
        if not isinstance(method, TemporalMethod):
            raise ValueError(
                f"{type(method).__name__} compares views of one observation: call loss(obs)"
            )
        if features_first is not None and view_first is None:
            raise ValueError("features_first needs the view it was computed from: view_first")
        offsets = list(method.offsets)
        if windows.dim() != 5 or windows.shape[1] <= method.horizon:
            raise ValueError(
                f"{type(method).__name__} reads offsets {tuple(offsets)}: windows must be "
                f"(B, L + 1, C, H, W) with L >= {method.horizon}, got {tuple(windows.shape)}"
            )
        picked = windows[:, offsets[1:] if view_first is not None else offsets]
        b = windows.shape[0]
        views = []
        if view_first is not None:
            views.append(view_first[:, None])
        if picked.shape[1]:
            flat = self.augment.random(picked.flatten(0, 1), generator)
            if (
                view_first is not None
                and flat.dtype == torch.uint8
                and view_first.is_floating_point()
            ):
                flat = flat.to(view_first.dtype) / 255.0  # stored frames; SB3 scaled the batch
            views.append(flat.unflatten(0, (b, picked.shape[1])))
        out = method(
            torch.cat(views, 1),
            None if actions is None else actions[:, : method.horizon],
            None if valid is None else valid[:, offsets],
            features_a=features_first,
        )
        return self._record(out, features_first)

    def forward(self, *args, **kwargs) -> AuxOutput:
        """:meth:`sequence_loss` for temporal methods, else :meth:`loss` (so that
        ``DistributedDataParallel(objective)(...)`` syncs the gradients of either)."""
        return self.sequence_loss(*args, **kwargs) if self.temporal else self.loss(*args, **kwargs)

    def _record(self, out: AuxOutput, features: torch.Tensor | None) -> AuxOutput:
        self.calls += 1
        self._add("loss", out.loss.detach())
        for key, value in out.metrics.items():
            self._add(key, value)
        if features is not None and self.rank_every and self.calls % self.rank_every == 0:
            self._add("effective_rank", effective_rank(features.detach()))
        return out

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
