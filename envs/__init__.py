"""DeepMind Control tasks from pixels as gymnasium environments, and a synthetic pixel task.

``rlrep.envs.make_dmc("cartpole-swingup", image_size=100)`` (``make_env`` also takes the
synthetic task's name) or, registered on import,
``gymnasium.make("dmc/cartpole-swingup-v0", image_size=100)`` for every task in
:data:`DMC_TASKS`; ``gymnasium.make("rlrep/PointMassPixels-v0")`` for the synthetic task.
Nothing here imports MuJoCo until an environment is made.
"""

import gymnasium as gym

from rlrep.envs.dmc import CURL_TASKS, DMC_TASKS, DMCEnv, default_action_repeat, make_dmc
from rlrep.envs.point_mass import PointMassPixels
from rlrep.envs.rendering import RenderingUnavailableError, ensure_rendering_backend
from rlrep.envs.tasks import SYNTHETIC_TASK, TASKS, action_repeat_of, make_env

__all__ = [
    "CURL_TASKS",
    "DMC_TASKS",
    "SYNTHETIC_TASK",
    "TASKS",
    "DMCEnv",
    "PointMassPixels",
    "RenderingUnavailableError",
    "action_repeat_of",
    "default_action_repeat",
    "ensure_rendering_backend",
    "make_dmc",
    "make_env",
]

for _task in DMC_TASKS:
    if f"dmc/{_task}-v0" not in gym.registry:
        gym.register(
            id=f"dmc/{_task}-v0", entry_point="rlrep.envs.dmc:DMCEnv", kwargs={"task": _task}
        )
if "rlrep/PointMassPixels-v0" not in gym.registry:
    gym.register(id="rlrep/PointMassPixels-v0", entry_point="rlrep.envs.point_mass:PointMassPixels")
