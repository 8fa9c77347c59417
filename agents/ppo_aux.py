"""PPO with an auxiliary representation loss on pixels: SB3's PPO + rlrep.sb3 (preset in
:data:`rlrep.agents.presets.PPO_AUX`)."""

from __future__ import annotations

import math
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from rlrep.agents.presets import PPO_AUX
from rlrep.sb3 import policy_kwargs

__all__ = ["make_ppo_aux"]


def make_ppo_aux(task: str, seed: int = 0, device: str = "auto", **overrides: Any) -> PPO:
    """PPO on ``task`` (DMC or ``point_mass_pixels``) with ``n_envs`` pixel envs and the preset's
    auxiliary method; ``overrides`` replace preset values (``method``, ``aux_weight``, PPO's
    ``n_steps``, ``learning_rate``, …) and the env options ``image_size``, ``frame_stack`` and
    ``action_repeat``; the model's ``env_kwargs`` records those (for :func:`rlrep.envs.make_env`)."""
    from rlrep.envs import make_env

    env_options = ("action_repeat", "image_size", "frame_stack")
    unknown = set(overrides) - set(PPO_AUX) - set(env_options)
    if unknown:
        raise ValueError(
            f"unknown PPO-aux options {sorted(unknown)}; valid: {sorted([*PPO_AUX, *env_options])}"
        )
    for key, value in overrides.items():
        if key == "aux_weight":  # may be 0; rlrep.sb3.policy_kwargs checks it
            continue
        default = PPO_AUX.get(key, 1)  # the env options are ints
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, (int, float)) and not (
            numeric and math.isfinite(value) and value > 0
        ):
            raise ValueError(f"PPO-aux option {key} must be a positive number, got {value!r}")
        if isinstance(default, int) and not isinstance(value, int):  # counts and sizes
            raise ValueError(f"PPO-aux option {key} must be a whole number, got {value!r}")
    cfg = {**PPO_AUX, **overrides}
    env_kwargs = {
        "image_size": cfg.pop("image_size", 100),
        "frame_stack": cfg.pop("frame_stack", 3),
        "action_repeat": cfg.pop("action_repeat", None),  # None: CURL's per-task value
    }
    rep = {k: cfg.pop(k) for k in ("method", "augmentation", "aux_weight", "rl_view")}
    n_envs = cfg.pop("n_envs")
    venv = make_vec_env(lambda: make_env(task, seed=seed, **env_kwargs), n_envs=n_envs, seed=seed)
    model = PPO(
        "CnnPolicy", venv, policy_kwargs=policy_kwargs(**rep), seed=seed, device=device, **cfg
    )
    model.env_kwargs = env_kwargs
    return model
