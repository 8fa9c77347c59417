"""CURL-SAC (Laskin, Srinivas & Abbeel 2020, arXiv 2004.04136) on Stable-Baselines3's SAC.

SB3 collects, stores, logs, saves and evaluates; this file is CURL's update, step for step as in
the reference code (MishaLaskin/curl, ``curl_sac.py``):

- one pixel encoder (4 convs of 32 filters, 50-d LayerNorm feature) owned by the critic; the
  actor reads its conv features detached through its own Linear + LayerNorm
  (:class:`rlrep.sb3.SharedEncoderSACPolicy`);
- each update samples a batch of 100×100 stacks and crops obs, next_obs and a second view of obs
  (the CURL positive) independently to 84×84; the obs crop is both the RL input and the anchor;
- critic every step (loss: sum of the two MSEs); actor and α every ``actor_update_freq`` steps,
  the critic's pass for the actor loss reading detached features; soft targets every
  ``target_update_freq`` steps, Q heads with τ = 0.01 and the encoder with τ = 0.05; the CURL loss
  every ``curl_update_freq`` steps, bilinear W, key encoder = the critic target's encoder;
- α: initial 0.1, Adam lr 1e-4, β1 0.5, loss ``α·(−log π − target entropy)``, target −|A|.

Differences from the reference code: SB3's actor clamps log σ to [−20, 2] (CURL rescales a tanh
to [−10, 2]); everything else above is matched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update

from rlrep.agents.presets import CURL_SAC, CURLSACConfig
from rlrep.augment import RandomCrop
from rlrep.methods import CURL
from rlrep.sb3 import FrameStackReplayBuffer, SharedEncoderSACPolicy, policy_kwargs

__all__ = ["CURLSAC"]


class CURLSAC(SAC):
    """SAC with CURL's encoder, wiring, update schedule and contrastive loss.

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
        }
        kwargs.setdefault("policy_kwargs", policy_kwargs(
            method=None,
            augmentation="crop",
            image_size=config.crop_size,
            encoder="curl",
            encoder_kwargs=encoder_kwargs,
            net_arch=[config.hidden_dim, config.hidden_dim],
        ))  # fmt: skip
        super().__init__(
            SharedEncoderSACPolicy,
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
        critic_encoder = self.critic.features_extractor.encoder
        # The key encoder is the critic target's: it follows the critic encoder with τ = 0.05.
        self.policy.curl = CURL(
            critic_encoder, target_encoder=self.critic_target.features_extractor.encoder
        ).to(self.device)
        self.encoder_optimizer = torch.optim.Adam(critic_encoder.parameters(), lr=cfg.lr)
        curl_params = [self.policy.curl.W] + (
            list(critic_encoder.parameters()) if cfg.double_encoder_step else []
        )
        self.curl_optimizer = torch.optim.Adam(curl_params, lr=cfg.lr)
        self.ent_coef_optimizer = torch.optim.Adam(
            [self.log_ent_coef], lr=cfg.alpha_lr, betas=(cfg.alpha_beta1, 0.999)
        )
        self.crop = RandomCrop(cfg.crop_size)
        self._encoder_params = list(critic_encoder.parameters())
        self._target_encoder_params = list(
            self.critic_target.features_extractor.encoder.parameters()
        )
        self._q_params = [p for q in self.critic.q_networks for p in q.parameters()]
        self._target_q_params = [p for q in self.critic_target.q_networks for p in q.parameters()]

    def _excluded_save_params(self) -> list[str]:
        own = [
            "crop",
            "encoder_optimizer",
            "curl_optimizer",
            "_encoder_params",
            "_target_encoder_params",
            "_q_params",
            "_target_q_params",
        ]
        return [*super()._excluded_save_params(), *own]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "encoder_optimizer", "curl_optimizer"], variables

    # --- CURL's update -------------------------------------------------------------------------
    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        cfg = self.config
        self.policy.set_training_mode(True)
        logs: dict[str, list[float]] = {}
        for _ in range(gradient_steps):
            step = self._n_updates
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            obs = self.crop.random(data.observations)  # RL input and CURL anchor
            positive = self.crop.random(data.observations)
            next_obs = self.crop.random(data.next_observations)
            logs.setdefault("critic_loss", []).append(
                self._update_critic(obs, data.actions, data.rewards, next_obs, data.dones)
            )
            if step % cfg.actor_update_freq == 0:
                actor_loss, alpha_loss = self._update_actor_and_alpha(obs)
                logs.setdefault("actor_loss", []).append(actor_loss)
                logs.setdefault("ent_coef_loss", []).append(alpha_loss)
            if step % cfg.target_update_freq == 0:
                polyak_update(self._q_params, self._target_q_params, cfg.critic_tau)
                polyak_update(self._encoder_params, self._target_encoder_params, cfg.encoder_tau)
            if step % cfg.curl_update_freq == 0:
                curl_loss, accuracy = self._update_curl(obs, positive)
                logs.setdefault("curl_loss", []).append(curl_loss)
                logs.setdefault("curl_accuracy", []).append(accuracy)
            self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", self.log_ent_coef.exp().item())
        for key, values in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(values)))

    def _update_critic(self, obs, actions, rewards, next_obs, dones) -> float:
        alpha = self.log_ent_coef.exp().detach()
        with torch.no_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(next_obs)
            target_q = torch.min(*self.critic_target(next_obs, next_actions))
            target_v = target_q - alpha * next_log_prob.reshape(-1, 1)
            target = rewards + (1 - dones) * self.gamma * target_v
        q1, q2 = self.critic(obs, actions)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic.optimizer.zero_grad()
        loss.backward()
        self.critic.optimizer.step()
        return loss.item()

    def _update_actor_and_alpha(self, obs) -> tuple[float, float]:
        actions_pi, log_prob = self.actor.action_log_prob(obs)  # actor reads detached conv features
        log_prob = log_prob.reshape(-1, 1)
        alpha = self.log_ent_coef.exp()
        q_pi = torch.min(*self.critic(obs, actions_pi))  # actions carry gradient: detached encoder
        actor_loss = (alpha.detach() * log_prob - q_pi).mean()
        self.actor.optimizer.zero_grad()
        actor_loss.backward()
        self.actor.optimizer.step()
        alpha_loss = (alpha * (-log_prob - self.target_entropy).detach()).mean()
        self.ent_coef_optimizer.zero_grad()
        alpha_loss.backward()
        self.ent_coef_optimizer.step()
        return actor_loss.item(), alpha_loss.item()

    def _update_curl(self, anchor, positive) -> tuple[float, float]:
        out = self.policy.curl(anchor, positive)  # query: critic encoder; key: its target
        self.encoder_optimizer.zero_grad()
        self.curl_optimizer.zero_grad()
        out.loss.backward()
        self.encoder_optimizer.step()
        self.curl_optimizer.step()
        return out.loss.item(), out.metrics["accuracy"].item()
