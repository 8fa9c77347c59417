"""CIFAR-style ResNet-18 (He et al. 2016): 3×3 stem, no max-pool, global average pool."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rlrep.encoders.base import PixelEncoderBase

__all__ = ["ResNet18"]


class _BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(PixelEncoderBase):
    """ResNet-18 for small images (CIFAR variant used by SimCLR, lightly and solo-learn):
    conv 3×3/1 stem, four stages of two basic blocks (64, 128, 256, 512), average pool →
    512 features. Works at any input size ≥ 8×8. All of it is the convolutional trunk
    (:meth:`forward_conv`); its head is the identity.

    :param observation_shape: ``(C, H, W)``, e.g. ``(3, 32, 32)``.
    :param width: channels of the first stage (64); features are ``8 · width``.
    """

    fixed_size = False  # global average pool: any H×W (observation_shape's channels only)

    def __init__(self, observation_shape: tuple[int, int, int], width: int = 64) -> None:
        super().__init__(observation_shape, features_dim=8 * width)
        c = self.observation_shape[0]
        layers: list[nn.Module] = [
            nn.Conv2d(c, width, 3, 1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        in_ch = width
        for i, out_ch in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            layers += [_BasicBlock(in_ch, out_ch, stride), _BasicBlock(out_ch, out_ch, 1)]
            in_ch = out_ch
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)

    def forward_conv(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, 8·width)``: every layer up to the pooled, flattened maps."""
        return self.net(self.preprocess(obs))

    def forward_head(self, conv_features: torch.Tensor) -> torch.Tensor:
        """The identity: the network has no head after its pool (``decoupled``, the RL losses
        train none of it)."""
        return conv_features
