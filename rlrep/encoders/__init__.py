"""Pixel encoders: ``(B, C, H, W)`` uint8 or float [0, 1] images → ``(B, features_dim)``.

``make("curl", observation_shape=(9, 84, 84))``; names in :data:`ENCODERS`.
"""

from __future__ import annotations

from typing import Any

from rlrep.encoders.base import PixelEncoderBase, check_observation_shape
from rlrep.encoders.impala import ImpalaCNN
from rlrep.encoders.nature import NatureCNN
from rlrep.encoders.pixel import PixelEncoder, PixelHead, delta_orthogonal_init_
from rlrep.encoders.resnet import ResNet18

__all__ = [
    "ENCODERS",
    "ImpalaCNN",
    "NatureCNN",
    "PixelEncoder",
    "PixelEncoderBase",
    "PixelHead",
    "ResNet18",
    "check_observation_shape",
    "delta_orthogonal_init_",
    "make",
]

ENCODERS: dict[str, type[PixelEncoderBase]] = {
    "curl": PixelEncoder,
    "nature": NatureCNN,
    "impala": ImpalaCNN,
    "resnet18": ResNet18,
}


def make(name: str, observation_shape: tuple[int, int, int], **kwargs: Any) -> PixelEncoderBase:
    """Build the encoder called ``name`` for ``(C, H, W)`` observations."""
    if name not in ENCODERS:
        raise ValueError(
            f"encoders.make: unknown encoder {name!r}; valid names: {', '.join(ENCODERS)}"
        )
    return ENCODERS[name](observation_shape, **kwargs)
