"""``rlrep train``: one agent on one task, counted in environment frames as the papers count them.

Every ``eval_every`` frames, between two agent steps (after the step's transition is stored and
its update done): ``eval_episodes`` evaluation episodes (deterministic mean action, center crop)
on an env reseeded identically at every evaluation, a row in ``eval.csv``, and a checkpoint of
everything the run needs to continue bit for bit (:mod:`rlrep.agents.run_state`), written as one set
(:mod:`rlrep.agents.run_folder`). ``--resume`` continues from it to the same evaluation returns as the
uninterrupted run; a changed configuration is refused unless explicitly allowed, and recorded.
When a session ends, a uniform random policy's return on the same evaluation episodes goes to
``random_policy.json`` (the reference line of ``rlrep plot``), and a line names the outputs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from rlrep.agents.config_checks import whole_rollouts
from rlrep.agents.evaluation import Evaluation
from rlrep.agents.run_folder import RunFolder
from rlrep.agents.run_state import load_run_state
from rlrep.agents.train_run import Progress as _Progress  # _Progress, _Run: tests patch them
from rlrep.agents.train_run import Run as _Run
from rlrep.agents.train_run import non_finite as _non_finite
from rlrep.probes import resolve_device
from rlrep.runs import (
    RunFolderError,
    check_changes,
    claim_run_folder,
    config_changes,
    record_changes,
    resume_decision,
    run_lock,
    write_marker,
)

__all__ = ["AGENTS", "check_task", "parse_frames", "train"]

AGENTS = ("curl-sac", "drq", "drqv2", "atc-sac", "spr-sac", "ppo-aux")


def parse_frames(text: str | int) -> int:
    """``"100k"`` → 100000, ``"1.5M"`` → 1500000, ``"2000"`` → 2000."""
    if isinstance(text, int):
        return text
    t = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale > 1 else t) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise ValueError(
            f"cannot read {text!r} as a whole, finite number of frames; e.g. 100k, 500000, 1M"
        )
    return int(value)


def build_agent(
    agent: str, task: str, seed: int, device: str, overrides: dict[str, Any], overlap: bool = False
) -> tuple[BaseAlgorithm, dict[str, Any]]:
    """The model, and the :func:`rlrep.envs.make_env` arguments (all but the seed) of its env.

    :param overlap: the training env steps in a worker process while the learner updates
        (:mod:`rlrep.agents.overlap`); off-policy agents only.
    """
    from rlrep.agents.overlap import RunEnv, env_worker
    from rlrep.envs import make_env

    if agent in ("curl-sac", "drq", "drqv2", "atc-sac", "spr-sac"):
        from rlrep.agents.atc_sac import ATCSAC
        from rlrep.agents.curl_sac import CURLSAC
        from rlrep.agents.drq import DrQ
        from rlrep.agents.drqv2 import DrQV2
        from rlrep.agents.presets import config_for, curl_sac_config
        from rlrep.agents.spr_sac import SPRSAC

        agent_class = {
            "curl-sac": CURLSAC, "drq": DrQ, "drqv2": DrQV2, "atc-sac": ATCSAC, "spr-sac": SPRSAC
        }[agent]  # fmt: skip
        cfg = (
            curl_sac_config(task, **overrides)
            if agent == "curl-sac"
            else config_for(agent, task, **overrides)
        )
        env_kwargs = {
            "image_size": cfg.image_size,
            "frame_stack": cfg.frame_stack,
            "action_repeat": cfg.action_repeat,
        }
        if overlap:
            env = env_worker(lambda: make_env(task, seed=seed, **env_kwargs))
        else:
            env = RunEnv(make_env(task, seed=seed, **env_kwargs))
        storage = "cuda" if device != "cpu" and _cuda() else "cpu"
        model = agent_class(
            env, cfg, seed=seed, device=device, storage_device=storage, overlap=overlap
        )
        return model, env_kwargs
    if overlap:
        raise ValueError(
            f"overlap=True steps the env beside off-policy updates; {agent} collects whole "
            "rollouts before it updates: run it without --overlap"
        )
    if agent == "ppo-aux":
        from rlrep.agents.ppo_aux import make_ppo_aux

        model = make_ppo_aux(task, seed=seed, device=device, **overrides)
        return model, model.env_kwargs
    raise ValueError(f"unknown agent {agent!r}; valid: {', '.join(AGENTS)}")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` spread out as ``overrides.KEY``, so a change names the hyperparameter."""
    flat = {k: v for k, v in config.items() if k not in ("overrides", "changes")}
    return flat | {f"overrides.{k}": v for k, v in config["overrides"].items()}


def check_task(task: str) -> None:
    """``ValueError`` listing every valid name (the DMC tasks and the synthetic one) and the
    closest ones, for a task :func:`rlrep.envs.make_env` does not know.

    :param task: the ``--env`` value.
    """
    import difflib

    from rlrep.envs import SYNTHETIC_TASK, TASKS

    if task in TASKS:
        return
    close = difflib.get_close_matches(str(task), TASKS, n=3)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    dmc = [t for t in TASKS if t != SYNTHETIC_TASK]
    raise ValueError(
        f"unknown task {task!r}{hint}; --env takes a DMC task 'domain-task', one of "
        f"{', '.join(dmc)}, or {SYNTHETIC_TASK} (synthetic, no MuJoCo: for smoke runs)"
    )


def _check_distractions(task: str, names: tuple[str, ...] | list[str]) -> None:
    """``ValueError`` before anything runs: an unknown or repeated name, or any for a task
    without distractions."""
    from rlrep.envs import DISTRACTIONS, SYNTHETIC_TASK

    if isinstance(names, str):
        raise ValueError(f"eval_distractions takes a list of names, got the string {names!r}")
    unknown = [n for n in names if n not in DISTRACTIONS]
    if unknown:
        raise ValueError(f"unknown distractions {unknown}; valid: {', '.join(DISTRACTIONS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"eval_distractions repeats a name: {list(names)}")
    if names and task == SYNTHETIC_TASK:
        raise ValueError(
            f"{SYNTHETIC_TASK} has no distracted variants; evaluate them on a DMC task, e.g. "
            "cartpole-swingup"
        )


def train(
    task: str,
    agent: str = "curl-sac",
    frames: int | str = 100_000,
    seed: int = 1,
    out: str | Path = "runs/run",
    eval_every: int | str = 10_000,
    eval_episodes: int = 10,
    eval_distractions: tuple[str, ...] | list[str] = (),
    resume: bool = False,
    resume_if_exists: bool = False,
    allow_config_change: bool = False,
    device: str = "auto",
    progress: bool = True,
    overlap: bool = False,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Train ``agent`` on ``task`` for ``frames`` environment frames (action repeat included).

    :param task: a DMC task (``cartpole-swingup``) or ``point_mass_pixels``.
    :param eval_distractions: distracted variants of the task (:data:`rlrep.envs.DISTRACTIONS`,
        e.g. ``("color_hard", "video_easy")``) evaluated at every evaluation next to the clean
        env, on the same seeded episodes (``eval.csv`` columns ``mean_return_<variant>``,
        ``std_return_<variant>``). DMC tasks only.
    :param resume: continue the run in ``out`` (an error if it holds no checkpoint, unless
        ``resume_if_exists``, which then starts a new run).
    :param allow_config_change: on resume, apply hyperparameters or evaluation settings that
        differ from the stored run (recorded in ``config.json`` with the step they took effect);
        without it a difference is an error. ``frames`` may always grow; task, agent and seed
        never change.
    :param overlap: step and render the training env in a worker process while the learner
        updates (:mod:`rlrep.agents.overlap`; the official CURL/DrQ-v2 loops' order, one update
        per step as without it, deterministic for a seed); off-policy agents only. Part of the
        run's configuration, as the hyperparameters are (a resume passes the same value).
    :param overrides: agent hyperparameters (e.g. ``batch_size=128`` for CURL-SAC).
    :return: the evaluation history (one row per evaluation).
    :raises rlrep.runs.RunFolderError: ``out`` is busy, holds another run, or the config differs.
    :raises FloatingPointError: a loss or parameter became non-finite (nothing is saved after it).
    """
    frames, eval_every = parse_frames(frames), parse_frames(eval_every)
    if frames <= 0 or eval_every <= 0:
        raise ValueError(f"frames and eval_every must be positive, got {frames} and {eval_every}")
    if isinstance(eval_episodes, bool) or not isinstance(eval_episodes, int) or eval_episodes < 1:
        raise ValueError(f"eval_episodes must be a positive integer, got {eval_episodes!r}")
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; valid: {', '.join(AGENTS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an integer in [0, 2**31), got {seed!r}")
    resolve_device(device)  # a device this machine has (SB3 would fall back to the CPU)
    check_task(task)
    _check_distractions(task, eval_distractions)
    folder = RunFolder(out)
    config = {
        "task": task,
        "agent": agent,
        "seed": seed,
        "frames": frames,
        "eval_every": eval_every,
        "eval_episodes": eval_episodes,
        "eval_distractions": list(eval_distractions),
        "overlap": overlap,
        "overrides": overrides,
    }
    with run_lock(folder.out):
        ours = claim_run_folder(folder.out, "train", RunFolder.NAMES)  # refuses foreign folders
        checkpoint = folder.latest() if ours else None
        resume = resume or resume_if_exists
        resuming = resume_decision(
            checkpoint is not None,
            ours and folder.holds_run(),
            resume,
            resume_if_exists,
            folder.out,
        )
        changes: dict[str, list[Any]] = {}
        if resuming:
            # Runs stored before eval_distractions or overlap existed used none and off.
            stored = {"eval_distractions": [], "overlap": False, **folder.read_config()}
            for key in ("task", "agent", "seed"):
                if stored[key] != config[key]:
                    raise RunFolderError(
                        f"--resume: {folder.out} is a run of {key} {stored[key]!r}, not "
                        f"{config[key]!r}; {key} cannot change within a run (choose another --out)"
                    )
            # frames is the end point, not part of the run's identity: it may grow.
            changes = config_changes(_flat({**stored, "frames": frames}), _flat(config))
            done = folder.read_state(checkpoint)["frames"]
            if frames < done:
                raise RunFolderError(
                    f"--resume: {folder.out} is at {done} frames, past --steps {frames}; pass "
                    f"--steps {done} or more to continue it (its files are left as they are)"
                )
            check_changes(changes, allow_config_change, "--allow-config-change")
        from rlrep.envs import action_repeat_of, make_env

        model, env_kwargs = build_agent(agent, task, seed, device, overrides, overlap)
        if not resuming:
            if ours:
                folder.clear()  # what a run of ours stopped before its first checkpoint left
            write_marker(folder.out, "train")
        repeat = action_repeat_of(task, env_kwargs["action_repeat"])
        frames = config["frames"] = whole_rollouts(model, frames, repeat, agent)
        evaluation = Evaluation(
            lambda d: make_env(task, seed=seed + 10_000, distraction=d, **env_kwargs),
            config["eval_distractions"],
            seed + 10_000,
            eval_episodes,
        )
        run = _Run(folder, frames, repeat, eval_every, evaluation, progress)
        if resuming:
            state = folder.read_state(checkpoint)
            load_run_state(model, checkpoint, state["run"])
            run.restore(state, checkpoint)
            folder.write_eval_csv(run.history)  # rows after the checkpoint are redone
            if "logs" in state:  # (checkpoints written before logs were part of the set lack it)
                folder.rewind_logs(state["logs"])
            if changes:
                at = {"agent_steps": model.num_timesteps, "frames": state["frames"]}
                stored = folder.read_config()
                folder.write_config(record_changes({**stored, **config}, changes, at))
            elif frames != stored["frames"]:
                folder.write_config({**folder.read_config(), "frames": frames})
        else:
            folder.write_config(config)
        model.set_logger(folder.logger())
        remaining = frames // repeat - model.num_timesteps
        try:
            if remaining > 0:
                model.learn(
                    remaining, callback=_Progress(run), reset_num_timesteps=False, log_interval=10
                )
            if not run.history or run.history[-1]["agent_steps"] < model.num_timesteps:
                run.evaluate_and_checkpoint(model)
        except ValueError as error:
            # Weights that blew up within an update make torch's distributions refuse their
            # non-finite outputs there, before the check between steps: the same message.
            if "invalid values" not in str(error):
                raise
            problem = _non_finite(model) or "the policy's outputs are not finite"
            raise run.diverged(model, problem) from None
        finally:
            model.get_env().close()  # an env worker's process ends with the session
        final = run.history[-1]
        random_mean, random_std = evaluation.random_policy(model.action_space)
        folder.write_random_policy(random_mean, random_std, eval_episodes, evaluation.seed)
        evaluation.close()
    print(
        f"final evaluation after {final['frames']} frames: return {final['mean_return']:.1f} ± "
        f"{final['std_return']:.1f} over {final['episodes']} episodes (random policy on the "
        f"same episodes: {random_mean:.1f} ± {random_std:.1f})",
        flush=True,
    )
    print(f"time: {run.time_split(overlap)}", flush=True)
    out, checkpoint = folder.out, run.last_checkpoint[0].relative_to(folder.out)
    print(
        f"run folder {out}: eval.csv ({len(run.history)} evaluations), random_policy.json, "
        f"config.json, {checkpoint}, logs/ (progress.csv; tensorboard --logdir {out / 'logs'}); "
        f"plot: rlrep plot {out}",
        flush=True,
    )
    return run.history
