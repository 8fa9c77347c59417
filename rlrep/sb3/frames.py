"""Channels per stacked frame: one value for an SB3 env, rlrep's extractors and its replay buffer
(colour augmentations and frame deduplication depend on it).

SB3's Atari recipe (``make_atari_env`` + ``VecFrameStack(n_stack=4)``) gives ``(4, 84, 84)``
grayscale stacks: 4 channels, inferred as 1 per frame. ``n_stack=3`` would give 3 channels, the
shape of one RGB frame; the ``VecFrameStack`` wrapper tells them apart: its input is one frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecFrameStack

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = ["env_frame_channels", "reconcile_frame_channels"]


def env_frame_channels(env: VecEnv | None) -> int | None:
    """Channels of one frame under the outermost SB3 ``VecFrameStack`` of ``env``, or ``None``
    when no wrapper says (then the channel count decides: 3 if a multiple of 3, else 1)."""
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, VecFrameStack):
            shape = env.venv.observation_space.shape
            if len(shape) == 2:  # (H, W) grayscale frames
                return 1
            return int(shape[0] if env.stacked_obs.channels_first else shape[-1])
        env = env.venv
    return None


def reconcile_frame_channels(algorithm: BaseAlgorithm) -> None:
    """One channel count per frame for ``algorithm``'s env, rlrep extractors and
    ``FrameStackReplayBuffer``, when ``learn()`` starts (before any env step).

    What decides: the env's ``VecFrameStack``, or a ``frame_channels`` given to
    ``policy_kwargs`` or ``replay_buffer_kwargs`` (one is enough: the others follow); two that
    disagree are refused, naming them. With none, each inferred the same (3 if C is a multiple
    of 3, else 1).
    """
    from rlrep.sb3.buffer import FrameStackReplayBuffer
    from rlrep.sb3.extractor import RepresentationExtractor

    extractors = [m for m in algorithm.policy.modules() if isinstance(m, RepresentationExtractor)]
    buffer = getattr(algorithm, "replay_buffer", None)
    buffer = buffer if isinstance(buffer, FrameStackReplayBuffer) else None
    said: dict[str, int] = {}
    env = env_frame_channels(algorithm.get_env())
    if env is not None:
        said["the env's VecFrameStack stacks frames of"] = env
    for fc in sorted({e.frame_channels for e in extractors if e.frame_channels_given}):
        said[f"policy_kwargs(frame_channels={fc}) says"] = fc
    if buffer is not None and buffer.frame_channels_given:
        fc = buffer.frame_channels
        said[f"replay_buffer_kwargs={{'frame_channels': {fc}}} says"] = fc
    if len(set(said.values())) > 1:
        raise ValueError(
            "channels per frame disagree: "
            + "; ".join(f"{source} {fc}" for source, fc in said.items())
            + ". Give frame_channels once (policy_kwargs(frame_channels=N) sets the extractor "
            "and FrameStackReplayBuffer both), matching the env's frames"
        )
    if not said:
        return
    fc = next(iter(said.values()))
    for extractor in extractors:
        if extractor.frame_channels != fc:
            extractor.set_frame_channels(fc)
    if buffer is not None and buffer.frame_channels != fc:
        buffer.set_frame_channels(fc)
