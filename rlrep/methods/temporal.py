"""The contract of a method that learns from time: windows of consecutive observations (and the
actions between them) in, an auxiliary loss out (ATC, CPC, SPR; SAC-AE with a window of one).

A temporal method declares the time ``offsets`` it reads, e.g. ATC ``(0, k)``, SPR
``(0, 1, …, K)``; the caller (:meth:`rlrep.objective.AuxObjective.sequence_loss`) gives it the
augmented observations at those offsets from each window ``obs_t … obs_{t+L}``
(``L = max(offsets)``), the ``L`` actions ``a_t … a_{t+L−1}`` when it :attr:`needs_actions`, and
which observations are usable (``valid``: in ``obs_t``'s episode and, in pretraining, in the
training split). Losses average over the valid targets only.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from rlrep.methods.base import AuxOutput, Method, contrastive_metrics

__all__ = [
    "TemporalMethod",
    "action_inputs",
    "check_offset",
    "masked_contrastive_metrics",
    "masked_mean",
    "rowwise_info_nce",
]


def check_offset(value: int, name: str, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, or ``ValueError`` naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` (same shape, bool) holds; 0 (with gradient) when none
    does, so a batch of episode ends gives no loss instead of NaN."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def rowwise_info_nce(
    prediction: torch.Tensor, target: torch.Tensor, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's InfoNCE loss ``(N,)`` and the logits ``(N, N)`` of ``prediction @ targetᵀ``
    (``(N, D)`` each; row max subtracted, as CURL's code: cross-entropy is shift-invariant, so
    only the range changes), the positive of row i in column i. Rows are kept apart so that the
    caller can leave out those whose target is masked (which still serve as negatives)."""
    logits = prediction @ target.T
    if logits.shape[1] < 2:
        raise ValueError(
            f"{name}: InfoNCE needs at least 2 samples in the (gathered) batch, the positive "
            f"and a negative; got {logits.shape[1]}"
        )
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    labels = torch.arange(logits.shape[0], device=logits.device)
    return nn.functional.cross_entropy(logits, labels, reduction="none"), logits


def masked_contrastive_metrics(
    logits: torch.Tensor,
    loss: torch.Tensor,
    counted: torch.Tensor,
    features_a: torch.Tensor,
    features_b: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """:func:`~rlrep.methods.contrastive_metrics` with the top-1 ``accuracy`` over the
    ``counted`` rows ``(N,)`` only (diagonal positives)."""
    metrics = contrastive_metrics(logits, loss, features_a, features_b)
    labels = torch.arange(logits.shape[0], device=logits.device)
    correct = (logits.detach().argmax(dim=1) == labels).float()
    metrics["accuracy"] = masked_mean(correct, counted)
    return metrics


def action_inputs(actions: torch.Tensor, action_dim: int, discrete: bool) -> torch.Tensor:
    """Actions as float model inputs ``(B, L, action_dim)``.

    :param actions: ``(B, L, A)`` floats (continuous; SB3 stores them scaled to [−1, 1]) or
        ``(B, L)`` / ``(B, L, 1)`` integer indices (discrete, one-hot encoded here).
    :param action_dim: A for continuous actions, the number of actions for discrete ones.
    :param discrete: whether ``actions`` are indices.
    """
    if discrete:
        index = actions.reshape(actions.shape[0], actions.shape[1]).long()
        if index.numel() and (index.min() < 0 or index.max() >= action_dim):
            raise ValueError(
                f"discrete actions must lie in [0, {action_dim}), got {index.min().item()} … "
                f"{index.max().item()}; pass action_dim = the number of actions"
            )
        return nn.functional.one_hot(index, action_dim).float()
    if actions.shape[-1] != action_dim:
        raise ValueError(
            f"continuous actions of shape {tuple(actions.shape)} do not have action_dim="
            f"{action_dim} in their last axis; pass the env's action size"
        )
    return actions.float()


class TemporalMethod(Method):
    """A method over windows of time (see the module docstring).

    ``forward(views, actions, valid, features_a=None)``:

    - ``views`` ``(B, T, C, h, w)``: augmented observations at :attr:`offsets` (``T`` of them),
      each augmented independently;
    - ``actions`` ``(B, L, A)`` floats or ``(B, L)`` indices, ``L = max(offsets)`` (``None``
      for methods that do not :attr:`needs_actions`);
    - ``valid`` ``(B, T)`` bool, whether each observation may be used (``None``: all);
    - ``features_a`` ``(B, D)``: the online encoder's features of ``views[:, 0]``, reused.

    :param encoder: the online encoder (needs ``features_dim``).
    :param gather_distributed: see :class:`~rlrep.methods.base.Method`.
    """

    #: Whether ``forward`` needs the actions between the observations.
    needs_actions: bool = False

    def __init__(self, encoder: nn.Module, gather_distributed: bool = False) -> None:
        super().__init__(encoder, gather_distributed)
        self.offsets: tuple[int, ...] = (0,)  # set by each method: starts at 0, increasing

    @property
    def horizon(self) -> int:
        """``L = max(offsets)``: transitions after ``t`` a window must reach."""
        return max(self.offsets)

    @abc.abstractmethod
    def forward(  # type: ignore[override]  # windows, not two views
        self,
        views: torch.Tensor,
        actions: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        """Auxiliary loss and metrics for a batch of windows (see the class docstring)."""

    def check_window(
        self, views: torch.Tensor, actions: torch.Tensor | None, valid: torch.Tensor | None
    ) -> torch.Tensor:
        """``ValueError`` naming the expected shapes; returns ``valid`` as a bool tensor."""
        name = type(self).__name__
        b, t = views.shape[:2] if views.dim() == 5 else (None, None)
        if t != len(self.offsets):
            raise ValueError(
                f"{name} reads observations at offsets {self.offsets}: views must be "
                f"(B, {len(self.offsets)}, C, H, W), got {tuple(views.shape)}"
            )
        if self.needs_actions and (
            actions is None or actions.shape[0] != b or actions.shape[1] < self.horizon
        ):
            shape = None if actions is None else tuple(actions.shape)
            raise ValueError(
                f"{name} needs the {self.horizon} actions a_t … a_(t+{self.horizon - 1}) of each "
                f"window: (B, {self.horizon}, A) or (B, {self.horizon}), got {shape}"
            )
        if valid is None:
            return torch.ones(b, t, dtype=torch.bool, device=views.device)
        if tuple(valid.shape) != (b, t):
            raise ValueError(f"{name}: valid must be (B, T) = {(b, t)}, got {tuple(valid.shape)}")
        return valid.bool()

    def encode_window(
        self, views: torch.Tensor, features_a: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Online features ``(B, T, D)`` of every view in one encoder pass (``features_a``, when
        given, stands for the first view's)."""
        b, t = views.shape[:2]
        if features_a is None:
            return self.encoder(views.flatten(0, 1)).unflatten(0, (b, t))
        if t == 1:
            return features_a[:, None]
        rest = self.encoder(views[:, 1:].flatten(0, 1)).unflatten(0, (b, t - 1))
        return torch.cat([features_a[:, None], rest], 1)
