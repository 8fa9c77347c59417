"""``rlrep train``: one agent on one task, counted in environment frames as the papers count them.

Evaluates every ``eval_every`` frames (deterministic mean action, center crop, ``eval_episodes``
episodes on a separately seeded env), logs to ``eval.csv`` and SB3's csv + tensorboard logs under
``out``, and checkpoints model, replay buffer and progress atomically at each evaluation, so
``--resume`` continues an interrupted run where its last checkpoint stands.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

__all__ = ["AGENTS", "parse_frames", "train"]

AGENTS = ("curl-sac", "ppo-aux")
SYNTHETIC = "point_mass_pixels"  # the synthetic task (no MuJoCo), for smoke runs and tests


def parse_frames(text: str | int) -> int:
    """``"100k"`` → 100000, ``"1.5M"`` → 1500000, ``"2000"`` → 2000."""
    if isinstance(text, int):
        return text
    t = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale > 1 else t) * scale
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a number of frames; e.g. 100k, 500000, 1M"
        ) from None
    return int(value)


def _atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` then rename over ``path``: a crash leaves the old file intact."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def make_env(task: str, action_repeat: int, seed: int, image_size: int = 100):
    """A pixel env for ``task`` (a DMC task or ``point_mass_pixels``), seeded."""
    import envs

    if task == SYNTHETIC:
        env = envs.PointMassPixels(image_size=image_size)
        env.reset(seed=seed)
        return env
    return envs.make_dmc(
        task, image_size=image_size, frame_stack=3, action_repeat=action_repeat, seed=seed
    )


def build_agent(
    agent: str, task: str, seed: int, device: str, overrides: dict[str, Any]
) -> tuple[BaseAlgorithm, int]:
    """The model and its action repeat."""
    if agent == "curl-sac":
        from agents.curl_sac import CURLSAC
        from agents.presets import curl_sac_config

        cfg = curl_sac_config(task, **overrides)
        repeat = 1 if task == SYNTHETIC else cfg.action_repeat
        env = make_env(task, repeat, seed, cfg.image_size)
        storage = "cuda" if device != "cpu" and _cuda() else "cpu"
        return CURLSAC(env, cfg, seed=seed, device=device, storage_device=storage), repeat
    if agent == "ppo-aux":
        from agents.ppo_aux import make_ppo_aux

        model = make_ppo_aux(task, seed=seed, device=device, **overrides)
        return model, model.action_repeat
    raise ValueError(f"unknown agent {agent!r}; valid: {', '.join(AGENTS)}")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class _Progress(BaseCallback):
    """Evaluate, log and checkpoint every ``eval_every`` frames; a tqdm bar over frames."""

    def __init__(self, run: _Run) -> None:
        super().__init__()
        self.run = run

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        r = self.run
        self.bar = tqdm(
            total=r.frames,
            initial=r.frames_done(self.num_timesteps),
            unit="frame",
            disable=not r.progress,
        )

    def _on_step(self) -> bool:
        r = self.run
        frames = r.frames_done(self.num_timesteps)
        self.bar.update(frames - self.bar.n)
        if frames >= r.next_eval:
            r.evaluate_and_checkpoint(self.model, frames)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class _Run:
    def __init__(
        self,
        out: Path,
        frames: int,
        repeat: int,
        eval_every: int,
        eval_episodes: int,
        progress: bool,
        eval_env,
        seed: int,
    ):
        self.out, self.frames, self.repeat = out, frames, repeat
        self.eval_every, self.eval_episodes, self.progress = eval_every, eval_episodes, progress
        self.eval_env, self.seed = eval_env, seed
        self.state_path = out / "state.json"
        state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        self.history: list[dict[str, float]] = state.get("history", [])
        self.next_eval = state.get("next_eval", eval_every)
        self.start = time.time() - state.get("wall_time", 0.0)

    def frames_done(self, agent_steps: int) -> int:
        return agent_steps * self.repeat

    def evaluate_and_checkpoint(self, model: BaseAlgorithm, frames: int) -> dict[str, float]:
        returns, _ = evaluate_policy(
            model,
            self.eval_env,
            n_eval_episodes=self.eval_episodes,
            deterministic=True,
            return_episode_rewards=True,
            warn=False,
        )
        row = {
            "frames": frames,
            "agent_steps": frames // self.repeat,
            "mean_return": float(np.mean(returns)),
            "std_return": float(np.std(returns)),
            "episodes": len(returns),
            "wall_time": round(time.time() - self.start, 1),
        }
        self.history.append(row)
        model.logger.record("eval/mean_return", row["mean_return"])
        model.logger.record("eval/frames", frames)
        model.logger.dump(model.num_timesteps)
        self.next_eval = (frames // self.eval_every + 1) * self.eval_every
        self.checkpoint(model)
        if not self.progress:
            print(
                f"frames {frames:>8d}  return {row['mean_return']:8.1f} ± {row['std_return']:.1f}",
                flush=True,
            )
        return row

    def checkpoint(self, model: BaseAlgorithm) -> None:
        # Each file is replaced whole (write, then rename), so an interrupted checkpoint leaves
        # the previous one readable.
        _atomic_write(self.out / "model.zip", model.save)
        if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
            _atomic_write(self.out / "replay_buffer.pkl", model.save_replay_buffer)
        _atomic_write(self.out / "eval.csv", self._write_csv)
        state = {
            "history": self.history,
            "next_eval": self.next_eval,
            "wall_time": time.time() - self.start,
            "num_timesteps": model.num_timesteps,
        }
        _atomic_write(self.state_path, lambda p: p.write_text(json.dumps(state, indent=1)))

    def _write_csv(self, path: Path) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(
                f,
                fieldnames=[
                    "frames",
                    "agent_steps",
                    "mean_return",
                    "std_return",
                    "episodes",
                    "wall_time",
                ],
            )
            writer.writeheader()
            writer.writerows(self.history)


def train(
    task: str,
    agent: str = "curl-sac",
    frames: int | str = 100_000,
    seed: int = 1,
    out: str | Path = "runs/run",
    eval_every: int | str = 10_000,
    eval_episodes: int = 10,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    **overrides: Any,
) -> list[dict[str, float]]:
    """Train ``agent`` on ``task`` for ``frames`` environment frames (action repeat included).

    :param task: a DMC task (``cartpole-swingup``) or ``point_mass_pixels``.
    :param overrides: agent hyperparameters (e.g. ``batch_size=128`` for CURL-SAC).
    :return: the evaluation history (one row per evaluation).
    :raises FileExistsError: ``out`` holds a run and ``resume`` is False.
    """
    frames, eval_every = parse_frames(frames), parse_frames(eval_every)
    if frames <= 0 or eval_every <= 0:
        raise ValueError(f"frames and eval_every must be positive, got {frames} and {eval_every}")
    out = Path(out)
    if (out / "model.zip").exists() and not resume:
        raise FileExistsError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    model, repeat = build_agent(agent, task, seed, device, overrides)
    if resume and (out / "model.zip").exists():
        env = model.get_env()
        model = type(model).load(out / "model.zip", env=env, device=device)
        if (out / "replay_buffer.pkl").exists():
            model.load_replay_buffer(out / "replay_buffer.pkl")
    model.set_logger(configure(str(out / "logs"), ["csv", "tensorboard"]))
    eval_env = make_env(
        task, repeat, seed + 10_000, getattr(getattr(model, "config", None), "image_size", 100)
    )
    run = _Run(out, frames, repeat, eval_every, eval_episodes, progress, eval_env, seed)
    (out / "config.json").write_text(
        json.dumps(
            {
                "task": task,
                "agent": agent,
                "frames": frames,
                "seed": seed,
                "action_repeat": repeat,
                "overrides": overrides,
            },
            indent=1,
        )
    )
    remaining = frames // repeat - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=_Progress(run), reset_num_timesteps=False, log_interval=10)
    if not run.history or run.history[-1]["frames"] < frames:
        run.evaluate_and_checkpoint(model, run.frames_done(model.num_timesteps))
    final = run.history[-1]
    print(
        f"final evaluation after {final['frames']} frames: return {final['mean_return']:.1f} ± {final['std_return']:.1f} over {final['episodes']} episodes"
    )
    return run.history
