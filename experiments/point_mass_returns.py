"""Reference returns of the synthetic PointMassPixels task: uniform random vs greedy policy.

Usage: ``python experiments/point_mass_returns.py [--episodes 200]``
"""

from __future__ import annotations

import argparse

import numpy as np

from rlrep.envs import PointMassPixels


def run(policy: str, episodes: int, **env_kwargs) -> np.ndarray:
    env = PointMassPixels(from_pixels=False, **env_kwargs)
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=ep)
        env.action_space.seed(ep)
        total, done = 0.0, False
        while not done:
            if policy == "random":
                action = env.action_space.sample()
            else:  # full speed straight at the target
                delta = (obs[2:] - obs[:2]) / env.max_speed
                action = (
                    np.clip(delta, -1, 1)
                    if np.abs(delta).max() <= 1
                    else delta / np.abs(delta).max()
                )
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            done = terminated or truncated
        returns.append(total)
    return np.array(returns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    args = parser.parse_args()
    for random_target in (False, True):
        print(f"random_target={random_target}:")
        for policy in ("random", "greedy"):
            r = run(policy, args.episodes, random_target=random_target)
            print(f"  {policy:6s} return {r.mean():7.2f} ± {r.std():.2f} over {len(r)} episodes")


if __name__ == "__main__":
    main()
