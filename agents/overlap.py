"""Collection overlapped with updates: the training env steps and renders in a worker process
while the learner runs the update, so that a step costs about the slower of the two, not their sum.

The order of one agent step is the one the official CURL and DrQ-v2 training loops use
(``train.py`` of MishaLaskin/curl and facebookresearch/drqv2): act with the current weights →
update (the replay buffer holds every transition up to the previous step) → store this step's
transition. SB3 stores first and updates after; the only difference is that an update cannot
sample the transition of the step it overlaps. The number of updates per step (the
update-to-data ratio) is SB3's, and the run is deterministic for a seed: the learner never reads
anything whose value depends on timing — it hands the action to the worker (``step_async``),
updates, then waits for that step's result (``step_wait``), always in this order. With an
in-process :class:`~stable_baselines3.common.vec_env.DummyVecEnv`, ``step_async`` only records
the action and the same loop runs without concurrency, to the same numbers (tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import TrainFrequencyUnit
from stable_baselines3.common.vec_env import SubprocVecEnv

__all__ = ["EnvWorker", "OverlappedLearn", "RunEnv", "env_worker"]


class RunEnv(gym.Wrapper):
    """The training env as the run loop sees it, in whichever process it runs.

    - ``info["env_seconds"]``: wall seconds spent in ``step`` and ``reset`` (physics, rendering,
      frame stacking) since the previous step's info, so a run can say where its time goes;
    - :meth:`run_state` / :meth:`set_run_state`: the env's checkpoint state (its ``get_state``
      and Monitor's counters), callable through ``VecEnv.env_method`` from another process.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._seconds = 0.0

    def reset(self, **kwargs: Any):
        start = time.perf_counter()
        out = self.env.reset(**kwargs)
        self._seconds += time.perf_counter() - start
        return out

    def step(self, action: Any):
        start = time.perf_counter()
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, "env_seconds": self._seconds + time.perf_counter() - start}
        self._seconds = 0.0
        return obs, reward, terminated, truncated, info

    def run_state(self) -> dict[str, Any]:
        """:func:`rlrep.agents.run_state.save_run_state`'s entry for this env."""
        from rlrep.agents.run_state import env_state

        return env_state(self.env)

    def set_run_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`run_state` returned."""
        from rlrep.agents.run_state import set_env_state

        set_env_state(self.env, state)


class EnvWorker(SubprocVecEnv):
    """SB3's ``SubprocVecEnv`` whose dead worker is a clear error in the learner instead of an
    ``EOFError`` from a pipe."""

    def _answer(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (EOFError, ConnectionResetError, BrokenPipeError) as err:
            raise RuntimeError(
                "the env worker process stopped (its traceback is printed above); the run's last "
                "checkpoint is intact: --resume continues from it, or run without --overlap to "
                "step the env in this process"
            ) from err

    def step_wait(self):
        return self._answer(super().step_wait)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any):
        return self._answer(
            lambda: super(EnvWorker, self).env_method(method_name, *args, indices=indices, **kwargs)
        )


def env_worker(make: Callable[[], gym.Env]) -> EnvWorker:
    """One training env stepping in its own process (``forkserver``: the worker does not inherit
    the learner's torch threads), wrapped as SB3 wraps an env it is given (Monitor) and in
    :class:`RunEnv`. As with any multiprocessing, a script that builds one needs the
    ``if __name__ == "__main__":`` guard (the ``rlrep`` command has it).

    :param make: builds the env; called in the worker, so it must be picklable by cloudpickle
        (a closure over plain values is).
    """
    return EnvWorker([lambda: RunEnv(Monitor(make()))], start_method="forkserver")


class OverlappedLearn:
    """A mixin for SB3 off-policy agents: with ``self.overlap`` set, :meth:`learn` runs the
    overlapped loop of this module; without it, SB3's own ``learn``.

    The env must be one env (a worker from :func:`env_worker` to overlap, or in-process) and
    ``train_freq`` counted in steps; every ``train_freq`` steps, the last step's env step runs
    beside ``train(gradient_steps)``, as SB3 would run it after that step.
    """

    #: Set by the constructor's ``overlap`` argument.
    overlap: bool = False
    #: Seconds spent in ``train()`` by the overlapped loop, where the updates run inside a step
    #: (the run's callback times SB3's loop, whose updates run between steps).
    update_seconds: float = 0.0

    def learn(self, total_timesteps: int, callback: Any = None, log_interval: int = 4,
              tb_log_name: str = "run", reset_num_timesteps: bool = True,
              progress_bar: bool = False):  # fmt: skip
        if not self.overlap:
            return super().learn(total_timesteps, callback, log_interval, tb_log_name,
                                 reset_num_timesteps, progress_bar)  # fmt: skip
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        env = self.env
        if env.num_envs != 1 or self.train_freq.unit != TrainFrequencyUnit.STEP:
            raise ValueError(
                "overlapped collection takes one env and train_freq counted in steps, got "
                f"{env.num_envs} envs and train_freq {self.train_freq}"
            )
        callback.on_training_start(locals(), globals())
        while self.num_timesteps < total_timesteps:
            callback.on_rollout_start()  # between two steps: evaluations and checkpoints
            for i in range(self.train_freq.frequency):
                if not self._overlapped_step(env, callback, log_interval, update=(
                    i == self.train_freq.frequency - 1)):  # fmt: skip
                    callback.on_training_end()
                    return self
            callback.on_rollout_end()
        callback.on_training_end()
        return self

    def _overlapped_step(self, env: Any, callback: Any, log_interval: int, update: bool) -> bool:
        """One agent step: act, update while the env steps, store. False: a callback stopped."""
        self.policy.set_training_mode(False)  # acting view (train() switches it back)
        actions, buffer_actions = self._sample_action(self.learning_starts, self.action_noise, 1)
        env.step_async(actions)
        steps = self.num_timesteps + 1
        if update and steps > self.learning_starts and self.gradient_steps > 0:
            self._update_current_progress_remaining(steps, self._total_timesteps)
            start = time.perf_counter()
            self.train(batch_size=self.batch_size, gradient_steps=self.gradient_steps)
            self.update_seconds += time.perf_counter() - start
        new_obs, rewards, dones, infos = env.step_wait()
        self.num_timesteps = steps
        callback.update_locals(locals())
        if not callback.on_step():
            return False
        self._update_info_buffer(infos, dones)
        self._store_transition(self.replay_buffer, buffer_actions, new_obs, rewards, dones, infos)
        self._update_current_progress_remaining(self.num_timesteps, self._total_timesteps)
        self._on_step()
        if dones[0]:
            self._episode_num += 1
            if self.action_noise is not None:
                self.action_noise.reset()
            if log_interval is not None and self._episode_num % log_interval == 0:
                self.dump_logs()
        return True
