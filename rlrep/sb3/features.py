"""Feature replay: control from a frozen pretrained encoder at the cost of an MLP agent.

``SAC("MlpPolicy", FrozenEncoderFeatures(make_dmc("cartpole-swingup", image_size=64),
pretrained="checkpoint.pt"))``: each observation is encoded once, when the env emits it, and the
agent (its replay buffer, every update) sees only the features — 50 floats per observation
instead of 3×64×64 bytes, and no convolution per sampled batch.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlrep.augment.base import pixel_range_checked
from rlrep.checkpoint import build_encoder, load_checkpoint, load_encoder
from rlrep.sb3.checks import check_image_space

__all__ = ["FrozenEncoderFeatures"]


class FrozenEncoderFeatures(gym.ObservationWrapper):
    """Replace each uint8 pixel observation ``(C, H, W)`` by a frozen encoder's features of its
    deterministic view: a ``Box(-inf, inf, (features_dim,), float32)`` observation.

    The pixels are scaled as SB3 scales them (``x.float() / 255``), passed through the
    deterministic view (the checkpoint augmentation's eval view: center crop for ``crop``,
    the identity for ``shift``, the ``dmc:`` checkpoints' augmentation) and encoded in eval
    mode without gradients. Works with SB3's vectorised envs
    (``make_vec_env(..., wrapper_class=FrozenEncoderFeatures, wrapper_kwargs={...})``).

    **Exact only for a frozen encoder with a deterministic view.** Then the encoder is a fixed
    function of the observation, and features stored once equal those every update would
    recompute from stored pixels: with the checkpoint's augmentation ``A`` (or
    ``augmentation=None`` where its eval view is the identity), SAC on this env is the algorithm
    of ``SAC("CnnPolicy", env, policy_kwargs=policy_kwargs(pretrained=path, freeze=True,
    augmentation=A, rl_view="deterministic"))``, up to float rounding (a batch of convolutions
    may round differently from one observation at a time) and the heads' random initial weights.
    It is **not** the same algorithm:

    - with ``policy_kwargs(pretrained=path, freeze=True)`` and its default
      ``rl_view="augmented"``: in training mode the extractor encodes a fresh random view (crop,
      shift) of every sampled observation at every update — the frozen encoder's features of
      augmented pixels, a DrQ-style augmentation of the actor and critic losses — while rollouts
      and SB3's target networks (eval mode) read the deterministic view. Stored features have
      no augmentation;
    - with fine-tuning (``freeze=False``) or an auxiliary method: the encoder changes, stored
      features go stale.

    :param env: an env with uint8 channel-first image observations ``(C, H, W)``, rendered as
        the pretraining frames were (for ``--dataset dmc:TASK --image-size 64``:
        ``make_dmc(TASK, image_size=64, frame_stack=3)`` at the task's default action repeat).
    :param pretrained: path of a ``rlrep pretrain`` checkpoint: its encoder (name, options,
        weights) and its augmentation's deterministic view.
    :param random_init: with ``pretrained``, that run's initial weights instead of its trained
        ones: the architecture built after ``torch.manual_seed(config["seed"])``, as
        ``rlrep probe --random-init`` builds it (torch's global random state is left as it was).
        The frozen-random-encoder baseline.
    :param encoder: instead of ``pretrained``, an encoder module ``(1, *view_shape)`` →
        ``(1, features_dim)``, taking floats in [0, 1]; used as is (not copied), put in eval
        mode at every call.
    :param view: with ``encoder``, the deterministic view ``(1, C, H, W)`` → ``(1, *view_shape)``
        floats in [0, 1], e.g. ``augment.deterministic``; default: the identity.
    :param flow: append the change of the features since the previous observation of the
        episode, ``[z_t, z_t − z_{t−1}]`` (``2 × features_dim``; ``z_t − z_t = 0`` after a
        reset): the latent flow of Flare (Shang et al. 2021), a finite difference meant to give
        an MLP policy the velocities a representation of positions lacks (on cartpole-swingup
        with SimCLR features it did not: experiments/results/control/). Still exact for a frozen
        encoder: each stored observation is a fixed function of the episode's pixels.
    :param device: where the encoder runs.
    :raises ValueError: neither or both of ``pretrained`` and ``encoder``; ``random_init`` or
        ``view`` without the argument they go with; an observation space that is not a uint8
        ``(C, H, W)`` image Box; views of a shape other than the encoder was pretrained on.
    """

    def __init__(
        self,
        env: gym.Env,
        pretrained: str | os.PathLike | None = None,
        *,
        random_init: bool = False,
        encoder: nn.Module | None = None,
        view: Callable[[torch.Tensor], torch.Tensor] | None = None,
        flow: bool = False,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(env)
        if (pretrained is None) == (encoder is None):
            raise ValueError(
                "FrozenEncoderFeatures needs one of pretrained=<checkpoint path> or "
                "encoder=<nn.Module> (with view=<its deterministic view>), not both or neither"
            )
        if random_init and pretrained is None:
            raise ValueError(
                "random_init=True builds a checkpoint's architecture with its initial weights: "
                "pass pretrained=<checkpoint path> (with encoder=..., initialise it yourself)"
            )
        if view is not None and encoder is None:
            raise ValueError(
                "view= goes with encoder=; a checkpoint brings its own deterministic view"
            )
        try:
            self.image_shape = check_image_space(env.observation_space)
        except ValueError as err:
            raise ValueError(f"FrozenEncoderFeatures: {err}") from None
        self.device = torch.device(device)
        #: The checkpoint's config (``None`` for an ``encoder`` given as a module).
        self.config: dict[str, Any] | None = None
        if pretrained is not None:
            self.config, augment, encoder = _checkpoint_encoder(pretrained, random_init)
            encoder.requires_grad_(False)
            view = augment.deterministic
        self.encoder = encoder.to(self.device)
        self.view = view if view is not None else _identity
        self.features_dim = self._check_shapes(pretrained)
        self.flow = bool(flow)
        self._previous: np.ndarray | None = None  # the episode's last features (flow)
        size = self.features_dim * (2 if self.flow else 1)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), dtype=np.float32)

    def _check_shapes(self, source: str | os.PathLike | None) -> int:
        """The features' size; ``ValueError`` if the env's views do not fit the encoder."""
        with torch.no_grad():
            view = self.view(torch.zeros(1, *self.image_shape, device=self.device))
        expected = None if self.config is None else tuple(self.config["view_shape"])
        if expected is None:
            expected = getattr(self.encoder, "observation_shape", None)
        if expected is not None and tuple(view.shape[1:]) != tuple(expected):
            raise ValueError(
                f"FrozenEncoderFeatures: this env's observations {self.image_shape} give views "
                f"of shape {tuple(view.shape[1:])}, but the encoder takes {tuple(expected)}; "
                "render frames as the pretraining data was (--dataset dmc:TASK --image-size 64: "
                "make_dmc(TASK, image_size=64, frame_stack=3))"
            )
        if self.config is not None and tuple(self.config["image_shape"]) != self.image_shape:
            warnings.warn(
                f"{source} was pretrained on {self.config['dataset']} images of shape "
                f"{tuple(self.config['image_shape'])}; this env's are {self.image_shape}: the "
                "views have the right shape but may frame the scene differently",
                stacklevel=3,
            )
        try:
            return int(self.encode(np.zeros((1, *self.image_shape), np.uint8)).shape[1])
        except RuntimeError as err:  # a module given by hand that does not take these views
            raise ValueError(
                f"FrozenEncoderFeatures: the encoder cannot encode views of shape "
                f"{tuple(view.shape[1:])} ({err})"
            ) from None

    def encode(self, observations: np.ndarray | torch.Tensor) -> np.ndarray:
        """Features of a batch, as the wrapper computes them for each observation.

        :param observations: ``(N, C, H, W)`` uint8 observations.
        :return: ``(N, features_dim)`` float32 features.
        """
        x = torch.as_tensor(observations, device=self.device)
        if x.dtype != torch.uint8:
            raise ValueError(
                f"FrozenEncoderFeatures.encode: expected uint8 observations, got {x.dtype}"
            )
        self.encoder.eval()  # every call: a module shared with code that trains it stays frozen
        # SB3's scaling of uint8 images (obs.float() / 255), so the features are those
        # RepresentationExtractor computes from the same pixels.
        with torch.inference_mode(), pixel_range_checked():
            features = self.encoder(self.view(x.float() / 255.0))
        return features.float().cpu().numpy()

    def reset(self, **kwargs):
        self._previous = None  # a new episode: no flow from the last one
        return super().reset(**kwargs)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` uint8 → ``(features_dim,)`` float32 (with ``flow``: the features and
        their change since the episode's previous observation, ``(2 × features_dim,)``)."""
        features = self.encode(observation[None])[0]
        if not self.flow:
            return features
        previous = features if self._previous is None else self._previous
        self._previous = features
        return np.concatenate([features, features - previous])


def _checkpoint_encoder(
    path: str | os.PathLike, random_init: bool
) -> tuple[dict[str, Any], nn.Module, nn.Module]:
    """(config, deterministic-view augmentation, encoder) of a checkpoint, trained or initial."""
    checkpoint = load_checkpoint(path)
    config = checkpoint["config"]
    if not random_init:
        augment, encoder = load_encoder(checkpoint, path)
        return config, augment, encoder
    # rlrep probe --random-init's weights, without reseeding the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config["seed"])
        augment, encoder = build_encoder(config)
    return config, augment, encoder


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x
