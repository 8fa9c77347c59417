"""rlrep's gymnasium ids, registered by ``import rlrep`` with import-path entry points: no
environment code (and no MuJoCo, whose rendering backend is fixed at import) is imported until
an env is made, and rlrep's core imports nothing of :mod:`rlrep.envs`.

gymnasium's ``"module:id"`` form then works in a fresh interpreter (gymnasium 1.x has no plug-in
entry points; ``ale_py`` uses the same convention)::

    gymnasium.make("rlrep:dmc/cartpole-swingup-v0", image_size=84)
    stable_baselines3.common.env_util.make_vec_env("rlrep:dmc/cartpole-swingup-v0", n_envs=4)
"""

from __future__ import annotations

import gymnasium as gym

__all__ = ["DMC_TASKS", "POINT_MASS_ID", "dmc_id", "register_envs"]

#: Every task of dm_control.suite (1.0.x) as "domain-task" (checked against the suite by
#: tests/test_envs_dmc.py).
DMC_TASKS: tuple[str, ...] = tuple(
    f"{domain}-{task}"
    for domain, tasks in (
        ("acrobot", ("swingup", "swingup_sparse")),
        ("ball_in_cup", ("catch",)),
        (
            "cartpole",
            ("balance", "balance_sparse", "swingup", "swingup_sparse", "two_poles", "three_poles"),
        ),
        ("cheetah", ("run",)),
        ("dog", ("stand", "walk", "trot", "run", "fetch")),
        ("finger", ("spin", "turn_easy", "turn_hard")),
        ("fish", ("upright", "swim")),
        ("hopper", ("stand", "hop")),
        ("humanoid", ("stand", "walk", "run", "run_pure_state")),
        ("humanoid_CMU", ("stand", "walk", "run")),
        ("lqr", ("lqr_2_1", "lqr_6_2")),
        ("manipulator", ("bring_ball", "bring_peg", "insert_ball", "insert_peg")),
        ("pendulum", ("swingup",)),
        ("point_mass", ("easy", "hard")),
        ("quadruped", ("walk", "run", "escape", "fetch")),
        ("reacher", ("easy", "hard")),
        ("stacker", ("stack_2", "stack_4")),
        ("swimmer", ("swimmer6", "swimmer15")),
        ("walker", ("stand", "walk", "run")),
    )
    for task in tasks
)

#: The synthetic task's id.
POINT_MASS_ID = "rlrep/PointMassPixels-v0"


def dmc_id(task: str) -> str:
    """The gymnasium id of a DMC task, e.g. ``"cartpole-swingup"`` → ``"dmc/cartpole-swingup-v0"``."""
    return f"dmc/{task}-v0"


def register_envs() -> None:
    """Register ``dmc/<task>-v0`` for every task in :data:`DMC_TASKS` and
    :data:`POINT_MASS_ID` (ids already registered are left as they are)."""
    for task in DMC_TASKS:
        if dmc_id(task) not in gym.registry:
            gym.register(
                id=dmc_id(task), entry_point="rlrep.envs.dmc:DMCEnv", kwargs={"task": task}
            )
    if POINT_MASS_ID not in gym.registry:
        gym.register(id=POINT_MASS_ID, entry_point="rlrep.envs.point_mass:PointMassPixels")
