"""RAD's cutout: erase one random box per sample (the same box in every stacked frame)."""

from __future__ import annotations

import torch

from rlrep.augment.base import Augmentation, Sampler, check_frame_channels, check_size_int

__all__ = ["Cutout"]


class Cutout(Augmentation):
    """Fill a random box of side uniform in ``[min_size, max_size]`` pixels (RAD: 10–30) with
    zeros, or with one random colour per sample (``fill="random"``, RAD's ``cutout_color``), the
    same in each of the sample's stacked frames. Eval: identity.

    :param frame_channels: channels per frame (3: RGB, 1: grayscale): a random colour has that
        many values, repeated over the frames.
    """

    def __init__(
        self,
        min_size: int = 10,
        max_size: int = 30,
        fill: str = "zero",
        frame_channels: int = 3,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        self.frame_channels = check_frame_channels(frame_channels)
        min_size = check_size_int(min_size, "Cutout: min_size")
        max_size = check_size_int(max_size, "Cutout: max_size")
        if not min_size <= max_size:
            raise ValueError(f"Cutout: need 0 < min_size <= max_size, got {min_size}, {max_size}")
        if fill not in ("zero", "random"):
            raise ValueError(f"Cutout: fill must be 'zero' or 'random', got {fill!r}")
        self.min_size, self.max_size, self.fill = min_size, max_size, fill

    def check_size(self, x: torch.Tensor) -> None:
        if self.max_size > min(x.shape[2], x.shape[3]):
            raise ValueError(
                f"Cutout: max_size {self.max_size} exceeds the image side "
                f"{min(x.shape[2], x.shape[3])}; pass a smaller max_size"
            )

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        b, c, h, w = x.shape
        bh = sampler.randint(self.min_size, self.max_size + 1, b)
        bw = sampler.randint(self.min_size, self.max_size + 1, b)
        top = (sampler.uniform(b) * (h - bh + 1)).long()
        left = (sampler.uniform(b) * (w - bw + 1)).long()
        rows = torch.arange(h, device=x.device).view(1, h)
        cols = torch.arange(w, device=x.device).view(1, w)
        in_rows = (rows >= top.view(-1, 1)) & (rows < (top + bh).view(-1, 1))
        in_cols = (cols >= left.view(-1, 1)) & (cols < (left + bw).view(-1, 1))
        box = in_rows.view(b, 1, h, 1) & in_cols.view(b, 1, 1, w)
        if self.fill == "zero":
            return x.masked_fill(box, 0)
        high = 256 if x.dtype == torch.uint8 else 1
        fc = self.frame_channels
        if c % fc == 0:  # one colour per sample, repeated over its frames
            colour = sampler.uniform((b, fc)) * high
            colour = colour.repeat(1, c // fc)
        else:
            colour = sampler.uniform((b, c)) * high
        colour = (colour.floor() if x.dtype == torch.uint8 else colour).to(x.dtype)
        return torch.where(box, colour.view(b, c, 1, 1), x)

    def extra_repr(self) -> str:
        return (
            f"min_size={self.min_size}, max_size={self.max_size}, fill={self.fill!r}, "
            f"frame_channels={self.frame_channels}"
        )
