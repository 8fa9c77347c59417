"""DrQ-v2's update: n-step returns against a hand computation (episode ends inside the window),
the bootstrap observation of each replay window, the clipped noise with its straight-through
clamp, the σ schedule, which parameters each step moves, presets."""

import numpy as np
import pytest
import torch

from rlrep import envs
from rlrep.agents import DRQ_V2, DrQV2, config_for
from rlrep.agents.drqv2 import linear_schedule, n_step_targets, noisy_action

TINY = {"num_filters": 4, "num_layers": 2, "hidden_dim": 16, "batch_size": 8,
        "buffer_size": 200, "initial_steps": 1000}  # fmt: skip


def model(**overrides):
    m = DrQV2(envs.PointMassPixels(image_size=24, episode_length=10),
              config_for("drqv2", "cartpole-swingup", **{**TINY, **overrides}), seed=0)  # fmt: skip
    m.learn(60)  # random actions only: fills the buffer (6 episodes of 10 steps)
    return m


def test_presets_follow_the_reference_config():
    c = DRQ_V2
    assert (c.action_repeat, c.image_size, c.pad, c.batch_size, c.lr, c.n_step) == (
        2, 84, 4, 256, 1e-4, 3)  # fmt: skip
    assert (c.critic_tau, c.update_every, c.std_clip, c.initial_steps) == (0.01, 2, 0.3, 2000)
    assert (c.std_start, c.std_end, c.buffer_size) == (1.0, 0.1, 1_000_000)
    assert config_for("drqv2", "cartpole-swingup").std_steps == 100_000  # an 'easy' task
    assert config_for("drqv2", "cheetah-run").std_steps == 500_000  # 'medium'
    with pytest.raises(ValueError, match="unknown DrQ-v2 options"):
        config_for("drqv2", "cheetah-run", critic_views=2)


def test_n_step_returns_against_a_hand_computation():
    g = 0.9
    rewards = torch.tensor([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [3.0, 0.0, 0.0]])
    dones = torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]])
    valid = torch.tensor([
        [True, True, True, True],  # a whole window
        [True, True, True, False],  # terminates at the second transition
        [True, True, True, False],  # a time limit ends it after two transitions
        [True, True, False, False],  # the episode's last transition starts the window
    ])  # fmt: skip
    returns, discounts, last = n_step_targets(rewards, dones, valid, g)
    want_returns = [1 + g * 2 + g * g * 4, 1 + g * 2, 1 + g * 2, 3.0]
    want_discounts = [g**3, 0.0, g**2, g]
    torch.testing.assert_close(returns.flatten(), torch.tensor(want_returns))
    torch.testing.assert_close(discounts.flatten(), torch.tensor(want_discounts))
    assert last.tolist() == [3, 2, 2, 1]


def test_updates_bootstrap_from_the_last_observation_of_each_window(monkeypatch):
    m = model(pad=0)  # no shift: the views are the observations
    seen, rows = [], []
    real = DrQV2.update

    def spy(self, obs, actions, returns, discounts, next_obs):
        rows.append(self.replay_buffer.last_sample_slots.clone())  # one env: slot = row
        seen.append((obs, actions, returns, discounts, next_obs))
        return real(self, obs, actions, returns, discounts, next_obs)

    monkeypatch.setattr(DrQV2, "update", spy)
    np.random.seed(1)
    m.train(gradient_steps=4, batch_size=16)
    buffer, gamma = m.replay_buffer, m.gamma
    for slots, (_, _, returns, discounts, next_obs) in zip(rows, seen, strict=True):
        # Walk each window by hand from the stored transitions (one env).
        for b, row in enumerate(slots.tolist()):
            total, discount, bootstrap = 0.0, 1.0, None
            for j in range(3):
                r = (row + j) % buffer.buffer_size
                stored = buffer.full or r < buffer.pos
                if not stored or (j > 0 and buffer.dones[(r - 1) % buffer.buffer_size, 0]):
                    break
                total += discount * buffer.rewards[r, 0]
                discount *= gamma
                bootstrap = buffer._stacks(buffer.frame_ids[r, :, 1:])[0]
            assert returns[b].item() == pytest.approx(total, rel=1e-5)
            assert discounts[b].item() == pytest.approx(discount, rel=1e-5)  # DMC-like: no terminal
            torch.testing.assert_close(next_obs[b], bootstrap)
    cut = torch.cat([d.flatten() for _, _, _, d, _ in seen]) > gamma**3 + 1e-6
    assert cut.any()  # some windows cut short by an episode end or the newest row


def test_noise_is_clipped_and_the_clamp_passes_the_gradient():
    torch.manual_seed(0)
    mean = torch.tensor([0.0, 0.99, -0.99]).repeat(2000, 1)
    noise = noisy_action(mean, std=1.0, clip=0.3) - mean
    assert noise[:, 0].abs().max() <= 0.3 + 1e-6 and noise[:, 0].abs().max() > 0.29
    assert (mean + noise).abs().max() < 1.0  # kept inside (−1, 1)
    leaf = torch.tensor([0.99], requires_grad=True)
    action = noisy_action(leaf.expand(100), std=1.0, clip=0.3)
    assert (action.detach() >= 1.0 - 2e-6).any()  # some clamped at the bound
    action.sum().backward()
    assert leaf.grad.item() == pytest.approx(100.0)  # straight through, clamped or not


def test_exploration_sigma_follows_the_linear_schedule():
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 500) == pytest.approx(0.1)
    m = model(std_steps=120)
    noise = m.action_noise
    m.num_timesteps = 30
    m._sample_action(learning_starts=0, action_noise=noise)
    assert noise._sigma == pytest.approx(np.full(2, 1.0 - 0.9 * 30 / 120))


def snapshot(params):
    return [p.detach().clone() for p in params]


def test_one_update_moves_each_part_by_its_rule():
    m = model()
    with torch.no_grad():  # a target away from the online critic, so its EMA step shows
        for p in m.critic_target.parameters():
            p.add_(0.5)
    convs = list(m.encoder.convs.parameters())
    target_convs = list(m.critic_target.features_extractor.encoder.convs.parameters())
    convs0, target_convs0 = snapshot(convs), snapshot(target_convs)
    heads0, actor0 = snapshot(m._target_critic_params), snapshot(m.actor.parameters())
    m.train(gradient_steps=1, batch_size=8)
    assert all(not torch.equal(a, b) for a, b in zip(convs0, convs, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(target_convs0, target_convs, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(actor0, m.actor.parameters(), strict=True))
    for old, online, new in zip(heads0, m._critic_params, m._target_critic_params, strict=True):
        torch.testing.assert_close(new, 0.99 * old + 0.01 * online.detach())


def test_the_actor_step_leaves_the_encoder_alone():
    m = model()
    conv = m.encoder.forward_conv(m.replay_buffer.sample(8).observations.float() / 255)
    before = snapshot(m.encoder.parameters())
    m.update_actor(conv.detach(), std=0.5)
    assert all(torch.equal(a, b) for a, b in zip(before, m.encoder.parameters(), strict=True))
