"""CURL-SAC (Laskin, Srinivas & Abbeel 2020, arXiv 2004.04136) on Stable-Baselines3's SAC.

SB3 collects, stores, logs, saves and evaluates; :meth:`CURLSAC.update` is CURL's update, step for
step as in the reference code (MishaLaskin/curl at 8416d6e, ``curl_sac.py``), and
``tests/test_curl_sac_reference.py`` checks it against an independent float64 port of that code:

- one pixel encoder (4 convs of 32 filters, 50-d LayerNorm feature) owned by the critic; the
  actor reads its conv features detached through its own Linear + LayerNorm
  (:class:`rlrep.sb3.SharedEncoderSACPolicy`);
- each update samples a batch of 100×100 stacks and crops obs, next_obs and a second view of obs
  (the CURL positive) independently to 84×84; the obs crop is both the RL input and the anchor;
- critic every step (loss: sum of the two MSEs); actor and α every ``actor_update_freq`` steps,
  the critic's pass for the actor loss reading detached features; soft targets every
  ``target_update_freq`` steps, Q heads with τ = 0.01 and the encoder with τ = 0.05; the CURL loss
  every ``curl_update_freq`` steps through :class:`rlrep.objective.AuxObjective` (the same
  :class:`rlrep.methods.CURL` as the plug-in and pretraining), key encoder = the critic target's;
- the actor's log σ is CURL's ``−10 + 6·(tanh(x) + 1)``; Q heads and the actor MLP start from
  CURL's ``weight_init`` (orthogonal weights, zero biases; the actor's μ and log σ rows drawn as
  one orthogonal matrix, as CURL's single output layer); Adam with PyTorch's defaults;
- α: initial 0.1 with float64 log α, Adam lr 1e-4, β1 0.5, loss ``α·(−log π − target entropy)``,
  target −|A|.

Two things are computed once where the reference computes them twice, with identical results: the
pixels' scaling to [0, 1] per batch, and, in the actor step, the conv features of ``obs`` (the
actor's convs are the critic's, and both passes read them detached).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.utils import get_device, polyak_update
from stable_baselines3.sac.policies import Actor
from torch import nn

from rlrep.agents.presets import CURL_SAC, CURLSACConfig
from rlrep.augment import RandomCrop
from rlrep.augment.base import pixel_range_checked
from rlrep.methods import CURL
from rlrep.objective import AuxObjective
from rlrep.sb3 import FrameStackReplayBuffer, SharedEncoderSACPolicy, policy_kwargs

__all__ = ["CURLSAC", "CURLActor", "CURLSACPolicy"]

#: CURL's bounds of log σ (``actor_log_std_min`` / ``max`` in its ``train.py``).
LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


def orthogonal_init_(module: nn.Module) -> None:
    """CURL's ``weight_init`` for Linear layers: orthogonal weights (gain 1), zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight)
        nn.init.zeros_(module.bias)


class CURLActor(Actor):
    """SB3's SAC actor with CURL's log σ mapping and initialisation (see the module docstring).

    ``log σ = LOG_STD_MIN + ½ (LOG_STD_MAX − LOG_STD_MIN)(tanh(x) + 1)`` = ``−10 + 6(tanh x + 1)``
    (SB3 clamps x to [−20, 2] instead: σ ≈ 1.1 at init where CURL gives σ ≈ 0.02).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latent_pi.apply(orthogonal_init_)
        actions, hidden = self.mu.out_features, self.mu.in_features
        joint = nn.init.orthogonal_(torch.empty(2 * actions, hidden))  # CURL: one Linear(h, 2A)
        with torch.no_grad():
            self.mu.weight.copy_(joint[:actions])
            self.log_std.weight.copy_(joint[actions:])
            self.mu.bias.zero_()
            self.log_std.bias.zero_()

    def dist_params(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, features_dim)`` → mean and log σ, each ``(B, |A|)``, before the tanh squash."""
        latent = self.latent_pi(features)
        squashed = torch.tanh(self.log_std(latent))
        return self.mu(latent), LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (squashed + 1)

    def get_action_dist_params(self, obs: torch.Tensor):
        return *self.dist_params(self.extract_features(obs, self.features_extractor)), {}

    def action_log_prob_from_features(
        self, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A sampled squashed action ``(B, |A|)`` and its log-probability ``(B,)``."""
        return self.action_dist.log_prob_from_params(*self.dist_params(features))


class CURLSACPolicy(SharedEncoderSACPolicy):
    """:class:`~rlrep.sb3.SharedEncoderSACPolicy` with :class:`CURLActor` and Q heads initialised
    as CURL's (orthogonal weights, zero biases)."""

    def make_actor(self, features_extractor=None) -> CURLActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return CURLActor(**actor_kwargs).to(self.device)

    def make_critic(self, features_extractor=None) -> ContinuousCritic:
        critic = super().make_critic(features_extractor)
        for q_net in critic.q_networks:
            q_net.apply(orthogonal_init_)
        return critic


class CURLSAC(SAC):
    """SAC with CURL's encoder, networks, initialisation, update schedule and contrastive loss.

    ``CURLSAC(env, curl_sac_config("cartpole-swingup"), seed=1).learn(100_000 // 8)``

    :param env: a pixel env with uint8 ``(3·k, 100, 100)`` observations (``rlrep.envs.make_dmc``).
    :param config: hyperparameters (:func:`rlrep.agents.presets.curl_sac_config`).
    :param storage_device: where the replay frames live (``"cuda"`` keeps them on the GPU).
    :param kwargs: passed to SB3's ``SAC`` (``seed``, ``device``, ``tensorboard_log``, ``verbose``).
    """

    def __init__(
        self,
        env: Any,
        config: CURLSACConfig = CURL_SAC,
        storage_device: str = "cpu",
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("policy", None)  # SB3's load() passes the saved policy class; it is fixed here
        self.config = config
        encoder_kwargs = {
            "features_dim": config.features_dim,
            "num_filters": config.num_filters,
            "num_layers": config.num_layers,
            "tanh": config.encoder_tanh,
            "channels_last": config.channels_last
            if config.channels_last is not None
            else get_device(kwargs.get("device", "auto")).type == "cpu",
        }
        kwargs.setdefault("policy_kwargs", policy_kwargs(
            method=None,  # CURL's loss is stepped by update() with its own optimisers
            augmentation="crop",  # acting: the center crop; update() crops the batch itself
            image_size=config.crop_size,
            encoder="curl",
            encoder_kwargs=encoder_kwargs,
            net_arch=[config.hidden_dim, config.hidden_dim],
        ))  # fmt: skip
        super().__init__(
            CURLSACPolicy,
            env,
            learning_rate=config.lr,
            buffer_size=config.buffer_size,
            learning_starts=config.initial_steps,
            batch_size=config.batch_size,
            gamma=config.gamma,
            train_freq=1,
            gradient_steps=1,
            ent_coef=f"auto_{config.init_temperature}",
            target_entropy="auto",
            replay_buffer_class=FrameStackReplayBuffer,
            replay_buffer_kwargs={"storage_device": storage_device},
            _init_setup_model=_init_setup_model,
            **kwargs,
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        cfg = self.config
        self.encoder = self.critic.features_extractor.encoder
        self.target_encoder = self.critic_target.features_extractor.encoder
        # The key encoder is the critic target's: it follows the critic encoder with τ = 0.05.
        curl = CURL(self.encoder, target_encoder=self.target_encoder)
        # Registered on the policy, so W is saved with the model.
        self.policy.objective = AuxObjective(RandomCrop(cfg.crop_size), curl).to(self.device)
        self.objective = self.policy.objective
        self.encoder_optimizer = torch.optim.Adam(self.encoder.parameters(), lr=cfg.lr)
        curl_params = [curl.W] + (
            list(self.encoder.parameters()) if cfg.double_encoder_step else []
        )
        self.curl_optimizer = torch.optim.Adam(curl_params, lr=cfg.lr)
        # CURL's log α is a float64 scalar (np.log → torch.tensor); SB3's is a float32 (1,) tensor.
        self.log_ent_coef = torch.tensor(
            math.log(cfg.init_temperature), dtype=torch.float64, device=self.device
        ).requires_grad_(True)
        self.ent_coef_optimizer = torch.optim.Adam(
            [self.log_ent_coef], lr=cfg.alpha_lr, betas=(cfg.alpha_beta1, 0.999)
        )
        self._q_params = [p for q in self.critic.q_networks for p in q.parameters()]
        self._target_q_params = [p for q in self.critic_target.q_networks for p in q.parameters()]

    def _excluded_save_params(self) -> list[str]:
        own = ["objective", "encoder", "target_encoder", "encoder_optimizer", "curl_optimizer",
               "_q_params", "_target_q_params"]  # fmt: skip
        return [*super()._excluded_save_params(), *own]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "encoder_optimizer", "curl_optimizer"], variables

    # --- CURL's update -------------------------------------------------------------------------
    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        crop = self.objective.augment
        logs: dict[str, list[torch.Tensor]] = {}
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            obs = crop.random(data.observations)  # RL input and CURL anchor
            next_obs = crop.random(data.next_observations)
            positive = crop.random(data.observations)
            metrics = self.update(obs, data.actions, data.rewards, next_obs, data.dones, positive)
            for key, value in metrics.items():
                logs.setdefault(key, []).append(value)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", self.log_ent_coef.exp().item())
        for key, values in logs.items():  # one host sync per key and train() call
            self.logger.record(f"train/{key}", torch.stack(values).float().mean().item())
        for key, value in self.objective.pop_metrics().items():  # accuracy, feature health
            if key != "loss":  # logged above as curl_loss
                self.logger.record(f"train/curl_{key}", value)

    def update(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        next_obs: torch.Tensor,
        dones: torch.Tensor,
        positive: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """One CURL-SAC update on cropped uint8 views ``(B, C, 84, 84)``; ``positive`` is the
        second crop of ``obs``. Returns the detached losses of the steps taken."""
        cfg, step = self.config, self._n_updates
        # Pixels scaled once per batch, in float32 as SB3 and CURL's code do (encoders cast), in
        # the convs' memory format; from uint8, so in [0, 1] and not checked again below.
        fmt = torch.channels_last if self.encoder.channels_last else torch.contiguous_format
        obs, next_obs, positive = (
            x.to(torch.float32, memory_format=fmt) / 255.0 for x in (obs, next_obs, positive)
        )
        with pixel_range_checked():
            metrics = {"critic_loss": self.update_critic(obs, actions, rewards, next_obs, dones)}
            if step % cfg.actor_update_freq == 0:
                metrics["actor_loss"], metrics["ent_coef_loss"] = self.update_actor_and_alpha(obs)
            if step % cfg.target_update_freq == 0:
                polyak_update(self._q_params, self._target_q_params, cfg.critic_tau)
                polyak_update(
                    self.encoder.parameters(), self.target_encoder.parameters(), cfg.encoder_tau
                )
            if step % cfg.curl_update_freq == 0:
                metrics["curl_loss"] = self.update_curl(obs, positive)
        self._n_updates += 1
        return metrics

    def _actor(self, conv_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled action and its log-probability ``(B, 1)`` from the critic's conv features,
        through the actor's own Linear + LayerNorm head."""
        actions, log_prob = self.actor.action_log_prob_from_features(
            self.actor.features_extractor.head(conv_features)
        )
        return actions, log_prob.reshape(-1, 1)

    def update_critic(self, obs, actions, rewards, next_obs, dones) -> torch.Tensor:
        alpha = self.log_ent_coef.exp().detach()
        with torch.no_grad():
            next_actions, next_log_prob = self._actor(self.encoder.forward_conv(next_obs))
            target_q = torch.min(
                *self.critic_target.q_values(self.target_encoder(next_obs), next_actions)
            )
            target_v = target_q - alpha * next_log_prob
            target = rewards + (1 - dones) * self.gamma * target_v
        q1, q2 = self.critic.q_values(self.encoder(obs), actions)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic.optimizer.zero_grad()
        loss.backward()
        self.critic.optimizer.step()
        return loss.detach()

    def update_actor_and_alpha(self, obs) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():  # CURL's detach_encoder: the actor step never trains the convs
            conv = self.encoder.forward_conv(obs)  # once: the actor's convs are the critic's
            critic_features = self.encoder.forward_head(conv)
        actions_pi, log_prob = self._actor(conv)
        alpha = self.log_ent_coef.exp()
        q_pi = torch.min(*self.critic.q_values(critic_features, actions_pi))
        actor_loss = (alpha.detach() * log_prob - q_pi).mean()
        self.actor.optimizer.zero_grad()
        actor_loss.backward()
        self.actor.optimizer.step()
        alpha_loss = (alpha * (-log_prob - self.target_entropy).detach()).mean()
        self.ent_coef_optimizer.zero_grad()
        alpha_loss.backward()
        self.ent_coef_optimizer.step()
        return actor_loss.detach(), alpha_loss.detach()

    def update_curl(self, anchor, positive) -> torch.Tensor:
        """CURL's step: query = critic encoder(anchor), key = target encoder(positive)."""
        out = self.objective.loss(view_a=anchor, view_b=positive)
        self.encoder_optimizer.zero_grad()
        self.curl_optimizer.zero_grad()
        out.loss.backward()
        self.encoder_optimizer.step()
        self.curl_optimizer.step()
        return out.loss.detach()
