"""One name space of tasks for the runners: every DMC task, and the synthetic point-mass task."""

from __future__ import annotations

import gymnasium as gym

from rlrep.envs.dmc import DMC_TASKS, default_action_repeat, make_dmc
from rlrep.envs.point_mass import PointMassPixels

__all__ = ["SYNTHETIC_TASK", "TASKS", "action_repeat_of", "make_env"]

#: The synthetic task (numpy-drawn, no MuJoCo), for smoke runs and tests.
SYNTHETIC_TASK = "point_mass_pixels"
#: Every task name :func:`make_env` accepts.
TASKS: tuple[str, ...] = (*DMC_TASKS, SYNTHETIC_TASK)


def make_env(
    task: str,
    image_size: int = 100,
    frame_stack: int = 3,
    action_repeat: int | None = None,
    seed: int | None = None,
    distraction: str | None = None,
) -> gym.Env:
    """A seeded pixel env for ``task``: a DMC task (:func:`~rlrep.envs.make_dmc`) or
    ``point_mass_pixels`` (:class:`~rlrep.envs.PointMassPixels`).

    :param task: a name in :data:`TASKS`, e.g. ``"cartpole-swingup"``.
    :param image_size: side of the rendered frames.
    :param frame_stack: frames per observation, ``(3·frame_stack, H, W)``.
    :param action_repeat: DMC only; ``None`` = CURL's per-task value. The synthetic task has none.
    :param seed: seed of the initial states.
    :param distraction: DMC only: a visual distraction of :func:`~rlrep.envs.make_dmc`
        (e.g. ``"color_hard"``); ``None`` for the clean task.
    :raises ValueError: unknown task, or an action repeat or a distraction for the synthetic task.
    """
    if task != SYNTHETIC_TASK:
        return make_dmc(
            task, image_size=image_size, frame_stack=frame_stack, action_repeat=action_repeat,
            seed=seed, distraction=distraction,
        )  # fmt: skip
    if distraction is not None:
        raise ValueError(
            f"{SYNTHETIC_TASK} has no visual distractions (got distraction={distraction!r}); "
            "they apply to DMC tasks, e.g. cartpole-swingup"
        )
    if action_repeat not in (None, 1):
        raise ValueError(
            f"{SYNTHETIC_TASK} has no action repeat (one step per action), got action_repeat="
            f"{action_repeat!r}; drop the option or pick a DMC task"
        )
    env = PointMassPixels(image_size=image_size, frame_stack=frame_stack)
    env.reset(seed=seed)
    return env


def action_repeat_of(task: str, action_repeat: int | None = None) -> int:
    """Environment frames per agent step of :func:`make_env`'s env for these arguments: 1 for the
    synthetic task, else ``action_repeat`` or CURL's per-task value."""
    if task == SYNTHETIC_TASK:
        return 1
    return default_action_repeat(task) if action_repeat is None else action_repeat
