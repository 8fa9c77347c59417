"""Windows of consecutive transitions from FrameStackReplayBuffer against a naive reference
built from the transitions as they were added: episode ends (terminal and time limit) inside
windows, wrap-around of the ring, several envs; and the sampler draws only whole windows."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlrep.sb3 import FrameStackReplayBuffer
from tests.test_buffer import stream

K_FRAMES, FC, SIZE = 3, 3, 8


def buffer(size, n_envs):
    space = spaces.Box(0, 255, (K_FRAMES * FC, SIZE, SIZE), np.uint8)
    return FrameStackReplayBuffer(size, space, spaces.Box(-1, 1, (2,)), "cpu", n_envs=n_envs)


def filled(size, n_envs, steps):
    """The buffer and, per env, every transition added (step order) as plain tuples."""
    buf, log = buffer(size, n_envs), [[] for _ in range(n_envs)]
    for obs, next_obs, action, reward, done, infos in stream(
        n_envs, steps, k=K_FRAMES, fc=FC, size=SIZE
    ):
        buf.add(obs, next_obs, action, reward, done, infos)
        for e in range(n_envs):
            timeout = infos[e]["TimeLimit.truncated"]
            log[e].append(
                (obs[e], next_obs[e], action[e], np.float32(reward[e]), bool(done[e]), timeout)
            )
    return buf, log


def naive_window(transitions, start, length):
    """obs_t, then each transition's next_obs while the episode lasts; past its end the last
    observation repeats and action, reward and done are 0."""
    obs, actions, rewards, dones, valid = [transitions[start][0]], [], [], [], [True]
    alive = True
    for j in range(length):
        _obs, next_o, a, r, done, timeout = transitions[start + j]
        if alive:
            obs.append(next_o)
            actions.append(a)
            rewards.append(r)
            dones.append(float(done and not timeout))
            valid.append(True)
            alive = not done
        else:
            obs.append(obs[-1])
            actions.append(np.zeros_like(a))
            rewards.append(np.float32(0))
            dones.append(0.0)
            valid.append(False)
    return np.stack(obs), np.stack(actions), np.array(rewards), np.array(dones), np.array(valid)


@pytest.mark.parametrize(("size", "n_envs", "steps"), [(40, 1, 30), (40, 2, 61)])
def test_every_window_equals_the_naive_reference(size, n_envs, steps):
    buf, log = filled(size, n_envs, steps)
    stored = buf.buffer_size if buf.full else buf.pos
    length = 6
    oldest_step = steps - stored  # the ring holds the last `stored` steps of each env
    checked = 0
    for offset in range(stored - length + 1):
        step = oldest_step + offset
        row = step % buf.buffer_size
        for e in range(n_envs):
            got = buf.get_sequences(np.array([row]), np.array([e]), length)
            obs, actions, rewards, dones, valid = naive_window(log[e], step, length)
            np.testing.assert_array_equal(got.observations[0].numpy(), obs)
            np.testing.assert_array_equal(got.actions[0].numpy(), actions)
            np.testing.assert_array_equal(got.rewards[0].numpy(), rewards)
            np.testing.assert_array_equal(got.dones[0].numpy(), dones)
            np.testing.assert_array_equal(got.valid[0].numpy(), valid)
            checked += 1
    ended = [t for e in range(n_envs) for t in log[e][oldest_step:] if t[4]]
    assert checked > 20 and any(t[5] for t in ended) and any(not t[5] for t in ended)
    assert buf.full == (steps > size // n_envs)  # the second case wraps around the ring


def test_a_window_through_an_episode_end_keeps_its_last_observation_then_masks():
    buf, log = filled(40, 1, 30)
    ends = [i for i, t in enumerate(log[0]) if t[4]]
    start = ends[2] - 1  # the episode ends at the window's second transition
    got = buf.get_sequences(np.array([start]), np.array([0]), 4)
    assert got.valid[0].tolist() == [True, True, True, False, False]
    final = log[0][ends[2]][1]  # the next_obs of the ending transition
    for j in (2, 3, 4):
        np.testing.assert_array_equal(got.observations[0, j].numpy(), final)
    assert got.actions[0, 2:].abs().sum() == 0 and got.rewards[0, 2:].abs().sum() == 0


def test_the_sampler_draws_every_whole_window_and_no_other():
    buf, _ = filled(24, 2, 61)  # full: the oldest row is buf.pos
    np.random.seed(0)
    seen = set()
    real = buf.get_sequences

    def spy(starts, envs, length):
        seen.update(zip(starts.tolist(), envs.tolist(), strict=True))
        return real(starts, envs, length)

    buf.get_sequences = spy
    for _ in range(40):
        buf.sample_sequences(64, 5)
    allowed = {
        ((buf.pos + i) % buf.buffer_size, e) for i in range(buf.buffer_size - 4) for e in (0, 1)
    }
    assert seen == allowed  # never a window that would run past the newest row
    batch = buf.sample_sequences(16, 5)
    assert (
        batch.observations.shape == (16, 6, 9, SIZE, SIZE)
        and batch.observations.dtype == torch.uint8
    )
    assert batch.actions.shape == (16, 5, 2) and batch.valid.shape == (16, 6)


def test_windows_need_enough_stored_transitions():
    buf, _ = filled(40, 1, 5)
    with pytest.raises(ValueError, match=r"1 <= length <= 5"):
        buf.sample_sequences(4, 6)
    with pytest.raises(ValueError, match="length"):
        buf.sample_sequences(4, 0)
    assert buf.sample_sequences(4, 5).valid.shape == (4, 6)


@pytest.mark.parametrize(("size", "n_envs", "steps"), [(40, 1, 30), (24, 2, 61)])
def test_windows_from_the_newest_rows_mask_what_is_not_stored_yet(size, n_envs, steps):
    """The SB3 plug-in asks for windows at the rows SB3 just sampled, the newest included: steps
    past the write position (empty rows, or the oldest data of a full ring) are masked."""
    buf, log = filled(size, n_envs, steps)
    length = 5
    for back in range(1, length + 1):  # the `back`-th newest transition of each env
        step = steps - back
        row = step % buf.buffer_size
        for e in range(n_envs):
            got = buf.get_sequences(np.array([row]), np.array([e]), length)
            padded = log[e] + [(*log[e][-1][:4], True, False)] * length  # ends after the newest
            obs, _, _, _, valid = naive_window(padded, step, length)
            valid[back + 1 :] = False
            np.testing.assert_array_equal(got.valid[0].numpy(), valid)
            keep = valid.nonzero()[0]
            np.testing.assert_array_equal(got.observations[0, keep].numpy(), obs[keep])
            last = got.observations[0, keep[-1]].numpy()
            for j in np.flatnonzero(~valid):
                np.testing.assert_array_equal(got.observations[0, j].numpy(), last)
            assert got.actions[0, ~valid[1:]].abs().sum() == 0
