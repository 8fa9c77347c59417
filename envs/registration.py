"""rlrep's gymnasium ids (defined in the core, :mod:`rlrep.gym_ids`, so that ``import rlrep``
registers them without importing :mod:`rlrep.envs`)."""

from rlrep.gym_ids import DMC_TASKS, POINT_MASS_ID, dmc_id, register_envs

__all__ = ["DMC_TASKS", "POINT_MASS_ID", "dmc_id", "register_envs"]
