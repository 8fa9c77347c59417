"""A fast synthetic pixel task: steer a point to a target, drawn with numpy (no MuJoCo).

Same observation conventions as the DMC environments (uint8 ``(3·frame_stack, H, W)``, newest
frame last, actions in [-1, 1], episodes that end by truncation), at ~µs per step, so tests can
show SB3 learning from pixels on a CPU in minutes.

Reference returns (default settings: fixed target, 50-step episodes; mean ± std over 200 seeded
episodes, ``python experiments/point_mass_returns.py``): a uniform random policy scores
−41.1 ± 11.6; moving straight at the target scores −1.1 ± 0.7. With ``random_target=True``:
−48.2 ± 19.5 and −2.1 ± 1.7. A return above −10 counts as solved.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

__all__ = ["PointMassPixels"]


class PointMassPixels(gym.Env):
    """A point in the square [-1, 1]² moves by ``max_speed · action`` each step; reward is minus
    its distance to the target. The point is red, the target green, on a black canvas.

    :param image_size: side of the square frames (≥ 16).
    :param frame_stack: frames per observation.
    :param episode_length: agent steps per episode (ends by truncation).
    :param random_target: draw the target anew each episode (default: fixed at the centre).
    :param max_speed: distance moved per step at full action.
    :param from_pixels: ``False`` gives the state ``(x, y, target_x, target_y)``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        image_size: int = 40,
        frame_stack: int = 3,
        episode_length: int = 50,
        random_target: bool = False,
        max_speed: float = 0.2,
        from_pixels: bool = True,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(image_size, int) or image_size < 16:
            raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}")
        if not isinstance(frame_stack, int) or frame_stack < 1:
            raise ValueError(f"frame_stack must be a positive integer, got {frame_stack!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.image_size, self.frame_stack = image_size, frame_stack
        self.episode_length, self.random_target = episode_length, random_target
        self.max_speed, self.from_pixels, self.render_mode = max_speed, from_pixels, render_mode
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.state_space = gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
        #: The name of each entry of ``info["state"]`` (as :class:`~rlrep.envs.DMCEnv`'s): all
        #: positions, so the probes group them with DMC's positions.
        self.state_keys = ("position", "position", "target_position", "target_position")
        if from_pixels:
            shape = (3 * frame_stack, image_size, image_size)
            self.observation_space = gym.spaces.Box(0, 255, shape, dtype=np.uint8)
        else:
            self.observation_space = self.state_space
        self._radius = max(1, image_size // 16)
        self._frames: deque[np.ndarray] = deque(maxlen=frame_stack)
        self._pos = np.zeros(2)
        self._target = np.zeros(2)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-1.0, 1.0, 2)
        self._target = self.np_random.uniform(-0.8, 0.8, 2) if self.random_target else np.zeros(2)
        self._t = 0
        if self.from_pixels:
            self._frames.extend([self._draw()] * self.frame_stack)
        return self._observation(), self._info()

    def step(self, action: np.ndarray):
        """Move the point by ``max_speed × action`` (clipped to [-1, 1]); reward −distance to the
        target; ``truncated=True`` after ``episode_length`` steps (never terminated)."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if a.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {a.shape}")
        self._pos = np.clip(self._pos + self.max_speed * a, -1.0, 1.0)
        self._t += 1
        reward = -float(np.linalg.norm(self._pos - self._target))
        if self.from_pixels:
            self._frames.append(self._draw())
        truncated = self._t >= self.episode_length
        return self._observation(), reward, False, truncated, self._info()

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode='rgb_array'")
            return None
        return self._draw().transpose(1, 2, 0)

    def get_state(self) -> dict[str, Any]:
        """Everything the next steps depend on (positions, step, frames, random generator), as
        arrays and JSON values, so a run can stop mid-episode and continue bit for bit."""
        return {
            "pos": self._pos.copy(),
            "target": self._target.copy(),
            "t": self._t,
            "frames": np.stack(self._frames) if self._frames else np.zeros((0,), np.uint8),
            "np_random": self.np_random.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        self._pos = np.asarray(state["pos"], dtype=np.float64).copy()
        self._target = np.asarray(state["target"], dtype=np.float64).copy()
        self._t = int(state["t"])
        self._frames.clear()
        self._frames.extend(list(state["frames"]))
        self.np_random.bit_generator.state = state["np_random"]

    def _pixel(self, p: np.ndarray) -> tuple[int, int]:
        col, row = ((p + 1.0) / 2.0 * (self.image_size - 1)).round().astype(int)
        return int(self.image_size - 1 - row), int(col)  # y up

    def _draw(self) -> np.ndarray:
        img = np.zeros((3, self.image_size, self.image_size), dtype=np.uint8)
        r = self._radius
        for channel, p in ((1, self._target), (0, self._pos)):  # the point drawn over the target
            row, col = self._pixel(p)
            img[channel, max(row - r, 0) : row + r + 1, max(col - r, 0) : col + r + 1] = 255
            if channel == 0:
                img[1, max(row - r, 0) : row + r + 1, max(col - r, 0) : col + r + 1] = 0
        return img

    def _state(self) -> np.ndarray:
        return np.concatenate([self._pos, self._target]).astype(np.float32)

    def _observation(self) -> np.ndarray:
        return np.concatenate(self._frames, axis=0) if self.from_pixels else self._state()

    def _info(self) -> dict[str, Any]:
        return {
            "state": self._state(),
            "env_steps": 1 if self._t else 0,
            "episode_env_steps": self._t,
        }
