"""The contract of a representation method: two views in, an auxiliary loss and metrics out."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["AuxOutput", "Method", "features_dim_of"]


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


class Method(nn.Module, abc.ABC):
    """A self-supervised objective over an online ``encoder``; owns its heads and targets.

    ``forward(view_a, view_b)`` takes two augmentations of the same batch ``(B, C, H, W)`` and
    returns :class:`AuxOutput`; ``features_a = encoder(view_a)``, when the caller has it already
    (e.g. from the RL loss's forward), is reused instead of encoding ``view_a`` again. Call
    :meth:`update_targets` after each optimiser step.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.features_dim = features_dim_of(encoder)

    @abc.abstractmethod
    def forward(
        self, view_a: torch.Tensor, view_b: torch.Tensor, features_a: torch.Tensor | None = None
    ) -> AuxOutput:
        """Auxiliary loss and metrics for two views of one batch."""

    def encode_pair(
        self, view_a: torch.Tensor, view_b: torch.Tensor, features_a: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Online features of both views, ``(2B, D)``: one encoder pass over the concatenated
        views (BatchNorm sees both), or ``features_a`` joined with ``encoder(view_b)``."""
        if features_a is None:
            return self.encoder(torch.cat([view_a, view_b]))
        return torch.cat([features_a, self.encoder(view_b)])

    def update_targets(self, momentum: float | None = None) -> None:
        """Move momentum targets one EMA step toward the online networks (no-op without any).

        :param momentum: overrides the method's ``momentum`` (for a schedule).
        """

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters of the method itself (heads, W), not the encoder's."""
        encoder_ids = {id(p) for p in self.encoder.parameters()}
        for p in self.parameters():
            if p.requires_grad and id(p) not in encoder_ids:
                yield p
