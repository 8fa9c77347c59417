"""SPR-SAC: the critic and SPR's losses train the encoder in one step (SPR weighted), SPR's windows
start at the RL batch, its EMA target moves every update, presets, logs, save and load."""

import torch

from rlrep import envs
from rlrep.agents import SPR_SAC, SPRSAC, config_for

TINY = {"num_filters": 4, "num_layers": 2, "hidden_dim": 16, "batch_size": 8, "buffer_size": 200,
        "initial_steps": 1000, "spr_steps": 3, "spr_projection_dim": 8, "spr_hidden_dim": 16}  # fmt: skip


def model(**overrides):
    cfg = config_for("spr-sac", "cartpole-swingup", **{**TINY, **overrides})
    m = SPRSAC(envs.PointMassPixels(image_size=24, episode_length=10), cfg, seed=0)
    m.learn(60)  # random actions only: fills the buffer, episodes end inside windows
    return m


def batch(m, n=8):
    data = m.replay_buffer.sample(n)
    slots = m.replay_buffer.last_sample_slots.numpy()
    window = m.replay_buffer.get_sequences(slots // 1, slots % 1, m.config.spr_steps)
    obs, next_obs = m.scaled(
        m.shift.random(data.observations), m.shift.random(data.next_observations)
    )
    return obs, data.actions, data.rewards, next_obs, data.dones, window


def test_presets_follow_curl_sac_and_spr():
    c = SPR_SAC
    assert (c.batch_size, c.lr, c.alpha_lr, c.alpha_beta1, c.initial_steps) == (
        512, 1e-3, 1e-4, 0.5, 1000)  # fmt: skip
    assert (c.critic_tau, c.encoder_tau, c.actor_update_freq, c.target_update_freq) == (
        0.01, 0.05, 2, 2)  # fmt: skip
    assert (c.spr_steps, c.spr_weight, c.spr_momentum, c.image_size, c.pad) == (
        5, 5.0, 0.99, 84, 4)  # fmt: skip
    assert config_for("spr-sac", "cheetah-run").lr == 2e-4


def test_one_backward_gives_the_encoder_the_critic_gradient_plus_weighted_spr_gradient():
    m = model(spr_weight=3.0)
    args = batch(m)
    for opt in (m.critic.optimizer, m.spr_optimizer):
        opt.step = lambda *a, **k: None  # keep the weights: compare gradients
    torch.manual_seed(5)
    m.update_critic_and_spr(*args)
    together = [p.grad.clone() for p in m.encoder.parameters()]

    obs, actions, rewards, next_obs, dones, window = args
    torch.manual_seed(5)  # the same draws: the target's next actions, then SPR's shifts
    target = m.soft_target_value(next_obs, rewards, dones)
    features = m.encoder(obs)
    q1, q2 = m.critic.q_values(features, actions)
    critic = torch.nn.functional.mse_loss(q1, target) + torch.nn.functional.mse_loss(q2, target)
    spr = m.objective.sequence_loss(window.observations, window.actions, window.valid,
                                    view_first=obs, features_first=features).loss  # fmt: skip
    critic_grad = torch.autograd.grad(critic, list(m.encoder.parameters()), retain_graph=True)
    spr_grad = torch.autograd.grad(spr, list(m.encoder.parameters()))
    for g, c, s in zip(together, critic_grad, spr_grad, strict=True):
        torch.testing.assert_close(g, c + 3.0 * s)
    assert any(s.abs().sum() > 0 for s in spr_grad)


def test_spr_windows_start_at_the_transitions_sac_trains_on():
    m = model()
    seen = {}
    real_sample, real_update = m.replay_buffer.sample, m.update

    def sample(*a, **k):
        seen["data"] = real_sample(*a, **k)
        return seen["data"]

    def update(*args):
        seen["window"] = args[-1]
        return real_update(*args)

    m.replay_buffer.sample, m.update = sample, update
    m.train(gradient_steps=1, batch_size=8)
    window, data = seen["window"], seen["data"]
    assert torch.equal(window.observations[:, 0], data.observations)
    assert torch.equal(window.observations[:, 1], data.next_observations)
    torch.testing.assert_close(window.actions[:, 0], data.actions)
    assert not window.valid.all()  # episodes of 10 steps end inside some windows


def test_spr_heads_learn_and_its_target_follows_by_ema_every_update():
    m = model()
    spr = m.objective.method
    with torch.no_grad():  # a target away from the online encoder, so its EMA step shows
        for p in spr.target_encoder.parameters():
            p.add_(0.5)
    target0 = [p.clone() for p in spr.target_encoder.parameters()]
    heads0 = [p.clone() for p in spr.transition.parameters()]
    m._n_updates = 1  # an update without SAC's soft target step
    sac_target0 = [p.clone() for p in m.target_encoder.parameters()]
    m.update(*batch(m))
    assert all(
        not torch.equal(a, b) for a, b in zip(heads0, spr.transition.parameters(), strict=True)
    )
    for t0, o, t in zip(
        target0, m.encoder.parameters(), spr.target_encoder.parameters(), strict=True
    ):
        torch.testing.assert_close(t, 0.99 * t0 + 0.01 * o.detach())
    for a, b in zip(sac_target0, m.target_encoder.parameters(), strict=True):
        assert torch.equal(a, b)  # SAC's target encoder moves every target_update_freq only


def test_training_logs_spr_and_saves_its_state(tmp_path):
    m = model(initial_steps=20)
    m.learn(10, reset_num_timesteps=False)
    keys = m.logger.name_to_value
    assert {"aux/loss", "aux/cosine", "train/critic_loss"} <= set(keys)
    assert not [k for k in keys if k.startswith("train/spr")]  # one naming: aux/*
    obs = m.replay_buffer.sample(4).observations.cpu().numpy()
    action = m.predict(obs, deterministic=True)[0]
    m.save(tmp_path / "spr.zip")
    loaded = SPRSAC.load(tmp_path / "spr.zip", env=envs.PointMassPixels(image_size=24))
    assert (loaded.predict(obs, deterministic=True)[0] == action).all()
    for a, b in zip(m.objective.state_dict().values(), loaded.objective.state_dict().values(),
                    strict=True):  # fmt: skip
        torch.testing.assert_close(a.cpu(), b.cpu())
    assert loaded.spr_optimizer.state_dict()["state"]  # Adam's moments came back too
