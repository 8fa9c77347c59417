"""Episodes of a dataset in time order, and the windows the temporal methods learn from.

A sequence dataset (``dmc:TASK``, or an ``npz`` with ``actions`` and ``episodes``) keeps its
frames in the order they were observed: ``frames[i + 1]`` followed ``frames[i]`` under
``actions[i]`` when ``episodes[i + 1] == episodes[i]``. :meth:`Sequences.windows` gives
``obs_t … obs_{t+L}`` with the same conventions as the replay buffer's windows
(:class:`rlrep.sb3.SequenceSamples`): past the end of ``obs_t``'s episode observations are masked
and repeat the last usable one, actions there are 0. Frames of the test split are masked too, so
pretraining never sees them (the probes are scored on them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Sequences"]


@dataclass
class Sequences:
    """Frames in time order with the actions between them.

    :param frames: ``(N, C, H, W)`` uint8, in the order observed.
    :param actions: ``(N, A)`` float32, ``actions[i]`` taken at ``frames[i]`` (any value at an
        episode's last frame).
    :param episodes: ``(N,)`` int64, non-decreasing episode numbers.
    :param usable: ``(N,)`` bool, the frames training may see (the training split).
    """

    frames: torch.Tensor
    actions: torch.Tensor
    episodes: torch.Tensor
    usable: torch.Tensor

    def __post_init__(self) -> None:
        n = len(self.frames)
        for name in ("actions", "episodes", "usable"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Sequences: {n} frames but {len(getattr(self, name))} {name}; one per frame"
                )
        if n > 1 and bool((self.episodes[1:] < self.episodes[:-1]).any()):
            raise ValueError(
                "Sequences: 'episodes' must be non-decreasing (frames of one episode together, "
                "in time order)"
            )

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    def windows(
        self, starts: torch.Tensor, length: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(observations, actions, valid)`` of the windows that start at frames ``starts``.

        :param starts: ``(B,)`` frame indices (usable frames).
        :param length: ``L``, the transitions each window spans.
        :return: ``(B, L + 1, C, H, W)`` uint8, ``(B, L, A)`` float32 and ``(B, L + 1)`` bool;
            ``valid[:, j]``: ``obs_{t+j}`` is in ``obs_t``'s episode and usable.
        """
        n = len(self.frames)
        steps = torch.arange(length + 1)
        index = (starts[:, None] + steps).clamp(max=n - 1)
        in_episode = (starts[:, None] + steps < n) & (
            self.episodes[index] == self.episodes[starts, None]
        )
        valid = in_episode & self.usable[index]
        # Masked observations repeat the last valid one (obs_t is valid: a usable start).
        last = torch.where(valid, steps, torch.zeros_like(steps)).cummax(dim=1).values
        shown = index.gather(1, last)
        actions = self.actions[index[:, :-1]] * in_episode[:, 1:, None]
        return self.frames[shown], actions, valid
