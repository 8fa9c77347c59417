"""Spread over training seeds of the learning tests' evaluation returns, to set their thresholds.

Trains each configuration of the learning tests (``tests/learning_tasks.py`` and the stock-SB3
learning tests of ``tests/test_point_mass.py``; the builders are taken from those modules, so
the configurations cannot drift apart), and SAC with each method over time as its auxiliary loss
(``sac-atc``, ``sac-spr``, ``sac-cpc``, ``sac-sac_ae``, ``sac-time_sup_con``; no test: SAC
learns this task without an auxiliary loss, so their returns say the wiring trains, not that the
objective helps) with each training seed, evaluates every model exactly as
the tests do (20 episodes whose start states come from the test module's ``EVAL_SEED``; each
model is evaluated twice to show the number is reproducible), and prints the returns per seed
with min / mean / max, the seconds per training run, and a uniform random policy's score on the
same 20 episodes. Torch runs single-threaded by default, as in the tests (``tests/conftest.py``
sets one thread): the thread count changes the float results and hence the trained model, so
numbers measured with another ``--threads`` are other samples than the tests' own.

Usage: ``python experiments/learning_spread.py [--seeds 0 1 2 3 4] [--configs sac-curl ...]``
(about 30 minutes for 5 seeds of all four configurations, one thread of a 2-core CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests package

from tests import learning_tasks, test_learning_over_time, test_point_mass

# name: (test module with make_env / evaluate / EVAL_SEED, builder(seed) -> trained model, test)
CONFIGS = {
    "sac-curl": (
        learning_tasks,
        learning_tasks.train_sac_curl,
        "none (measured here only; SAC learns the task without it)",
    ),
    "ppo-simclr": (
        learning_tasks,
        learning_tasks.train_ppo_simclr,
        "none (measured here only; PPO learns the task without it)",
    ),
    "stock-sac": (
        test_point_mass,
        test_point_mass.train_stock_sac,
        "none (measured here only; test_stock_sb3_ppo_learns_from_pixels checks the task)",
    ),
    "stock-ppo": (
        test_point_mass,
        test_point_mass.train_stock_ppo,
        "test_stock_sb3_ppo_learns_from_pixels",
    ),
    # SAC with each method over time: measured here, not tested (SAC learns the task without an
    # auxiliary loss; tests/test_state_probe.py checks that an objective works).
    **{
        f"sac-{method}": (
            learning_tasks,
            lambda seed, method=method: test_learning_over_time.train_sac_over_time(method, seed),
            "none (tests/test_learning_over_time.py:train_sac_over_time)",
        )
        for method in test_learning_over_time.METHODS_OVER_TIME
    },
}


class RandomPolicy:
    """Uniform random actions through SB3's ``predict`` interface, so ``evaluate_policy`` (and
    hence the tests' ``evaluate``) can score it on the same seeded episodes as a model."""

    def __init__(self, action_space, seed: int) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.stack([self.action_space.sample() for _ in range(len(observation))]), state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (tests: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; seeds {args.seeds}")

    rows = []
    for name in args.configs:
        module, train, test = CONFIGS[name]
        random_policy = RandomPolicy(module.make_env().action_space, seed=module.EVAL_SEED)
        random_return = module.evaluate(random_policy)
        returns, seconds = [], []
        for seed in args.seeds:
            start = time.perf_counter()
            model = train(seed)
            seconds.append(time.perf_counter() - start)
            first, second = module.evaluate(model), module.evaluate(model)
            if first != second:
                raise RuntimeError(f"{name} seed {seed}: evaluations differ: {first} vs {second}")
            returns.append(first)
            print(
                f"{name:10s} seed {seed}: return {first:7.2f} (twice)  {seconds[-1]:5.0f} s",
                flush=True,
            )
        rows.append((name, test, returns, seconds, random_return, module.EVAL_SEED))

    print(f"\nmean return over {learning_tasks.EVAL_EPISODES} seeded evaluation episodes:")
    header = ("min", "mean", "max", "random", "s/run")
    print(f"{'config':10s} {'returns per seed':40s} " + " ".join(f"{h:>7s}" for h in header))
    for name, _, returns, seconds, random_return, _ in rows:
        per_seed = " ".join(f"{r:6.1f}" for r in returns)
        print(
            f"{name:10s} {per_seed:40s} {min(returns):7.2f} {statistics.mean(returns):7.2f} "
            f"{max(returns):7.2f} {random_return:7.2f} {statistics.mean(seconds):7.0f}"
        )
    print("random: a uniform random policy on the same seeded episodes. Tests:")
    for name, test, *_ in rows:
        print(f"  {name:10s} {test}")


if __name__ == "__main__":
    main()
