"""DeepMind Control tasks from pixels as gymnasium environments, and a synthetic pixel task.

``rlrep.envs.make_dmc("cartpole-swingup", image_size=100)`` (``make_env`` also takes the
synthetic task's name) or, registered by ``import rlrep``,
``gymnasium.make("rlrep:dmc/cartpole-swingup-v0", image_size=100)`` for every task in
:data:`DMC_TASKS`; ``gymnasium.make("rlrep:rlrep/PointMassPixels-v0")`` for the synthetic task
(``"rlrep:"`` makes gymnasium import rlrep first; see :mod:`rlrep.envs.registration`).
``make_dmc(task, distraction=name)`` adds visual distractions, ``name`` in :data:`DISTRACTIONS`
(:mod:`rlrep.envs.distractions`).
Nothing here imports MuJoCo until an environment is made.
"""

from rlrep.envs.distractions import DISTRACTIONS
from rlrep.envs.dmc import CURL_TASKS, DMC_TASKS, DMCEnv, default_action_repeat, make_dmc
from rlrep.envs.paired import paired_observations
from rlrep.envs.point_mass import PointMassPixels
from rlrep.envs.registration import POINT_MASS_ID, dmc_id, register_envs
from rlrep.envs.rendering import RenderingUnavailableError, ensure_rendering_backend
from rlrep.envs.tasks import SYNTHETIC_TASK, TASKS, action_repeat_of, make_env

__all__ = [
    "CURL_TASKS",
    "DISTRACTIONS",
    "DMC_TASKS",
    "POINT_MASS_ID",
    "SYNTHETIC_TASK",
    "TASKS",
    "DMCEnv",
    "PointMassPixels",
    "RenderingUnavailableError",
    "action_repeat_of",
    "default_action_repeat",
    "dmc_id",
    "ensure_rendering_backend",
    "make_dmc",
    "make_env",
    "paired_observations",
    "register_envs",
]

register_envs()
