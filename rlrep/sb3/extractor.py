"""A Stable-Baselines3 features extractor: augment → encode, plus an auxiliary objective.

The extractor is a function of the observation (a random or the deterministic view, encoded).
When it carries a method, it also owns an :class:`~rlrep.objective.AuxObjective` and remembers its
last training forward; :mod:`rlrep.sb3.binding` computes the auxiliary loss from that record once
per optimiser step, takes the EMA step and logs the metrics (see there).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

import rlrep.augment as augment_lib
import rlrep.encoders as encoder_lib
import rlrep.methods as method_lib
from rlrep.augment.base import check_pixel_range, pixel_range_checked
from rlrep.objective import AuxObjective
from rlrep.sb3.binding import AuxBinding, bind_policy, find_algorithm, warn_unbound

__all__ = ["RepresentationExtractor", "check_aux_weight", "check_image_space"]

#: The fix named when the extractor gets float pixels outside [0, 1].
NORMALIZE_IMAGES_FIX = (
    "SB3 passes raw 0–255 floats when the policy has normalize_images=False: keep SB3's default "
    "normalize_images=True with rlrep's extractor (calling it directly: divide by 255 or pass uint8)"
)


def check_aux_weight(aux_weight: float) -> float:
    """``aux_weight`` as a float, or ``ValueError`` unless it is a finite number >= 0."""
    real = isinstance(aux_weight, numbers.Real) and not isinstance(aux_weight, bool)
    if not (real and math.isfinite(aux_weight) and aux_weight >= 0):
        raise ValueError(
            f"aux_weight must be a finite number >= 0, got {aux_weight!r}; pass e.g. "
            "aux_weight=1.0 (0 turns the auxiliary loss off: augmentation only)"
        )
    return float(aux_weight)


def check_image_space(observation_space: gym.Space) -> tuple[int, int, int]:
    """``(C, H, W)`` of a uint8 channel-first image space, or ``ValueError`` saying what is wrong."""
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


class RepresentationExtractor(BaseFeaturesExtractor):
    """Augment → encode, plus an auxiliary self-supervised loss while training.

    Build it through :func:`rlrep.sb3.policy_kwargs`. SB3 hands it observations scaled to [0, 1]
    (``normalize_images=True``, SB3's default); raw 0–255 floats raise ``ValueError`` naming
    ``normalize_images`` (one ``aminmax`` per forward; augmentation and encoder skip theirs).

    - training mode: features of a random view (``rl_view="augmented"``, as RAD, DrQ, CURL) or
      of the deterministic view (``"deterministic"``); when gradients are on and there is a
      ``method`` with ``aux_weight > 0``, the forward is recorded for the auxiliary loss, which
      the SB3 optimiser stepping this encoder adds once per step (:mod:`rlrep.sb3.binding`; the
      RL view is the anchor, a second random view the positive).
    - evaluation mode (``predict``, rollouts, SB3's target networks, which SB3 keeps in eval
      mode): features of the deterministic view (center crop), no auxiliary loss.

    :param observation_space: uint8 ``(C, H, W)`` images, ``C = 3·k`` for colour augmentations.
    :param encoder: name in :data:`rlrep.encoders.ENCODERS`.
    :param augmentation: spec for :func:`rlrep.augment.make` (``None``: no augmentation).
    :param image_size: side the encoder sees; default: H (crop: round(0.84·H), i.e. 100 → 84).
    :param method: name in :data:`rlrep.methods.METHODS`, or ``None`` (augmentation only).
    :param aux_weight: weight of the auxiliary loss added to the RL loss.
    :param rl_view: ``"augmented"`` or ``"deterministic"`` input for the RL loss.
    :param encoder_kwargs: / :param method_kwargs: / :param augmentation_kwargs: passed on.
    :param pretrained: a ``rlrep pretrain`` checkpoint (path, or its ``config`` and ``encoder``
        entries): its encoder (name, options, weights) replaces ``encoder``/``encoder_kwargs``;
        views must have the shape it was trained on.
    :param freeze: keep the pretrained encoder fixed (no gradient, eval mode); the RL heads
        learn on its features (ATC-style decoupled representation learning).
    :param rank_every: log the effective rank of the RL view's features every ``rank_every``
        auxiliary steps (an SVD; a collapse alarm), ``0`` for never.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        encoder: str = "curl",
        augmentation: str | None = "crop",
        image_size: int | None = None,
        method: str | None = None,
        aux_weight: float = 1.0,
        rl_view: str = "augmented",
        encoder_kwargs: dict[str, Any] | None = None,
        method_kwargs: dict[str, Any] | None = None,
        augmentation_kwargs: dict[str, Any] | None = None,
        pretrained: str | dict[str, Any] | None = None,
        freeze: bool = False,
        rank_every: int = 100,
    ) -> None:
        c, h, w = check_image_space(observation_space)
        aux_weight = check_aux_weight(aux_weight)
        if freeze and pretrained is None:
            raise ValueError(
                "freeze=True needs pretrained=<checkpoint>: a frozen random encoder learns nothing"
            )
        if freeze and method is not None:
            raise ValueError(
                f"freeze=True leaves nothing for method={method!r} to train; pass method=None"
            )
        checkpoint = None
        if pretrained is not None:
            from rlrep.checkpoint import load_checkpoint

            checkpoint = pretrained if isinstance(pretrained, dict) else load_checkpoint(pretrained)
            encoder, encoder_kwargs = (
                checkpoint["config"]["encoder"],
                checkpoint["config"]["encoder_kwargs"],
            )
        if rl_view not in ("augmented", "deterministic"):
            raise ValueError(f"rl_view must be 'augmented' or 'deterministic', got {rl_view!r}")
        aug_kwargs = dict(augmentation_kwargs or {})
        names = (augmentation or "").split("+")
        if image_size is None:
            image_size = round(0.84 * h) if "crop" in names and "size" not in aug_kwargs else h
        for name, key in (("crop", "size"), ("resized_crop", "size")):
            if name in names:
                aug_kwargs.setdefault(key, image_size)
        if image_size > min(h, w):
            raise ValueError(
                f"image_size {image_size} is larger than the observations ({h}×{w}); render larger "
                "frames (CURL renders 100 for an 84 crop) or pass a smaller image_size"
            )
        augment = augment_lib.make(augmentation, **aug_kwargs)
        with torch.no_grad():
            view_shape = augment.deterministic(torch.zeros(1, c, h, w, dtype=torch.uint8)).shape[1:]
        if checkpoint is not None and tuple(checkpoint["config"]["view_shape"]) != tuple(
            view_shape
        ):
            raise ValueError(
                f"the pretrained encoder was trained on views of shape {tuple(checkpoint['config']['view_shape'])}, "
                f"but this env's observations give {tuple(view_shape)}; pretrain on matching frames "
                "(e.g. --dataset dmc:TASK with the same image and crop size)"
            )
        net = encoder_lib.make(encoder, tuple(view_shape), **(encoder_kwargs or {}))
        if checkpoint is not None:
            net.load_state_dict(checkpoint["encoder"])
        self.freeze = freeze
        if freeze:
            net.requires_grad_(False)
        super().__init__(observation_space, net.features_dim)
        self.augment, self.encoder = augment, net
        self.view_shape = tuple(view_shape)
        self.aux_weight, self.rl_view = float(aux_weight), rl_view
        self.objective: AuxObjective | None = None
        if method is not None:
            # Forked RNG: the heads' random init does not shift the rest of the policy's, so a
            # model with aux_weight=0 starts (and trains) exactly as one without a method.
            with torch.random.fork_rng(devices=[]):
                self.objective = AuxObjective(
                    augment, method_lib.make(method, net, **(method_kwargs or {})), rank_every
                )
        self.binding: AuxBinding | None = None  # set by rlrep.sb3.binding
        self._record: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None = None
        self._warned_unbound = False

    @property
    def method(self) -> method_lib.Method | None:
        """The objective's method (heads, targets), or ``None``."""
        return None if self.objective is None else self.objective.method

    def train(self, mode: bool = True) -> RepresentationExtractor:
        super().train(mode)
        if self.freeze:
            self.encoder.eval()  # a frozen encoder keeps its BatchNorm statistics
        if not mode:
            self._record = None  # rollouts: drop the last update's batch
        return self

    # --- forward -------------------------------------------------------------------------------
    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` observations (floats in [0, 1] from SB3) → ``(B, features_dim)``."""
        check_pixel_range(observations, type(self).__name__, fix=NORMALIZE_IMAGES_FIX)
        with pixel_range_checked():  # every view below comes from the observations checked here
            return self._forward(observations)

    def _forward(self, observations: torch.Tensor) -> torch.Tensor:
        if not self.training:  # the view follows the augmentation's mode (see shared.py)
            aug = self.augment
            return self.encoder(
                aug.random(observations) if aug.training else aug.deterministic(observations)
            )
        augmented = self.rl_view == "augmented"
        view = self.augment.random(observations) if augmented else None
        features = self.encoder(view if augmented else self.augment.deterministic(observations))
        if torch.is_grad_enabled() and self.objective is not None and self.aux_weight > 0:
            self._remember(observations, view, features)
        return features

    def _remember(
        self, observations: torch.Tensor, view: torch.Tensor | None, features: torch.Tensor
    ) -> None:
        """Keep this training forward for the auxiliary loss (the latest one wins)."""
        if self.binding is None:
            algorithm = find_algorithm(self)
            if algorithm is not None:
                bind_policy(algorithm)
            if self.binding is None and not self._warned_unbound:  # outside SB3: say so once
                self._warned_unbound = True
                warn_unbound()
        self._record = (observations, view, features)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Models saved before the objective existed name the method's state method.*.
        for key in [k for k in state_dict if k.startswith(f"{prefix}method.")]:
            state_dict[f"{prefix}objective.{key[len(prefix) :]}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def pop_record(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None:
        """The last training forward (observations, RL view or ``None``, features), then forget it."""
        record, self._record = self._record, None
        return record
