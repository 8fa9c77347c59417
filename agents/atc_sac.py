"""ATC-SAC: SAC on an encoder trained by Augmented Temporal Contrast (Stooke, Lee, Abbeel & Laskin
2021, "Decoupling representation learning from reinforcement learning") — their DMC setting.

:meth:`ATCSAC.update` follows the reference (astooke/rlpyt ``ul/algos/rl_with_ul/sac_with_ul.py``
with ``stop_rl_conv_grad=True``):

- the networks of CURL-SAC (:class:`~rlrep.agents.pixel_sac.PixelSAC`): conv layers shared by
  critic and actor, the critic's Linear + LayerNorm ``fc1`` and the actor's own; the RL losses
  read the conv features *detached* (``decoupled``), so only ATC trains the convs, while
  ``fc1`` and the heads learn from the RL losses;
- each RL update shifts ``obs`` and ``next_obs`` (pad 4); critic every step, actor and α every
  2, soft targets every 2 (Q heads τ 0.01, the critic's encoder τ 0.05);
- each ATC update draws its own batch of ``(obs_t, obs_{t+1})`` windows from the replay buffer,
  shifts both, and takes :class:`rlrep.methods.ATC`'s step on the conv layers (its compressor
  reads their flattened maps, as the reference's ``UlEncoderModel``): Adam with the learning
  rate annealed by a cosine over ``atc_lr_steps`` (the reference's run lengths), gradients
  clipped to norm 10, then the EMA step of its target (τ 0.01).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from stable_baselines3.common.utils import polyak_update
from torch import nn

from rlrep.agents.optim import adam
from rlrep.agents.pixel_sac import PixelSAC
from rlrep.agents.presets import ATC_SAC, ATCSACConfig
from rlrep.augment import RandomShift
from rlrep.augment.base import pixel_range_checked
from rlrep.encoders import PixelEncoder
from rlrep.methods import ATC
from rlrep.objective import AuxObjective

__all__ = ["ATCSAC", "ConvTrunk"]


class ConvTrunk(nn.Module):
    """The conv layers of a :class:`~rlrep.encoders.PixelEncoder` as an encoder of their own:
    ``(B, C, H, W)`` uint8 views, or floats in [0, 1], → ``(B, conv_dim)`` flattened maps.
    Shares the layers (not a copy); a copy of this module (ATC's target) copies only them."""

    def __init__(self, encoder: PixelEncoder) -> None:
        super().__init__()
        self.convs = encoder.convs
        self.features_dim = encoder.conv_dim
        self.channels_last = encoder.channels_last

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        scale = 1.0 / 255.0 if views.dtype == torch.uint8 else 1.0
        return self.convs(views.to(torch.float32, memory_format=fmt) * scale)


class ATCSAC(PixelSAC):
    """SAC whose convs are trained by ATC alone (see the module docstring).

    ``ATCSAC(env, config_for("atc-sac", "cartpole-swingup"), seed=1).learn(100_000 // 8)``

    Takes :class:`~rlrep.agents.pixel_sac.PixelSAC`'s arguments: a pixel env with uint8
    ``(3·k, 84, 84)`` observations, an :class:`~rlrep.agents.presets.ATCSACConfig` (default
    :data:`~rlrep.agents.presets.ATC_SAC`), ``storage_device`` and SB3's ``SAC`` keywords.
    """

    default_config: ATCSACConfig = ATC_SAC
    unsaved_attributes = ("shift", "objective")
    extra_optimizers = ("atc_optimizer",)

    def _setup_model(self) -> None:
        super()._setup_model()
        cfg = self.config
        self.shift = RandomShift(cfg.pad)
        atc = ATC(
            ConvTrunk(self.encoder),
            delta_t=cfg.atc_delta_t,
            latent_dim=cfg.atc_latent_dim,
            hidden_dim=cfg.atc_hidden_dim,
            momentum=cfg.atc_momentum,
        )
        self.register_objective(AuxObjective(self.shift, atc))  # saved with the model
        self.atc_optimizer = adam(
            [p for p in atc.parameters() if p.requires_grad], self.device, lr=cfg.atc_lr
        )

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        cfg, buffer = self.config, self.replay_buffer
        logs: dict[str, list[torch.Tensor]] = {}
        for _ in range(gradient_steps):
            data = buffer.sample(batch_size, env=self._vec_normalize_env)
            metrics = self.update(
                self.shift.random(data.observations),
                data.actions,
                data.rewards,
                self.shift.random(data.next_observations),
                data.dones,
            )
            window = buffer.sample_sequences(cfg.atc_batch_size, cfg.atc_delta_t)
            metrics["atc_loss"] = self.update_atc(window.observations, window.valid)
            for key, value in metrics.items():
                logs.setdefault(key, []).append(value)
        self.log_train(logs, objective="atc")

    def update(self, obs, actions, rewards, next_obs, dones) -> dict[str, torch.Tensor]:
        """One SAC update on shifted uint8 views ``(B, C, 84, 84)``; the detached losses."""
        cfg, step = self.config, self._n_updates
        obs, next_obs = self.scaled(obs, next_obs)
        with pixel_range_checked():  # scaled from uint8: in [0, 1]
            metrics = {"critic_loss": self.update_critic(obs, actions, rewards, next_obs, dones)}
            if step % cfg.actor_update_freq == 0:
                metrics["actor_loss"], metrics["ent_coef_loss"] = self.update_actor_and_alpha(obs)
            if step % cfg.target_update_freq == 0:
                polyak_update(self._q_params, self._target_q_params, cfg.critic_tau)
                polyak_update(self._encoder_params, self._target_encoder_params, cfg.encoder_tau)
        self._n_updates += 1
        return metrics

    def update_critic(self, obs, actions, rewards, next_obs, dones) -> torch.Tensor:
        target = self.soft_target_value(next_obs, rewards, dones)
        conv = self.encoder.forward_conv(obs)
        if self.config.decoupled:  # stop_rl_conv_grad: fc1 learns, the convs do not
            conv = conv.detach()
        q1, q2 = self.critic.q_values(self.encoder.forward_head(conv), actions)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic.optimizer.zero_grad()
        loss.backward()
        self.critic.optimizer.step()
        return loss.detach()

    def atc_lr(self) -> float:
        """``atc_lr`` annealed by a cosine to 0 over ``atc_lr_steps`` agent steps (constant
        when 0)."""
        cfg = self.config
        if cfg.atc_lr_steps == 0:
            return cfg.atc_lr
        done = min(self.num_timesteps / cfg.atc_lr_steps, 1.0)
        return cfg.atc_lr * 0.5 * (1.0 + math.cos(math.pi * done))

    def update_atc(self, windows: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """ATC's step on windows ``(B, 1 + Δt, C, H, W)`` uint8 and their ``valid`` mask."""
        cfg = self.config
        for group in self.atc_optimizer.param_groups:
            group["lr"] = self.atc_lr()
        out = self.objective.sequence_loss(windows, valid=valid)  # uint8: the trunk scales
        self.atc_optimizer.zero_grad()
        out.loss.backward()
        params = [p for group in self.atc_optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, cfg.atc_clip_grad_norm)
        self.atc_optimizer.step()
        self.objective.update_targets()
        return out.loss.detach()
