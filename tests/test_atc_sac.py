"""ATC-SAC: the RL losses leave the convs to ATC (decoupled), ATC's step (its own windows, the
cosine learning rate, gradient clipping, the EMA target), presets, save and load."""

import pytest
import torch

from rlrep import envs
from rlrep.agents import ATC_SAC, ATCSAC, config_for

TINY = {"num_filters": 4, "num_layers": 2, "hidden_dim": 16, "batch_size": 8, "atc_batch_size": 8,
        "buffer_size": 200, "initial_steps": 1000, "atc_latent_dim": 8, "atc_hidden_dim": 16}  # fmt: skip


def model(**overrides):
    cfg = config_for("atc-sac", "cartpole-swingup", **{**TINY, **overrides})
    m = ATCSAC(envs.PointMassPixels(image_size=24), cfg, seed=0)
    m.learn(40)  # random actions only: fills the buffer
    return m


def snapshot(params):
    return [p.detach().clone() for p in params]


def moved(before, params):
    return [not torch.equal(b, p) for b, p in zip(before, params, strict=True)]


def test_presets_follow_the_reference_config():
    c = ATC_SAC
    assert (c.batch_size, c.lr, c.alpha_lr, c.alpha_beta1, c.initial_steps) == (
        256, 1e-3, 1e-4, 0.5, 10_000)  # fmt: skip
    assert (c.critic_tau, c.encoder_tau, c.atc_momentum, c.atc_lr, c.atc_clip_grad_norm) == (
        0.01, 0.05, 0.99, 1e-3, 10.0)  # fmt: skip
    assert (c.atc_latent_dim, c.atc_hidden_dim, c.atc_delta_t, c.pad, c.decoupled) == (
        128, 512, 1, 4, True)  # fmt: skip
    cheetah = config_for("atc-sac", "cheetah-run")
    assert (cheetah.lr, cheetah.batch_size, cheetah.atc_batch_size) == (2e-4, 512, 512)


@pytest.mark.parametrize("decoupled", [True, False])
def test_the_rl_update_trains_the_convs_only_when_coupled(decoupled):
    m = model(decoupled=decoupled)
    data = m.replay_buffer.sample(8)
    convs, head = list(m.encoder.convs.parameters()), list(m.encoder.head.parameters())
    convs0, head0 = snapshot(convs), snapshot(head)
    m.update_critic(*m.scaled(data.observations), data.actions, data.rewards,
                    *m.scaled(data.next_observations), data.dones)  # fmt: skip
    assert all(moved(head0, head))  # fc1 learns from the critic either way
    assert any(moved(convs0, convs)) != decoupled


def test_the_atc_step_trains_the_convs_clips_and_moves_its_target():
    m = model(atc_clip_grad_norm=1e-3)
    atc = m.objective.method
    convs = list(m.encoder.convs.parameters())
    convs0 = snapshot(convs)
    with torch.no_grad():  # a target away from the online convs, so its EMA step shows
        for p in atc.target_encoder.parameters():
            p.add_(0.5)
    target0 = snapshot(atc.target_encoder.parameters())
    window = m.replay_buffer.sample_sequences(8, 1)
    loss = m.update_atc(window.observations, window.valid)
    assert torch.isfinite(loss) and all(moved(convs0, convs))
    grads = [p.grad for group in m.atc_optimizer.param_groups for p in group["params"]]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    assert total <= 1e-3 * (1 + 1e-4)  # clipped to the configured norm
    for t0, o, t in zip(target0, convs, atc.target_encoder.parameters(), strict=True):
        torch.testing.assert_close(t, 0.99 * t0 + 0.01 * o.detach())


def test_the_atc_learning_rate_follows_a_cosine_over_its_horizon():
    m = model(atc_lr_steps=400)
    for step, factor in ((0, 1.0), (200, 0.5), (400, 0.0), (1000, 0.0), (100, 0.5 * (1 + 2**-0.5))):
        m.num_timesteps = step
        assert m.atc_lr() == pytest.approx(1e-3 * factor)
    m = model(atc_lr_steps=0)  # constant
    m.num_timesteps = 10**6
    assert m.atc_lr() == 1e-3
    assert config_for("atc-sac", "cartpole-swingup").atc_lr_steps == 47_500  # the reference run


def test_training_logs_atc_and_saves_its_state(tmp_path):
    m = model(initial_steps=20)
    m.learn(10, reset_num_timesteps=False)
    keys = m.logger.name_to_value
    assert {"aux/loss", "aux/accuracy", "train/critic_loss"} <= set(keys)
    assert not [k for k in keys if k.startswith("train/atc")]  # one naming: aux/*
    obs = m.replay_buffer.sample(4).observations.cpu().numpy()
    action = m.predict(obs, deterministic=True)[0]
    m.save(tmp_path / "atc.zip")
    loaded = ATCSAC.load(tmp_path / "atc.zip", env=envs.PointMassPixels(image_size=24))
    assert (loaded.predict(obs, deterministic=True)[0] == action).all()
    for a, b in zip(m.objective.state_dict().values(), loaded.objective.state_dict().values(),
                    strict=True):  # fmt: skip
        torch.testing.assert_close(a.cpu(), b.cpu())
