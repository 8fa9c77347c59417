"""The IMPALA ResNet encoder (Espeholt et al. 2018), as used on Procgen."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rlrep.encoders.base import PixelEncoderBase

__all__ = ["ImpalaCNN"]


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(F.relu(self.conv0(F.relu(x))))


class _Stack(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.res0, self.res1 = _Residual(out_channels), _Residual(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res1(self.res0(self.pool(self.conv(x))))


class ImpalaCNN(PixelEncoderBase):
    """Three stacks (conv 3×3, max-pool 3×3/2, two residual blocks) of ``channels``
    (16, 32, 32), ReLU, flatten, Linear → ``features_dim`` (256), ReLU.

    :param observation_shape: ``(C, H, W)``.
    """

    def __init__(
        self,
        observation_shape: tuple[int, int, int],
        features_dim: int = 256,
        channels: tuple[int, ...] = (16, 32, 32),
    ) -> None:
        super().__init__(observation_shape, features_dim)
        stacks, c = [], self.observation_shape[0]
        for out in channels:
            stacks.append(_Stack(c, out))
            c = out
        self.trunk = nn.Sequential(*stacks, nn.ReLU(), nn.Flatten())
        self.linear = nn.Sequential(nn.Linear(self._flat_size(self.trunk), features_dim), nn.ReLU())

    def forward_conv(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, conv_dim)``: the three stacks, ReLU, flattened."""
        return self.trunk(self.preprocess(obs))

    def forward_head(self, conv_features: torch.Tensor) -> torch.Tensor:
        """``(B, conv_dim)`` → ``(B, features_dim)``: Linear, ReLU."""
        return self.linear(conv_features)
