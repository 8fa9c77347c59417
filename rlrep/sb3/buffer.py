"""A replay buffer for frame-stacked pixels that stores every frame once.

SB3's ``ReplayBuffer`` keeps ``obs`` and ``next_obs`` stacks: 2·k frames per transition (12.7 GB
per 100k 9×84×84 transitions), and its ``optimize_memory_usage`` cannot be combined with timeout
handling, which DMC needs (its episodes end only by time limit). Here a transition stores
``k + 1`` integer ids into one ring of frames: within an episode consecutive transitions share
``k − 1`` frames, so each step adds one frame; an episode's first observation adds its distinct
frames (one, for envs that repeat the first frame). Stacks are rebuilt at sampling time, by one
gather, on the storage device.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from rlrep.augment.base import check_frame_channels, infer_frame_channels

__all__ = ["FrameStackReplayBuffer", "SequenceSamples"]


class SequenceSamples(NamedTuple):
    """``length``-step windows of one env's consecutive transitions (ATC, CPC, SPR targets).

    Windows never mix episodes: steps past the end of the first observation's episode are
    *masked*, not resampled (resampling would under-draw the last steps of each episode); there
    the observation repeats the episode's last one and action, reward and done are 0.

    :param observations: ``(B, K + 1, C, H, W)`` uint8 stacks ``obs_t … obs_{t+K}`` (each the
        successor of the one before: ``obs_{t+j}`` is transition ``t+j−1``'s ``next_obs``).
    :param actions: ``(B, K, A)``; :param rewards: ``(B, K)``.
    :param dones: ``(B, K)`` 1 where transition ``t+j`` ends its episode by termination (a time
        limit end is 0, as in :meth:`FrameStackReplayBuffer.sample`: the target bootstraps).
    :param valid: ``(B, K + 1)`` bool, ``obs_{t+j}`` belongs to ``obs_t``'s episode (the last
        observation of an episode that ends inside the window is valid); transition ``t+j`` is
        valid when ``valid[:, j + 1]`` is.
    """

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    valid: torch.Tensor


class FrameStackReplayBuffer(ReplayBuffer):
    """Drop-in ``replay_buffer_class`` for SAC / TD3 / DQN on uint8 ``(k·c, H, W)`` stacks (newest
    frame last), storing each frame once: about ``1.02 × c·H·W`` bytes per transition.

    Returns exactly the stacks SB3's ``ReplayBuffer`` would; never mixes frames of two episodes;
    with ``handle_timeout_termination`` a time-limit end (``info["TimeLimit.truncated"]``) is
    stored as non-terminal, so the target bootstraps.

    :param frame_channels: channels per frame, 3 (RGB) or 1 (grayscale, e.g. Atari) (default: 3
        if C is a multiple of 3, else 1; the same rule and option as the extractor's).
    :param storage_device: where frames live (``"cpu"``, or e.g. ``"cuda"`` to sample stacks on the
        GPU without a host-to-device copy of the batch).
    :param optimize_memory_usage: accepted for SB3's signature; memory is always optimised here.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        frame_channels: int | None = None,
        storage_device: torch.device | str = "cpu",
    ) -> None:
        if (
            not isinstance(observation_space, spaces.Box)
            or observation_space.dtype != np.uint8
            or len(observation_space.shape) != 3
        ):
            raise ValueError(
                f"FrameStackReplayBuffer needs uint8 (C, H, W) frame stacks, got {observation_space}; "
                "use SB3's ReplayBuffer for other observations"
            )
        # A ReplayBuffer to SB3 (its isinstance checks, save/load), but not its allocations:
        # BaseBuffer's constructor, not ReplayBuffer's, which would allocate obs/next_obs arrays.
        BaseBuffer.__init__(
            self, buffer_size, observation_space, action_space, device, n_envs=n_envs
        )
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.optimize_memory_usage = False  # ReplayBuffer.sample: plain uniform sampling
        c = observation_space.shape[0]
        try:
            self.frame_channels = check_frame_channels(
                infer_frame_channels(c) if frame_channels is None else frame_channels, c
            )
        except ValueError as error:
            raise ValueError(
                f"FrameStackReplayBuffer: {error} (replay_buffer_kwargs={{'frame_channels': …}})"
            ) from None
        self.frame_channels_given = frame_channels is not None  # else follows the env
        self.handle_timeout_termination = handle_timeout_termination
        self.storage_device = torch.device(storage_device)

        rows = (self.buffer_size, self.n_envs)
        self.actions = np.zeros(
            (*rows, self.action_dim),
            dtype=np.float32 if action_space.dtype == np.float64 else action_space.dtype,
        )
        self.rewards = np.zeros(rows, dtype=np.float32)
        self.dones = np.zeros(rows, dtype=np.float32)
        self.timeouts = np.zeros(rows, dtype=np.float32)
        self._allocate_frames()
        self._stack_ids: list[np.ndarray | None] = [
            None
        ] * self.n_envs  # ids of each env's last next_obs

    def _allocate_frames(self) -> None:
        c, h, w = self.obs_shape
        self.k = c // self.frame_channels
        rows = (self.buffer_size, self.n_envs)
        self.frame_ids = np.zeros((*rows, self.k + 1), dtype=np.int64)  # obs: [:k], next: [1:]
        # 2% slack covers the first frames of episodes of ≥ 50 steps; the ring grows if needed.
        capacity = math.ceil(1.02 * self.buffer_size * self.n_envs) + self.n_envs * (self.k + 1)
        self.frames = self._frame_ring(capacity, (self.frame_channels, h, w))
        self.frames_written = 0

    def set_frame_channels(self, frame_channels: int) -> None:
        """Store frames of ``frame_channels`` channels (what the env's frame stacking says);
        only while empty."""
        if self.frames_written or self.full or self.pos:
            raise ValueError(
                "FrameStackReplayBuffer: frame_channels can change only while the buffer is "
                "empty; pass replay_buffer_kwargs={'frame_channels': ...} when building it"
            )
        self.frame_channels = check_frame_channels(frame_channels, self.obs_shape[0])
        self._allocate_frames()

    # --- storage -------------------------------------------------------------------------------
    def _frame_ring(self, capacity: int, frame_shape: tuple[int, ...]) -> torch.Tensor:
        """Uninitialised storage for ``capacity`` frames: only written slots are ever read, and
        untouched host pages take no memory, so a 1M-transition ring holds RAM in proportion to
        the frames stored (``torch.zeros`` would write, and so hold, all of it up front)."""
        return torch.empty((capacity, *frame_shape), dtype=torch.uint8, device=self.storage_device)

    @property
    def frame_capacity(self) -> int:
        return self.frames.shape[0]

    def nbytes_per_transition(self) -> float:
        """Bytes held per transition slot (frames, ids, actions, rewards, flags)."""
        arrays = (self.frame_ids, self.actions, self.rewards, self.dones, self.timeouts)
        total = self.frames.numel() * self.frames.element_size() + sum(a.nbytes for a in arrays)
        return total / (self.buffer_size * self.n_envs)

    def _oldest_live_id(self) -> int:
        """Smallest frame id a live transition (other than the one overwritten next) refers to."""
        if self.full:
            row = (self.pos + 1) % self.buffer_size
        elif self.pos > 0:
            row = 0
        else:
            return self.frames_written
        return int(self.frame_ids[row, :, 0].min())

    def _write_frames(self, frames: np.ndarray, oldest_needed: int) -> np.ndarray:
        """Store ``(n, c, H, W)`` frames; return their ids. Grows the ring rather than overwrite
        a frame some live transition still uses."""
        n = len(frames)
        first = self.frames_written
        if first + n - self.frame_capacity > oldest_needed:
            self._grow(first + n - oldest_needed, oldest_needed)
        ids = np.arange(first, first + n)
        slots = torch.as_tensor(ids % self.frame_capacity, device=self.storage_device)
        self.frames[slots] = torch.as_tensor(frames, device=self.storage_device)
        self.frames_written += n
        return ids

    def _grow(self, needed: int, oldest_needed: int) -> None:
        new_capacity = max(needed + self.n_envs * (self.k + 1), int(self.frame_capacity * 1.25))
        live = torch.arange(oldest_needed, self.frames_written, device=self.storage_device)
        grown = self._frame_ring(new_capacity, self.frames.shape[1:])
        grown[live % new_capacity] = self.frames[live % self.frame_capacity]
        self.frames = grown

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        obs = np.asarray(obs).reshape((self.n_envs, *self.obs_shape))
        next_obs = np.asarray(next_obs).reshape((self.n_envs, *self.obs_shape))
        fc, k = self.frame_channels, self.k
        pending = [int(ids[0]) for ids in self._stack_ids if ids is not None]
        oldest = min([self._oldest_live_id(), *pending])
        for e in range(self.n_envs):
            frames = obs[e].reshape(k, fc, *self.obs_shape[1:])
            if not np.array_equal(next_obs[e, : (k - 1) * fc], obs[e, fc:]):
                raise ValueError(
                    "FrameStackReplayBuffer: next_obs is not obs shifted by one frame; it needs "
                    f"stacks of {k} frames of {fc} channels, newest last (frame_channels={fc}); "
                    "for grayscale stacks (e.g. Atari) pass replay_buffer_kwargs="
                    "{'frame_channels': 1}, for RGB {'frame_channels': 3}"
                )
            ids = self._stack_ids[e]
            if ids is None or not np.array_equal(self._frame(ids[-1]), frames[-1]):
                ids = self._episode_start(frames, oldest)  # a new episode (or an unknown obs)
            new_id = self._write_frames(
                next_obs[e, None, (k - 1) * fc :].reshape(1, fc, *self.obs_shape[1:]), oldest
            )
            self.frame_ids[self.pos, e, :k] = ids
            self.frame_ids[self.pos, e, k] = new_id[0]
            self._stack_ids[e] = None if done[e] else np.append(ids[1:], new_id)
        self.actions[self.pos] = np.asarray(action).reshape((self.n_envs, self.action_dim))
        self.rewards[self.pos] = np.asarray(reward)
        self.dones[self.pos] = np.asarray(done)
        if self.handle_timeout_termination:
            self.timeouts[self.pos] = [info.get("TimeLimit.truncated", False) for info in infos]
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full, self.pos = True, 0

    def _frame(self, frame_id: int) -> np.ndarray:
        return self.frames[frame_id % self.frame_capacity].cpu().numpy()

    def _episode_start(self, frames: np.ndarray, oldest: int) -> np.ndarray:
        """Store the distinct consecutive frames of a first observation; ids for all k."""
        distinct = [0] + [
            j for j in range(1, self.k) if not np.array_equal(frames[j], frames[j - 1])
        ]
        stored = self._write_frames(frames[distinct], oldest)
        return stored[np.searchsorted(distinct, np.arange(self.k), side="right") - 1]

    # --- checkpointing -------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """The filled part as plain arrays (no pickle): the stored transitions and only the frames
        they (or an episode in progress) refer to, so a checkpoint grows with the data collected,
        not with ``buffer_size``. :meth:`set_state` restores it exactly."""
        n = self.buffer_size if self.full else self.pos
        pending = [ids for ids in self._stack_ids if ids is not None]
        referenced = [self.frame_ids[:n].ravel(), *pending]
        first = int(min(ids.min() for ids in referenced)) if n or pending else self.frames_written
        live = torch.arange(first, self.frames_written, device=self.storage_device)
        stack_ids = np.full((self.n_envs, self.k), -1, dtype=np.int64)
        for e, ids in enumerate(self._stack_ids):
            if ids is not None:
                stack_ids[e] = ids
        return {
            "shape": np.array([self.buffer_size, self.n_envs, *self.obs_shape]),
            "counters": np.array([self.pos, int(self.full), self.frames_written, first]),
            "frame_capacity": np.array(self.frame_capacity),
            "frames": self.frames[live % self.frame_capacity].cpu().numpy(),
            "frame_ids": self.frame_ids[:n],
            "actions": self.actions[:n],
            "rewards": self.rewards[:n],
            "dones": self.dones[:n],
            "timeouts": self.timeouts[:n],
            "stack_ids": stack_ids,
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned; ``ValueError`` if it was saved by a buffer of
        another size or observation shape."""
        expected = [self.buffer_size, self.n_envs, *self.obs_shape]
        if list(state["shape"]) != expected:
            raise ValueError(
                f"replay buffer state of shape {list(state['shape'])} (buffer_size, n_envs, obs "
                f"shape) does not fit this buffer {expected}; resume with the run's buffer_size"
            )
        pos, full, written, first = (int(v) for v in state["counters"])
        n = len(state["frame_ids"])
        self.pos, self.full, self.frames_written = pos, bool(full), written
        self.frame_ids[:n] = state["frame_ids"]
        self.actions[:n] = state["actions"]
        self.rewards[:n] = state["rewards"]
        self.dones[:n] = state["dones"]
        self.timeouts[:n] = state["timeouts"]
        capacity = int(state["frame_capacity"])
        self.frames = self._frame_ring(capacity, self.frames.shape[1:])
        live = torch.arange(first, written, device=self.storage_device)
        self.frames[live % capacity] = torch.as_tensor(state["frames"], device=self.storage_device)
        self._stack_ids = [ids.copy() if ids[0] >= 0 else None for ids in state["stack_ids"]]

    # --- sampling ------------------------------------------------------------------------------
    def _stacks(self, ids: np.ndarray) -> torch.Tensor:
        """``(B, k)`` frame ids → ``(B, k·c, H, W)`` uint8 stacks on the storage device."""
        slots = torch.as_tensor(ids % self.frame_capacity, device=self.storage_device)
        frames = self.frames[slots.flatten()]
        return frames.reshape(ids.shape[0], self.k * self.frame_channels, *self.frames.shape[2:])

    def _get_samples(
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> ReplayBufferSamples:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        ids = self.frame_ids[batch_inds, env_indices]
        obs, next_obs = self._stacks(ids[:, : self.k]), self._stacks(ids[:, 1:])
        if env is not None:  # VecNormalize: rare for pixels, but honour it as SB3 does
            obs = torch.as_tensor(self._normalize_obs(obs.cpu().numpy(), env))
            next_obs = torch.as_tensor(self._normalize_obs(next_obs.cpu().numpy(), env))
        dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
        # Each sample's slot, for objectives that tell transitions apart (a memory bank's rows).
        self.last_sample_slots = torch.as_tensor(batch_inds * self.n_envs + env_indices)
        return ReplayBufferSamples(
            observations=obs.to(self.device, non_blocking=True),
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations=next_obs.to(self.device, non_blocking=True),
            dones=self.to_torch(dones.reshape(-1, 1)),
            rewards=self.to_torch(
                self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)
            ),
        )

    def sample_sequences(self, batch_size: int, length: int) -> SequenceSamples:
        """``batch_size`` windows of ``length`` consecutive transitions of one env each, starting
        uniformly at any stored transition that has ``length − 1`` stored successors (drawn with
        numpy's global RNG, as :meth:`sample`). See :class:`SequenceSamples` for the masking.

        :raises ValueError: ``length < 1``, or fewer than ``length`` transitions stored.
        """
        stored = self._check_length(length)
        oldest = self.pos if self.full else 0  # windows must not run past the newest row
        offsets = np.random.randint(0, stored - length + 1, size=batch_size)
        envs = np.random.randint(0, self.n_envs, size=batch_size)
        return self.get_sequences((oldest + offsets) % self.buffer_size, envs, length)

    def get_sequences(self, starts: np.ndarray, envs: np.ndarray, length: int) -> SequenceSamples:
        """The windows of ``length`` transitions from stored rows ``starts`` ``(B,)`` of envs
        ``envs`` ``(B,)``, e.g. the rows of the last :meth:`sample` (:attr:`last_sample_slots`
        ``= row · n_envs + env``). Transitions not stored yet (past the newest row) are masked
        like those of a later episode."""
        self._check_length(length)
        b = len(starts)
        rows = (starts[:, None] + np.arange(length)) % self.buffer_size  # (B, K)
        env = envs[:, None]
        ended = self.dones[rows, env] > 0
        # Transition t+j (and its next_obs, obs_{t+j+1}) is in obs_t's episode when none of the
        # transitions before it in the window ended one, and it is stored: at most
        # ``successors`` rows follow t before the write position.
        newest = (self.pos - 1) % self.buffer_size
        successors = (newest - starts) % self.buffer_size
        stored = np.arange(1, length)[None] <= successors[:, None]
        alive = (np.cumsum(ended[:, :-1], 1) == 0) & stored
        valid = np.concatenate([np.ones((b, 2), bool), np.minimum.accumulate(alive, 1)], 1)
        ids = np.concatenate(  # obs_t, then each transition's next_obs: (B, K + 1, k)
            [self.frame_ids[starts, envs, None, : self.k], self.frame_ids[rows, env, 1:]], 1
        )
        masked = ~valid  # repeat the episode's last observation there
        last = ids[np.arange(b), valid.sum(1) - 1]
        ids[masked] = np.repeat(last, masked.sum(1), axis=0)
        keep = valid[:, 1:]
        terminal = self.dones[rows, env] * (1 - self.timeouts[rows, env])
        obs = self._stacks(ids.reshape(-1, self.k)).reshape(b, length + 1, *self.obs_shape)
        return SequenceSamples(
            observations=obs.to(self.device, non_blocking=True),
            actions=self.to_torch(self.actions[rows, env] * keep[..., None]),
            rewards=self.to_torch(self.rewards[rows, env] * keep),
            dones=self.to_torch(terminal * keep),
            valid=torch.as_tensor(valid, device=self.device),
        )

    def _check_length(self, length: int) -> int:
        """Transitions stored per env; ``ValueError`` unless a window of ``length`` fits."""
        stored = self.buffer_size if self.full else self.pos
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= stored:
            raise ValueError(
                f"FrameStackReplayBuffer: a window needs 1 <= length <= {stored} (transitions "
                f"stored per env), got {length!r}; collect more steps (learning_starts) first"
            )
        return stored

    def reset(self) -> None:
        BaseBuffer.reset(self)
        self.frames_written = 0
        self._stack_ids = [None] * self.n_envs
