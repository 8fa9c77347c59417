"""Real Atari (the Arcade Learning Environment) through SB3's own recipe, ``make_atari_env`` +
``VecFrameStack``: stacks of grayscale 84×84 frames, one channel per frame, which rlrep's
extractor and ``FrameStackReplayBuffer`` must treat as such. Tiny budgets (a few hundred steps,
a small encoder): what is checked is the wiring on the real env, not learning.

Skipped without ``ale-py`` (ROMs included since 0.9) and OpenCV (SB3's ``AtariWrapper`` resizes
frames with it): ``pip install ale-py opencv-python-headless``.
"""

import csv

import numpy as np
import pytest

ale_py = pytest.importorskip("ale_py")
pytest.importorskip("cv2", reason="SB3's AtariWrapper needs OpenCV: pip install opencv-python")

import gymnasium  # noqa: E402
from stable_baselines3 import DQN, PPO  # noqa: E402
from stable_baselines3.common.buffers import ReplayBuffer  # noqa: E402
from stable_baselines3.common.env_util import make_atari_env  # noqa: E402
from stable_baselines3.common.logger import configure  # noqa: E402
from stable_baselines3.common.vec_env import VecFrameStack  # noqa: E402

from rlrep.sb3 import FrameStackReplayBuffer, RepresentationExtractor, policy_kwargs  # noqa: E402
from tests.test_buffer import assert_same_samples  # noqa: E402

gymnasium.register_envs(ale_py)  # the NoFrameskip-v4 ids (importing ale_py registers them too)

# Breakout: 5 lives, and SB3's AtariWrapper ends an episode at each lost life, so a random
# policy ends several episodes within 160 steps (buffer boundaries on real data).
GAME = "BreakoutNoFrameskip-v4"
FRAME = 84 * 84  # bytes of one grayscale frame after SB3's WarpFrame
SMALL = {"encoder_kwargs": {"num_filters": 8, "num_layers": 2}, "net_arch": [32]}


def atari(n_stack: int = 4, n_envs: int = 1) -> VecFrameStack:
    return VecFrameStack(make_atari_env(GAME, n_envs=n_envs, seed=0), n_stack=n_stack)


def logged(model, tmp_path) -> list[dict[str, str]]:
    """The rows of the model's CSV log (the last values dumped too)."""
    model.logger.dump(model.num_timesteps)
    with open(tmp_path / "progress.csv") as f:
        return list(csv.DictReader(f))


def values(rows, key) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key) not in (None, "")]


def frame_channels(model) -> set[int]:
    return {
        m.frame_channels for m in model.policy.modules() if isinstance(m, RepresentationExtractor)
    }


class Mirror:
    """SB3's own ``ReplayBuffer`` of the same capacity, fed every transition the model adds to its
    ``FrameStackReplayBuffer``; and the frames those transitions bring that no earlier one had
    (each step's newest frame, and the distinct frames of an episode's first stack)."""

    def __init__(self, model) -> None:
        ours = model.replay_buffer
        self.naive = ReplayBuffer(ours.buffer_size * ours.n_envs, model.observation_space,
                                  model.action_space, n_envs=ours.n_envs)  # fmt: skip
        self.new_frames, self.adds, self._starts = 0, 0, [True] * ours.n_envs
        add = ours.add

        def both(obs, next_obs, action, reward, done, infos):
            add(obs, next_obs, action, reward, done, infos)
            self.naive.add(obs, next_obs, action, reward, done, infos)
            k = ours.k
            for e, start in enumerate(self._starts):
                frames = obs[e].reshape(k, -1)
                distinct = 1 + sum(
                    not np.array_equal(frames[j], frames[j - 1]) for j in range(1, k)
                )
                self.new_frames += 1 + (distinct if start else 0)
            self._starts = [bool(d) for d in done]
            self.adds += 1

        ours.add = both


@pytest.mark.parametrize(
    ("method", "n_stack"),
    [("curl", 4),  # SB3's recipe: 4 channels, 1 per frame from the start
     ("atc", 3)],  # 3 channels look like one RGB frame: the VecFrameStack must settle it (1)
)  # fmt: skip
def test_dqn_with_an_aux_loss_and_the_frame_buffer_on_atari(method, n_stack, tmp_path):
    model = DQN("CnnPolicy", atari(n_stack), buffer_size=100, learning_starts=48, batch_size=16,
                train_freq=4, target_update_interval=50, seed=0,
                replay_buffer_class=FrameStackReplayBuffer,
                policy_kwargs=policy_kwargs(method=method, augmentation="shift", **SMALL))  # fmt: skip
    assert model.observation_space.shape == (n_stack, 84, 84)  # SB3 transposed to channels first
    mirror = Mirror(model)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(160, log_interval=1)
    buffer = model.replay_buffer

    # One channel per frame, for the extractors and the buffer.
    assert frame_channels(model) == {1}
    assert buffer.frame_channels == 1 and buffer.k == n_stack

    # The aux loss trained with DQN's loss, its metrics in SB3's logger.
    rows = logged(model, tmp_path)
    loss = values(rows, "aux/loss")
    assert loss and all(np.isfinite(loss)) and values(rows, "train/n_updates")
    accuracy = values(rows, "aux/accuracy")
    assert accuracy and all(0 <= a <= 1 for a in accuracy)

    # The buffer wrapped around several episodes (lost lives) and returns what SB3's would.
    naive = mirror.naive
    assert buffer.full and naive.full and mirror.adds == 160
    assert naive.dones.sum() >= 2, "no episode ended: the boundaries are not exercised"
    assert_same_samples(buffer, naive, np.arange(buffer.buffer_size).repeat(2))

    # Each frame stored once: the frames written are the new ones only, and the bytes held per
    # transition about one frame's, where SB3's buffer keeps 2 stacks of n_stack frames.
    assert buffer.frames_written == mirror.new_frames
    ours = buffer.nbytes_per_transition()
    arrays = (naive.observations, naive.next_observations, naive.actions, naive.rewards,
              naive.dones, naive.timeouts)  # fmt: skip
    sb3 = sum(a.nbytes for a in arrays) / naive.buffer_size
    assert ours < 1.5 * FRAME and sb3 > 2 * n_stack * FRAME
    print(f"{method}, {n_stack} frames: {sb3 / ours:.1f}x less replay memory than SB3's")

    if method == "atc":  # its windows: obs_t, obs_t+1, obs_t+2 while the episode lasts
        rows = np.arange(buffer.buffer_size)
        seq = buffer.get_sequences(rows, np.zeros_like(rows), 2)
        first, nxt = naive.observations[:, 0], naive.next_observations[:, 0]
        assert np.array_equal(seq.observations[:, 0].numpy(), first)
        assert np.array_equal(seq.observations[:, 1].numpy(), nxt)
        # obs_t+2 is in the window unless transition t ended the episode or t is the newest.
        valid = seq.valid[:, 2].numpy()
        newest = (buffer.pos - 1) % buffer.buffer_size
        assert np.array_equal(valid, (naive.dones[:, 0] == 0) & (rows != newest))
        assert np.array_equal(seq.observations[valid, 2].numpy(), np.roll(nxt, -1, 0)[valid])


def test_ppo_with_an_aux_loss_on_atari(tmp_path):
    model = PPO("CnnPolicy", atari(n_envs=2), n_steps=32, batch_size=32, n_epochs=1, seed=0,
                policy_kwargs=policy_kwargs(method="simclr", augmentation="crop",
                                            rl_view="deterministic", **SMALL))  # fmt: skip
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(128, log_interval=1)
    extractor = model.policy.features_extractor
    assert frame_channels(model) == {1} and extractor.view_shape == (4, 71, 71)  # 84% crops
    rows = logged(model, tmp_path)
    loss, accuracy = values(rows, "aux/loss"), values(rows, "aux/accuracy")
    assert len(loss) == 2 and all(np.isfinite(loss))  # one mean per PPO update
    assert accuracy and all(0 <= a <= 1 for a in accuracy)


@pytest.mark.parametrize("augmentation", ["crop+color_jitter", "simclr", "crop+grayscale"])
def test_colour_augmentations_are_refused_on_atari_frames(augmentation):
    with pytest.raises(ValueError, match=r"needs RGB frames, but frame_channels=1"):
        PPO("CnnPolicy", atari(), policy_kwargs=policy_kwargs(method="simclr",
                                                              augmentation=augmentation))  # fmt: skip
