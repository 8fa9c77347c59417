"""DrQ (Kostrikov, Yarats & Fergus 2020, "Image augmentation is all you need") on SB3's SAC.

:meth:`DrQ.update` is the reference code's update (denisyarats/drq, ``drq.py``) step by step:

- the networks of CURL-SAC (:class:`~rlrep.agents.pixel_sac.PixelSAC`): the critic owns the encoder
  (here ending in tanh, as DrQ's), the actor reads its conv features detached through its own
  head; no auxiliary loss;
- each update samples a batch of 84×84 stacks; ``obs`` and ``next_obs`` are each shifted
  (replicate-pad 4, random crop back to 84) K = M = 2 times, independently;
- the critic's target is the mean over the K views of ``next_obs`` of SAC's soft target
  (Eq. 10: ``y = r + γ/K Σ_k V̄(f(s′, ν′_k))``); the critic's loss is summed over the M views of
  ``obs`` (Eq. 11), each the sum of the two Q heads' MSEs;
- actor and α every ``actor_update_freq`` steps on the first view of ``obs``; soft target update
  of the whole critic (encoder included) with τ = 0.01 every ``target_update_freq`` steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from stable_baselines3.common.utils import polyak_update

from rlrep.agents.pixel_sac import PixelSAC
from rlrep.agents.presets import DRQ, DrQConfig
from rlrep.augment import RandomShift
from rlrep.augment.base import pixel_range_checked

__all__ = ["DrQ"]


class DrQ(PixelSAC):
    """SAC with DrQ's augmentation, target averaging and critic averaging.

    ``DrQ(env, config_for("drq", "cartpole-swingup"), seed=1).learn(100_000 // 8)``

    Takes :class:`~rlrep.agents.pixel_sac.PixelSAC`'s arguments: a pixel env with uint8
    ``(3·k, 84, 84)`` observations, a :class:`~rlrep.agents.presets.DrQConfig` (default
    :data:`~rlrep.agents.presets.DRQ`), ``storage_device`` and SB3's ``SAC`` keywords.
    """

    default_config: DrQConfig = DRQ
    unsaved_attributes = ("shift", "_critic_params", "_target_critic_params")

    def _setup_model(self) -> None:
        super()._setup_model()
        self.shift = RandomShift(self.config.pad)
        self._critic_params = list(self.critic.parameters())
        self._target_critic_params = list(self.critic_target.parameters())

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        cfg = self.config
        logs: dict[str, list[torch.Tensor]] = {}
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            obs = [self.shift.random(data.observations) for _ in range(cfg.critic_views)]
            next_obs = [self.shift.random(data.next_observations) for _ in range(cfg.target_views)]
            metrics = self.update(obs, data.actions, data.rewards, next_obs, data.dones)
            for key, value in metrics.items():
                logs.setdefault(key, []).append(value)
        self.log_train(logs)

    def update(
        self,
        obs: list[torch.Tensor],
        actions: torch.Tensor,
        rewards: torch.Tensor,
        next_obs: list[torch.Tensor],
        dones: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """One DrQ update on M shifted uint8 views of ``obs`` and K of ``next_obs`` (each
        ``(B, C, 84, 84)``); returns the detached losses of the steps taken."""
        cfg, step = self.config, self._n_updates
        obs, next_obs = list(self.scaled(*obs)), list(self.scaled(*next_obs))
        with pixel_range_checked():  # scaled from uint8: in [0, 1]
            metrics = {"critic_loss": self.update_critic(obs, actions, rewards, next_obs, dones)}
            if step % cfg.actor_update_freq == 0:
                actor, alpha = self.update_actor_and_alpha(obs[0])
                metrics["actor_loss"], metrics["ent_coef_loss"] = actor, alpha
            if step % cfg.target_update_freq == 0:
                polyak_update(self._critic_params, self._target_critic_params, cfg.critic_tau)
        self._n_updates += 1
        return metrics

    def target_value(
        self, rewards: torch.Tensor, next_obs: list[torch.Tensor], dones: torch.Tensor
    ) -> torch.Tensor:
        """The soft target averaged over the views of ``next_obs`` (DrQ Eq. 10), ``(B, 1)``."""
        targets = [self.soft_target_value(view, rewards, dones) for view in next_obs]
        return torch.stack(targets).mean(0)

    def update_critic(self, obs, actions, rewards, next_obs, dones) -> torch.Tensor:
        target = self.target_value(rewards, next_obs, dones)
        loss = 0.0
        for view in obs:  # DrQ Eq. 11: the loss summed over the M views
            q1, q2 = self.critic.q_values(self.encoder(view), actions)
            loss = loss + F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic.optimizer.zero_grad()
        loss.backward()
        self.critic.optimizer.step()
        return loss.detach()
