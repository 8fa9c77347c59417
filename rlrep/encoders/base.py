"""What every pixel encoder shares: input checks and uint8 → [0, 1] scaling inside."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from rlrep.augment.base import check_pixel_range

__all__ = ["PixelEncoderBase", "check_observation_shape"]


def check_observation_shape(shape: tuple[int, ...], name: str) -> tuple[int, int, int]:
    """Return ``(C, H, W)`` or raise ``ValueError`` for a shape that is not channel-first."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3:
        raise ValueError(f"{name}: observation_shape must be (C, H, W), got {shape}")
    c, h, w = shape
    if w < c and w < h:
        raise ValueError(
            f"{name}: observation_shape {shape} looks channels-last (H, W, C); pass (C, H, W)"
        )
    return c, h, w


class PixelEncoderBase(nn.Module, ABC):
    """Base of the pixel encoders: ``forward`` takes ``(B, C, H, W)`` uint8 [0, 255] or float
    [0, 1] images and returns ``(B, features_dim)`` features.

    Every encoder is a convolutional trunk then a head, ``forward = forward_head ∘ forward_conv``:
    :meth:`forward_conv` gives the flattened trunk output ``(B, conv_dim)``, :meth:`forward_head`
    maps it to the features. The split is what ``decoupled`` (ATC, Stooke et al. 2021) cuts: the
    RL losses read the trunk's output detached and train the head only. A subclass (a user's
    encoder registered in :data:`rlrep.encoders.ENCODERS` too) defines both.

    Input is checked by :meth:`preprocess` (``ValueError`` saying what to change): ``B >= 1``,
    ``C`` and (where :attr:`fixed_size`) ``H, W`` as ``observation_shape``, dtype uint8 or
    floating, float values in [0, 1] (one ``aminmax``). Any floating dtype is accepted (float64
    from numpy included) and cast to the weights' dtype, as uint8 is after scaling by 1/255.

    :param observation_shape: ``(C, H, W)`` of one (frame-stacked) observation.
    """

    #: Whether the input must be exactly ``observation_shape``'s ``H×W`` (``False`` for networks
    #: ending in a global pool, which take any size).
    fixed_size: bool = True

    def __init__(self, observation_shape: tuple[int, int, int], features_dim: int) -> None:
        super().__init__()
        self.observation_shape = check_observation_shape(observation_shape, type(self).__name__)
        self.features_dim = features_dim

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """Check ``obs`` ``(B, C, H, W)`` and return it as floats in [0, 1] of the weights' dtype.

        :raises ValueError: wrong rank, channels, size, dtype, values, or an empty batch.
        """
        name, (c, h, w) = type(self).__name__, self.observation_shape
        if not isinstance(obs, torch.Tensor):
            raise TypeError(
                f"{name}: expected a torch.Tensor (B, C, H, W), got {type(obs).__name__}"
            )
        shape = tuple(obs.shape)
        if obs.dim() != 4 or shape[1] != c:
            if obs.dim() == 3 and shape[0] == c:
                fix = "add the batch dimension with obs.unsqueeze(0)"
            elif obs.dim() == 4 and shape[3] == c:
                fix = "images look channels-last: use obs.permute(0, 3, 1, 2)"
            elif obs.dim() == 4:
                fix = f"build the encoder with observation_shape={shape[1:]} (it has {(c, h, w)})"
            else:
                fix = "pass a batch of channel-first images (B, C, H, W)"
            raise ValueError(
                f"{name}: expected (B, {c}, H, W) channel-first images, got shape {shape}; {fix}"
            )
        if self.fixed_size and shape[2:] != (h, w):
            raise ValueError(
                f"{name}: expected images of shape (B, {c}, {h}, {w}), got {shape}; crop or resize "
                f"them to {h}×{w} first (e.g. rlrep.augment.make('crop', size={h})), or build the "
                f"encoder with observation_shape={(c, *shape[2:])}"
            )
        if shape[0] == 0:
            raise ValueError(f"{name}: got an empty batch, shape {shape}; pass at least one image")
        dtype = next(self.parameters()).dtype
        if obs.dtype == torch.uint8:
            return obs.to(dtype) / 255.0
        if not obs.is_floating_point():
            raise ValueError(
                f"{name}: expected uint8 pixels in [0, 255] or floats in [0, 1], got dtype "
                f"{obs.dtype}; convert with obs.to(torch.uint8) (values 0–255) or obs.float() / 255"
            )
        check_pixel_range(obs, name)
        return obs.to(dtype)

    @abstractmethod
    def forward_conv(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` images → ``(B, conv_dim)``: the convolutional trunk, flattened."""

    @abstractmethod
    def forward_head(self, conv_features: torch.Tensor) -> torch.Tensor:
        """``(B, conv_dim)`` trunk output → ``(B, features_dim)`` features."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_conv(obs))

    @torch.no_grad()
    def _flat_size(self, trunk: nn.Module) -> int:
        """Size of ``trunk``'s flattened output for one observation (found by a dry run)."""
        return trunk(torch.zeros(1, *self.observation_shape)).flatten(1).shape[1]
