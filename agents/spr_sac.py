"""SPR-SAC: SAC from pixels with Self-Predictive Representations (Schwarzer et al. 2021) as the
critic encoder's auxiliary loss — SPR carried to DMC as its follow-ups do (PlayVirtual, Yu et al.
2021, evaluate SPR on DMC with CURL's SAC and SPR's loss in place of CURL's).

:meth:`SPRSAC.update`, one step of everything on one batch:

- the networks of CURL-SAC (:class:`~rlrep.agents.pixel_sac.PixelSAC`): an encoder of 4 convs
  and a 50-d LayerNorm feature owned by the critic, the actor's own head over its conv features
  read detached; 84×84 renders shifted by up to 4 pixels (DrQ's augmentation; SPR's shift
  without its intensity jitter);
- SB3 samples the batch; the replay buffer gives the window ``obs_t … obs_{t+K}`` and the actions
  ``a_t … a_{t+K−1}`` of each sampled transition (steps past the episode's end masked);
- critic: SAC's loss on the shifted ``obs`` plus ``spr_weight`` × SPR's loss
  (:class:`rlrep.methods.SPR`: an MLP transition model rolled K steps from the critic encoder's
  features of that same view, projection + predictor, 2 − 2 cos to the projections of its EMA
  target encoder) in one backward pass, as SPR adds its loss to the RL loss; the critic's Adam
  steps encoder and Q heads, SPR's own Adam its heads;
- actor and α every ``actor_update_freq`` steps on detached features; soft targets every
  ``target_update_freq`` (Q heads τ 0.01, the critic's encoder τ 0.05); SPR's target encoder and
  projection follow their online copies by EMA (momentum 0.99) after every update.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from stable_baselines3.common.utils import polyak_update

from rlrep.agents.optim import adam
from rlrep.agents.pixel_sac import PixelSAC
from rlrep.agents.presets import SPR_SAC, SPRSACConfig
from rlrep.augment import RandomShift
from rlrep.augment.base import pixel_range_checked
from rlrep.methods import SPR
from rlrep.objective import AuxObjective
from rlrep.sb3.buffer import SequenceSamples

__all__ = ["SPRSAC"]


class SPRSAC(PixelSAC):
    """SAC whose critic encoder also learns SPR's latent prediction (module docstring).

    ``SPRSAC(env, config_for("spr-sac", "cartpole-swingup"), seed=1).learn(100_000 // 8)``

    Takes :class:`~rlrep.agents.pixel_sac.PixelSAC`'s arguments: a pixel env with uint8
    ``(3·k, 84, 84)`` observations and a continuous action space, an
    :class:`~rlrep.agents.presets.SPRSACConfig` (default :data:`~rlrep.agents.presets.SPR_SAC`),
    ``storage_device`` and SB3's ``SAC`` keywords.
    """

    default_config: SPRSACConfig = SPR_SAC
    unsaved_attributes = ("shift", "objective")
    extra_optimizers = ("spr_optimizer",)

    def _setup_model(self) -> None:
        super()._setup_model()
        cfg = self.config
        self.shift = RandomShift(cfg.pad)
        spr = SPR(
            self.encoder,
            action_dim=int(self.action_space.shape[0]),
            steps=cfg.spr_steps,
            projection_dim=cfg.spr_projection_dim,
            hidden_dim=cfg.spr_hidden_dim,
            momentum=cfg.spr_momentum,
        )
        self.register_objective(AuxObjective(self.shift, spr))  # saved with the model
        # The encoder is stepped by the critic's optimiser; this one steps SPR's heads.
        encoder_params = {id(p) for p in self.encoder.parameters()}
        heads = [p for p in spr.parameters() if p.requires_grad and id(p) not in encoder_params]
        self.spr_optimizer = adam(heads, self.device, lr=cfg.lr)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        buffer = self.replay_buffer
        logs: dict[str, list[torch.Tensor]] = {}
        for _ in range(gradient_steps):
            data = buffer.sample(batch_size, env=self._vec_normalize_env)
            slots = buffer.last_sample_slots.numpy()  # the windows start at the batch's rows
            window = buffer.get_sequences(
                slots // buffer.n_envs, slots % buffer.n_envs, self.config.spr_steps
            )
            metrics = self.update(
                self.shift.random(data.observations),
                data.actions,
                data.rewards,
                self.shift.random(data.next_observations),
                data.dones,
                window,
            )
            for key, value in metrics.items():
                logs.setdefault(key, []).append(value)
        self.log_train(logs, objective="spr")

    def update(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        next_obs: torch.Tensor,
        dones: torch.Tensor,
        window: SequenceSamples,
    ) -> dict[str, torch.Tensor]:
        """One SPR-SAC update on shifted uint8 views ``(B, C, 84, 84)`` and the replay windows
        that start at ``obs``'s transitions (uint8, not yet augmented); the detached losses."""
        cfg, step = self.config, self._n_updates
        obs, next_obs = self.scaled(obs, next_obs)
        with pixel_range_checked():  # scaled from uint8: in [0, 1]
            critic_loss, spr_loss = self.update_critic_and_spr(
                obs, actions, rewards, next_obs, dones, window
            )
            metrics = {"critic_loss": critic_loss, "spr_loss": spr_loss}
            if step % cfg.actor_update_freq == 0:
                metrics["actor_loss"], metrics["ent_coef_loss"] = self.update_actor_and_alpha(obs)
            if step % cfg.target_update_freq == 0:
                polyak_update(self._q_params, self._target_q_params, cfg.critic_tau)
                polyak_update(self._encoder_params, self._target_encoder_params, cfg.encoder_tau)
            self.objective.update_targets()  # SPR's EMA, every update
        self._n_updates += 1
        return metrics

    def update_critic_and_spr(
        self, obs, actions, rewards, next_obs, dones, window: SequenceSamples
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """SAC's critic loss + ``spr_weight`` × SPR's loss, one backward pass: the encoder reads
        ``obs`` once and both losses train it; their detached values."""
        target = self.soft_target_value(next_obs, rewards, dones)
        features = self.encoder(obs)
        q1, q2 = self.critic.q_values(features, actions)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        spr = self.objective.sequence_loss(
            window.observations,
            window.actions,
            window.valid,
            view_first=obs,
            features_first=features,
        )
        self.critic.optimizer.zero_grad()
        self.spr_optimizer.zero_grad()
        (critic_loss + self.config.spr_weight * spr.loss).backward()
        self.critic.optimizer.step()
        self.spr_optimizer.step()
        return critic_loss.detach(), spr.loss.detach()
