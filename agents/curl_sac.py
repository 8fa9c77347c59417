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

Three things are computed once where the reference computes them two or three times, with identical
results: the pixels' scaling to [0, 1] per batch; in the actor step, the conv features of ``obs``
(the actor's convs are the critic's, and both passes read them detached); and those features
again as CURL's query (its step follows with the same encoder weights). Adam is PyTorch's fused
kernel where it has one (:mod:`rlrep.agents.optim`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from stable_baselines3.common.utils import polyak_update

from rlrep.agents.optim import adam
from rlrep.agents.pixel_sac import CURLActor, CURLSACPolicy, PixelSAC
from rlrep.agents.presets import CURL_SAC, CURLSACConfig
from rlrep.augment import RandomCrop
from rlrep.augment.base import pixel_range_checked
from rlrep.methods import CURL
from rlrep.objective import AuxObjective

__all__ = ["CURLSAC", "CURLActor", "CURLSACPolicy"]


class CURLSAC(PixelSAC):
    """SAC with CURL's encoder, networks, initialisation, update schedule and contrastive loss.

    ``CURLSAC(env, curl_sac_config("cartpole-swingup"), seed=1).learn(100_000 // 8)``

    Takes :class:`~rlrep.agents.pixel_sac.PixelSAC`'s arguments: a pixel env with uint8
    ``(3·k, 100, 100)`` observations, a :class:`~rlrep.agents.presets.CURLSACConfig` (default
    :data:`~rlrep.agents.presets.CURL_SAC`; :func:`~rlrep.agents.presets.curl_sac_config` per
    task), ``storage_device`` (``"cuda"`` keeps the replay frames on the GPU) and SB3's ``SAC``
    keywords (``seed``, ``device``, ``tensorboard_log``, ``verbose``).
    """

    default_config: CURLSACConfig = CURL_SAC
    unsaved_attributes = ("objective",)
    extra_optimizers = ("encoder_optimizer", "curl_optimizer")

    @staticmethod
    def acting_view(config: CURLSACConfig) -> dict[str, Any]:
        """The center crop; :meth:`train` crops the batch itself."""
        return {"augmentation": "crop", "image_size": config.crop_size}

    def _setup_model(self) -> None:
        super()._setup_model()
        cfg = self.config
        # The key encoder is the critic target's: it follows the critic encoder with τ = 0.05.
        curl = CURL(self.encoder, target_encoder=self.target_encoder)
        self.register_objective(
            AuxObjective(RandomCrop(cfg.crop_size), curl)
        )  # saved with the model
        self.encoder_optimizer = adam(self.encoder.parameters(), self.device, lr=cfg.lr)
        curl_params = [curl.W] + (
            list(self.encoder.parameters()) if cfg.double_encoder_step else []
        )
        self.curl_optimizer = adam(curl_params, self.device, lr=cfg.lr)

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
        self.log_train(logs, objective="curl")

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
        # Pixels scaled once per batch, in float32 as SB3 and CURL's code do (encoders cast); from
        # uint8, so in [0, 1] and not checked again below.
        obs, next_obs, positive = self.scaled(obs, next_obs, positive)
        curl_step = step % cfg.curl_update_freq == 0
        with pixel_range_checked():
            metrics = {"critic_loss": self.update_critic(obs, actions, rewards, next_obs, dones)}
            # CURL's query is conv(obs) with gradient and the actor step reads conv(obs) without,
            # by the same weights (the actor step and the soft update leave the encoder as it
            # is): one forward serves both, where the reference makes two.
            conv = self.encoder.forward_conv(obs) if curl_step else None
            if step % cfg.actor_update_freq == 0:
                metrics["actor_loss"], metrics["ent_coef_loss"] = self.update_actor_and_alpha(
                    obs, conv=None if conv is None else conv.detach()
                )
            if step % cfg.target_update_freq == 0:
                polyak_update(self._q_params, self._target_q_params, cfg.critic_tau)
                polyak_update(self._encoder_params, self._target_encoder_params, cfg.encoder_tau)
            if curl_step:
                metrics["curl_loss"] = self.update_curl(
                    obs, positive, self.encoder.forward_head(conv)
                )
        self._n_updates += 1
        return metrics

    def update_critic(self, obs, actions, rewards, next_obs, dones) -> torch.Tensor:
        target = self.soft_target_value(next_obs, rewards, dones)
        q1, q2 = self.critic.q_values(self.encoder(obs), actions)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic.optimizer.zero_grad()
        loss.backward()
        self.critic.optimizer.step()
        return loss.detach()

    def update_curl(self, anchor, positive, query: torch.Tensor | None = None) -> torch.Tensor:
        """CURL's step: query = critic encoder(anchor) (``query`` when the caller has it, with its
        graph), key = target encoder(positive)."""
        out = self.objective.loss(view_a=anchor, view_b=positive, features_a=query)
        self.encoder_optimizer.zero_grad()
        self.curl_optimizer.zero_grad()
        out.loss.backward()
        self.encoder_optimizer.step()
        self.curl_optimizer.step()
        return out.loss.detach()
