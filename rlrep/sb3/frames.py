"""Channels per stacked frame as an SB3 env reveals them, checked against rlrep's extractor and
replay buffer (colour augmentations and frame deduplication depend on it).

SB3's Atari recipe (``make_atari_env`` + ``VecFrameStack(n_stack=4)``) gives ``(4, 84, 84)``
grayscale stacks: 4 channels, inferred as 1 per frame. ``n_stack=3`` would give 3 channels, the
shape of one RGB frame; the ``VecFrameStack`` wrapper tells them apart: its input is one frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecFrameStack

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = ["check_frame_channels_of_env", "env_frame_channels"]


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


def check_frame_channels_of_env(algorithm: BaseAlgorithm) -> None:
    """Raise ``ValueError`` naming the fix when ``algorithm``'s env stacks frames of another
    channel count than its rlrep extractors or ``FrameStackReplayBuffer`` were built for."""
    from rlrep.sb3.buffer import FrameStackReplayBuffer
    from rlrep.sb3.extractor import RepresentationExtractor

    expected = env_frame_channels(algorithm.get_env())
    if expected is None:
        return
    for module in algorithm.policy.modules():
        if isinstance(module, RepresentationExtractor) and module.frame_channels != expected:
            raise ValueError(
                f"the env stacks {expected}-channel frames (SB3's VecFrameStack), but rlrep's "
                f"extractor was built for frame_channels={module.frame_channels}; pass "
                f"policy_kwargs(..., frame_channels={expected})"
            )
    buffer = getattr(algorithm, "replay_buffer", None)
    if isinstance(buffer, FrameStackReplayBuffer) and buffer.frame_channels != expected:
        raise ValueError(
            f"the env stacks {expected}-channel frames (SB3's VecFrameStack), but "
            f"FrameStackReplayBuffer was built for frame_channels={buffer.frame_channels}; pass "
            f"replay_buffer_kwargs={{'frame_channels': {expected}}}"
        )
