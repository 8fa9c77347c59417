"""SAC update time with an auxiliary loss vs without, same batch, encoder and augmentation.

For each wiring (SB3's stock ``CnnPolicy`` with separate actor/critic encoders, the aux loss on
the critic's; rlrep's ``SharedEncoderSACPolicy`` with CURL's wiring; and the stock policy with
``aux_on_actor=True``, an aux loss on each encoder) two SAC models are built on the same replay
data: one with ``method=None`` (augmentation only: plain SAC on crops) and one with the auxiliary
method. ``model.train(gradient_steps, batch_size)`` is timed in alternating rounds in one process
and the ratio of medians printed (target ≤ 1.15× for the first two).

Usage: ``python experiments/bench_aux_update.py [--method curl] [--batch-size 128] [--device auto]
[--threads N]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC

from rlrep.sb3 import FrameStackReplayBuffer, SharedEncoderSACPolicy, policy_kwargs


class FramesEnv(gym.Env):
    """Random 9×100×100 uint8 stacks (DMC-sized), 125-step episodes: only data, no physics."""

    observation_space = gym.spaces.Box(0, 255, (9, 100, 100), dtype=np.uint8)
    action_space = gym.spaces.Box(-1.0, 1.0, (6,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        self._obs = np.repeat(
            self.np_random.integers(0, 256, (1, 3, 100, 100), dtype=np.uint8), 3, axis=0
        ).reshape(9, 100, 100)
        return self._obs, {}

    def step(self, action):
        self._t += 1
        frame = self.np_random.integers(0, 256, (3, 100, 100), dtype=np.uint8)
        self._obs = np.concatenate([self._obs[3:], frame])
        return self._obs, float(self.np_random.normal()), False, self._t >= 125, {}


def build(policy, method: str | None, device: str, batch_size: int, **options) -> SAC:
    model = SAC(
        policy,
        FramesEnv(),
        buffer_size=2000,
        learning_starts=10**9,  # only collect; training is timed by hand
        batch_size=batch_size,
        replay_buffer_class=FrameStackReplayBuffer,
        policy_kwargs=policy_kwargs(method=method, net_arch=[1024, 1024], **options),
        device=device,
        seed=0,
    )
    model.learn(1000)  # fills the buffer with random actions
    return model


def resolve_device(arg: str) -> tuple[str, str]:
    """(device, printable name) for ``--device`` (``auto``: CUDA when present)."""
    device = (
        "cuda" if arg == "auto" and torch.cuda.is_available() else ("cpu" if arg == "auto" else arg)
    )
    on_gpu = device.startswith("cuda")
    return (
        device,
        torch.cuda.get_device_name() if on_gpu else f"CPU ({torch.get_num_threads()} threads)",
    )


def median_update_times(
    models: dict[str, SAC], rounds: int, gradient_steps: int, batch_size: int, device: str
) -> dict[str, float]:
    """Median seconds per gradient step of each model, timed in alternating rounds (round 0
    warms up), so machine noise hits all of them alike."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times: dict[str, list[float]] = {key: [] for key in models}
    for round_ in range(rounds + 1):
        for key, model in models.items():
            sync()
            start = time.perf_counter()
            model.train(gradient_steps=gradient_steps, batch_size=batch_size)
            sync()
            if round_ > 0:
                times[key].append((time.perf_counter() - start) / gradient_steps)
    return {key: statistics.median(ts) for key, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="curl")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--gradient-steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, name = resolve_device(args.device)
    print(
        f"SAC update, batch {args.batch_size}, 9×100×100 → crop 84, CURL encoder, hidden 1024, on {name}"
    )

    for label, policy, options, target in (
        ("stock CnnPolicy", "CnnPolicy", {}, "≤ 1.15×"),
        ("SharedEncoderSACPolicy", SharedEncoderSACPolicy, {}, "≤ 1.15×"),
        ("stock, aux_on_actor=True", "CnnPolicy", {"aux_on_actor": True}, "two aux losses"),
    ):
        plain = build(policy, None, device, args.batch_size)
        aux = build(policy, args.method, device, args.batch_size, **options)
        t = median_update_times(
            {"plain": plain, "aux": aux}, args.rounds, args.gradient_steps, args.batch_size, device
        )
        p, a = t["plain"], t["aux"]
        print(
            f"  {label:26s} plain {p * 1e3:8.2f} ms   +{args.method} {a * 1e3:8.2f} ms   ratio {a / p:.2f}×  ({target})"
        )


if __name__ == "__main__":
    main()
