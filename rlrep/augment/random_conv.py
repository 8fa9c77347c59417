"""RAD's random convolution (Lee et al. 2020, "Network Randomization"): a fresh random 3×3
RGB → RGB filter per sample, the same filter for every stacked frame of that sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rlrep.augment.base import (
    Augmentation,
    Sampler,
    frames_back,
    from_float,
    per_frame,
    to_float,
)

__all__ = ["RandomConv"]


class RandomConv(Augmentation):
    """Convolve each frame with a per-sample 3×3 kernel drawn from Xavier-normal
    (std = sqrt(2 / (27 + 27)), as RAD's ``xavier_normal_`` on a 3→3 3×3 conv), zero padding 1.

    RAD leaves the output unbounded; here it is clamped to [0, 1] so the result is still an image
    (and survives a uint8 round trip). All filters run as one grouped convolution. Eval: identity.
    """

    needs_rgb_frames = True

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        b = x.shape[0]
        k = x.shape[1] // 3
        img = per_frame(to_float(x))  # (B·k, 3, H, W)
        std = math.sqrt(2.0 / (27 + 27))
        weight = sampler.normal((b, 3, 3, 3, 3)) * std
        weight = weight.repeat_interleave(k, dim=0).reshape(b * k * 3, 3, 3, 3)
        n, _, h, w = img.shape
        out = F.conv2d(img.reshape(1, n * 3, h, w), weight.to(img.dtype), padding=1, groups=n)
        return from_float(frames_back(out.reshape(n, 3, h, w).clamp_(0.0, 1.0), x), x)
