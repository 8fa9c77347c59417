"""What :func:`rlrep.pretrain.pretrain` settles before it trains: its argument checks, the
augmentation (with ``--crop-size``) and the batch that fits the dataset."""

from __future__ import annotations

import math
from typing import Any

import torch

import rlrep.augment as augment_lib
from rlrep.datasets import Dataset, DatasetError

__all__ = [
    "SIZED_STEPS",
    "batch_steps",
    "check_arguments",
    "check_takes_local_views",
    "default_augmentation",
    "make_augment",
]

#: The augmentation steps whose ``size`` ``--crop-size`` sets, and what it is for each.
SIZED_STEPS = {
    "crop": "the side of CURL's random crop, at most the images' side",
    "resized_crop": "the side a random resized crop is resized to",
    "simclr": "the side SimCLR's random resized crop is resized to",
    "translate": "the side of RAD's canvas, at least the images' side",
}


def default_augmentation(ds: Dataset) -> tuple[str, dict[str, Any]]:
    """The SimCLR recipe for images (no blur below 64 px, as SimCLR on CIFAR); for DMC
    observations DrQ's random shift, scaled to the side (±4 px at 84, ±3 at 64; one shift per
    frame stack), whose deterministic view is the whole frame.

    Not CURL's crop (100 → 84, i.e. 84% of the side): at 64 px it drops the frame's border,
    where the cart of cartpole spends a fifth of a random episode, and its ±5 px jitter of
    absolute position costs the state probes (``experiments/representation_benchmark.py``).

    :param ds: the dataset the views are drawn from.
    :return: the augment spec and its keywords.
    """
    side = ds.image_shape[1]
    if ds.name.startswith("dmc:"):
        return "shift", {"pad": max(1, round(4 * side / 84))}
    return "simclr", {"size": side, "blur_p": 0.5 if side >= 64 else 0.0}


def make_augment(
    ds: Dataset,
    augmentation: str | None,
    augmentation_kwargs: dict[str, Any] | None,
    multi_crop: str | None,
    crop_size: int | None,
) -> tuple[str, dict[str, Any], torch.nn.Module, tuple[int, ...]]:
    """The run's augmentation: ``(spec, keywords, module, view shape)``.

    :param augmentation: an :func:`rlrep.augment.make` spec; ``None``: :func:`default_augmentation`.
    :param augmentation_kwargs: its keywords (added to the default's).
    :param multi_crop: a :func:`rlrep.augment.multi_crop` spec, which sets the crops' sides.
    :param crop_size: the ``size`` of the spec's sized step (:data:`SIZED_STEPS`); ``None``:
        the spec's (or the default's) own.
    :raises ValueError: ``crop_size`` for a spec without a sized step or with a multi-crop, or a
        size that does not fit the images; the message names ``--crop-size`` and a value.
    """
    kwargs = dict(augmentation_kwargs or {})
    if augmentation is None:
        augmentation, default_kwargs = default_augmentation(ds)
        if multi_crop is not None or crop_size is not None:  # they set the sizes
            default_kwargs.pop("size", None)
        kwargs = {**default_kwargs, **kwargs}
    side = ds.image_shape[1]
    if crop_size is not None:
        _check_crop_size(crop_size, augmentation, kwargs, multi_crop, side)
        kwargs["size"] = crop_size
    if multi_crop is None:
        augment = augment_lib.make(augmentation, **kwargs)
    else:
        augment = augment_lib.multi_crop(multi_crop, augmentation, **kwargs)
    try:
        view_shape = tuple(augment.deterministic(ds.train[:1]).shape[1:])
    except ValueError as err:
        sized = _sized(augmentation)
        if not sized or multi_crop is not None:
            raise
        raise ValueError(
            f"augmentation {augmentation!r} does not fit the {side}×{side} images of {ds.name}: "
            f"{err}. Set its size with --crop-size N (crop_size=N): "
            + "; ".join(f"{name}: {SIZED_STEPS[name]}" for name in sized)
            + f" (e.g. --crop-size {_suggested(sized[0], side)})"
        ) from None
    return augmentation, kwargs, augment, view_shape


def _sized(spec: Any) -> list[str]:
    """The steps of ``spec`` that take a ``size``."""
    if not isinstance(spec, str):
        return []
    return [name for name in (n.strip() for n in spec.split("+")) if name in SIZED_STEPS]


def _suggested(step: str, side: int) -> int:
    """A size that fits ``side``-px images: CURL's 84 of 100 for a crop, RAD's 108 for a canvas."""
    if step == "crop":
        return max(1, round(side * 0.84))
    if step == "translate":
        return math.ceil(side * 1.08)
    return side


def _check_crop_size(
    crop_size: Any, augmentation: Any, kwargs: dict[str, Any], multi_crop: str | None, side: int
) -> None:
    if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 1:
        raise ValueError(f"--crop-size must be an integer >= 1, got {crop_size!r}")
    if multi_crop is not None:
        raise ValueError(
            f"--crop-size {crop_size} with --multi-crop {multi_crop}: the multi-crop spec sets "
            "the side of every crop (e.g. 2x24,4x12); drop --crop-size"
        )
    if "size" in kwargs:
        raise ValueError(
            f"--crop-size {crop_size} and augmentation_kwargs size={kwargs['size']!r} both set "
            "the size; pass one"
        )
    if not _sized(augmentation):
        raise ValueError(
            f"--crop-size: augmentation {augmentation!r} takes no size (its views keep the "
            f"images' {side}×{side}); crop sizes are set for "
            + ", ".join(SIZED_STEPS)
            + f", e.g. --augmentation crop --crop-size {_suggested('crop', side)}; or drop "
            "--crop-size"
        )


def check_takes_local_views(
    encoder: torch.nn.Module, augment: augment_lib.MultiCrop, images: torch.Tensor, name: str
) -> None:
    """``ValueError`` naming the fix if ``encoder`` (``fixed_size``: a linear layer on flattened
    conv maps) cannot encode the multi-crop's local views, which have another size.

    :param encoder: the encoder built for the global views.
    :param augment: the multi-crop.
    :param images: a few training images.
    :param name: the encoder's name, for the message.
    """
    local = augment.local_augment.deterministic(images).shape[1:]
    size = augment.deterministic(images).shape[1:]
    if augment.num_local and local != size and getattr(encoder, "fixed_size", False):
        raise ValueError(
            f"encoder {name!r} takes {tuple(size)} views only, but the multi-crop's local views "
            f"are {tuple(local)}; use --encoder resnet18 (global pooling takes any size) or "
            f"local crops of the global side, e.g. '2x{size[-1]},4x{size[-1]}'"
        )


def check_arguments(epochs: int, batch_size: int, lr: float, seed: int) -> None:
    """``ValueError`` for settings that cannot train, before anything is loaded."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an integer in [0, 2**31), got {seed!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer of at least 1, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(
            f"batch_size must be an integer of at least 2, got {batch_size!r}: every method "
            "learns from comparisons within a batch (in-batch negatives for simclr/curl, "
            "BatchNorm or batch statistics for the others); a batch larger than the training "
            "set is clamped to it"
        )
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")


def batch_steps(n: int, batch_size: int, world: int, rank: int) -> tuple[int, int]:
    """(steps per epoch, global batch): a batch larger than the ``n`` training images is clamped
    to them (to a multiple of ``world``); the last partial batch is dropped.

    :param n: training images.
    :param batch_size: the requested global batch.
    :param world: processes; ``rank``: this one (rank 0 says when the batch is clamped).
    """
    clamped = min(batch_size, n - n % world)
    if clamped < 2 or clamped < world:
        raise DatasetError(
            f"the training split has {n} images; pretraining needs at least 2 (and one per "
            f"process) for a batch of {batch_size}. Use a larger dataset"
        )
    if clamped < batch_size and rank == 0:
        print(f"batch_size {batch_size} > {n} training images: using {clamped}", flush=True)
    return n // clamped, clamped
