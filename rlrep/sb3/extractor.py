"""A Stable-Baselines3 features extractor that augments its input and trains an auxiliary loss.

SB3 calls ``features_extractor(obs)`` inside its own losses and steps its own optimisers, so the
auxiliary loss rides on the RL loss's backward pass: in a training forward with gradients, the
extractor computes ``aux_weight × aux_loss`` on two views of the batch and ties it to the features
with an identity autograd node whose backward also sends a gradient of 1 to that loss. Whichever
SB3 loss is backpropagated through the features then trains the encoder (and the method's heads,
which are submodules here and so in SB3's optimiser) by RL loss + ``aux_weight ×`` aux loss.
Momentum targets take their EMA step lazily, once per optimiser step of the encoder.
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
from rlrep.metrics import feature_std

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


class _AttachAuxLoss(torch.autograd.Function):
    """Identity on ``features``; in backward, also a gradient of 1 for ``aux_loss``."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, aux_loss: torch.Tensor) -> torch.Tensor:
        return features.view_as(features)

    @staticmethod
    def backward(ctx, grad_features: torch.Tensor):
        return grad_features, torch.ones((), device=grad_features.device, dtype=grad_features.dtype)


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
      of the deterministic view (``"deterministic"``); and, when gradients are on and there is a
      ``method`` with ``aux_weight > 0``, the auxiliary loss of two random views (the RL view is
      the first) attached to the features.
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
        self.method: method_lib.Method | None = None
        if method is not None:
            # Forked RNG: the heads' random init does not shift the rest of the policy's, so a
            # model with aux_weight=0 starts (and trains) exactly as one without a method.
            with torch.random.fork_rng(devices=[]):
                self.method = method_lib.make(method, net, **(method_kwargs or {}))
        self._online_version: int | None = None
        self._metric_sums: dict[str, torch.Tensor] = {}
        self._metric_count = 0
        self.last_features: torch.Tensor | None = None

    def train(self, mode: bool = True) -> RepresentationExtractor:
        super().train(mode)
        if self.freeze:
            self.encoder.eval()  # a frozen encoder keeps its BatchNorm statistics
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
        if self.rl_view == "augmented":
            view_a = self.augment.random(observations)
        else:
            view_a = self.augment.deterministic(observations)
        features = self.encoder(view_a)
        if not torch.is_grad_enabled() or self.method is None or self.aux_weight == 0.0:
            return features
        self.last_features = features.detach()
        self._sync_targets()
        if self.rl_view == "augmented":  # the RL view doubles as the anchor view
            out = self.method(view_a, self.augment.random(observations), features_a=features)
        else:
            out = self.method(self.augment.random(observations), self.augment.random(observations))
        self._record(out.loss.detach(), out.metrics)
        return _AttachAuxLoss.apply(features, self.aux_weight * out.loss)

    def _sync_targets(self) -> None:
        """EMA step of the method's targets if the encoder changed since the last one."""
        version = sum(p._version for p in self.encoder.parameters())
        if self._online_version is not None and version != self._online_version:
            self.method.update_targets()
        self._online_version = version

    # --- metrics -------------------------------------------------------------------------------
    def _record(self, loss: torch.Tensor, metrics: dict[str, torch.Tensor]) -> None:
        values = {"aux_loss": loss, **metrics}
        for key, value in values.items():
            value = value.detach().float()
            self._metric_sums[key] = (
                self._metric_sums[key] + value if key in self._metric_sums else value
            )
        self._metric_count += 1

    def pop_metrics(self) -> dict[str, float]:
        """Means of the auxiliary metrics since the last call (one host sync), then reset."""
        if self._metric_count == 0:
            return {}
        means = {k: (v / self._metric_count).item() for k, v in self._metric_sums.items()}
        self._metric_sums, self._metric_count = {}, 0
        return means

    def feature_health(self) -> dict[str, float]:
        """Std of normalised features (≈ 1 healthy, 0 collapsed) on the last training batch."""
        if self.last_features is None:
            return {}
        return {"feature_std": feature_std(self.last_features).item()}
