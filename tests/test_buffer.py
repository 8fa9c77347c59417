"""FrameStackReplayBuffer returns exactly what SB3's ReplayBuffer returns, at a fraction of the memory."""

import os

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from rlrep.sb3 import FrameStackReplayBuffer
from tests.conftest import DEVICES


def stream(
    n_envs, steps, k=3, fc=3, size=8, episode_lengths=(5, 1, 7, 2, 12), repeat_first=True, seed=0
):
    """Yield (obs, next_obs, action, reward, done, infos) as SB3's collect loop would add them:
    frame-stacked observations, newest last; after a done, obs is a fresh episode's first stack."""
    rng = np.random.default_rng(seed)

    def first_stack():
        if repeat_first:
            return np.repeat(
                rng.integers(0, 256, (1, fc, size, size), dtype=np.uint8), k, axis=0
            ).reshape(k * fc, size, size)
        return rng.integers(0, 256, (k * fc, size, size), dtype=np.uint8)

    obs = np.stack([first_stack() for _ in range(n_envs)])
    t = np.zeros(n_envs, dtype=int)
    lengths = [list(episode_lengths) for _ in range(n_envs)]
    for step in range(steps):
        new = rng.integers(0, 256, (n_envs, fc, size, size), dtype=np.uint8)
        next_obs = np.concatenate([obs[:, fc:], new], axis=1)
        t += 1
        ends = np.array([t[e] >= lengths[e][(step + e) % len(lengths[e])] for e in range(n_envs)])
        timeout = ends & (rng.random(n_envs) < 0.5)
        infos = [{"TimeLimit.truncated": bool(timeout[e])} for e in range(n_envs)]
        yield (
            obs.copy(),
            next_obs,
            rng.normal(size=(n_envs, 2)).astype(np.float32),
            rng.normal(size=n_envs),
            ends.astype(np.float32),
            infos,
        )
        obs = next_obs.copy()
        for e in np.flatnonzero(ends):
            obs[e], t[e] = first_stack(), 0


def fill(buffers, **kwargs):
    for transition in stream(**kwargs):
        for b in buffers:
            b.add(*transition)


def assert_same_samples(ours, naive, rows):
    np.random.seed(1)
    a = ours._get_samples(rows)
    np.random.seed(1)
    b = naive._get_samples(rows)
    for name in ("observations", "next_observations", "actions", "rewards", "dones"):
        assert torch.equal(getattr(a, name).cpu(), getattr(b, name).cpu()), name


@pytest.mark.parametrize("storage", DEVICES)
@pytest.mark.parametrize("repeat_first", [True, False])
@pytest.mark.parametrize("n_envs", [1, 2])
def test_matches_sb3_replay_buffer_across_episodes_timeouts_and_wraparound(
    storage, repeat_first, n_envs
):
    obs_space = spaces.Box(0, 255, (9, 8, 8), dtype=np.uint8)
    act_space = spaces.Box(-1, 1, (2,), dtype=np.float32)
    ours = FrameStackReplayBuffer(60, obs_space, act_space, n_envs=n_envs, storage_device=storage)
    naive = ReplayBuffer(60, obs_space, act_space, n_envs=n_envs)
    fill([ours, naive], n_envs=n_envs, steps=95, repeat_first=repeat_first)  # wraps around
    assert ours.full and naive.full and ours.pos == naive.pos
    rows = np.arange(ours.buffer_size).repeat(8)  # every row, env indices drawn as SB3 does
    assert_same_samples(ours, naive, rows)
    assert (
        naive.timeouts.any() and (naive.dones * (1 - naive.timeouts)).any()
    )  # both kinds of ends seen


def test_very_short_episodes_grow_the_ring_and_stay_exact():
    obs_space = spaces.Box(0, 255, (12, 6, 6), dtype=np.uint8)
    act_space = spaces.Box(-1, 1, (2,), dtype=np.float32)
    ours = FrameStackReplayBuffer(40, obs_space, act_space, frame_channels=3)
    naive = ReplayBuffer(40, obs_space, act_space)
    capacity = ours.frame_capacity
    fill(
        [ours, naive],
        n_envs=1,
        steps=130,
        k=4,
        size=6,
        episode_lengths=(1, 2, 1),
        repeat_first=False,
    )
    assert ours.frame_capacity > capacity
    assert_same_samples(ours, naive, np.arange(40))


def test_grayscale_frames_and_discrete_actions():
    obs_space = spaces.Box(0, 255, (4, 8, 8), dtype=np.uint8)  # 4 stacked gray frames (Atari)
    ours = FrameStackReplayBuffer(30, obs_space, spaces.Discrete(3))
    naive = ReplayBuffer(30, obs_space, spaces.Discrete(3))
    assert ours.frame_channels == 1 and ours.k == 4
    for obs, next_obs, _, reward, done, infos in stream(1, 45, k=4, fc=1):
        action = np.array([[int(reward[0] > 0)]])
        ours.add(obs, next_obs, action, reward, done, infos)
        naive.add(obs, next_obs, action, reward, done, infos)
    assert_same_samples(ours, naive, np.arange(30))


def test_memory_per_transition_at_most_1_1_frames():
    obs_space = spaces.Box(0, 255, (9, 84, 84), dtype=np.uint8)
    act_space = spaces.Box(-1, 1, (2,), dtype=np.float32)
    buf = FrameStackReplayBuffer(1000, obs_space, act_space)
    naive_bytes = 2 * 9 * 84 * 84
    frame_bytes = 3 * 84 * 84
    # DMC at action repeat 8: 125-step episodes, first frame repeated.
    capacity = buf.frame_capacity
    fill([buf], n_envs=1, steps=1300, size=84, episode_lengths=(125,))
    assert buf.frame_capacity == capacity  # no growth needed
    assert buf.nbytes_per_transition() <= 1.1 * frame_bytes
    assert buf.nbytes_per_transition() < naive_bytes / 5


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads Linux's /proc")
def test_host_memory_follows_the_frames_stored_not_the_capacity():
    obs_space = spaces.Box(0, 255, (9, 84, 84), dtype=np.uint8)
    act_space = spaces.Box(-1, 1, (2,), dtype=np.float32)
    before = resident_bytes()
    buf = FrameStackReplayBuffer(100_000, obs_space, act_space)  # a 2.2 GB frame ring
    fill([buf], n_envs=1, steps=300, size=84, episode_lengths=(125,))
    ring = buf.frames.numel()
    assert ring > 2e9
    # Actions, rewards and ids for 100k slots are ~4 MB; 300 stored frames ~6 MB.
    assert resident_bytes() - before < 0.05 * ring


def test_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        FrameStackReplayBuffer(10, spaces.Box(-1, 1, (4,)), spaces.Box(-1, 1, (2,)))
    buf = FrameStackReplayBuffer(
        10, spaces.Box(0, 255, (9, 4, 4), dtype=np.uint8), spaces.Box(-1, 1, (2,))
    )
    obs = np.zeros((1, 9, 4, 4), np.uint8)
    with pytest.raises(ValueError, match=r"shifted by one frame.*'frame_channels': 1"):
        buf.add(obs, np.full_like(obs, 7), np.zeros((1, 2)), np.zeros(1), np.zeros(1), [{}])
    with pytest.raises(ValueError, match=r"4 channels are not.*3-channel.*'frame_channels'"):
        FrameStackReplayBuffer(
            10, spaces.Box(0, 255, (4, 4, 4), dtype=np.uint8), spaces.Box(-1, 1, (2,)),
            frame_channels=3,
        )  # fmt: skip
