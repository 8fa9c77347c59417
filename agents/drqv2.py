"""DrQ-v2 (Yarats, Fergus, Lazaric & Pinto 2021, "Mastering visual continuous control") on SB3's TD3.

:meth:`DrQV2.update` is the reference code's update (facebookresearch/drqv2, ``drqv2.py``):

- one conv encoder (4 convs of 32 filters) trained by the critic alone; the critic and the actor
  each have their own trunk (Linear → LayerNorm → tanh, 50-d) over its conv features — here the
  critic's extractor head and the actor's :class:`~rlrep.sb3.DetachedFeatures` head
  (:class:`~rlrep.sb3.SharedEncoderTD3Policy`); DDPG heads (1024 × 2 MLPs, tanh policy);
- each update: an n-step (3) window from the replay buffer; ``obs_t`` and ``obs_{t+n}`` each
  shifted once (replicate-pad 4, random crop back to 84); the conv features of ``obs_{t+n}`` from
  the *online* encoder without gradient (there is no target encoder);
- critic: ``y = Σ_j γ^j r_{t+j} + γ^n min Q̄(s_{t+n}, a′)``, ``a′ = μ(s_{t+n}) + clip(σ ε, ±0.3)``,
  loss the sum of the two Q heads' MSEs; the actor on the conv features detached:
  ``−min Q(s, μ(s) + clip(σ ε, ±0.3))`` (the clamp to [−1, 1] passes the gradient straight
  through, as the code's ``TruncatedNormal``); soft update of the critic's trunk and Q heads
  with τ = 0.01 after every update, one update every 2 agent steps;
- exploration: σ linear from 1.0 to 0.1 over ``std_steps`` agent steps (Gaussian noise on the
  action, clipped to [−1, 1]); uniform actions for the first ``initial_steps``.

Windows never cross episodes: one that meets a time limit before n steps bootstraps from that
episode's last observation with ``γ^k`` for the k steps taken; a terminal one does not bootstrap
(:func:`n_step_targets`). The code samples only windows that fit in their episode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import TD3
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.utils import get_device, polyak_update
from torch import nn

from rlrep.agents.optim import adam_kwargs
from rlrep.agents.overlap import OverlappedLearn
from rlrep.agents.pixel_sac import orthogonal_init_, pixel_encoder_kwargs, scale_pixels
from rlrep.agents.presets import DRQ_V2, DrQV2Config
from rlrep.augment import RandomShift
from rlrep.augment.base import pixel_range_checked
from rlrep.sb3 import FrameStackReplayBuffer, SharedEncoderTD3Policy, policy_kwargs

__all__ = ["DrQV2", "linear_schedule", "n_step_targets", "noisy_action"]


def linear_schedule(start: float, end: float, steps: int, step: int) -> float:
    """DrQ-v2's ``linear(start, end, steps)``: ``start`` at step 0 to ``end`` at ``steps``, then
    ``end``."""
    mix = min(max(step / steps, 0.0), 1.0)
    return (1.0 - mix) * start + mix * end


def n_step_targets(
    rewards: torch.Tensor, dones: torch.Tensor, valid: torch.Tensor, gamma: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The n-step return of replay windows and how to bootstrap it.

    :param rewards: ``(B, n)`` rewards ``r_t … r_{t+n−1}``; :param dones: ``(B, n)`` 1 where a
        transition ends its episode by termination; :param valid: ``(B, n + 1)``, which of
        ``obs_t … obs_{t+n}`` are in ``obs_t``'s episode (:class:`rlrep.sb3.SequenceSamples`).
    :return: ``returns`` ``(B, 1)`` ``= Σ_{j<k} γ^j r_{t+j}`` over the ``k`` transitions taken
        (those whose next observation is valid), ``discounts`` ``(B, 1)`` ``= γ^k``, or 0 after a
        termination, and ``last`` ``(B,)`` ``= k``, the index of the observation to bootstrap from.
    """
    taken = valid[:, 1:].to(rewards.dtype)
    powers = gamma ** torch.arange(rewards.shape[1], device=rewards.device, dtype=rewards.dtype)
    returns = (rewards * taken * powers).sum(1, keepdim=True)
    steps = taken.sum(1).long()
    terminal = (dones * taken).sum(1, keepdim=True) > 0
    discounts = (gamma ** steps.to(rewards.dtype))[:, None] * (~terminal).to(rewards.dtype)
    return returns, discounts, steps


def noisy_action(mean: torch.Tensor, std: float, clip: float) -> torch.Tensor:
    """``mean + clip(σ ε, ±clip)``, kept inside (−1, 1) by a clamp whose gradient passes
    straight through (the code's ``TruncatedNormal.sample(clip)``)."""
    noise = (torch.randn_like(mean) * std).clamp(-clip, clip)
    action = mean + noise
    clamped = action.clamp(-1.0 + 1e-6, 1.0 - 1e-6)
    return action - action.detach() + clamped.detach()


def drqv2_init_(module: nn.Module) -> None:
    """DrQ-v2's ``weight_init``: orthogonal weights (convs with ReLU's gain), zero biases."""
    if isinstance(module, nn.Conv2d):  # drawn contiguous: the weights may be channels-last
        weight = torch.empty(module.weight.shape, dtype=module.weight.dtype)
        nn.init.orthogonal_(weight, nn.init.calculate_gain("relu"))
        with torch.no_grad():
            module.weight.copy_(weight)
        nn.init.zeros_(module.bias)
    else:
        orthogonal_init_(module)


class DrQV2(OverlappedLearn, TD3):
    """DDPG with DrQ-v2's encoder, augmentation, n-step returns and exploration schedule.

    ``DrQV2(env, config_for("drqv2", "cartpole-swingup"), seed=1).learn(100_000 // 2)``

    :param env: a pixel env with uint8 ``(3·k, 84, 84)`` observations (``rlrep.envs.make_dmc``).
    :param config: hyperparameters (:func:`rlrep.agents.presets.config_for`).
    :param overlap: step the env while the update runs (:mod:`rlrep.agents.overlap`: the official
        codes' order, act → update → store; give the env as :func:`~rlrep.agents.overlap.env_worker`
        for the two to run at once); ``False``: SB3's order, act → store → update.
    :param storage_device: where the replay frames live.
    :param kwargs: passed to SB3's ``TD3`` (``seed``, ``device``, ``verbose``, …).
    """

    def __init__(
        self,
        env: Any,
        config: DrQV2Config = DRQ_V2,
        storage_device: str = "cpu",
        overlap: bool = False,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("policy", None)  # SB3's load() passes the saved policy class; it is fixed here
        self.overlap = overlap
        self.config = config
        # The trunks (the critic's extractor head, the actor's own) end in tanh.
        encoder_kwargs = pixel_encoder_kwargs(config, kwargs.get("device", "auto"), tanh=True)
        encoder_kwargs["center_pixels"] = True  # the code's Encoder: obs / 255 − 0.5
        kwargs.setdefault("policy_kwargs", policy_kwargs(
            method=None,
            augmentation="shift",  # acting: the observation (the shift's eval view)
            augmentation_kwargs={"pad": config.pad},
            encoder="curl",
            encoder_kwargs=encoder_kwargs,
            net_arch=[config.hidden_dim, config.hidden_dim],
            optimizer_kwargs=adam_kwargs(get_device(kwargs.get("device", "auto"))),
        ))  # fmt: skip
        super().__init__(
            SharedEncoderTD3Policy,
            env,
            learning_rate=config.lr,
            buffer_size=config.buffer_size,
            learning_starts=config.initial_steps,
            batch_size=config.batch_size,
            tau=config.critic_tau,
            gamma=config.gamma,
            train_freq=(config.update_every, "step"),
            gradient_steps=1,
            action_noise=NormalActionNoise(np.zeros(1), np.ones(1)),  # σ set each step
            replay_buffer_class=FrameStackReplayBuffer,
            replay_buffer_kwargs={"storage_device": storage_device},
            _init_setup_model=_init_setup_model,
            **kwargs,
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        shape = self.action_space.shape
        self.action_noise = NormalActionNoise(np.zeros(shape), np.ones(shape))
        self.policy.critic.apply(drqv2_init_)
        self.policy.actor.apply(drqv2_init_)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor_target.load_state_dict(self.actor.state_dict())  # unused: no target actor
        self.encoder = self.critic.features_extractor.encoder
        self.target_head = self.critic_target.features_extractor.encoder.head
        self.shift = RandomShift(self.config.pad)

        # The critic's trunk and Q heads follow by EMA; its conv layers have no target.
        def heads(critic):
            q_params = [p for q in critic.q_networks for p in q.parameters()]
            return [*critic.features_extractor.encoder.head.parameters(), *q_params]

        self._critic_params, self._target_critic_params = (
            heads(self.critic),
            heads(self.critic_target),
        )

    def _excluded_save_params(self) -> list[str]:
        own = ["encoder", "target_head", "shift", "_critic_params", "_target_critic_params"]
        return [*super()._excluded_save_params(), *own]

    def stddev(self) -> float:
        """The exploration σ at the current agent step."""
        cfg = self.config
        return linear_schedule(cfg.std_start, cfg.std_end, cfg.std_steps, self.num_timesteps)

    def _sample_action(self, learning_starts: int, action_noise=None, n_envs: int = 1):
        if action_noise is not None:
            action_noise._sigma = np.full_like(action_noise._mu, self.stddev())
        return super()._sample_action(learning_starts, action_noise, n_envs)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        logs: dict[str, list[torch.Tensor]] = {}
        buffer = self.replay_buffer
        for _ in range(gradient_steps):
            data = buffer.sample(batch_size, env=self._vec_normalize_env)
            slots = buffer.last_sample_slots.numpy()
            window = buffer.get_sequences(
                slots // buffer.n_envs, slots % buffer.n_envs, self.config.n_step
            )
            returns, discounts, last = n_step_targets(
                window.rewards, window.dones, window.valid, self.gamma
            )
            rows = torch.arange(len(last), device=last.device)
            bootstrap = window.observations[rows, last]  # obs_{t+k}, k the steps taken
            metrics = self.update(
                self.shift.random(data.observations),
                data.actions,
                returns,
                discounts,
                self.shift.random(bootstrap),
            )
            for key, value in metrics.items():
                logs.setdefault(key, []).append(value)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/stddev", self.stddev())
        for key, values in logs.items():  # one host sync per key and train() call
            self.logger.record(f"train/{key}", torch.stack(values).mean().item())

    def update(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        returns: torch.Tensor,
        discounts: torch.Tensor,
        next_obs: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """One DrQ-v2 update on shifted uint8 views ``(B, C, 84, 84)`` of ``obs_t`` and of the
        bootstrap observation; returns the detached losses."""
        cfg, std = self.config, self.stddev()
        obs, next_obs = scale_pixels((obs, next_obs), self.encoder.channels_last)
        with pixel_range_checked():  # scaled from uint8: in [0, 1]
            conv = self.encoder.forward_conv(obs)
            with torch.no_grad():
                next_conv = self.encoder.forward_conv(next_obs)
            critic_loss = self.update_critic(conv, actions, returns, discounts, next_conv, std)
            actor_loss = self.update_actor(conv.detach(), std)
        polyak_update(self._critic_params, self._target_critic_params, cfg.critic_tau)
        self._n_updates += 1
        return {"critic_loss": critic_loss, "actor_loss": actor_loss}

    def _policy(self, conv: torch.Tensor) -> torch.Tensor:
        """The actor's deterministic action from conv features, through its own trunk."""
        return self.actor.mu(self.actor.features_extractor.head(conv))

    def update_critic(self, conv, actions, returns, discounts, next_conv, std) -> torch.Tensor:
        with torch.no_grad():
            next_actions = noisy_action(self._policy(next_conv), std, self.config.std_clip)
            target_q = torch.min(
                *self.critic_target.q_values(self.target_head(next_conv), next_actions)
            )
            target = returns + discounts * target_q
        q1, q2 = self.critic.q_values(self.encoder.forward_head(conv), actions)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic.optimizer.step()
        return loss.detach()

    def update_actor(self, conv: torch.Tensor, std: float) -> torch.Tensor:
        actions = noisy_action(self._policy(conv), std, self.config.std_clip)
        q1, q2 = self.critic.q_values(self.encoder.forward_head(conv), actions)
        loss = -torch.min(q1, q2).mean()
        self.actor.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.actor.optimizer.step()
        return loss.detach()
