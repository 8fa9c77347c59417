"""How large each method's auxiliary loss is next to SAC's critic loss at the start of training,
and what ``feature_std`` reads for each encoder at random init.

Part 1, per method: ``SAC(SharedEncoderSACPolicy)`` with ``policy_kwargs(method=m)`` (default
``aux_weight``) on the same random-policy transitions of a task; the means of SB3's
``train/critic_loss`` and rlrep's unweighted ``aux/loss`` over the first ``--updates`` gradient
steps, and their ratio (aux_weight × aux / critic). Part 2, per encoder: ``feature_std`` and
``effective_rank`` of its random-init features of ``--batch-size`` observations of the task (the
view the extractor encodes: center crop 84 of 100-pixel frames), next to a collapsed reference
(every feature vector a scaled copy of one direction plus 1e-3 noise) and i.i.d. Gaussian
features (well spread).

Usage: ``python experiments/aux_scales.py [--task point_mass_pixels|cartpole-swingup ...]
[--methods curl swav ...] [--no-encoders]``
(DMC tasks render on the CPU: ~30 ms a frame, so a few hundred steps take seconds.)
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.logger import configure as configure_logger

import rlrep.encoders as E
import rlrep.methods as M
from rlrep import envs
from rlrep.metrics import effective_rank, feature_std
from rlrep.sb3 import FrameStackReplayBuffer, RepresentationExtractor, SharedEncoderSACPolicy
from rlrep.sb3 import policy_kwargs as make_policy_kwargs


class MeanOf(Logger):
    """An SB3 logger that keeps every recorded value (no output)."""

    def __init__(self) -> None:
        super().__init__(folder=None, output_formats=[])
        self.values: dict[str, list[float]] = {}

    def record(self, key, value, exclude=None) -> None:
        self.values.setdefault(key, []).append(float(value))

    def record_mean(self, key, value, exclude=None) -> None:
        self.record(key, value)


def scales(
    task: str, image_size: int, steps: int, updates: int, batch_size: int, methods: list[str]
) -> None:
    print(f"\n{task}, {image_size} px, {steps} random steps, means of the first {updates} updates")
    print(f"  {'method':14s} {'weight':>8s} {'critic loss':>12s} {'aux loss':>10s} {'ratio':>9s}")
    for method in methods:
        env = envs.make_env(task, image_size=image_size, seed=0)
        # A memory bank keeps one row per replay slot.
        method_kwargs = {"num_instances": steps} if M.METHODS[method].needs_index else {}
        model = SAC(
            SharedEncoderSACPolicy, env, buffer_size=steps, learning_starts=steps,
            batch_size=batch_size, seed=0, replay_buffer_class=FrameStackReplayBuffer,
            policy_kwargs=make_policy_kwargs(
                method=method, method_kwargs=method_kwargs, net_arch=[1024, 1024]
            ),
        )  # fmt: skip
        model.set_logger(configure_logger(None, []))
        model.learn(steps)  # random actions fill the buffer (the same for every method: seed 0)
        logger = MeanOf()
        model.set_logger(logger)
        model.train(gradient_steps=updates, batch_size=batch_size)
        critic = statistics.mean(logger.values["train/critic_loss"])
        aux = statistics.mean(logger.values["aux/loss"])
        weight = model.critic.features_extractor.aux_weight
        print(
            f"  {method:14s} {weight:8g} {critic:12.4f} {aux:10.4f} {weight * aux / critic:8.2g}×"
        )


def feature_health(task: str, image_size: int, batch_size: int) -> None:
    env = envs.make_env(task, image_size=image_size, seed=0)
    obs = [env.reset(seed=0)[0]]
    rng = np.random.default_rng(0)
    while len(obs) < batch_size:
        o, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        obs.append(env.reset()[0] if terminated or truncated else o)
    batch = torch.as_tensor(np.stack(obs)).float() / 255
    print(f"\n{task}: features of {batch_size} random-policy observations, random init")
    print(f"  {'encoder':22s} {'feature_std':>11s} {'eff. rank':>9s}")
    for name in E.ENCODERS:
        torch.manual_seed(0)
        extractor = RepresentationExtractor(env.observation_space, encoder=name).eval()
        with torch.no_grad():
            features = extractor(batch)
        row = f"{name} (D={features.shape[1]})"
        print(f"  {row:22s} {feature_std(features):11.3f} {effective_rank(features):9.1f}")
    d, g = 50, torch.Generator().manual_seed(0)
    direction = torch.randn(1, d, generator=g)
    references = {  # complete collapse: one direction, scaled, plus 1e-3 noise; spread: Gaussian
        "collapsed (D=50)": torch.empty(batch_size, 1).uniform_(0.5, 1.5, generator=g) * direction
        + 1e-3 * torch.randn(batch_size, d, generator=g),
        "i.i.d. Gaussian (D=50)": torch.randn(batch_size, d, generator=g),
    }
    for label, f in references.items():
        print(f"  {label:22s} {feature_std(f):11.3f} {effective_rank(f):9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", default=["point_mass_pixels", "cartpole-swingup"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--updates", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--methods", nargs="+", default=list(M.METHODS), choices=list(M.METHODS))
    parser.add_argument("--no-encoders", action="store_true", help="skip part 2")
    args = parser.parse_args()
    for task in args.task:
        size = 40 if task == envs.SYNTHETIC_TASK else 100  # the synthetic task's own default
        scales(task, size, args.steps, args.updates, args.batch_size, args.methods)
        if not args.no_encoders:
            feature_health(task, 100, args.batch_size)  # 100 → crop 84: every encoder's input


if __name__ == "__main__":
    main()
