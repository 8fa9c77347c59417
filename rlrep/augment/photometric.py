"""Colour augmentations: colour jitter, grayscale, Gaussian blur, solarize.

Frame-stack aware: a ``(B, 3·k, H, W)`` batch is viewed as ``B·k`` RGB images and the parameters
drawn for sample ``i`` are repeated for its ``k`` frames, so a stacked observation changes colour
as a whole (as in RAD's ``color_jitter``), never frame by frame.
"""

from __future__ import annotations

import math

import torch
from kornia.color import hsv_to_rgb, rgb_to_grayscale, rgb_to_hsv
from kornia.filters import gaussian_blur2d

from rlrep.augment.base import (
    Augmentation,
    Sampler,
    check_probability,
    check_size_int,
    frames_back,
    from_float,
    per_frame,
    repeat_frames,
    to_float,
)

__all__ = ["ColorJitter", "GaussianBlur", "RandomGrayscale", "RandomSolarize"]


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor·a + (1 − factor)·b`` clamped to [0, 1]; ``factor`` is ``(N,)``, ``b`` broadcasts
    against ``a`` (a mean ``(N, 1, 1, 1)`` or a gray image ``(N, 1, H, W)``: never expanded)."""
    f = factor.view(-1, 1, 1, 1)
    return (a * f).add_(b * (1.0 - f)).clamp_(0.0, 1.0)


def adjust_brightness(img: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale intensities by ``factor`` (torchvision semantics). ``img``: ``(N, 3, H, W)`` in [0, 1]."""
    return (img * factor.view(-1, 1, 1, 1)).clamp_(0.0, 1.0)


def adjust_contrast(img: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean gray level (torchvision semantics)."""
    return _blend(img, rgb_to_grayscale(img).mean(dim=(1, 2, 3), keepdim=True), factor)


def adjust_saturation(img: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the grayscale image (torchvision semantics)."""
    return _blend(img, rgb_to_grayscale(img), factor)


def adjust_hue(img: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``shift`` turns (``shift`` in [-0.5, 0.5]) through HSV (kornia)."""
    hsv = rgb_to_hsv(img)
    hue = torch.remainder(hsv[:, :1] + shift.view(-1, 1, 1, 1) * (2 * math.pi), 2 * math.pi)
    return hsv_to_rgb(torch.cat([hue, hsv[:, 1:]], dim=1)).clamp_(0.0, 1.0)


class ColorJitter(Augmentation):
    """Random brightness, contrast, saturation and hue, applied in that order.

    Factors are uniform in ``[1 − b, 1 + b]``, ``[1 − c, 1 + c]``, ``[1 − s, 1 + s]`` and the hue
    shift in ``[−h, h]`` turns; each sample is jittered with probability ``p``. Defaults are RAD's
    (0.4, 0.4, 0.4, 0.5, p = 1); SimCLR uses (0.4, 0.4, 0.4, 0.1, p = 0.8). Eval: identity.
    """

    needs_rgb_frames = True

    def __init__(
        self,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.5,
        p: float = 1.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"ColorJitter: hue must be in [0, 0.5] turns, got {hue}")
        for name, v in (
            ("brightness", brightness),
            ("contrast", contrast),
            ("saturation", saturation),
        ):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"ColorJitter: {name} must be in [0, 1], got {v}")
        self.brightness, self.contrast, self.saturation, self.hue = (
            brightness, contrast, saturation, hue,
        )  # fmt: skip
        self.p = check_probability(p, "ColorJitter: p")

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        b = x.shape[0]
        img = per_frame(to_float(x))

        def factor(spread: float, centre: float = 1.0) -> torch.Tensor:
            return repeat_frames(sampler.uniform(b, centre - spread, centre + spread), x)

        out = img
        if self.brightness > 0:
            out = adjust_brightness(out, factor(self.brightness))
        if self.contrast > 0:
            out = adjust_contrast(out, factor(self.contrast))
        if self.saturation > 0:
            out = adjust_saturation(out, factor(self.saturation))
        if self.hue > 0:
            out = adjust_hue(out, factor(self.hue, centre=0.0))
        if self.p < 1.0:
            keep = repeat_frames(sampler.bernoulli(self.p, b), x).view(-1, 1, 1, 1)
            out = torch.where(keep, out, img)
        return from_float(frames_back(out, x), x)

    def extra_repr(self) -> str:
        return (
            f"brightness={self.brightness}, contrast={self.contrast}, "
            f"saturation={self.saturation}, hue={self.hue}, p={self.p}"
        )


class RandomGrayscale(Augmentation):
    """Turn a sample's frames to gray (ITU-R 601 weights, kept 3-channel) with probability ``p``
    (RAD: 0.3, SimCLR: 0.2). Eval: identity.
    """

    needs_rgb_frames = True

    def __init__(self, p: float = 0.3, seed: int | None = None) -> None:
        super().__init__(seed)
        self.p = check_probability(p, "RandomGrayscale: p")

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        img = per_frame(to_float(x))
        gray = rgb_to_grayscale(img).expand_as(img)
        sel = repeat_frames(sampler.bernoulli(self.p, x.shape[0]), x).view(-1, 1, 1, 1)
        return from_float(frames_back(torch.where(sel, gray, img), x), x)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianBlur(Augmentation):
    """Gaussian blur with sigma uniform in ``sigma`` per sample, applied with probability ``p``
    (SimCLR: kernel ≈ 10% of the image side, sigma in [0.1, 2]). Eval: identity.

    :param kernel_size: odd kernel side; ``None`` → the odd number nearest 10% of the image side.
    """

    def __init__(
        self,
        kernel_size: int | None = None,
        sigma: tuple[float, float] = (0.1, 2.0),
        p: float = 0.5,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if kernel_size is not None:
            kernel_size = check_size_int(kernel_size, "GaussianBlur: kernel_size")
            if kernel_size % 2 == 0:
                raise ValueError(
                    f"GaussianBlur: kernel_size must be odd, got {kernel_size}; pass e.g. "
                    f"{kernel_size + 1}"
                )
        if not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f"GaussianBlur: need 0 < sigma[0] <= sigma[1], got {sigma}")
        self.kernel_size, self.sigma = kernel_size, sigma
        self.p = check_probability(p, "GaussianBlur: p")

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        b = x.shape[0]
        k = self.kernel_size or max(3, int(0.1 * x.shape[2]) // 2 * 2 + 1)
        sigma = sampler.uniform(b, *self.sigma).view(-1, 1).expand(b, 2).contiguous()
        chosen = sampler.bernoulli(self.p, b).nonzero().squeeze(1)
        out = x.clone()
        if chosen.numel():  # only the chosen samples; same kernel on every channel of a sample
            img = to_float(x[chosen])
            # Three channels at a time: kornia's depthwise conv on the CPU runs 2× faster on
            # 3-channel slices than on 9 channels at once (experiments/bench_kornia.py).
            blurred = torch.cat(
                [gaussian_blur2d(part, (k, k), sigma[chosen]) for part in img.split(3, dim=1)], 1
            )
            out[chosen] = from_float(blurred, x)
        return out

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, sigma={self.sigma}, p={self.p}"


class RandomSolarize(Augmentation):
    """Invert pixels above ``threshold`` (x → 1 − x) with probability ``p`` (BYOL's second view:
    p = 0.2). Eval: identity.
    """

    def __init__(self, threshold: float = 0.5, p: float = 0.2, seed: int | None = None) -> None:
        super().__init__(seed)
        self.threshold = threshold
        self.p = check_probability(p, "RandomSolarize: p")

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        chosen = sampler.bernoulli(self.p, x.shape[0]).nonzero().squeeze(1)
        out = x.clone()
        if chosen.numel():  # only the chosen samples are converted and written
            img = to_float(x[chosen])
            out[chosen] = from_float(torch.where(img >= self.threshold, 1.0 - img, img), x)
        return out

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, p={self.p}"
