"""What every pixel encoder shares: input checks and uint8 → [0, 1] scaling inside."""

from __future__ import annotations

import torch
from torch import nn

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


class PixelEncoderBase(nn.Module):
    """Base of the pixel encoders: ``forward`` takes ``(B, C, H, W)`` uint8 [0, 255] or float
    [0, 1] images and returns ``(B, features_dim)`` features.

    :param observation_shape: ``(C, H, W)`` of one (frame-stacked) observation.
    """

    def __init__(self, observation_shape: tuple[int, int, int], features_dim: int) -> None:
        super().__init__()
        self.observation_shape = check_observation_shape(observation_shape, type(self).__name__)
        self.features_dim = features_dim

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.dim() != 4 or obs.shape[1] != self.observation_shape[0]:
            raise ValueError(
                f"{type(self).__name__}: expected (B, {self.observation_shape[0]}, H, W) "
                f"channel-first images, got shape {tuple(obs.shape)}"
            )
        return obs.float() / 255.0 if obs.dtype == torch.uint8 else obs

    @torch.no_grad()
    def _flat_size(self, trunk: nn.Module) -> int:
        """Size of ``trunk``'s flattened output for one observation (found by a dry run)."""
        return trunk(torch.zeros(1, *self.observation_shape)).flatten(1).shape[1]
