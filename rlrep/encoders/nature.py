"""The Nature DQN CNN (Mnih et al. 2015), as Stable-Baselines3's ``NatureCNN``."""

from __future__ import annotations

import torch
from torch import nn

from rlrep.encoders.base import PixelEncoderBase

__all__ = ["NatureCNN"]


class NatureCNN(PixelEncoderBase):
    """Conv 32@8×8/4, 64@4×4/2, 64@3×3/1 with ReLU, flatten, Linear → ``features_dim``, ReLU.

    :param observation_shape: ``(C, H, W)``; needs H, W ≥ 36.
    :param features_dim: output size (512 in DQN and SB3).
    """

    def __init__(self, observation_shape: tuple[int, int, int], features_dim: int = 512) -> None:
        super().__init__(observation_shape, features_dim)
        c, h, w = self.observation_shape
        if min(h, w) < 36:
            raise ValueError(f"NatureCNN: needs images of at least 36×36, got {h}×{w}")
        self.cnn = nn.Sequential(
            nn.Conv2d(c, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )  # fmt: skip
        self.linear = nn.Sequential(nn.Linear(self._flat_size(self.cnn), features_dim), nn.ReLU())

    def forward_conv(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, conv_dim)``: the three convs, flattened."""
        return self.cnn(self.preprocess(obs))

    def forward_head(self, conv_features: torch.Tensor) -> torch.Tensor:
        """``(B, conv_dim)`` → ``(B, features_dim)``: Linear, ReLU."""
        return self.linear(conv_features)
