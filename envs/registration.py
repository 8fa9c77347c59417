"""rlrep's gymnasium ids, registered with import-path entry points (no environment code runs).

``import rlrep`` registers them, so gymnasium's ``"module:id"`` form works in a fresh interpreter
(gymnasium 1.x has no plug-in entry points; ``ale_py`` uses the same convention)::

    gymnasium.make("rlrep:dmc/cartpole-swingup-v0", image_size=84)
    stable_baselines3.common.env_util.make_vec_env("rlrep:dmc/cartpole-swingup-v0", n_envs=4)
"""

from __future__ import annotations

import gymnasium as gym

from rlrep.envs.dmc import DMC_TASKS

__all__ = ["POINT_MASS_ID", "dmc_id", "register_envs"]

#: The synthetic task's id.
POINT_MASS_ID = "rlrep/PointMassPixels-v0"


def dmc_id(task: str) -> str:
    """The gymnasium id of a DMC task, e.g. ``"cartpole-swingup"`` → ``"dmc/cartpole-swingup-v0"``."""
    return f"dmc/{task}-v0"


def register_envs() -> None:
    """Register ``dmc/<task>-v0`` for every task in :data:`~rlrep.envs.DMC_TASKS` and
    :data:`POINT_MASS_ID` (ids already registered are left as they are)."""
    for task in DMC_TASKS:
        if dmc_id(task) not in gym.registry:
            gym.register(
                id=dmc_id(task), entry_point="rlrep.envs.dmc:DMCEnv", kwargs={"task": task}
            )
    if POINT_MASS_ID not in gym.registry:
        gym.register(id=POINT_MASS_ID, entry_point="rlrep.envs.point_mass:PointMassPixels")
