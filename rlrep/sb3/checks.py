"""Argument checks of the SB3 plug-in: the observation space, ``aux_weight``, the pixel scale."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from stable_baselines3.common.preprocessing import is_image_space

import rlrep.methods as method_lib

__all__ = [
    "NORMALIZE_IMAGES_FIX",
    "check_aux_weight",
    "check_image_space",
    "check_method_options",
    "check_training_options",
]

#: The fix named when the extractor gets float pixels outside [0, 1].
NORMALIZE_IMAGES_FIX = (
    "SB3 passes raw 0–255 floats when the policy has normalize_images=False: keep SB3's default "
    "normalize_images=True with rlrep's extractor (calling it directly: divide by 255 or pass uint8)"
)


#: The largest auxiliary weight accepted (CURL 1, ATC 0.25 as a joint loss, SPR 2-5).
MAX_AUX_WEIGHT = 1000.0


def check_aux_weight(aux_weight: float | None, method: str | None = None) -> float | None:
    """``aux_weight`` as a float, or ``ValueError`` unless it is a finite number >= 0; ``None``
    (the default) gives ``method``'s ``default_aux_weight`` (``None`` without a method)."""
    if aux_weight is None:
        known = method in method_lib.METHODS
        return method_lib.METHODS[method].default_aux_weight if known else None
    real = isinstance(aux_weight, numbers.Real) and not isinstance(aux_weight, bool)
    if not (real and math.isfinite(aux_weight) and 0 <= aux_weight <= MAX_AUX_WEIGHT):
        raise ValueError(
            f"aux_weight must be a number in [0, {MAX_AUX_WEIGHT:g}] (the papers use 0.1 to 5; "
            f"more swamps the RL loss), got {aux_weight!r}; pass e.g. "
            "aux_weight=1.0 (0 turns the auxiliary loss off: augmentation only)"
        )
    return float(aux_weight)


def check_image_space(observation_space: gym.Space) -> tuple[int, int, int]:
    """``(C, H, W)`` of a uint8 channel-first image space, or ``ValueError`` saying what is wrong."""
    if isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 4:
        raise ValueError(
            f"observation space {observation_space.shape} is 4-D, as gymnasium's "
            "FrameStackObservation makes it (frames on a new first axis); rlrep needs the frames "
            "stacked along channels, (k·C, H, W): stack with SB3's VecFrameStack "
            "(channels_order='first', after VecTransposeImage for (H, W, C) frames) or build "
            "rlrep's envs with frame_stack=k"
        )
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 3:
        raise ValueError(
            f"rlrep.sb3 needs image observations (a Box of shape (C, H, W)), got {observation_space}; "
            "for dict observations or state vectors use SB3's own extractors"
        )
    c, h, w = observation_space.shape
    if w < c and w < h:
        raise ValueError(
            f"observation space {observation_space.shape} looks channels-last (H, W, C); rlrep needs "
            "(C, H, W): wrap the env with VecTransposeImage or build it channel-first"
        )
    if not is_image_space(observation_space, check_channels=False):
        raise ValueError(
            f"rlrep.sb3 needs uint8 pixel observations in [0, 255], got dtype "
            f"{observation_space.dtype}, bounds [{observation_space.low.min()}, "
            f"{observation_space.high.max()}]"
        )
    return int(c), int(h), int(w)


def check_training_options(
    freeze: bool, pretrained: Any, method: str | None, aux_weight: float, decoupled: bool
) -> None:
    """``ValueError`` naming the fix for options that leave nothing to train."""
    if freeze and pretrained is None:
        raise ValueError(
            "freeze=True needs pretrained=<checkpoint>: a frozen random encoder learns nothing"
        )
    if freeze and method is not None:
        raise ValueError(
            f"freeze=True leaves nothing for method={method!r} to train; pass method=None"
        )
    if decoupled and (method is None or not aux_weight):
        raise ValueError(
            "decoupled=True leaves the encoder's convs to the auxiliary loss (the RL losses "
            "read them detached and train the head only): pass a method (e.g. method='atc') "
            "with aux_weight > 0; a fixed encoder is pretrained=..., freeze=True"
        )


def check_method_options(
    method: str, method_kwargs: dict | None, encoder: Any, needs_actions: Callable[[type], bool]
) -> None:
    """``ValueError`` unless ``method`` names a method that takes ``method_kwargs`` (methods
    conditioned on actions learn them later from the algorithm)."""
    try:
        cls = method_lib.METHODS[method]
        signature = inspect.signature(cls)
        bind = signature.bind_partial if needs_actions(cls) else signature.bind
        bind(encoder, **(method_kwargs or {}))
    except (KeyError, TypeError) as error:
        raise ValueError(
            f"method={method!r} with method_kwargs={method_kwargs!r}: {error}; valid "
            f"methods: {', '.join(method_lib.METHODS)}, options as in rlrep.methods"
        ) from None
