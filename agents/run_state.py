"""Everything a training run needs to continue bit for bit, in formats that run no code when read.

A checkpoint of an SB3 model taken between two agent steps (after the step's transition was
stored and its update done) holds:

- ``weights.pt`` — the state dicts SB3 saves (policy, optimisers) and its tensor variables
  (e.g. SAC's ``log_ent_coef``), read back with ``torch.load(weights_only=True)``;
- ``replay.npz`` — the filled part of the replay buffer (:meth:`FrameStackReplayBuffer.get_state`);
- ``arrays.npz`` + the ``"run"`` entry of ``state.json`` — counters, episode statistics, the last
  observation, every random generator (Python, NumPy, torch, CUDA, the action space's) and the
  training envs' state, mid-episode included (``get_state()`` of the env, Monitor's counters).

JSON holds the tree; arrays are stored in the npz and referenced by name, and both are read with
pickling disabled. SB3's ``model.zip`` (cloudpickle) is derived from them on request
(:func:`rlrep.agents.export.export_sb3`) for sharing and ``SAC.load``; resuming never reads it.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

__all__ = ["ResumeError", "env_state", "load_run_state", "save_run_state", "set_env_state"]

WEIGHTS, ARRAYS, REPLAY = "weights.pt", "arrays.npz", "replay.npz"
_MONITOR_FIELDS = (
    "rewards",
    "needs_reset",
    "total_steps",
    "episode_returns",
    "episode_lengths",
    "episode_times",
)


class ResumeError(ValueError):
    """A checkpoint cannot be restored into this model (other shapes, missing files)."""


# --- a JSON tree with its arrays kept apart ---------------------------------------------------
def _split(tree: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    """Replace every array (numpy or torch) in ``tree`` by ``{"array": name}``; fill ``arrays``."""
    if isinstance(tree, torch.Tensor):
        tree = tree.detach().cpu().numpy()
    if isinstance(tree, np.ndarray):
        arrays[path] = tree
        return {"array": path}
    if isinstance(tree, dict):
        return {k: _split(v, arrays, f"{path}/{k}") for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split(v, arrays, f"{path}/{i}") for i, v in enumerate(tree)]
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _join(tree: Any, arrays: Any) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {"array"}:
            return arrays[tree["array"]]
        return {k: _join(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join(v, arrays) for v in tree]
    return tree


# --- what is captured -------------------------------------------------------------------------
def _vec_env(model: BaseAlgorithm) -> Any:
    venv = model.get_env()
    while hasattr(venv, "venv"):  # VecEnv wrappers
        venv = venv.venv
    if not isinstance(venv, (DummyVecEnv, SubprocVecEnv)):
        raise ResumeError(
            "checkpoints need the training envs in-process (DummyVecEnv) or in rlrep's env "
            f"worker (rlrep.agents.overlap.env_worker), got {type(venv).__name__}"
        )
    return venv


def _env_states(model: BaseAlgorithm) -> list[dict[str, Any]]:
    venv = _vec_env(model)
    if isinstance(venv, SubprocVecEnv):  # each worker's RunEnv answers for its env
        return venv.env_method("run_state")
    return [env_state(env) for env in venv.envs]


def _set_env_states(model: BaseAlgorithm, states: list[dict[str, Any]]) -> None:
    venv = _vec_env(model)
    if len(states) != venv.num_envs:
        raise ResumeError(f"the checkpoint holds {len(states)} envs, this run has {venv.num_envs}")
    for i, state in enumerate(states):
        if isinstance(venv, SubprocVecEnv):
            venv.env_method("set_run_state", state, indices=[i])
        else:
            set_env_state(venv.envs[i], state)


def env_state(env: Any) -> dict[str, Any]:
    state: dict[str, Any] = {}
    while True:
        if isinstance(env, Monitor):
            state["monitor"] = {f: getattr(env, f) for f in _MONITOR_FIELDS}
        if not hasattr(env, "env"):
            break
        env = env.env
    if not hasattr(env, "get_state"):
        raise ResumeError(
            f"{type(env).__name__} has no get_state()/set_state(), so a run on it cannot be "
            "checkpointed mid-episode; rlrep's envs (make_dmc, PointMassPixels) have them"
        )
    state["env"] = env.get_state()
    return state


def set_env_state(env: Any, state: dict[str, Any]) -> None:
    while True:
        if isinstance(env, Monitor):
            for f in _MONITOR_FIELDS:
                value = state["monitor"][f]
                setattr(env, f, list(value) if isinstance(value, list) else value)
        if not hasattr(env, "env"):
            break
        env = env.env
    env.set_state(state["env"])


def _rng_state(model: BaseAlgorithm) -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys, int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "action_space": model.action_space.np_random.bit_generator.state,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8))
    model.action_space.np_random.bit_generator.state = state["action_space"]
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.as_tensor(s) for s in state["cuda"]])


def save_run_state(model: BaseAlgorithm, folder: Path) -> dict[str, Any]:
    """Write ``weights.pt``, ``arrays.npz`` and (off-policy) ``replay.npz`` into ``folder``;
    return the JSON tree that goes into ``state.json`` under ``"run"``."""
    variables = model._get_torch_save_params()[1]
    torch.save(
        {
            "state_dicts": model.get_parameters(),
            "variables": {name: _attr(model, name).detach().cpu() for name in variables},
        },
        folder / WEIGHTS,
    )
    last_obs = model._last_obs
    tree = {
        "num_timesteps": model.num_timesteps,
        "n_updates": getattr(model, "_n_updates", 0),
        "episode_num": model._episode_num,
        "ep_info_buffer": list(model.ep_info_buffer or []),
        "ep_success_buffer": list(model.ep_success_buffer or []),
        "last_obs": last_obs,
        "last_episode_starts": model._last_episode_starts,
        "rng": _rng_state(model),
        "envs": _env_states(model),
    }
    arrays: dict[str, np.ndarray] = {}
    tree = _split(tree, arrays, "run")
    np.savez(folder / ARRAYS, **arrays)
    buffer = getattr(model, "replay_buffer", None)
    if buffer is not None:
        if not hasattr(buffer, "get_state"):
            raise ResumeError(
                f"{type(buffer).__name__} cannot be checkpointed without pickle; use "
                "rlrep.sb3.FrameStackReplayBuffer"
            )
        np.savez(folder / REPLAY, **buffer.get_state())
    return tree


def load_run_state(model: BaseAlgorithm, folder: Path, tree: dict[str, Any]) -> None:
    """Restore what :func:`save_run_state` wrote into a freshly built ``model`` of the same
    configuration (learning rates stay those the model was built with).

    :raises ResumeError: the set does not fit this agent, or a file of it is missing, truncated
        or not what it should be; the message names the folder and what to do.
    """
    try:
        _load_run_state(model, folder, tree)
    except ResumeError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, TypeError, AttributeError,
            RuntimeError, EOFError, pickle.UnpicklingError) as err:  # fmt: skip
        raise ResumeError(
            f"the checkpoint set {folder} is damaged or not this agent's "
            f"({type(err).__name__}: {err}); nothing was changed. Restore the folder from a "
            "copy, or start a new run in another --out"
        ) from None


def _load_run_state(model: BaseAlgorithm, folder: Path, tree: dict[str, Any]) -> None:
    device = get_device(model.device)
    try:
        weights = torch.load(folder / WEIGHTS, map_location=device, weights_only=True)
        lrs = {
            name: [g["lr"] for g in obj.param_groups]
            for name in weights["state_dicts"]
            if isinstance(obj := _attr(model, name), torch.optim.Optimizer)
        }
        model.set_parameters(weights["state_dicts"], exact_match=True, device=device)
        for name, lr in lrs.items():  # a changed lr (allowed on resume) applies from now on
            for group, value in zip(_attr(model, name).param_groups, lr, strict=True):
                group["lr"] = value
        with torch.no_grad():
            for name, value in weights["variables"].items():
                _attr(model, name).copy_(value)
    except (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as err:
        raise ResumeError(
            f"the checkpoint in {folder} does not fit this agent ({err}); resume with the "
            "run's own hyperparameters"
        ) from None
    with np.load(folder / ARRAYS, allow_pickle=False) as arrays:
        run = _join(tree, arrays)
    model.num_timesteps = run["num_timesteps"]
    if hasattr(model, "_n_updates"):
        model._n_updates = run["n_updates"]
    model._episode_num = run["episode_num"]
    model.ep_info_buffer = deque(run["ep_info_buffer"], maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(run["ep_success_buffer"], maxlen=model._stats_window_size)
    model._last_obs = run["last_obs"]
    model._last_episode_starts = run["last_episode_starts"]
    _set_env_states(model, run["envs"])
    buffer = getattr(model, "replay_buffer", None)
    if buffer is not None:
        with np.load(folder / REPLAY, allow_pickle=False) as replay:
            buffer.set_state(dict(replay))
    _set_rng_state(model, run["rng"])


def _attr(model: BaseAlgorithm, dotted: str) -> Any:
    obj: Any = model
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
