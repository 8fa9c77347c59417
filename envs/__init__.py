"""DeepMind Control tasks from pixels as gymnasium environments, and a synthetic pixel task.

``envs.make_dmc("cartpole-swingup", image_size=100)`` or, registered on import,
``gymnasium.make("dmc/cartpole-swingup-v0", image_size=100)`` for every task in
:data:`DMC_TASKS`; ``gymnasium.make("rlrep/PointMassPixels-v0")`` for the synthetic task.
Nothing here imports MuJoCo until an environment is made.
"""

import gymnasium as gym

from envs.dmc import CURL_TASKS, DMC_TASKS, DMCEnv, default_action_repeat, make_dmc
from envs.point_mass import PointMassPixels
from envs.rendering import RenderingUnavailableError, ensure_rendering_backend

__all__ = [
    "CURL_TASKS",
    "DMC_TASKS",
    "DMCEnv",
    "PointMassPixels",
    "RenderingUnavailableError",
    "default_action_repeat",
    "ensure_rendering_backend",
    "make_dmc",
]

for _task in DMC_TASKS:
    if f"dmc/{_task}-v0" not in gym.registry:
        gym.register(id=f"dmc/{_task}-v0", entry_point="envs.dmc:DMCEnv", kwargs={"task": _task})
if "rlrep/PointMassPixels-v0" not in gym.registry:
    gym.register(id="rlrep/PointMassPixels-v0", entry_point="envs.point_mass:PointMassPixels")
