"""Evaluation of a policy on the clean env and on distracted variants of it, with the same seeded
episodes at every evaluation (the columns of a run's ``eval.csv``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv

__all__ = ["Evaluation", "RandomPolicy"]


class RandomPolicy:
    """Uniform random actions from a seeded generator (``evaluate_policy``'s predictor protocol)."""

    def __init__(self, space: Any, seed: int) -> None:
        self.space, self.rng = space, np.random.default_rng(seed)

    def predict(self, obs: np.ndarray, state=None, episode_start=None, deterministic=False):
        shape = (len(obs), *self.space.shape)
        return self.rng.uniform(self.space.low, self.space.high, shape).astype(np.float32), None


class Evaluation:
    """Seeded evaluation episodes on the clean env and each distracted variant.

    Every variant's env gets the same seed, so the episodes start from the same physical states
    (distractions change pixels, never the physics) and each evaluation replays them.

    :param make: ``make(distraction)`` → a new env (``None``: the clean one).
    :param variants: distraction names evaluated next to the clean env (e.g. ``"color_hard"``).
    :param seed: the evaluation episodes' seed.
    :param episodes: episodes per env and evaluation.
    """

    def __init__(
        self,
        make: Callable[[str | None], gym.Env],
        variants: Sequence[str],
        seed: int,
        episodes: int,
    ) -> None:
        self.variants = tuple(variants)
        self.seed, self.episodes = seed, episodes
        self.envs = {v: DummyVecEnv([lambda v=v: make(v)]) for v in (None, *self.variants)}

    def _returns(self, policy: Any, env: DummyVecEnv, deterministic: bool) -> list[float]:
        env.seed(self.seed)  # the same start states at every evaluation
        returns, _ = evaluate_policy(
            policy,
            env,
            n_eval_episodes=self.episodes,
            deterministic=deterministic,
            return_episode_rewards=True,
            warn=False,
        )
        return returns

    def evaluate(self, model: Any) -> dict[str, float | int]:
        """``mean_return``, ``std_return``, ``episodes`` of the deterministic policy on the clean
        env, and ``mean_return_<v>``, ``std_return_<v>`` for each variant ``v``."""
        returns = self._returns(model, self.envs[None], deterministic=True)
        row: dict[str, float | int] = {
            "mean_return": float(np.mean(returns)),
            "std_return": float(np.std(returns)),
            "episodes": len(returns),
        }
        for v in self.variants:
            returns = self._returns(model, self.envs[v], deterministic=True)
            row[f"mean_return_{v}"] = float(np.mean(returns))
            row[f"std_return_{v}"] = float(np.std(returns))
        return row

    def random_policy(self, action_space: Any) -> tuple[float, float]:
        """Mean and std return of uniform random actions on the clean evaluation episodes, the
        reference a learning curve is read against."""
        returns = self._returns(RandomPolicy(action_space, self.seed), self.envs[None], False)
        return float(np.mean(returns)), float(np.std(returns))

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
