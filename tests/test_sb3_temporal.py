"""Temporal methods (ATC, SPR, CPC, SAC-AE) as aux losses of stock SB3: the windows start at the
batch SB3 trains on, actions come from the replay buffer (one-hot for DQN), clear errors where
a buffer cannot give windows, and the decoupled mode keeps the RL gradient out of the convs."""

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import configure

import rlrep.methods as M
from rlrep import envs
from rlrep.sb3 import FrameStackReplayBuffer, SharedEncoderSACPolicy, policy_kwargs

SMALL = {"encoder_kwargs": {"num_filters": 8, "num_layers": 2}, "net_arch": [32, 32]}
MOVES = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)


def env(discrete=False):
    e = envs.PointMassPixels(image_size=24, frame_stack=3, episode_length=12)
    return (
        gym.wrappers.TransformAction(e, lambda a: MOVES[a], gym.spaces.Discrete(4))
        if discrete
        else e
    )


def model(algo=SAC, method="atc", discrete=False, buffer=FrameStackReplayBuffer, policy="CnnPolicy",
          **kwargs):  # fmt: skip
    options = {"buffer_size": 300, "learning_starts": 1000, "batch_size": 16, "seed": 0}
    if buffer is not None:
        options["replay_buffer_class"] = buffer
    pk = policy_kwargs(method=method, **{**SMALL, **kwargs})
    m = algo(policy, env(discrete), policy_kwargs=pk, **options)
    m.learn(60)  # random actions only (learning_starts > 60): fills the buffer
    return m


def spy(monkeypatch, cls, calls):
    real = cls.forward

    def forward(self, views, actions=None, valid=None, features_a=None):
        calls.append((views.detach().clone(), None if actions is None else actions.clone(), valid))
        return real(self, views, actions, valid, features_a)

    monkeypatch.setattr(cls, "forward", forward)


def spy_samples(monkeypatch, buffer, samples):
    real = buffer.sample

    def sample(*args, **kwargs):
        samples.append(real(*args, **kwargs))
        return samples[-1]

    monkeypatch.setattr(buffer, "sample", sample)


def test_atc_positives_are_the_next_observations_of_the_batch_sb3_trains_on(monkeypatch):
    m = model(policy=SharedEncoderSACPolicy, augmentation=None,
              method_kwargs={"latent_dim": 8, "hidden_dim": 16})  # fmt: skip
    calls, samples = [], []
    spy(monkeypatch, M.ATC, calls)
    spy_samples(monkeypatch, m.replay_buffer, samples)
    m.train(gradient_steps=2, batch_size=16)
    assert len(calls) == len(samples) == 2  # one aux loss per critic step, on that step's batch
    for (views, _, valid), sample in zip(calls, samples, strict=True):
        # No augmentation: the anchor is the observation, the positive obs_{t+1} = next_obs
        # (an episode's last next_obs included: same episode), all valid.
        torch.testing.assert_close(views[:, 0], sample.observations.float() / 255)
        torch.testing.assert_close(views[:, 1], sample.next_observations.float() / 255)
        assert valid.all()


def test_spr_rolls_out_the_replayed_actions_one_hot_under_dqn(monkeypatch):
    m = model(DQN, "spr", discrete=True, augmentation=None,
              method_kwargs={"steps": 3, "projection_dim": 8, "hidden_dim": 16})  # fmt: skip
    calls, samples = [], []
    spy(monkeypatch, M.SPR, calls)
    spy_samples(monkeypatch, m.replay_buffer, samples)
    m.train(gradient_steps=3, batch_size=16)
    method = m.policy.q_net.features_extractor.method
    assert method.discrete_actions and method.action_dim == 4
    windows_seen = 0
    for (views, actions, valid), sample in zip(calls, samples, strict=True):
        assert views.shape[:2] == (16, 4) and actions.shape[:2] == (16, 3)
        torch.testing.assert_close(actions[:, 0].long(), sample.actions.long())
        torch.testing.assert_close(views[:, 1], sample.next_observations.float() / 255)
        # Past an episode end the window is masked (episodes of 12 steps: some end inside).
        ended = sample.dones.flatten() > 0
        assert not valid[ended][:, 2:].any()
        windows_seen += int((~valid).any())
    assert windows_seen  # some window crossed an episode end


@pytest.mark.parametrize("name", ["atc", "spr", "cpc", "time_sup_con"])
def test_a_buffer_without_windows_is_refused_naming_the_fix(name):
    kwargs = {"spr": {"method_kwargs": {"steps": 2}}}.get(name, {})
    m = model(method=name, buffer=ReplayBuffer, **kwargs)
    with pytest.raises(ValueError, match=r"replay_buffer_class=rlrep\.sb3\.FrameStackReplayBuffer"):
        m.train(gradient_steps=1, batch_size=16)
    ppo = PPO("CnnPolicy", env(), n_steps=16, batch_size=16, seed=0,
              policy_kwargs=policy_kwargs(method=name, **SMALL, **kwargs))  # fmt: skip
    with pytest.raises(ValueError, match="off-policy algorithm"):
        ppo.learn(16)


def test_sac_ae_needs_no_replay_windows_and_logs_its_reconstruction(tmp_path):
    ppo = PPO("CnnPolicy", env(), n_steps=16, batch_size=16, n_epochs=1, seed=0,
              policy_kwargs=policy_kwargs(method="sac_ae", augmentation=None, **SMALL,
                                          method_kwargs={"num_filters": 8}))  # fmt: skip
    ppo.set_logger(configure(str(tmp_path), ["csv"]))
    ppo.learn(32)
    with open(tmp_path / "progress.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("aux/reconstruction_mse")]
    assert rows and np.isfinite(float(rows[-1]["aux/reconstruction_mse"]))


def encoder_change(m):
    """How far three gradient steps move the critic encoder's convs and its head (fc + LN)."""
    encoder = m.critic.features_extractor.encoder
    parts = [list(encoder.convs.parameters()), list(encoder.head.parameters())]
    before = [[p.detach().clone() for p in part] for part in parts]
    m.train(gradient_steps=3, batch_size=16)
    return [
        max((p - b).abs().max().item() for p, b in zip(part, saved, strict=True))
        for part, saved in zip(parts, before, strict=True)
    ]


@pytest.mark.parametrize("decoupled", [False, True])
def test_decoupled_keeps_the_rl_gradient_out_of_the_convs(decoupled, monkeypatch):
    """With the aux loss zeroed, the encoder moves by the RL gradient only: its head either way,
    its convs only when coupled. With it, the decoupled convs move (the aux loss trains them)."""
    kwargs = {"method_kwargs": {"latent_dim": 8, "hidden_dim": 16}, "decoupled": decoupled}
    convs, head = encoder_change(model(policy=SharedEncoderSACPolicy, **kwargs))
    assert convs > 0 and head > 0
    real = M.ATC.forward

    def zero_loss(self, *args, **kw):
        out = real(self, *args, **kw)
        return out._replace(loss=out.loss * 0)

    monkeypatch.setattr(M.ATC, "forward", zero_loss)
    convs, head = encoder_change(model(policy=SharedEncoderSACPolicy, **kwargs))
    assert head > 0 and (convs == 0) == decoupled


def test_decoupled_needs_a_method():
    with pytest.raises(ValueError, match="decoupled=True leaves the encoder's convs"):
        SAC("CnnPolicy", env(), policy_kwargs=policy_kwargs(decoupled=True, **SMALL))
