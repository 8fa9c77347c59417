"""Geometric augmentations: crop (CURL), shift (DrQ), translate (RAD), flip, rotate.

All of them move whole samples, so every stacked frame of a sample gets the same transform
without any reshaping. Crop, shift and translate are one batched window copy
(:func:`crop_windows`) after an optional pad: no Python loop over the batch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from rlrep.augment.base import Augmentation, Sampler, check_probability, check_size_int

__all__ = [
    "RandomCrop",
    "RandomFlip",
    "RandomRotate",
    "RandomShift",
    "RandomTranslate",
    "crop_windows",
]

# Below this many output bytes one thread is faster than two.
_THREADED_CROP_BYTES = 4 << 20
_NUMPY_DTYPES = {torch.uint8, torch.float16, torch.float32, torch.float64}


@lru_cache(maxsize=1)
def _crop_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="rlrep-crop")


def _crop_numpy(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: int, w: int):
    # One copy of each crop, row by row (memcpy): numpy's fancy indexing over a window view for
    # small batches; for large ones, two threads each copy half the samples straight into the
    # output (numpy releases the GIL while copying). torch's CPU index kernel computes an offset
    # per byte and is ~2× slower; fancy indexing into a slice of a preallocated output would copy
    # twice (a temporary, then the slice).
    xn = x.numpy()
    top_n, left_n = top.numpy(), left.numpy()
    b = xn.shape[0]
    if b * xn.shape[1] * h * w * xn.itemsize < _THREADED_CROP_BYTES or torch.get_num_threads() < 2:
        windows = np.lib.stride_tricks.sliding_window_view(xn, (h, w), axis=(2, 3))
        return torch.from_numpy(windows[np.arange(b), :, top_n, left_n])
    out = np.empty((b, xn.shape[1], h, w), dtype=xn.dtype)

    def copy(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            t, l0 = top_n[i], left_n[i]
            np.copyto(out[i], xn[i, :, t : t + h, l0 : l0 + w])

    half = b // 2
    list(_crop_pool().map(copy, (0, half), (half, b)))
    return torch.from_numpy(out)


def crop_windows(
    x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Per-sample crop: ``out[i] = x[i, :, top[i] : top[i] + h, left[i] : left[i] + w]``.

    One batched copy: a window view of ``x`` indexed by the offsets (a single index kernel on
    CUDA; numpy's row copies on the CPU when no gradient is needed).

    :param x: ``(B, C, H, W)`` batch, any dtype.
    :param top: ``(B,)`` integer row offsets in ``[0, H - h]``.
    :param left: ``(B,)`` integer column offsets in ``[0, W - w]``.
    :param size: ``(h, w)`` of the crop.
    :return: ``(B, C, h, w)`` contiguous tensor.
    """
    h, w = size
    if x.device.type == "cpu" and not x.requires_grad and x.dtype in _NUMPY_DTYPES:
        return _crop_numpy(x, top.cpu(), left.cpu(), h, w)
    windows = x.unfold(2, h, 1).unfold(3, w, 1)  # (B, C, H - h + 1, W - w + 1, h, w) view
    rows = torch.arange(x.shape[0], device=x.device)
    return windows[rows, :, top, left]


def _pair(size: int | tuple[int, int], name: str) -> tuple[int, int]:
    """``(h, w)`` from an int or a pair of positive integers, or ``ValueError`` naming ``name``."""
    if not isinstance(size, (tuple, list)):
        side = check_size_int(size, name)
        return side, side
    if len(size) != 2:
        raise ValueError(f"{name} must be an integer >= 1 or an (h, w) pair, got {size!r}")
    return check_size_int(size[0], name), check_size_int(size[1], name)


class RandomCrop(Augmentation):
    """CURL's random crop (Laskin et al. 2020): a random ``size`` window per sample.

    Offsets are uniform over every valid position ``[0, H - h]`` (CURL's reference code draws
    ``[0, H - h)``, never the last one). Eval: the center crop.

    :param size: output ``h`` (and ``w``), e.g. 84 from 100×100 renders.
    :param seed: see :class:`~rlrep.augment.base.Augmentation`.
    """

    def __init__(self, size: int | tuple[int, int] = 84, seed: int | None = None) -> None:
        super().__init__(seed)
        self.size = _pair(size, "RandomCrop: size")

    def check_size(self, x: torch.Tensor) -> None:
        h, w = self.size
        if h > x.shape[2] or w > x.shape[3]:
            raise ValueError(
                f"RandomCrop: crop size {h}×{w} is larger than the images "
                f"{x.shape[2]}×{x.shape[3]}; render larger images (CURL renders 100 for an 84 "
                "crop) or pass a smaller size"
            )

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        (h, w), b = self.size, x.shape[0]
        if (h, w) == (x.shape[2], x.shape[3]):  # already cropped (e.g. by the agent's sampler)
            return x
        top = sampler.randint(0, x.shape[2] - h + 1, b)
        left = sampler.randint(0, x.shape[3] - w + 1, b)
        return crop_windows(x, top, left, self.size)

    def eval_view(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.size
        top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
        return x[:, :, top : top + h, left : left + w].contiguous()

    def extra_repr(self) -> str:
        return f"size={self.size}"


class RandomShift(Augmentation):
    """DrQ's random shift (Kostrikov et al. 2020): replicate-pad by ``pad``, crop back to H×W.

    Equals a shift by up to ±``pad`` pixels with edge pixels repeated. Eval: the identity.
    """

    def __init__(self, pad: int = 4, seed: int | None = None) -> None:
        super().__init__(seed)
        self.pad = check_size_int(pad, "RandomShift: pad", minimum=0)

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        p, b = self.pad, x.shape[0]
        padded = F.pad(x, (p, p, p, p), mode="replicate")
        top = sampler.randint(0, 2 * p + 1, b)
        left = sampler.randint(0, 2 * p + 1, b)
        return crop_windows(padded, top, left, (x.shape[2], x.shape[3]))

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class RandomTranslate(Augmentation):
    """RAD's random translate (Laskin et al. 2020b): paste each image at a random position of a
    zero canvas of ``size`` (e.g. 100 → 108). Eval: the image centered on the canvas.
    """

    def __init__(self, size: int | tuple[int, int] = 108, seed: int | None = None) -> None:
        super().__init__(seed)
        self.size = _pair(size, "RandomTranslate: size")

    def check_size(self, x: torch.Tensor) -> None:
        if self.size[0] < x.shape[2] or self.size[1] < x.shape[3]:
            raise ValueError(
                f"RandomTranslate: canvas {self.size[0]}×{self.size[1]} is smaller than the "
                f"images {x.shape[2]}×{x.shape[3]}; pass size >= the image size"
            )

    def _paste(self, x: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
        # On a zero border of (S - H) around the image, an S-window at offset t shows the image
        # at position (S - H) - t of the canvas.
        dh, dw = self.size[0] - x.shape[2], self.size[1] - x.shape[3]
        padded = F.pad(x, (dw, dw, dh, dh))
        return crop_windows(padded, dh - top, dw - left, self.size)

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        b = x.shape[0]
        top = sampler.randint(0, self.size[0] - x.shape[2] + 1, b)
        left = sampler.randint(0, self.size[1] - x.shape[3] + 1, b)
        return self._paste(x, top, left)

    def eval_view(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        top = torch.full((b,), (self.size[0] - x.shape[2]) // 2, device=x.device)
        left = torch.full((b,), (self.size[1] - x.shape[3]) // 2, device=x.device)
        return self._paste(x, top, left)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class RandomFlip(Augmentation):
    """Horizontal flip of each sample with probability ``p`` (RAD uses 0.2). Eval: identity."""

    def __init__(self, p: float = 0.2, seed: int | None = None) -> None:
        super().__init__(seed)
        self.p = check_probability(p, "RandomFlip: p")

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        flip = sampler.bernoulli(self.p, x.shape[0]).view(-1, 1, 1, 1)
        return torch.where(flip, x.flip(3), x)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class RandomRotate(Augmentation):
    """With probability ``p`` rotate a sample by 90°, 180° or 270° (uniform; RAD uses p = 0.3).

    Square images only. Eval: identity.
    """

    def __init__(self, p: float = 0.3, seed: int | None = None) -> None:
        super().__init__(seed)
        self.p = check_probability(p, "RandomRotate: p")

    def check_size(self, x: torch.Tensor) -> None:
        if x.shape[2] != x.shape[3]:
            raise ValueError(
                f"RandomRotate: needs square images, got {x.shape[2]}×{x.shape[3]}; crop first"
            )

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        b = x.shape[0]
        turns = sampler.randint(1, 4, b) * sampler.bernoulli(self.p, b)  # 0 = unchanged
        out = x
        for k in (1, 2, 3):
            sel = (turns == k).view(-1, 1, 1, 1)
            out = torch.where(sel, x.rot90(k, (2, 3)), out)
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}"
