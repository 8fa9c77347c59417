"""rlrep.sb3 with stock SB3: gradients, targets, eval views, save/load, wiring, logging, errors."""

import csv

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.logger import configure

import rlrep.losses as L
from rlrep import envs
from rlrep.sb3 import (
    FrameStackReplayBuffer,
    RepresentationExtractor,
    RepresentationLogger,
    SharedEncoderSACPolicy,
    SharedEncoderTD3Policy,
    policy_kwargs,
)

SMALL = {"encoder_kwargs": {"num_filters": 8, "num_layers": 2}, "net_arch": [32, 32]}


def env(**kwargs):
    return envs.PointMassPixels(image_size=24, frame_stack=3, **kwargs)


def sac(method="curl", policy="CnnPolicy", seed=0, **kwargs):
    kw = {**SMALL, **kwargs}
    return SAC(
        policy,
        env(),
        buffer_size=300,
        learning_starts=40,
        batch_size=16,
        seed=seed,
        policy_kwargs=policy_kwargs(method=method, **kw),
    )


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 9, 24, 24), generator=g).float() / 255  # as SB3 preprocesses


def test_aux_gradient_reaches_the_encoder_with_zero_rl_loss_and_equals_the_method_gradient():
    extractor = sac().critic.features_extractor
    extractor.train()
    obs = batch()
    torch.manual_seed(1)
    (extractor(obs) * 0).sum().backward()  # RL loss ≡ 0: only the aux loss trains
    injected = [p.grad.clone() for p in extractor.encoder.parameters()]
    assert all(g.abs().sum() > 0 for g in injected)
    assert extractor.method.W.grad is not None and extractor.method.W.grad.abs().sum() > 0
    assert all(p.grad is None for p in extractor.method.target_encoder.parameters())
    extractor.zero_grad()
    torch.manual_seed(1)  # the same views, computed by hand
    view_a = extractor.augment.random(obs)
    view_b = extractor.augment.random(obs)
    query = extractor.encoder(view_a)
    with torch.no_grad():
        key = extractor.method.target_encoder(view_b)
    L.info_nce(query, key, W=extractor.method.W).backward()
    for g, p in zip(injected, extractor.encoder.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)


def test_aux_weight_scales_the_injected_gradient():
    grads = []
    for weight in (1.0, 2.5):
        torch.manual_seed(0)
        extractor = sac(aux_weight=weight).critic.features_extractor
        torch.manual_seed(1)
        (extractor(batch()) * 0).sum().backward()
        grads.append(extractor.encoder.head.fc.weight.grad)
    assert grads[0].abs().sum() > 0  # a gradient to scale (RL loss ≡ 0: it is the aux loss's)
    torch.testing.assert_close(grads[1], 2.5 * grads[0])


def test_aux_weight_zero_reproduces_augmentation_only_training():
    a = sac(method="curl", aux_weight=0.0)
    a.learn(120)  # learn before the next model reseeds the global RNGs
    b = sac(method=None)
    b.learn(120)
    for net in ("actor", "critic"):
        pa = getattr(a.policy, net).features_extractor.encoder.state_dict()
        pb = getattr(b.policy, net).features_extractor.encoder.state_dict()
        assert all(torch.equal(pa[k], pb[k]) for k in pa), net
    assert not torch.equal(
        sac(method=None).critic.features_extractor.encoder.head.fc.weight, pa["head.fc.weight"]
    )


def test_momentum_target_takes_one_ema_step_per_optimiser_step():
    extractor = sac(method="byol").critic.features_extractor
    method = extractor.method
    opt = torch.optim.SGD(extractor.parameters(), lr=0.5)
    extractor(batch()).sum().backward()
    opt.step()
    before = [p.clone() for p in method.target_encoder.parameters()]
    extractor(batch(seed=1))  # the next training forward syncs the targets, once
    extractor(batch(seed=2))
    m = method.momentum
    for t, old, o in zip(
        method.target_encoder.parameters(), before, extractor.encoder.parameters(), strict=True
    ):
        torch.testing.assert_close(t, m * old + (1 - m) * o)


def test_eval_uses_the_center_crop_and_computes_no_aux_loss():
    model = sac(method="curl")
    extractor = model.actor.features_extractor
    model.policy.set_training_mode(False)
    obs = batch()
    center = extractor.encoder(obs[:, :, 2:22, 2:22])  # 24 → round(0.84 · 24) = 20
    torch.testing.assert_close(extractor(obs), center)
    assert extractor.pop_metrics() == {}
    o, _ = env().reset(seed=0)
    a1, _ = model.predict(o, deterministic=True)
    a2, _ = model.predict(o, deterministic=True)
    assert np.array_equal(a1, a2)


@pytest.mark.parametrize("method", ["curl", "moco", "byol"])
def test_save_load_restores_auxiliary_state_and_predictions(method, tmp_path):
    model = sac(method=method)
    model.learn(80)
    model.save(tmp_path / "model.zip")
    loaded = SAC.load(tmp_path / "model.zip", env=env())
    for name in ("critic", "actor"):
        sd, sl = getattr(model.policy, name).state_dict(), getattr(loaded.policy, name).state_dict()
        assert sd.keys() == sl.keys() and all(torch.equal(sd[k], sl[k]) for k in sd)
    keys = set(model.policy.critic.state_dict())
    assert any("method.target_encoder" in k for k in keys)
    if method == "moco":
        assert any(k.endswith("method.queue") for k in keys)
    if method == "curl":
        assert any(k.endswith("method.W") for k in keys)
    observations = np.stack([env().reset(seed=s)[0] for s in range(5)])
    assert np.array_equal(
        model.predict(observations, deterministic=True)[0],
        loaded.predict(observations, deterministic=True)[0],
    )
    loaded.learn(40)  # training continues


def test_logger_writes_aux_metrics(tmp_path):
    model = sac(method="curl")
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(100, callback=RepresentationLogger(rank_every=1), log_interval=1)
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))

    def values(key):
        return [float(r[key]) for r in rows if r.get(key) not in (None, "")]

    for key in ("aux/critic_aux_loss", "aux/actor_aux_loss"):  # a cross-entropy: finite, > 0
        assert values(key) and all(0 < v < float("inf") for v in values(key)), key
    assert values("aux/critic_accuracy") and all(0 <= v <= 1 for v in values("aux/critic_accuracy"))
    assert all(v > 0 for v in values("aux/critic_feature_std"))  # not collapsed
    assert all(1 <= v <= 50 for v in values("aux/critic_effective_rank"))  # ≤ features_dim


def test_shared_encoder_sac_wiring():
    model = sac(method="curl", policy=SharedEncoderSACPolicy)
    policy = model.policy
    critic_enc = policy.critic.features_extractor.encoder
    enc_ids = {id(p) for p in critic_enc.parameters()}
    actor_ids = {id(p) for g in policy.actor.optimizer.param_groups for p in g["params"]}
    critic_ids = {id(p) for g in policy.critic.optimizer.param_groups for p in g["params"]}
    assert enc_ids <= critic_ids and enc_ids.isdisjoint(actor_ids)  # only the critic trains it
    assert policy.actor.features_extractor.head is not None  # CURL: the actor's own Linear + LN
    policy.set_training_mode(True)
    obs = batch()
    # Actor loss: no gradient reaches the shared conv layers.
    policy.actor(obs).sum().backward()
    assert all(p.grad is None for p in critic_enc.parameters())
    # Critic pass for the actor loss (actions with gradient): detached encoder, no aux loss.
    pi = torch.zeros(8, 2, requires_grad=True)
    policy.critic.features_extractor.pop_metrics()
    sum(q.sum() for q in policy.critic(obs, pi)).backward()
    assert all(p.grad is None for p in critic_enc.parameters()) and pi.grad is not None
    assert policy.critic.features_extractor.pop_metrics() == {}
    # Critic loss pass: RL + aux gradients.
    sum(q.sum() for q in policy.critic(obs, pi.detach())).backward()
    assert all(p.grad is not None for p in critic_enc.parameters())
    # Targets stay in eval mode but see random crops while training.
    assert (
        not policy.critic_target.training
        and policy.critic_target.features_extractor.augment.training
    )
    policy.set_training_mode(False)
    assert not policy.critic_target.features_extractor.augment.training
    model.learn(80)


@pytest.mark.parametrize(
    ("algo", "policy", "method"),
    [
        (TD3, SharedEncoderTD3Policy, "curl"),
        (TD3, "CnnPolicy", "barlow_twins"),
        (PPO, "CnnPolicy", "simclr"),
        (A2C, "CnnPolicy", "vicreg"),
        (DQN, "CnnPolicy", "simsiam"),
    ],
)
def test_every_algorithm_trains_with_an_aux_loss(algo, policy, method):
    import gymnasium as gym

    e = env()
    kwargs = {"seed": 0, "policy_kwargs": policy_kwargs(method=method, **SMALL)}
    if algo is DQN:
        moves = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)
        e = gym.wrappers.TransformAction(e, lambda a: moves[a], gym.spaces.Discrete(4))
        kwargs.update(
            buffer_size=200,
            learning_starts=30,
            batch_size=16,
            replay_buffer_class=FrameStackReplayBuffer,
        )
    elif algo is TD3:
        kwargs.update(
            buffer_size=200,
            learning_starts=30,
            batch_size=16,
            replay_buffer_class=FrameStackReplayBuffer,
        )
    else:
        kwargs.update(n_steps=32)
        if algo is PPO:
            kwargs.update(batch_size=16)
    model = algo(policy, e, **kwargs)
    extractors = [m for m in model.policy.modules() if isinstance(m, RepresentationExtractor)]
    before = [p.clone() for p in extractors[0].encoder.parameters()]
    model.learn(96)
    assert any(
        not torch.equal(b, p)
        for b, p in zip(before, extractors[0].encoder.parameters(), strict=True)
    )
    # The aux loss ran during learn(): its metrics were recorded (a finite loss).
    losses = [ex.pop_metrics().get("aux_loss") for ex in extractors]
    assert any(loss is not None and np.isfinite(loss) for loss in losses)


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match="unknown method 'dino'"):
        policy_kwargs(method="dino")
    with pytest.raises(ValueError, match="unknown encoder"):
        policy_kwargs(encoder="vit")
    with pytest.raises(ValueError, match="unknown augmentation"):
        policy_kwargs(augmentation="crop+wobble")
    with pytest.raises(ValueError, match="larger than the observations"):
        sac(image_size=64)
    with pytest.raises(ValueError, match=r"image observations \(a Box"):
        SAC(
            "MlpPolicy",
            envs.PointMassPixels(from_pixels=False),
            policy_kwargs=policy_kwargs(method="curl"),
        )
    with pytest.raises(ValueError, match="channels-last"):
        RepresentationExtractor(spaces.Box(0, 255, (40, 40, 9), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8 pixel"):
        RepresentationExtractor(spaces.Box(0.0, 1.0, (9, 40, 40), dtype=np.float32))
    with pytest.raises(ValueError, match="needs rlrep's extractor"):
        SAC(SharedEncoderSACPolicy, env())
