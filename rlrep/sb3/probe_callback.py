"""The objective inside RL, measured: a linear probe of the policy encoder's physics state.

``model.learn(100_000, callback=StateProbeCallback(make_dmc("cartpole-swingup"), probe_every=5000))``
logs ``probe/state_r2`` (held-out R² of a ridge regression from the encoder's features to the
env's state), and ``probe/state_r2_position`` / ``probe/state_r2_velocity`` where the state names
them, at the start of training (the initial encoder) and every ``probe_every`` steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.preprocessing import preprocess_obs
from torch import nn

from rlrep.augment.base import pixel_range_checked
from rlrep.probes import ridge_r2, select_ridge, state_groups
from rlrep.sb3.extractor import RepresentationExtractor

__all__ = [
    "ProbeSet",
    "StateProbeCallback",
    "collect_probe_set",
    "default_extractor",
    "env_state_groups",
]

LAYERS = ("features", "conv")


@dataclass(frozen=True)
class ProbeSet:
    """Observations with their states, gathered once.

    :param observations: ``(N, *obs_shape)`` observations as the env gives them (uint8 pixels).
    :param states: ``(N, S)`` float64 states (``info["state"]``), constant entries left out.
    :param episodes: ``(N,)`` episode number of each observation.
    :param groups: indices into the ``S`` columns of ``states`` by group (``position``, ``velocity``).
    """

    observations: torch.Tensor
    states: torch.Tensor
    episodes: torch.Tensor
    groups: dict[str, list[int]]


def env_state_groups(env: gym.Env) -> dict[str, list[int]]:
    """Indices of ``info["state"]`` that are positions and velocities, where the env names them.

    - an env with ``state_keys`` (one name per state entry, as :class:`~rlrep.envs.DMCEnv`'s
      observation keys and :class:`~rlrep.envs.PointMassPixels`'): :func:`rlrep.probes.state_groups`
      of them (velocities: the keys naming one; positions: the rest), as the pretraining probes
      group them;
    - anything else: no groups (only the overall R²).
    """
    keys = getattr(env.unwrapped, "state_keys", None)
    if keys is None:
        return {}
    return {name: idx.tolist() for name, idx in state_groups(keys).items()}


def collect_probe_set(
    env: gym.Env,
    episodes: int = 10,
    max_episode_steps: int | None = None,
    seed: int = 0,
    groups: dict[str, list[int]] | None = None,
) -> ProbeSet:
    """Roll out uniformly random actions in ``env`` and keep every observation with its state.

    :param env: a gymnasium env (not vectorised) whose ``info["state"]`` at reset and at each step
        is the state behind the observation (rlrep's :class:`~rlrep.envs.DMCEnv` and
        :class:`~rlrep.envs.PointMassPixels` give it).
    :param episodes: episodes to roll out (the split into fit and held-out sets is by episode).
    :param max_episode_steps: cut each episode after this many steps (``None``: as the env ends it).
    :param seed: seeds the env's first reset and the random actions.
    :param groups: state indices by group; default: :func:`env_state_groups`.
    :raises ValueError: no ``info["state"]``, or states that do not vary over the rollout.
    """
    groups = env_state_groups(env) if groups is None else groups
    env.action_space.seed(seed)
    observations, states, numbers = [], [], []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed if episode == 0 else None)
        step, done = 0, False
        while True:
            if "state" not in info:
                raise ValueError(
                    f"StateProbeCallback needs info['state'], the physical state behind each "
                    f"observation, at reset and at every step; {env.unwrapped} gives "
                    f"info keys {sorted(info)}. rlrep's DMC envs and PointMassPixels give it; for "
                    "another env, add it with a gymnasium wrapper"
                )
            observations.append(np.asarray(obs))
            states.append(np.asarray(info["state"], dtype=np.float64).ravel())
            numbers.append(episode)
            if done or (max_episode_steps is not None and step >= max_episode_steps):
                break
            obs, _, terminated, truncated, info = env.step(env.action_space.sample())
            step, done = step + 1, terminated or truncated
    state = torch.as_tensor(np.stack(states))
    # Constant entries (the synthetic task's fixed target) cannot be predicted nor missed: an R²
    # of 0 for them would only dilute the mean.
    varies = (state.max(0).values - state.min(0).values) > 1e-8
    if not varies.any():
        raise ValueError(
            f"the states of {episodes} random episodes do not vary; a state probe needs states "
            "that change (more or longer episodes?)"
        )
    kept = {int(i): j for j, i in enumerate(torch.nonzero(varies).ravel())}
    groups = {name: [kept[i] for i in indices if i in kept] for name, indices in groups.items()}
    return ProbeSet(
        observations=torch.as_tensor(np.stack(observations)),
        states=state[:, varies],
        episodes=torch.as_tensor(numbers),
        groups={name: indices for name, indices in groups.items() if indices},
    )


def default_extractor(model: BaseAlgorithm) -> nn.Module:
    """The encoder the auxiliary loss trains: the critic's features extractor (SAC, TD3, and the
    agents of :mod:`rlrep.agents`), the value function's (PPO, A2C; the shared one unless
    ``share_features_extractor=False``), the Q-network's (DQN)."""
    policy = model.policy
    for owner in ("critic", "q_net"):
        extractor = getattr(getattr(policy, owner, None), "features_extractor", None)
        if extractor is not None:
            return extractor
    extractor = getattr(policy, "vf_features_extractor", None)
    if extractor is None:
        extractor = getattr(policy, "features_extractor", None)
    if extractor is None:
        raise ValueError(
            f"{type(policy).__name__} has no features extractor the probe knows; pass "
            "extractor=lambda model: <the module to probe>"
        )
    return extractor


class StateProbeCallback(BaseCallback):
    """Logs how linearly the policy encoder's features give the env's physical state.

    Design: a fixed probe set, gathered once from ``env`` (a separate env, seeded, uniformly
    random actions) when training starts, split by episode into a fit part and a held-out part
    (the last ``held_out`` share of the episodes). Every probe encodes the same frames, so the
    curve measures the representation alone: replay data drift with the policy (and SB3 stores
    no states), which would mix what the encoder learned with what the agent visits.

    Each probe (at the start of training, then every ``probe_every`` environment steps) encodes
    the probe set's observations with the deterministic view of the extractor (its augmentation's
    ``deterministic``: the center crop, no random crop; eval mode, no gradient), fits
    :func:`rlrep.probes.ridge_r2`'s probe on the fit part and records to SB3's logger:

    - ``{prefix}state_r2``: held-out R², averaged over the state's entries that vary;
    - ``{prefix}state_r2_position`` / ``{prefix}state_r2_velocity``: the same over the entries
      :func:`env_state_groups` names positions / velocities (where there are any).

    :attr:`history` keeps ``(num_timesteps, {key: value})`` of every probe.

    :param env: a gymnasium env like the training env (same observations) whose
        ``info["state"]`` is the state behind each observation (rlrep's DMC envs, the synthetic
        task); only the probe steps it.
    :param probe_every: environment steps between probes (all envs together, as ``num_timesteps``).
    :param episodes: random episodes in the probe set (at least 2: fit and held-out).
    :param max_episode_steps: cut each probe episode after this many steps (``None``: full
        episodes; the probe set is kept in memory, 64 kB per 9×84×84 observation, 16 MB per
        full DMC episode at action repeat 4).
    :param held_out: share of the episodes held out for the R².
    :param layer: ``"features"``: the extractor's output, what the RL heads read; ``"conv"``: the
        flattened conv maps of a pixel encoder (``encoder.forward_conv``; with ``decoupled=True``
        the part only the auxiliary loss trains).
    :param ridge: the probe's ridge penalty λ on the features as they are; ``None`` (default):
        chosen at each probe by cross-validation over the fit episodes (:func:`rlrep.probes.select_ridge`),
        so that R² compares across layers, encoders and training time.
    :param seed: seed of the probe rollout.
    :param groups: state indices by group name (default: :func:`env_state_groups` of ``env``).
    :param extractor: picks the module to probe from the model (default:
        :func:`default_extractor`, the one the auxiliary loss trains).
    :param prefix: logger key prefix; default ``"probe/"``, ``"probe/conv_"`` for ``layer="conv"``.
    :param verbose: 1 prints each probe's numbers.
    """

    def __init__(
        self,
        env: gym.Env,
        probe_every: int = 10_000,
        episodes: int = 10,
        max_episode_steps: int | None = None,
        held_out: float = 0.25,
        layer: str = "features",
        ridge: float | None = None,
        seed: int = 0,
        groups: dict[str, list[int]] | None = None,
        extractor: Callable[[BaseAlgorithm], nn.Module] | None = None,
        prefix: str | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if not isinstance(env, gym.Env):
            raise ValueError(
                f"StateProbeCallback needs a gymnasium env, got {type(env).__name__}: pass a "
                "separate env like the training env's (e.g. rlrep.envs.make_dmc(task, ...)), "
                "not a VecEnv"
            )
        if probe_every < 1:
            raise ValueError(f"probe_every must be a positive number of steps, got {probe_every}")
        if episodes < 2:
            raise ValueError(f"episodes must be at least 2 (fit and held-out), got {episodes}")
        if not 0 < held_out < 1:
            raise ValueError(f"held_out must be a share in (0, 1), got {held_out}")
        fit = episodes - max(1, round(held_out * episodes))
        if fit < (2 if ridge is None else 1):
            raise ValueError(
                f"episodes={episodes} with held_out={held_out} leaves {fit} episode(s) to fit the "
                "probe; choosing its ridge by cross-validation needs 2 or more: more episodes, "
                "or a fixed ridge=..."
            )
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
        self.env, self.probe_every, self.episodes = env, int(probe_every), int(episodes)
        self.max_episode_steps, self.held_out, self.layer = max_episode_steps, held_out, layer
        self.ridge, self.seed, self.groups = ridge, int(seed), groups
        self.get_extractor = extractor or default_extractor
        self.prefix = (
            prefix if prefix is not None else "probe/" + ("conv_" if layer == "conv" else "")
        )
        self.probe_set: ProbeSet | None = None
        self.history: list[tuple[int, dict[str, float]]] = []
        self._next_probe = 0

    def _init_callback(self) -> None:
        if self.probe_set is None:
            self.probe_set = collect_probe_set(
                self.env, self.episodes, self.max_episode_steps, self.seed, self.groups
            )
        expected = self.model.observation_space.shape
        got = tuple(self.probe_set.observations.shape[1:])
        if tuple(expected) != got:
            raise ValueError(
                f"the probe env gives observations of shape {got}, the model expects "
                f"{tuple(expected)}; build the probe env as the training env (same image size, "
                "frame stack, wrappers)"
            )

    def _on_training_start(self) -> None:
        self.probe()  # the initial encoder: the baseline the curve rises from
        self._next_probe = self.num_timesteps + self.probe_every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_probe:
            self.probe()
            self._next_probe = self.num_timesteps + self.probe_every
        return True

    @torch.no_grad()
    def features(self, observations: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """``(N, C, H, W)`` uint8 observations → ``(N, D)`` float64 features on the CPU, of the
        extractor's deterministic view (eval mode, no gradient)."""
        extractor = self.get_extractor(self.model)
        policy = self.model.policy
        was_training = extractor.training
        extractor.eval()
        out = []
        try:
            for i in range(0, len(observations), batch_size):
                obs = observations[i : i + batch_size].to(policy.device)
                x = preprocess_obs(obs, policy.observation_space, policy.normalize_images)
                out.append(self._encode(extractor, x).double().cpu())
        finally:
            extractor.train(was_training)
        return torch.cat(out)

    def _encode(self, extractor: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(extractor, RepresentationExtractor):
            if self.layer == "conv":
                raise ValueError(
                    f"layer='conv' needs rlrep's RepresentationExtractor, got {type(extractor).__name__}"
                )
            return extractor(x)
        with pixel_range_checked():  # SB3's scaling gives [0, 1]
            view = extractor.augment.deterministic(x)
            if self.layer == "features":
                return extractor.encoder(view)
            if not hasattr(extractor.encoder, "forward_conv"):
                raise ValueError(
                    f"layer='conv' needs an encoder with a conv trunk (forward_conv), got "
                    f"{type(extractor.encoder).__name__}"
                )
            return extractor.encoder.forward_conv(view)

    def probe(self) -> dict[str, float]:
        """Encode the probe set, fit the probe, log and return ``{key: R²}``."""
        data = self.probe_set
        episodes = data.episodes.unique()
        n_test = max(1, round(self.held_out * self.episodes))
        test = torch.isin(data.episodes, episodes[-n_test:])
        features = self.features(data.observations)
        fit = (features[~test], data.states[~test])
        ridge = self.ridge if self.ridge is not None else select_ridge(*fit, data.episodes[~test])
        r2 = ridge_r2(*fit, features[test], data.states[test], ridge)
        result = {f"{self.prefix}state_r2": r2.mean().item()}
        for name, indices in data.groups.items():
            result[f"{self.prefix}state_r2_{name}"] = r2[indices].mean().item()
        for key, value in result.items():
            self.logger.record(key, value)
        self.history.append((self.num_timesteps, result))
        if self.verbose:
            print(
                f"{self.num_timesteps} steps: "
                + ", ".join(f"{k} {v:.3f}" for k, v in result.items())
            )
        return result
