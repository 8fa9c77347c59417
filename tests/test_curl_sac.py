"""CURL-SAC's update rule: which parameters move, with which τ, on which schedule."""

import numpy as np
import pytest
import torch

from rlrep import envs
from rlrep.agents import curl_sac as curl_sac_module
from rlrep.agents.curl_sac import CURLSAC
from rlrep.agents.presets import CURL_SAC, curl_sac_config
from rlrep.envs import action_repeat_of

TINY = {
    "num_filters": 4,
    "num_layers": 2,
    "hidden_dim": 16,
    "batch_size": 8,
    "buffer_size": 200,
    "initial_steps": 1000,
}


def model(**overrides):
    cfg = curl_sac_config("cartpole-swingup", **{**TINY, **overrides})
    m = CURLSAC(envs.PointMassPixels(image_size=100), cfg, seed=0)
    m.learn(40)  # random actions only (initial_steps > 40): fills the buffer
    return m


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(before, module):
    return [not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True)]


def test_presets_resolve_per_task():
    # Table 3: the action repeat (applied by the env) and the learning rate per task.
    table = {"finger-spin": 2, "walker-walk": 2, "cartpole-swingup": 8, "cheetah-run": 4,
             "reacher-easy": 4, "ball_in_cup-catch": 4}  # fmt: skip
    for task, repeat in table.items():
        cfg = curl_sac_config(task)
        assert action_repeat_of(task, cfg.action_repeat) == repeat, task
        assert cfg.lr == (2e-4 if task == "cheetah-run" else 1e-3), task
    assert curl_sac_config("walker-walk", batch_size=128).batch_size == 128
    c = CURL_SAC
    assert (c.critic_tau, c.encoder_tau, c.init_temperature, c.alpha_lr, c.alpha_beta1) == (
        0.01,
        0.05,
        0.1,
        1e-4,
        0.5,
    )
    assert (
        c.hidden_dim,
        c.features_dim,
        c.num_filters,
        c.num_layers,
        c.image_size,
        c.crop_size,
    ) == (1024, 50, 32, 4, 100, 84)
    with pytest.raises(ValueError, match="unknown CURL-SAC options"):
        curl_sac_config("walker-walk", batchsize=128)


def test_wiring_and_optimisers():
    m = model()
    encoder = m.critic.features_extractor.encoder
    assert m.objective.method.key_encoder is m.critic_target.features_extractor.encoder
    assert m.log_ent_coef.exp().item() == pytest.approx(0.1)
    assert m.target_entropy == -2.0  # −|A|
    group = m.ent_coef_optimizer.param_groups[0]
    assert group["lr"] == 1e-4 and group["betas"] == (0.5, 0.999)
    curl_ids = {id(p) for g in m.curl_optimizer.param_groups for p in g["params"]}
    assert (
        id(m.objective.method.W) in curl_ids and {id(p) for p in encoder.parameters()} <= curl_ids
    )  # curl#28 quirk
    single = model(double_encoder_step=False)
    assert {id(p) for g in single.curl_optimizer.param_groups for p in g["params"]} == {
        id(single.objective.method.W)
    }


def test_one_update_moves_each_part_by_its_rule(monkeypatch):
    m = model()
    critic, target, actor = m.critic, m.critic_target, m.actor
    q_nets, target_q_nets = (
        torch.nn.ModuleList(critic.q_networks),
        torch.nn.ModuleList(target.q_networks),
    )
    enc, target_enc = critic.features_extractor.encoder, target.features_extractor.encoder
    q_before, tq_before = snapshot(q_nets), snapshot(target_q_nets)
    tenc_before = snapshot(target_enc)
    seen = {}
    original_actor = CURLSAC.update_actor_and_alpha

    def spy_actor(self, obs, **kwargs):
        seen["enc_before_actor"] = snapshot(enc)
        seen["head_before_actor"] = snapshot(actor.features_extractor.head)
        out = original_actor(self, obs, **kwargs)
        seen["enc_after_actor"] = snapshot(enc)
        return out

    def spy_curl(self, anchor, positive, *args):
        seen["enc_at_target_update"] = snapshot(enc)  # targets are updated before the CURL step
        return original_curl(self, anchor, positive, *args)

    original_curl = CURLSAC.update_curl
    monkeypatch.setattr(CURLSAC, "update_actor_and_alpha", spy_actor)
    monkeypatch.setattr(CURLSAC, "update_curl", spy_curl)
    m.train(gradient_steps=1, batch_size=8)

    # The actor's update leaves the shared conv encoder untouched and trains its own head.
    assert all(
        torch.equal(a, b)
        for a, b in zip(seen["enc_before_actor"], seen["enc_after_actor"], strict=True)
    )
    assert any(changed(seen["head_before_actor"], actor.features_extractor.head))
    # Q heads moved (critic step); their targets by τ = 0.01, the target encoder by τ = 0.05.
    assert all(changed(q_before, q_nets))
    for t, old, q in zip(target_q_nets.parameters(), tq_before, q_nets.parameters(), strict=True):
        torch.testing.assert_close(t, 0.99 * old + 0.01 * q)
    for t, old, e in zip(
        target_enc.parameters(), tenc_before, seen["enc_at_target_update"], strict=True
    ):
        torch.testing.assert_close(t, 0.95 * old + 0.05 * e)
    # The CURL step then moved the encoder again, and W.
    assert any(changed(seen["enc_at_target_update"], enc))


def test_update_schedule(monkeypatch):
    m = model()
    calls = []
    for name in ("update_critic", "update_actor_and_alpha", "update_curl"):
        original = getattr(CURLSAC, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            calls.append((self._n_updates, _name))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(CURLSAC, name, spy)
    polyaks = []
    original_polyak = curl_sac_module.polyak_update
    monkeypatch.setattr(
        curl_sac_module,
        "polyak_update",
        lambda p, t, tau: (polyaks.append(tau), original_polyak(p, t, tau)),
    )
    m.train(gradient_steps=4, batch_size=8)
    by_step = {s: [n for t, n in calls if t == s] for s in range(4)}
    assert by_step[0] == by_step[2] == ["update_critic", "update_actor_and_alpha", "update_curl"]
    assert by_step[1] == by_step[3] == ["update_critic", "update_curl"]
    assert polyaks == [0.01, 0.05, 0.01, 0.05]  # every 2 steps: Q heads, then encoder


def test_save_load_and_center_crop_evaluation(tmp_path):
    m = model()
    m.train(gradient_steps=2, batch_size=8)
    m.save(tmp_path / "curl.zip")
    loaded = CURLSAC.load(tmp_path / "curl.zip", env=envs.PointMassPixels(image_size=100))
    obs = np.stack([envs.PointMassPixels(image_size=100).reset(seed=s)[0] for s in range(4)])
    assert np.array_equal(
        m.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    assert torch.equal(m.objective.method.W, loaded.objective.method.W)
    assert loaded.config == m.config
    loaded.learn(5)


def _orthogonal(weight: torch.Tensor) -> bool:
    w = weight.detach().double()
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return torch.allclose(gram, torch.eye(gram.shape[0], dtype=gram.dtype), atol=1e-5)


def test_heads_start_from_curls_weight_init_and_log_std_mapping():
    m = CURLSAC(envs.PointMassPixels(image_size=100), curl_sac_config("cartpole-swingup", **TINY))
    linears = [
        layer for q in m.critic.q_networks for layer in q if isinstance(layer, torch.nn.Linear)
    ]
    linears += [layer for layer in m.actor.latent_pi if isinstance(layer, torch.nn.Linear)]
    assert len(linears) == 3 * 2 + 2
    for layer in linears:
        assert _orthogonal(layer.weight) and not layer.bias.any()
    # μ and log σ rows come from one orthogonal (2A, h) matrix, as CURL's single output layer.
    joint = torch.cat([m.actor.mu.weight, m.actor.log_std.weight])
    assert _orthogonal(joint) and not m.actor.mu.bias.any() and not m.actor.log_std.bias.any()
    # The target critic starts as the critic.
    for a, b in zip(m.critic.parameters(), m.critic_target.parameters(), strict=True):
        assert torch.equal(a, b)
    # log σ = −10 + 6·(tanh(x) + 1): in (−10, 2), and ≈ −4 (σ ≈ 0.02) for small pre-activations.
    features = torch.randn(64, m.actor.features_dim) * 0.01
    _, log_std = m.actor.dist_params(features)
    x = m.actor.log_std(m.actor.latent_pi(features))
    torch.testing.assert_close(log_std, -10 + 6 * (torch.tanh(x) + 1))
    assert log_std.min() > -10 and log_std.max() < 2


def test_training_logs_curl_under_aux_and_the_rl_losses_under_train(monkeypatch):
    # One metric naming for the plug-in, the agents and pretraining: the auxiliary objective's
    # values are aux/*, the RL losses train/*.
    m = model(initial_steps=20)
    losses, update_curl = [], m.update_curl

    def recorded(*args):
        losses.append(update_curl(*args))
        return losses[-1]

    monkeypatch.setattr(m, "update_curl", recorded)
    m.learn(10, reset_num_timesteps=False)
    keys = m.logger.name_to_value
    assert {"aux/loss", "aux/accuracy", "train/critic_loss", "train/actor_loss"} <= set(keys)
    assert not [k for k in keys if "curl" in k]
    assert keys["aux/loss"] == pytest.approx(losses[-1].item())  # the last train() call's step
