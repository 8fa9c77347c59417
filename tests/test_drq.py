"""DrQ's update: the target averaged over K shifts of next_obs, the critic loss summed over M
shifts of obs, the whole critic's soft update, the schedule, presets and the CLI."""

import pytest
import torch
import torch.nn.functional as F

from rlrep import envs
from rlrep.agents import DRQ, DrQ, config_for
from rlrep.envs import action_repeat_of

TINY = {"num_filters": 4, "num_layers": 2, "hidden_dim": 16, "batch_size": 8,
        "buffer_size": 200, "initial_steps": 1000}  # fmt: skip


def model(**overrides):
    m = DrQ(envs.PointMassPixels(image_size=24), config_for("drq", "cartpole-swingup",
            **{**TINY, **overrides}), seed=0)  # fmt: skip
    m.learn(40)  # random actions only: fills the buffer
    return m


def batch(m, n=8):
    data = m.replay_buffer.sample(n)
    obs = [m.shift.random(data.observations) for _ in range(2)]
    next_obs = [m.shift.random(data.next_observations) for _ in range(2)]
    return obs, data.actions, data.rewards, next_obs, data.dones


def test_presets_follow_the_reference_config():
    c = DRQ
    assert (c.image_size, c.pad, c.frame_stack, c.batch_size, c.lr, c.alpha_lr) == (
        84, 4, 3, 512, 1e-3, 1e-3)  # fmt: skip
    assert (c.critic_tau, c.actor_update_freq, c.target_update_freq, c.init_temperature) == (
        0.01, 2, 2, 0.1)  # fmt: skip
    assert (c.target_views, c.critic_views, c.encoder_tanh, c.hidden_dim) == (2, 2, True, 1024)
    for task, repeat in {"cartpole-swingup": 8, "walker-walk": 2, "cheetah-run": 4}.items():
        assert action_repeat_of(task, config_for("drq", task).action_repeat) == repeat
    with pytest.raises(ValueError, match="unknown DrQ options"):
        config_for("drq", "cartpole-swingup", crop_size=84)
    with pytest.raises(ValueError, match="DrQ option target_views must be > 0"):
        config_for("drq", "cartpole-swingup", target_views=0)


def sac_target(m, view, rewards, dones):
    """SAC's soft target for one view of next_obs, written out (DrQ Eq. 10's summand)."""
    conv = m.encoder.forward_conv(view)
    mean, log_std = m.actor.dist_params(m.actor.features_extractor.head(conv))
    u = mean + log_std.exp() * torch.randn_like(mean)
    action = torch.tanh(u)
    log_prob = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(1, keepdim=True)
    log_prob = log_prob - torch.log(1 - action.pow(2) + 1e-6).sum(1, keepdim=True)
    q = torch.min(*m.critic_target.q_values(m.target_encoder(view), action))
    alpha = m.log_ent_coef.exp()
    return rewards + (1 - dones) * m.gamma * (q - alpha * log_prob)


def test_the_target_is_the_mean_over_the_shifts_of_next_obs():
    m = model()
    _, _, rewards, next_obs, dones = batch(m)
    views = list(m.scaled(*next_obs))
    with torch.no_grad():
        torch.manual_seed(3)
        explicit = [sac_target(m, v, rewards, dones) for v in views]
        torch.manual_seed(3)
        averaged = m.target_value(rewards, views, dones)
    torch.testing.assert_close(averaged, (explicit[0] + explicit[1]) / 2, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(explicit[0], explicit[1])  # the two shifts differ


def test_the_critic_loss_sums_both_shifts_of_obs(monkeypatch):
    m = model()
    obs, actions, rewards, next_obs, dones = batch(m)
    views, targets = list(m.scaled(*obs)), list(m.scaled(*next_obs))
    torch.manual_seed(4)
    with torch.no_grad():
        target = m.target_value(rewards, targets, dones)
        expected = sum(F.mse_loss(q, target) for v in views
                       for q in m.critic.q_values(m.encoder(v), actions))  # fmt: skip
    torch.manual_seed(4)
    loss = m.update_critic(views, actions, rewards, targets, dones)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def test_one_update_moves_each_part_by_its_rule():
    m = model()
    with torch.no_grad():  # a target away from the online critic, so its EMA step shows
        for p in m.critic_target.parameters():
            p.add_(0.5)
    encoder0, actor0 = snapshot(m.encoder), snapshot(m.actor)
    critic0, target0 = snapshot(m.critic), snapshot(m.critic_target)
    m._n_updates = 0  # an update with the actor and target steps
    metrics = m.update(*batch(m))
    assert {"critic_loss", "actor_loss", "ent_coef_loss"} <= set(metrics)
    assert all(not torch.equal(a, b) for a, b in zip(encoder0, snapshot(m.encoder), strict=True))
    # The actor's parameters (its head and MLP: its convs are the critic's) move.
    assert any(not torch.equal(a, b) for a, b in zip(actor0, snapshot(m.actor), strict=True))
    # The whole critic, encoder included, is followed with τ = 0.01.
    for old_t, online, new_t in zip(target0, m.critic.parameters(), m.critic_target.parameters(),
                                    strict=True):  # fmt: skip
        torch.testing.assert_close(new_t, 0.99 * old_t + 0.01 * online.detach())
    assert any(not torch.equal(a, b) for a, b in zip(critic0, snapshot(m.critic), strict=True))
    # An odd update: the critic only.
    m._n_updates = 1
    actor1, target1 = snapshot(m.actor), snapshot(m.critic_target)
    metrics = m.update(*batch(m))
    assert set(metrics) == {"critic_loss"}
    assert all(torch.equal(a, b) for a, b in zip(actor1, snapshot(m.actor), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(target1, snapshot(m.critic_target), strict=True))


def test_acting_reads_the_unshifted_observation_and_save_load(tmp_path):
    m = model()
    obs = m.replay_buffer.sample(4).observations.cpu().numpy()
    a1, _ = m.predict(obs, deterministic=True)
    a2, _ = m.predict(obs, deterministic=True)
    assert (a1 == a2).all()  # no random shift when acting
    m.save(tmp_path / "drq.zip")
    loaded = DrQ.load(tmp_path / "drq.zip", env=envs.PointMassPixels(image_size=24))
    assert (loaded.predict(obs, deterministic=True)[0] == a1).all()
