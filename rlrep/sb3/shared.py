"""CURL / DrQ wiring for SB3's SAC and TD3: one encoder, trained by the critic (+ aux) loss.

SB3's own ``share_features_extractor=True`` trains the shared CNN through the *actor* loss only
(critic features are computed without gradient). CURL (Laskin et al. 2020) and DrQ (Kostrikov et
al. 2020) do the opposite: the critic's loss and the auxiliary loss train the encoder, and the
actor reads its features detached. These policies give that wiring to stock ``SAC`` / ``TD3``::

    SAC(SharedEncoderSACPolicy, env, policy_kwargs=policy_kwargs(method="curl"))

- the critic owns the :class:`~rlrep.sb3.extractor.RepresentationExtractor` (in its optimiser);
- the actor reads it through :class:`DetachedFeatures`; with the CURL encoder it has its own
  Linear + LayerNorm head on the detached conv features, as in CURL's reference code;
- the critic's pass for the actor loss (actions that carry gradient) uses detached features and
  computes no auxiliary loss (CURL's ``detach_encoder=True``);
- target networks see random views while training (SB3 keeps them in eval mode, which would
  give them the center crop), as CURL and DrQ augment ``next_obs``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy

from rlrep.augment.base import check_pixel_range, pixel_range_checked
from rlrep.encoders import PixelEncoder, PixelHead, delta_orthogonal_init_
from rlrep.sb3.checks import NORMALIZE_IMAGES_FIX
from rlrep.sb3.extractor import RepresentationExtractor

__all__ = ["DetachedFeatures", "SharedEncoderSACPolicy", "SharedEncoderTD3Policy"]


class DetachedFeatures(BaseFeaturesExtractor):
    """Features of another extractor's encoder without gradient, optionally through an own head.

    The source is referenced, not registered, so its parameters belong to the critic alone.

    :param source: the critic's extractor.
    :param own_head: with a :class:`~rlrep.encoders.PixelEncoder`, a fresh Linear + LayerNorm
        (+ tanh) head of this module's own over the detached conv features.
    """

    def __init__(self, source: RepresentationExtractor, own_head: bool = True) -> None:
        super().__init__(source._observation_space, source.features_dim)
        self._source = [source]
        self.head: PixelHead | None = None
        if own_head and isinstance(source.encoder, PixelEncoder):
            self.head = copy.deepcopy(source.encoder.head)
            self.head.apply(delta_orthogonal_init_)  # a fresh init, not the critic's weights

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        source = self._source[0]
        aug = source.augment
        check_pixel_range(observations, type(self).__name__, fix=NORMALIZE_IMAGES_FIX)
        with pixel_range_checked():  # the view and its encoding: checked once, above
            return self._forward(source, aug, observations)

    def _forward(self, source, aug, observations: torch.Tensor) -> torch.Tensor:
        view = aug.random(observations) if aug.training else aug.deterministic(observations)
        with torch.no_grad():
            trunk = (
                source.encoder.forward_conv(view) if self.head is not None else source.encoder(view)
            )
        return trunk if self.head is None else self.head(trunk)


class _SharedEncoderCritic(ContinuousCritic):
    """Q-networks whose pass for the actor loss (actions with gradient) reads detached features."""

    def _features(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not actions.requires_grad):
            return self.extract_features(obs, self.features_extractor)

    def q_values(self, features: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Each Q head on ``(B, features_dim)`` features and ``(B, |A|)`` actions → ``(B, 1)``."""
        q_input = torch.cat([features, actions], dim=1)
        return tuple(q_net(q_input) for q_net in self.q_networks)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.q_values(self._features(obs, actions), actions)

    def q1_forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.q_networks[0](torch.cat([self._features(obs, actions), actions], dim=1))


def _require_representation_extractor(policy: Any) -> None:
    if not issubclass(policy.features_extractor_class, RepresentationExtractor):
        raise ValueError(
            f"{type(policy).__name__} needs rlrep's extractor: pass "
            "policy_kwargs=rlrep.sb3.policy_kwargs(...)"
        )


class _SharedEncoderPolicy:
    """What the SAC and TD3 variants share: kwargs, the critic class, the targets' views."""

    def __init__(self, *args: Any, actor_head: bool = True, **kwargs: Any) -> None:
        self.actor_head = actor_head
        kwargs["share_features_extractor"] = False  # the sharing is done here
        super().__init__(*args, **kwargs)

    def make_critic(
        self, features_extractor: BaseFeaturesExtractor | None = None
    ) -> ContinuousCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return _SharedEncoderCritic(**critic_kwargs).to(self.device)

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)
        # Targets stay in eval mode, but their input view follows training (random crops of
        # next_obs while training, as CURL/DrQ): only the augmentation's mode is switched.
        self.critic_target.features_extractor.augment.train(mode)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "actor_head": self.actor_head}


class SharedEncoderSACPolicy(_SharedEncoderPolicy, SACPolicy):
    """SAC policy with CURL/DrQ wiring (see the module docstring).

    :param actor_head: give the actor its own Linear + LayerNorm head (CURL) over the detached
        conv features; ``False``: the actor reads the critic's features as they are.
    """

    def _build(self, lr_schedule) -> None:
        _require_representation_extractor(self)
        self.critic = self.make_critic(features_extractor=None)
        self.actor = self.make_actor(
            features_extractor=DetachedFeatures(self.critic.features_extractor, self.actor_head)
        )
        self.actor.optimizer = self.optimizer_class(
            self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
        self.critic_target = self.make_critic(features_extractor=None)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic.optimizer = self.optimizer_class(
            self.critic.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
        self.critic_target.set_training_mode(False)


class SharedEncoderTD3Policy(_SharedEncoderPolicy, TD3Policy):
    """TD3 policy with CURL/DrQ wiring: the critic's encoder is trained by the critic (+ aux)
    loss; actor and target actor read the critic's and the target critic's encoders detached."""

    def _build(self, lr_schedule) -> None:
        _require_representation_extractor(self)
        self.critic = self.make_critic(features_extractor=None)
        self.critic_target = self.make_critic(features_extractor=None)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor = self.make_actor(
            features_extractor=DetachedFeatures(self.critic.features_extractor, self.actor_head)
        )
        target_features = DetachedFeatures(self.critic_target.features_extractor, self.actor_head)
        self.actor_target = self.make_actor(features_extractor=target_features)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.actor.optimizer = self.optimizer_class(
            self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
        self.critic.optimizer = self.optimizer_class(
            self.critic.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
        self.actor_target.set_training_mode(False)
        self.critic_target.set_training_mode(False)
