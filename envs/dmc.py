"""DeepMind Control Suite tasks from pixels as gymnasium environments, CURL/DrQ protocol.

``make_dmc("cartpole-swingup", image_size=100)``: observations are uint8 ``(3·frame_stack, H, W)``
with the newest frame last, rendered once per agent step; an action is repeated ``action_repeat``
times (CURL's per-task default) with the rewards summed; an episode is 1000 environment steps and
ends by truncation. ``info`` carries the proprioceptive ``state`` and the environment steps taken,
so frames can be counted as the papers count them. ``distraction="color_hard"`` (any of
:data:`~rlrep.envs.distractions.DISTRACTIONS`) renders the task with DMC-GB / Distracting Control
style visual distractions, leaving its dynamics as they are.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from rlrep.envs.distractions import Distraction, check_distraction, make_distraction
from rlrep.envs.rendering import RenderingUnavailableError, ensure_rendering_backend
from rlrep.gym_ids import DMC_TASKS

__all__ = ["CURL_TASKS", "DMC_TASKS", "DMCEnv", "default_action_repeat", "make_dmc"]


#: The six tasks of the CURL / DrQ benchmark.
CURL_TASKS = (
    "finger-spin",
    "cartpole-swingup",
    "reacher-easy",
    "cheetah-run",
    "walker-walk",
    "ball_in_cup-catch",
)

# CURL (Laskin et al. 2020), Table 3; 4 for every other task.
_CURL_ACTION_REPEAT = {"finger-spin": 2, "walker-walk": 2, "cartpole-swingup": 8}


def default_action_repeat(task: str) -> int:
    """CURL's action repeat: 2 for finger-spin and walker-walk, 8 for cartpole-swingup, else 4."""
    return _CURL_ACTION_REPEAT.get(task, 4)


def _split(task: str) -> tuple[str, str]:
    if task not in DMC_TASKS:
        raise ValueError(
            f"unknown DMC task {task!r}; expected 'domain-task', one of: {', '.join(DMC_TASKS)}"
        )
    domain, name = task.split("-", 1)
    return domain, name


def _positive_int(value: Any, name: str, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}; {hint}")
    return int(value)


def _flatten_state(observation: dict[str, Any]) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in observation.values()])


class DMCEnv(gym.Env):
    """A DMC task as a gymnasium environment (see :func:`make_dmc` for the parameters)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task: str,
        image_size: int = 84,
        frame_stack: int = 3,
        action_repeat: int | None = None,
        seed: int | None = None,
        camera_id: int | None = None,
        from_pixels: bool = True,
        render_mode: str | None = None,
        task_kwargs: dict[str, Any] | None = None,
        environment_kwargs: dict[str, Any] | None = None,
        *,
        distraction: str | None = None,
        background_dir: str | os.PathLike | None = None,
    ) -> None:
        domain, name = _split(task)
        check_distraction(distraction, background_dir, from_pixels)
        self.task = task
        self.image_size = _positive_int(
            image_size, "image_size", "e.g. 84, or 100 for CURL's 84-crop"
        )
        self.frame_stack = _positive_int(frame_stack, "frame_stack", "CURL and DrQ stack 3")
        repeat = default_action_repeat(task) if action_repeat is None else action_repeat
        self.action_repeat = _positive_int(repeat, "action_repeat", "None picks CURL's default")
        self.camera_id = (2 if domain == "quadruped" else 0) if camera_id is None else camera_id
        self.from_pixels = from_pixels
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        if from_pixels or render_mode is not None:
            ensure_rendering_backend()
        else:
            # State needs no renderer, but MuJoCo fixes its backend when first imported: pick a
            # headless one now, or a pixel env made later in this process could not render.
            with contextlib.suppress(RenderingUnavailableError):
                ensure_rendering_backend()
        from dm_control import suite  # after the backend is chosen

        self._env = suite.load(
            domain,
            name,
            task_kwargs={**(task_kwargs or {}), "random": seed},
            environment_kwargs=environment_kwargs,
        )
        self.distraction = distraction
        self._distraction: Distraction | None = None
        if distraction is not None:
            self._distraction = make_distraction(
                distraction,
                self._env.physics,
                camera_id=self.camera_id,
                image_size=self.image_size,
                background_dir=background_dir,
                seed=seed,
            )
        spec = self._env.action_spec()
        low = np.broadcast_to(spec.minimum, spec.shape).astype(np.float64)
        high = np.broadcast_to(spec.maximum, spec.shape).astype(np.float64)
        # Effectively unbounded dimensions (LQR's ±1e10) take the action as is.
        unbounded = (np.abs(low) > 1e6) | (np.abs(high) > 1e6)
        self._action_low, self._action_high = (
            np.where(unbounded, -1.0, low),
            np.where(unbounded, 1.0, high),
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, spec.shape, dtype=np.float32)
        # The observation key each entry of the flat state comes from ("position", "velocity",
        # "orientations", ...), so probes can score positions and velocities apart.
        self.state_keys: tuple[str, ...] = tuple(
            key
            for key, spec in self._env.observation_spec().items()
            for _ in range(int(np.prod(spec.shape)))
        )
        self.state_space = gym.spaces.Box(
            -np.inf, np.inf, (len(self.state_keys),), dtype=np.float32
        )
        if from_pixels:
            shape = (3 * self.frame_stack, self.image_size, self.image_size)
            self.observation_space = gym.spaces.Box(0, 255, shape, dtype=np.uint8)
        else:
            self.observation_space = self.state_space
        self._frames: deque[np.ndarray] = deque(maxlen=self.frame_stack)
        self._episode_env_steps = 0

    # --- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.task.random.seed(seed)
        timestep = self._env.reset()
        if self._distraction is not None:
            if seed is not None:
                self._distraction.seed(seed)
            self._distraction.reset()
        self._episode_env_steps = 0
        if self.from_pixels:
            frame = self._render_frame()
            self._frames.extend([frame] * self.frame_stack)
        return self._observation(timestep), self._info(timestep, env_steps=0)

    def step(self, action: np.ndarray):
        """``action_repeat`` physics steps with ``action`` in [-1, 1] (clipped, mapped to the
        task's bounds); the reward is their sum, one frame is rendered. Time limits give
        ``truncated=True``; ``info["env_steps"]`` counts the physics steps taken."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        scaled = self._action_low + (a + 1.0) * 0.5 * (self._action_high - self._action_low)
        reward, env_steps = 0.0, 0
        for _ in range(self.action_repeat):
            timestep = self._env.step(scaled)
            reward += timestep.reward or 0.0
            env_steps += 1
            if timestep.last():
                break
        self._episode_env_steps += env_steps
        if self._distraction is not None:
            self._distraction.advance()
        if self.from_pixels:
            self._frames.append(self._render_frame())
        # Suite tasks end only at their time limit (discount 1): truncation, not termination.
        terminated = bool(timestep.last() and timestep.discount == 0.0)
        truncated = bool(timestep.last() and not terminated)
        info = self._info(timestep, env_steps)
        return self._observation(timestep), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """The current camera image ``(H, W, 3)`` uint8 (``render_mode="rgb_array"``), distracted
        as the newest observation frame."""
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode='rgb_array'")
            return None
        return self._render_image()

    def close(self) -> None:
        """Free the physics and its rendering context."""
        env = self.__dict__.pop("_env", None)
        if env is not None:
            env.close()

    # --- checkpointing -------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Everything the next steps depend on, as arrays and JSON values, so a run can stop
        mid-episode and continue bit for bit: MuJoCo's full integration state (warm start
        included), the time-limit counter, the task's random state, the stacked frames and the
        distraction (its generator and the current episode's draw)."""
        import mujoco

        physics = self._env.physics
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        mj_state = np.empty(mujoco.mj_stateSize(physics.model.ptr, spec))
        mujoco.mj_getState(physics.model.ptr, physics.data.ptr, mj_state, spec)
        kind, keys, pos, has_gauss, gauss = self._env.task.random.get_state()
        state = {
            "mj_state": mj_state,
            "step_count": int(self._env._step_count),
            "reset_next_step": bool(self._env._reset_next_step),
            "task_random": {
                "kind": kind,
                "keys": keys,
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "gauss": float(gauss),
            },
            "frames": np.stack(self._frames) if self._frames else np.zeros((0,), np.uint8),
            "episode_env_steps": self._episode_env_steps,
        }
        if self._distraction is not None:
            state["distraction"] = self._distraction.get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (for the same task and settings)."""
        import mujoco

        physics = self._env.physics
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        mujoco.mj_setState(physics.model.ptr, physics.data.ptr, np.asarray(state["mj_state"]), spec)
        physics.forward()  # derived quantities, as the last step left them
        self._env._step_count = state["step_count"]
        self._env._reset_next_step = state["reset_next_step"]
        r = state["task_random"]
        self._env.task.random.set_state(
            (r["kind"], np.asarray(r["keys"], np.uint32), r["pos"], r["has_gauss"], r["gauss"])
        )
        self._frames.clear()
        self._frames.extend(list(state["frames"]))
        self._episode_env_steps = state["episode_env_steps"]
        if self._distraction is not None:
            self._distraction.set_state(state["distraction"])

    # --- helpers -------------------------------------------------------------------------------
    def _render_image(self) -> np.ndarray:
        img = self._env.physics.render(self.image_size, self.image_size, camera_id=self.camera_id)
        return img if self._distraction is None else self._distraction.composite(img)

    def _render_frame(self) -> np.ndarray:
        # (H, W, 3) → (3, H, W) as a view: the only copy is the one into the stacked observation.
        return self._render_image().transpose(2, 0, 1)

    def _observation(self, timestep) -> np.ndarray:
        if self.from_pixels:
            return np.concatenate(self._frames, axis=0)
        return _flatten_state(timestep.observation)

    def _info(self, timestep, env_steps: int) -> dict[str, Any]:
        return {
            "state": _flatten_state(timestep.observation),
            "env_steps": env_steps,
            "episode_env_steps": self._episode_env_steps,
        }


def make_dmc(
    task: str,
    image_size: int = 84,
    frame_stack: int = 3,
    action_repeat: int | None = None,
    seed: int | None = None,
    camera_id: int | None = None,
    from_pixels: bool = True,
    *,
    distraction: str | None = None,
    background_dir: str | os.PathLike | None = None,
    **kwargs: Any,
) -> DMCEnv:
    """A DMC task as a gymnasium environment following the CURL/DrQ pixel protocol.

    :param task: ``"domain-task"``, e.g. ``"cartpole-swingup"``, ``"ball_in_cup-catch"``
        (all of :data:`DMC_TASKS`).
    :param image_size: side of the rendered square frames (CURL renders 100 and crops 84).
    :param frame_stack: frames per observation; observation ``(3·frame_stack, H, W)``, newest last.
    :param action_repeat: physics control steps per agent step; ``None`` = CURL's per-task value.
        Actions in [-1, 1] are mapped linearly to the task's bounds (dimensions bounded beyond
        ±1e6, as in LQR, are passed through).
    :param seed: seed of the task's random state (initial states); ``reset(seed=…)`` reseeds.
    :param camera_id: ``None`` = 0, or 2 for quadruped (as DrQ).
    :param from_pixels: ``False`` gives the flat proprioceptive state (a state baseline).
    :param distraction: ``None`` or one of :data:`~rlrep.envs.distractions.DISTRACTIONS`:
        ``"color_easy"``/``"color_hard"`` (agent, floor and sky colours per episode),
        ``"video_easy"``/``"video_hard"`` (clips behind the sky, or sky and floor),
        ``"camera_easy"``/``"camera_hard"`` (camera pose per episode); see
        :mod:`rlrep.envs.distractions`. Drawn from their own generator, seeded by ``seed`` and
        ``reset(seed=…)``; states, rewards and terminations stay those of the clean task.
    :param background_dir: clips for the video modes: one entry per clip in sorted order, a
        sub-folder of frames (``*.png``/``*.jpg``, sorted) or a ``.npy`` of shape
        ``(T, H, W, 3)`` uint8; video_easy uses the first 10, video_hard all. ``None``: seeded
        procedural clips (smooth noise and moving shapes, no data files).
    :param kwargs: ``render_mode``, ``task_kwargs``, ``environment_kwargs`` for ``suite.load``.
    :raises ValueError: unknown task or distraction, non-positive sizes, a distraction with
        ``from_pixels=False``, a ``background_dir`` of another layout.
    """
    return DMCEnv(
        task, image_size, frame_stack, action_repeat, seed, camera_id, from_pixels,
        distraction=distraction, background_dir=background_dir, **kwargs,
    )  # fmt: skip
