"""CURL-SAC update time vs the official CURL agent's (MishaLaskin/curl), same data, in one run.

The official code is not part of rlrep: pass a checkout of it (``git clone
https://github.com/MishaLaskin/curl``; measured at 8416d6e). Its ``utils.py`` needs
``scikit-image`` (``pip install scikit-image``); ``gym`` is only named by a wrapper class this
script never uses, so a stand-in module is put in its place when gym is missing.

Both agents get CURL-SAC's walker-walk hyperparameters (hidden 1024, 4 convs × 32, 50-d features,
τ 0.01 / 0.05, actor and targets every 2 steps, CURL every step), 9×100×100 random frames and
6-d actions, 1000 stored transitions. One timed unit is a gradient step *including* sampling
and the three crops: ``CurlSacAgent.update(replay_buffer, L, step)`` (numpy crops in its buffer)
and ``CURLSAC.train`` (crops on the tensors). Rounds alternate between the two (round 0 warms up)
and the ratio of medians is printed per batch size.

Usage: ``python experiments/bench_curl_official.py --reference /path/to/curl [--batch-sizes 128 512]
[--threads N]``
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

from rlrep.agents import CURLSAC, curl_sac_config

sys.path.insert(0, str(Path(__file__).parent))
from bench_aux_update import FramesEnv, resolve_device  # same data as the other benchmarks


class _NoLogger:
    """The official update's ``L``: logging is not what is timed."""

    def log(self, *args, **kwargs) -> None:
        """Drop the value (the reference agent logs through ``L.log(key, value, step)``)."""

    log_histogram = log_param = log_image = log


def import_official(path: Path) -> tuple[types.ModuleType, types.ModuleType]:
    """``curl_sac`` and ``utils`` from the official checkout at ``path``."""
    if not (path / "curl_sac.py").is_file():
        raise SystemExit(f"{path} has no curl_sac.py: pass a checkout of MishaLaskin/curl")
    if importlib.util.find_spec("gym") is None:  # utils.FrameStack subclasses gym.Wrapper
        sys.modules["gym"] = types.SimpleNamespace(Wrapper=object, spaces=None)
    sys.path.insert(0, str(path))
    try:
        return importlib.import_module("curl_sac"), importlib.import_module("utils")
    except ModuleNotFoundError as err:
        raise SystemExit(f"the official code needs {err.name}: pip install scikit-image") from err


def official_agent(curl_sac, utils, cfg, env: FramesEnv, batch_size: int, device: str):
    obs_shape = (9, cfg.crop_size, cfg.crop_size)
    agent = curl_sac.CurlSacAgent(
        obs_shape=obs_shape, action_shape=(6,), device=torch.device(device),
        hidden_dim=cfg.hidden_dim, discount=cfg.gamma, init_temperature=cfg.init_temperature,
        alpha_lr=cfg.alpha_lr, alpha_beta=cfg.alpha_beta1, actor_lr=cfg.lr, critic_lr=cfg.lr,
        critic_tau=cfg.critic_tau, critic_target_update_freq=cfg.target_update_freq,
        actor_update_freq=cfg.actor_update_freq, encoder_feature_dim=cfg.features_dim,
        encoder_lr=cfg.lr, encoder_tau=cfg.encoder_tau, num_layers=cfg.num_layers,
        num_filters=cfg.num_filters, cpc_update_freq=cfg.curl_update_freq, log_interval=10**9,
        detach_encoder=False, curl_latent_dim=128,
    )  # fmt: skip
    buffer = utils.ReplayBuffer(
        obs_shape=(9, cfg.image_size, cfg.image_size), action_shape=(6,), capacity=2000,
        batch_size=batch_size, device=torch.device(device), image_size=cfg.crop_size,
    )  # fmt: skip
    obs, _ = env.reset(seed=0)
    for _ in range(1000):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, float(terminated))
        obs = env.reset()[0] if terminated or truncated else next_obs
    return agent, buffer


def median_times(ours: CURLSAC, agent, buffer, batch_size: int, steps: int, rounds: int, sync):
    """Median seconds per gradient step of each agent, in alternating rounds (round 0 warms up)."""
    logger, times = _NoLogger(), {"official": [], "rlrep": []}
    step = 0
    for round_ in range(rounds + 1):
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            agent.update(buffer, logger, step)
            step += 1
        sync()
        middle = time.perf_counter()
        ours.train(gradient_steps=steps, batch_size=batch_size)
        sync()
        if round_ > 0:
            times["official"].append((middle - start) / steps)
            times["rlrep"].append((time.perf_counter() - middle) / steps)
    return statistics.median(times["official"]), statistics.median(times["rlrep"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="MishaLaskin/curl checkout")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--gradient-steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, name = resolve_device(args.device)
    curl_sac, utils = import_official(args.reference)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    print(f"update time (sampling and crops included), 9×100×100 → 84, on {name}:")
    for batch_size in args.batch_sizes:
        cfg = curl_sac_config(
            "walker-walk", batch_size=batch_size, buffer_size=2000, initial_steps=10**9
        )
        ours = CURLSAC(FramesEnv(), cfg, device=device, seed=0)
        ours.learn(1000)  # random actions fill the buffer
        np.random.seed(0)
        agent, buffer = official_agent(curl_sac, utils, cfg, FramesEnv(), batch_size, device)
        o, r = median_times(ours, agent, buffer, batch_size, args.gradient_steps, args.rounds, sync)
        print(
            f"  batch {batch_size:4d}: official {o * 1e3:8.1f} ms   rlrep CURLSAC {r * 1e3:8.1f} ms"
            f"   ratio rlrep/official {r / o:.2f}×  (target ≤ 0.8×)"
        )


if __name__ == "__main__":
    main()
