"""Multi-crop (Caron et al. 2020): two global views and several smaller local views per image."""

from __future__ import annotations

import inspect
import re
from typing import Any

import torch
from torch import nn

from rlrep.augment.base import check_size_int
from rlrep.augment.compose import Compose

__all__ = ["MultiCrop", "multi_crop", "parse_multi_crop"]

#: SwAV's crop scales (fractions of the image area) for global and local crops on ImageNet.
GLOBAL_SCALE = (0.14, 1.0)
LOCAL_SCALE = (0.05, 0.14)


class MultiCrop(nn.Module):
    """``num_global`` views from ``global_augment`` then ``num_local`` from ``local_augment``.

    Methods in :data:`rlrep.methods.MULTI_VIEW` take them all (``method(*views)``); the first
    two are the global views every method compares. In ``.eval()`` (and :meth:`deterministic`)
    it is the global pipeline's deterministic view, so probes and the RL view see global crops.
    Frame stacks are handled by the pipelines (the k frames of a sample share parameters).

    :param global_augment: / :param local_augment: the two pipelines (:func:`rlrep.augment.make`).
    :param num_global: global views, 2 (every method compares two); :param num_local: ≥ 0.
    """

    def __init__(
        self,
        global_augment: nn.Module,
        local_augment: nn.Module,
        num_global: int = 2,
        num_local: int = 4,
    ) -> None:
        super().__init__()
        if num_global != 2:
            raise ValueError(
                f"MultiCrop: num_global must be 2 (the two views every method compares), got "
                f"{num_global!r}"
            )
        self.global_augment, self.local_augment = global_augment, local_augment
        self.num_global = num_global
        self.num_local = check_size_int(num_local, "MultiCrop: num_local", minimum=0)

    @property
    def num_views(self) -> int:
        return self.num_global + self.num_local

    def views(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """``num_global`` global then ``num_local`` local random views of ``x`` ``(B, C, H, W)``."""
        out = [self.global_augment.random(x, generator) for _ in range(self.num_global)]
        return out + [self.local_augment.random(x, generator) for _ in range(self.num_local)]

    def random(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One random global view (where a single view is needed, e.g. the RL loss's)."""
        return self.global_augment.random(x, generator)

    def deterministic(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_augment.deterministic(x)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.random(x, generator) if self.training else self.deterministic(x)

    def extra_repr(self) -> str:
        return f"num_global={self.num_global}, num_local={self.num_local}"


def parse_multi_crop(spec: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``"2x32,4x16"`` → ``((2, 32), (4, 16))``: (count, side) of the global and local crops."""
    match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*,\s*(\d+)\s*x\s*(\d+)\s*", spec)
    if match is None:
        raise ValueError(
            f"multi-crop: expected 'GxS,LxT' (G global crops of side S, L local crops of side T), "
            f"e.g. '2x32,4x16', got {spec!r}"
        )
    g, s, n, t = (int(v) for v in match.groups())
    return (g, s), (n, t)


def multi_crop(
    spec: str,
    augmentation: str,
    seed: int | None = None,
    frame_channels: int = 3,
    global_scale: tuple[float, float] = GLOBAL_SCALE,
    local_scale: tuple[float, float] = LOCAL_SCALE,
    **kwargs: Any,
) -> MultiCrop:
    """A :class:`MultiCrop` from ``spec`` (``"2x32,4x16"``) and an :func:`~rlrep.augment.make`
    recipe that takes ``size`` (e.g. ``"simclr"``, ``"resized_crop+color_jitter"``, ``"crop"``).

    Recipes with a random resized crop get SwAV's area ``scale`` per crop kind (global
    0.14–1, local 0.05–0.14); others (``"crop"``) take windows of each side. ``kwargs`` go to
    both pipelines (a ``size`` among them is an error: the spec sets it).
    """
    from rlrep.augment import AUGMENTATIONS, make  # the registry imports this module

    if "size" in kwargs:
        raise ValueError("multi_crop: the spec sets each crop's size; drop size= from the options")
    (num_global, global_size), (num_local, local_size) = parse_multi_crop(spec)
    names = [n.strip() for n in augmentation.split("+")]
    scaled = any(
        n in AUGMENTATIONS and "scale" in inspect.signature(AUGMENTATIONS[n]).parameters
        for n in names
    )

    def pipeline(size: int, scale: tuple[float, float], offset: int) -> Compose:
        extra = {"scale": scale} if scaled else {}
        step_seed = None if seed is None else seed + offset
        return make(augmentation, step_seed, frame_channels, size=size, **extra, **kwargs)

    return MultiCrop(
        pipeline(global_size, global_scale, 0),
        pipeline(local_size, local_scale, 1),
        num_global=num_global,
        num_local=num_local,
    )
