"""Batched, frame-stack-aware image augmentations on the tensor's device.

``make("crop")``, ``make("crop+color_jitter", size=84)``: see :func:`make` for the names. Every
augmentation is an ``nn.Module`` taking ``(B, C, H, W)`` uint8 or float [0, 1] batches; with
``C = 3·k`` stacked frames each sample's frames share their random parameters. ``.eval()`` gives
the deterministic view (center crop; identity for the rest). :func:`multi_crop` gives SwAV's
two global and several local views per image.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from rlrep.augment.base import (
    Augmentation,
    Sampler,
    check_frame_channels,
    check_images,
    infer_frame_channels,
)
from rlrep.augment.compose import Compose
from rlrep.augment.cutout import Cutout
from rlrep.augment.geometric import (
    RandomCrop,
    RandomFlip,
    RandomRotate,
    RandomShift,
    RandomTranslate,
    crop_windows,
)
from rlrep.augment.kornia_adapter import KorniaAugmentation
from rlrep.augment.multicrop import MultiCrop, multi_crop, parse_multi_crop
from rlrep.augment.photometric import ColorJitter, GaussianBlur, RandomGrayscale, RandomSolarize
from rlrep.augment.random_conv import RandomConv
from rlrep.augment.simclr import RandomResizedCrop, simclr_recipe

__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "ColorJitter",
    "Compose",
    "Cutout",
    "GaussianBlur",
    "KorniaAugmentation",
    "MultiCrop",
    "RandomConv",
    "RandomCrop",
    "RandomFlip",
    "RandomGrayscale",
    "RandomResizedCrop",
    "RandomRotate",
    "RandomShift",
    "RandomSolarize",
    "RandomTranslate",
    "Sampler",
    "check_frame_channels",
    "check_images",
    "crop_windows",
    "infer_frame_channels",
    "make",
    "multi_crop",
    "parse_multi_crop",
    "simclr_recipe",
]

#: Name → constructor. ``simclr`` is a whole recipe; the rest are single steps.
AUGMENTATIONS: dict[str, Any] = {
    "crop": RandomCrop,
    "shift": RandomShift,
    "translate": RandomTranslate,
    "cutout": Cutout,
    "color_jitter": ColorJitter,
    "grayscale": RandomGrayscale,
    "flip": RandomFlip,
    "rotate": RandomRotate,
    "conv": RandomConv,
    "blur": GaussianBlur,
    "solarize": RandomSolarize,
    "resized_crop": RandomResizedCrop,
    "simclr": simclr_recipe,
}


def _accepted(factory: Any) -> set[str]:
    """Keywords of a step a caller may set (``frame_channels`` is :func:`make`'s own)."""
    return set(inspect.signature(factory).parameters) - {"seed"}


def make(
    spec: str | nn.Module | None, seed: int | None = None, frame_channels: int = 3, **kwargs: Any
) -> nn.Module:
    """Build an augmentation from its name; ``"a+b"`` composes ``a`` then ``b``.

    Each keyword goes to every step that takes it (``make("crop+cutout", size=84)`` sets the
    crop size); a keyword no step takes raises ``ValueError``. ``None`` or ``"none"`` gives the
    identity.

    :param spec: names from :data:`AUGMENTATIONS` joined by ``+``, or a kornia augmentation
        module (one or an ``AugmentationSequential``; see :class:`KorniaAugmentation`, which
        takes ``eval_view=`` among the keywords).
    :param seed: seed of the generator shared by the steps (``None``: torch's global RNG).
    :param frame_channels: channels per stacked frame: 3 (RGB) or 1 (grayscale, e.g. Atari);
        colour steps (``color_jitter``, ``grayscale``, ``conv``, the ``simclr`` recipe) refuse
        grayscale frames, ``cutout`` fills one value per frame channel.
    :return: a :class:`Compose` of the steps.
    """
    frame_channels = check_frame_channels(frame_channels)
    if isinstance(spec, nn.Module):  # a kornia module: applied per stacked frame
        return Compose([KorniaAugmentation(spec, frame_channels, **kwargs)], seed=seed)
    if spec is None or spec.strip().lower() in ("", "none", "identity"):
        if kwargs:
            raise ValueError(f"augment.make: no augmentation takes {sorted(kwargs)}")
        return Compose([], seed=seed)
    names = [n.strip() for n in spec.split("+")]
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(
            f"augment.make: unknown augmentation {unknown[0]!r} in {spec!r}; valid names: "
            f"{', '.join(AUGMENTATIONS)} (join with '+', e.g. 'crop+color_jitter')"
        )
    used: set[str] = set()
    steps: list[nn.Module] = []
    for name in names:
        factory = AUGMENTATIONS[name]
        own = {k: v for k, v in kwargs.items() if k in _accepted(factory)}
        used |= own.keys()
        if "frame_channels" in _accepted(factory):
            own["frame_channels"] = frame_channels
        step = factory(**own)
        new_steps = step.steps if isinstance(step, Compose) else [step]
        if frame_channels != 3 and any(getattr(s, "needs_rgb_frames", False) for s in new_steps):
            raise ValueError(
                f"augment.make: {name!r} changes colours and needs RGB frames, but "
                f"frame_channels={frame_channels} (grayscale stacks, e.g. Atari); drop it or use "
                "steps that work on any channels: crop, shift, translate, cutout, flip, rotate, "
                "blur, solarize, resized_crop"
            )
        steps.extend(new_steps)
    if unused := set(kwargs) - used:
        raise ValueError(
            f"augment.make: {sorted(unused)} not accepted by any of {names}; "
            f"accepted: {sorted(set().union(*(_accepted(AUGMENTATIONS[n]) for n in names)))}"
        )
    return Compose(steps, seed=seed)
