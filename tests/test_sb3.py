"""rlrep.sb3 with stock SB3: gradients, targets, eval views, save/load, wiring, logging, errors."""

import csv

import gymnasium as gym
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
    SharedEncoderSACPolicy,
    SharedEncoderTD3Policy,
    policy_kwargs,
)
from rlrep.sb3.binding import bind_policy

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


def bound_critic_extractor(model):
    """The critic's extractor, bound to the critic's optimiser as inside SB3's ``train()``."""
    bind_policy(model)
    extractor = model.critic.features_extractor
    extractor.train()
    return extractor, model.critic.optimizer


def test_aux_gradient_reaches_the_encoder_with_zero_rl_loss_and_equals_the_method_gradient():
    extractor, optimizer = bound_critic_extractor(sac())
    method = extractor.method
    obs = batch()
    torch.manual_seed(1)
    features = extractor(obs)  # SB3's order: forward, zero_grad, backward, step
    optimizer.zero_grad()  # the auxiliary loss is computed here, once
    (features * 0).sum().backward()  # RL loss ≡ 0: only the aux loss trains
    injected = [p.grad.clone() for p in extractor.encoder.parameters()]
    assert all(g.abs().sum() > 0 for g in injected)
    assert method.W.grad is not None and method.W.grad.abs().sum() > 0
    assert all(p.grad is None for p in method.target_encoder.parameters())
    w_grad = method.W.grad.clone()
    extractor.zero_grad()
    method.W.grad = None
    torch.manual_seed(1)  # the same views, computed by hand
    view_a = extractor.augment.random(obs)
    view_b = extractor.augment.random(obs)
    query = extractor.encoder(view_a)
    with torch.no_grad():
        key = method.target_encoder(view_b)
    (extractor.aux_weight * L.info_nce(query, key, W=method.W)).backward()  # CURL's default: 0.1
    for g, p in zip(injected, extractor.encoder.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad)
    torch.testing.assert_close(w_grad, method.W.grad)


def test_aux_weight_scales_the_injected_gradient():
    grads = []
    for weight in (1.0, 2.5):
        torch.manual_seed(0)
        extractor, optimizer = bound_critic_extractor(sac(aux_weight=weight))
        torch.manual_seed(1)
        features = extractor(batch())
        optimizer.zero_grad()
        (features * 0).sum().backward()
        grads.append(extractor.encoder.head.fc.weight.grad)
    assert grads[0].abs().sum() > 0  # a gradient to scale (RL loss ≡ 0: it is the aux loss's)
    torch.testing.assert_close(grads[1], 2.5 * grads[0])


def count_aux_calls(model, nets=("actor", "critic")):
    """Which nets' objectives compute a loss during three gradient steps."""
    model.learn(40)  # random actions: the buffer fills, no update yet
    calls = []
    for net in nets:
        objective = getattr(model.policy, net).features_extractor.objective
        original = objective.loss
        objective.loss = lambda *a, _net=net, _f=original, **k: (calls.append(_net), _f(*a, **k))[1]
    model.train(gradient_steps=3, batch_size=16)
    return calls


def test_the_aux_loss_is_computed_once_per_gradient_step_on_the_critics_encoder():
    # Stock SAC runs the critic's extractor twice per gradient step (critic loss, then the
    # actor loss's Q values): the auxiliary loss belongs to the critic's step only. The actor's
    # own encoder gets none by default (CURL's wiring: the critic's encoder learns it).
    model = sac(method="curl")
    assert count_aux_calls(model, ("critic",)) == ["critic"] * 3
    actor = model.policy.actor.features_extractor
    assert actor.objective is None and not actor.has_objective
    # aux_on_actor=True: the actor's own encoder has its own loss, once per gradient step too.
    calls = count_aux_calls(sac(method="curl", aux_on_actor=True))
    assert calls.count("critic") == 3 and calls.count("actor") == 3


@pytest.mark.parametrize("on_actor", [False, True])
def test_the_actors_own_encoder_gets_an_aux_loss_only_when_asked(on_actor):
    td3 = TD3("CnnPolicy", env(), buffer_size=100, learning_starts=40, batch_size=16, seed=0,
              policy_kwargs=policy_kwargs(method="simclr", aux_on_actor=on_actor, **SMALL))  # fmt: skip
    td3.learn(60)
    ppo = PPO("CnnPolicy", env(), n_steps=16, batch_size=16, n_epochs=1, seed=0,
              policy_kwargs=policy_kwargs(method="simclr", aux_on_actor=on_actor,
                                          share_features_extractor=False, **SMALL))  # fmt: skip
    ppo.learn(32)
    for actor, critic in (
        (td3.actor.features_extractor, td3.critic.features_extractor),
        (ppo.policy.pi_features_extractor, ppo.policy.vf_features_extractor),
    ):
        assert critic.binding is not None and critic.objective.calls > 0
        assert (actor.binding is not None) is on_actor
        assert actor.has_objective is on_actor and (actor.objective is not None) is on_actor
    decoupled = SAC("CnnPolicy", env(), buffer_size=100, learning_starts=40, batch_size=16, seed=0,
                    policy_kwargs=policy_kwargs(method="simclr", decoupled=True, **SMALL))  # fmt: skip
    decoupled.learn(42)  # decoupled: the aux loss is all that trains the actor's convs too
    assert decoupled.actor.features_extractor.objective.calls > 0
    shared = PPO("CnnPolicy", env(), n_steps=16, batch_size=16, n_epochs=1, seed=0,
                 policy_kwargs=policy_kwargs(method="simclr", **SMALL))  # fmt: skip
    shared.learn(16)  # one encoder for both heads (SB3's default for PPO): it learns the loss
    assert shared.policy.features_extractor.objective.calls > 0


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
    extractor, optimizer = bound_critic_extractor(sac(method="byol"))
    method = extractor.method
    with torch.no_grad():  # targets far from the online weights: an EMA step is plain to see
        for t in method.target_encoder.parameters():
            t.add_(torch.randn_like(t))

    def target_is(expected):
        return all(
            torch.equal(e, t)
            for e, t in zip(expected, method.target_encoder.parameters(), strict=True)
        )

    for seed in range(2):
        before = [p.clone() for p in method.target_encoder.parameters()]
        features = extractor(batch(seed=seed))
        optimizer.zero_grad()
        features.sum().backward()
        assert target_is(before)  # forward and backward move no target
        optimizer.step()  # the post-step hook moves the targets, once
        m = method.momentum
        online = [p.detach().clone() for p in extractor.encoder.parameters()]
        expected = [m * old + (1 - m) * o for old, o in zip(before, online, strict=True)]
        for t, e in zip(method.target_encoder.parameters(), expected, strict=True):
            torch.testing.assert_close(t, e)
        moved = [t.clone() for t in method.target_encoder.parameters()]
        extractor(batch(seed=seed + 10))  # a second forward (SAC's actor-loss pass): no EMA step
        assert target_is(moved)


def test_eval_uses_the_center_crop_and_computes_no_aux_loss():
    model = sac(method="curl")
    extractor = model.actor.features_extractor
    model.policy.set_training_mode(False)
    obs = batch()
    center = extractor.encoder(obs[:, :, 2:22, 2:22])  # 24 → round(0.84 · 24) = 20
    torch.testing.assert_close(extractor(obs), center)
    assert extractor.pop_record() is None  # nothing kept for an auxiliary loss
    o, _ = env().reset(seed=0)
    a1, _ = model.predict(o, deterministic=True)
    a2, _ = model.predict(o, deterministic=True)
    assert np.array_equal(a1, a2)


@pytest.mark.parametrize("policy", ["CnnPolicy", SharedEncoderSACPolicy])
def test_target_networks_hold_no_copy_of_the_method(policy):
    model = SAC(policy, env(), learning_rate=lambda progress: 1e-3 * progress, buffer_size=300,
                learning_starts=40, batch_size=16, seed=0,
                policy_kwargs=policy_kwargs(method="byol", **SMALL))  # fmt: skip
    online = model.critic.features_extractor
    heads = list(online.method.head_parameters())
    initial = [h.detach().clone() for h in heads]
    model.learn(80)
    # SB3 polyak-averages zip(critic.parameters(), critic_target.parameters()): neither holds
    # the method, and the target's extractor has dropped its copy.
    for net in (model.critic, model.critic_target):
        names = [n for n, _ in net.named_parameters()]
        assert not any("method" in n or "objective" in n for n in names)
    target = model.critic_target.features_extractor
    assert target.objective is None and target.get_extra_state() == {}
    # SB3's get_parameters() lists every policy tensor once (the encoder is not repeated as
    # the method's online encoder): its tensors are the policy's parameters and buffers.
    saved = {k: v for k, v in model.get_parameters()["policy"].items() if torch.is_tensor(v)}
    own = [*model.policy.parameters(), *model.policy.buffers()]
    assert sum(v.numel() for v in saved.values()) == sum(t.numel() for t in own)
    # The heads train through an optimiser of the critic's class, at its current learning rate.
    binding = online.binding
    assert type(binding.head_optimizer) is type(model.critic.optimizer)
    assert (
        binding.head_optimizer.param_groups[0]["lr"]
        == model.critic.optimizer.param_groups[0]["lr"]
        < 1e-3
    )
    assert all(not torch.equal(h, h0) for h, h0 in zip(heads, initial, strict=True))


def test_the_objective_follows_the_extractor_to_a_dtype():
    extractor = sac(method="moco").critic.features_extractor
    method = extractor.method  # not a submodule: converted by the extractor's _apply
    extractor.double()
    assert method.encoder is extractor.encoder
    assert {p.dtype for p in [*method.parameters(), method.queue]} == {torch.float64}


class Gray(gym.ObservationWrapper):
    """PointMassPixels' RGB frames as (1, H, W) grayscale."""

    def __init__(self, env):
        super().__init__(env)
        h, w = env.observation_space.shape[1:]
        self.observation_space = spaces.Box(0, 255, (1, h, w), dtype=np.uint8)

    def observation(self, obs):
        return obs.mean(axis=0, keepdims=True).astype(np.uint8)


def gray_stack_env(n_stack):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    make = lambda: Gray(envs.PointMassPixels(image_size=24, frame_stack=1))  # noqa: E731
    return VecFrameStack(DummyVecEnv([make]), n_stack, channels_order="first")


def test_frame_channels_of_grayscale_stacks():
    # SB3's Atari stacks of 4 grayscale frames: 4 channels, inferred as 1 per frame.
    four = RepresentationExtractor(gray_stack_env(4).observation_space)
    assert four.frame_channels == 1
    with pytest.raises(ValueError, match=r"needs RGB frames.*frame_channels=1"):
        RepresentationExtractor(gray_stack_env(4).observation_space, augmentation="color_jitter")


KW = {"buffer_size": 100, "learning_starts": 20, "batch_size": 8, "seed": 0,
      "replay_buffer_class": FrameStackReplayBuffer}  # fmt: skip


def frame_channels_of(model):
    extractors = [m for m in model.policy.modules() if isinstance(m, RepresentationExtractor)]
    return {e.frame_channels for e in extractors}, model.replay_buffer.frame_channels


def test_the_envs_frame_stacking_sets_frame_channels_for_extractor_and_buffer():
    # 3 grayscale frames look like one RGB frame; SB3's VecFrameStack tells when learn() starts.
    model = SAC("CnnPolicy", gray_stack_env(3), policy_kwargs=policy_kwargs(method="curl",
                **SMALL), **KW)  # fmt: skip
    assert frame_channels_of(model) == ({3}, 3)  # inferred from C alone
    model.learn(30)
    assert frame_channels_of(model) == ({1}, 1) and model.replay_buffer.k == 3
    extractor = model.critic.features_extractor
    assert extractor.objective.augment is extractor.augment
    # A colour augmentation, fine for the RGB frame C=3 suggested, is then refused.
    model = SAC("CnnPolicy", gray_stack_env(3), **KW,
                policy_kwargs=policy_kwargs(augmentation="crop+grayscale", **SMALL))  # fmt: skip
    with pytest.raises(ValueError, match=r"'grayscale' changes colours and needs RGB frames"):
        model.learn(30)
    assert model.num_timesteps == 0
    # No env wrapper to say: given once in policy_kwargs, the buffer follows.
    plain = gym.wrappers.FrameStackObservation(Gray(envs.PointMassPixels(image_size=24)), 3)
    model = SAC("CnnPolicy", gym.wrappers.ReshapeObservation(plain, (3, 24, 24)), **KW,
                policy_kwargs=policy_kwargs(frame_channels=1, **SMALL))  # fmt: skip
    model.learn(1)
    assert frame_channels_of(model) == ({1}, 1) and model.replay_buffer.k == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy_kwargs": policy_kwargs(frame_channels=3, **SMALL)},
         r"VecFrameStack stacks frames of 1; policy_kwargs\(frame_channels=3\) says 3"),
        ({"policy_kwargs": policy_kwargs(frame_channels=1, **SMALL),
          "replay_buffer_kwargs": {"frame_channels": 3}},
         r"policy_kwargs\(frame_channels=1\) says 1; replay_buffer_kwargs=.*says 3"),
    ],
)  # fmt: skip
def test_a_frame_channels_contradiction_is_refused_before_any_env_step(kwargs, message):
    model = SAC("CnnPolicy", gray_stack_env(3), **KW, **kwargs)
    with pytest.raises(ValueError, match=message):
        model.learn(30)
    assert model.num_timesteps == 0 and model.replay_buffer.pos == 0


def flat(state, prefix=""):
    """Nested state (state dicts, extra state, optimiser state) → ``{dotted key: value}``."""
    if isinstance(state, dict):
        return {k2: v2 for k, v in state.items() for k2, v2 in flat(v, f"{prefix}{k}.").items()}
    if isinstance(state, (list, tuple)):
        return {k2: v2 for i, v in enumerate(state) for k2, v2 in flat(v, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): state}


def same(a, b):
    return type(a) is type(b) and (torch.equal(a, b) if torch.is_tensor(a) else a == b)


@pytest.mark.parametrize("method", ["curl", "moco", "byol"])
def test_save_load_restores_auxiliary_state_and_predictions(method, tmp_path):
    model = sac(method=method)
    model.learn(80)
    model.save(tmp_path / "model.zip")
    loaded = SAC.load(tmp_path / "model.zip", env=env())
    # The objective (heads, targets, MoCo's queue) and its heads' optimiser travel as the
    # extractor's extra state, without a second copy of the encoder.
    state = model.policy.critic.features_extractor.get_extra_state()
    keys = set(state["objective"])
    assert any(k.startswith("method.target_encoder.") for k in keys)
    assert not any(k.startswith("method.encoder.") for k in keys)
    assert {"moco": "method.queue", "curl": "method.W", "byol": "method.predictor.0.weight"}[
        method
    ] in keys
    assert state["optimizer"]["state"]  # Adam moments of the heads after 40 updates
    observations = np.stack([env().reset(seed=s)[0] for s in range(5)])
    assert np.array_equal(
        model.predict(observations, deterministic=True)[0],
        loaded.predict(observations, deterministic=True)[0],
    )
    loaded.replay_buffer = model.replay_buffer
    for m in (model, loaded):  # the same next updates: same objective, heads' optimiser, RNG
        m.set_logger(configure(None, []))
        m.set_random_seed(3)
        m.train(gradient_steps=3, batch_size=16)
    for name in ("critic", "actor"):
        sd = flat(getattr(model.policy, name).state_dict())
        sl = flat(getattr(loaded.policy, name).state_dict())
        assert sd.keys() == sl.keys() and all(same(sd[k], sl[k]) for k in sd), name


@pytest.mark.parametrize(("aux_on_actor", "prefixes"), [(False, ["aux/"]),
                                                         (True, ["aux/critic.", "aux/actor."])])  # fmt: skip
def test_aux_metrics_reach_the_sb3_logger_without_a_callback(tmp_path, aux_on_actor, prefixes):
    model = sac(method="curl", rank_every=1, aux_on_actor=aux_on_actor)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(100, log_interval=1)
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))

    def values(key):
        return [float(r[key]) for r in rows if r.get(key) not in (None, "")]

    assert sorted(
        {k.split("loss")[0] for k in rows[-1] if k.endswith("loss") and k.startswith("aux/")}
    ) == sorted(prefixes)
    for net in prefixes:
        loss, accuracy = values(f"{net}loss"), values(f"{net}accuracy")
        assert loss and all(0 < v < float("inf") for v in loss), net  # a cross-entropy
        assert accuracy and all(0 <= v <= 1 for v in accuracy), net
        assert values(f"{net}feature_std") and all(v > 0 for v in values(f"{net}feature_std"))
        rank = values(f"{net}effective_rank")
        assert rank and all(1 <= v <= 16 for v in rank), net  # ≤ batch size 16


def test_ppo_aux_metrics_share_the_row_of_their_update(tmp_path):
    # SB3's on-policy loop dumps the logs before train(): a row holds the previous update's
    # train/* values, and its aux/* values must be that same update's (means over its steps).
    model = PPO("CnnPolicy", env(), n_steps=32, batch_size=16, n_epochs=2, seed=0,
                policy_kwargs=policy_kwargs(method="simclr", **SMALL))  # fmt: skip
    model.set_logger(configure(str(tmp_path), ["csv"]))
    objective, train = model.policy.features_extractor.objective, model.train
    per_update: list[list[float]] = []

    def loss(*args, _loss=objective.loss, **kwargs):
        out = _loss(*args, **kwargs)
        per_update[-1].append(out.loss.item())
        return out

    objective.loss = loss
    model.train = lambda: (per_update.append([]), train())
    model.learn(32 * 4, log_interval=1)
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    updates = [r for r in rows if r.get("train/n_updates")]
    assert [bool(r.get("aux/loss")) for r in rows] == [bool(r.get("train/n_updates")) for r in rows]
    assert len(updates) == 3 and all(len(losses) == 4 for losses in per_update)  # 2 × 2 steps
    logged = [float(r["aux/loss"]) for r in updates]
    np.testing.assert_allclose(logged, [np.mean(v) for v in per_update[:3]], rtol=1e-5)


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
    with pytest.warns(UserWarning, match="outside an SB3 algorithm"):  # called by hand, once
        policy.critic(obs, pi.detach())
    assert policy.critic.features_extractor.pop_record() is not None
    sum(q.sum() for q in policy.critic(obs, pi)).backward()
    assert all(p.grad is None for p in critic_enc.parameters()) and pi.grad is not None
    assert policy.critic.features_extractor.pop_record() is None  # kept for no aux loss
    # Critic loss pass: kept for the auxiliary loss; RL gradients reach the encoder.
    sum(q.sum() for q in policy.critic(obs, pi.detach())).backward()
    assert all(p.grad is not None for p in critic_enc.parameters())
    assert policy.critic.features_extractor.pop_record() is not None
    # Targets stay in eval mode but see random crops while training.
    assert (
        not policy.critic_target.training
        and policy.critic_target.features_extractor.augment.training
    )
    policy.set_training_mode(False)
    assert not policy.critic_target.features_extractor.augment.training
    model.learn(80)  # inside SB3's train() the extractor finds its optimiser after all
    assert policy.critic.features_extractor.binding.optimizer is policy.critic.optimizer


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
    losses = []
    for ex in extractors:
        if ex.objective is not None:
            original = ex.objective.loss
            ex.objective.loss = lambda *a, _f=original, **k: (
                losses.append(out := _f(*a, **k)) or out
            )
    model.learn(96)
    assert any(
        not torch.equal(b, p)
        for b, p in zip(before, extractors[0].encoder.parameters(), strict=True)
    )
    # The aux loss ran during learn(), with finite values (its gradient: test_sb3_gradients).
    assert losses and all(np.isfinite(out.loss.item()) for out in losses)


def test_default_aux_weight_is_the_methods():
    for method, weight in (("curl", 0.1), ("barlow_twins", 0.002), ("vicreg", 0.05), ("byol", 1.0)):
        assert sac(method=method).critic.features_extractor.aux_weight == weight
    assert sac(method="barlow_twins", aux_weight=2.0).critic.features_extractor.aux_weight == 2.0
    assert sac(method=None).critic.features_extractor.aux_weight == 0.0


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match="unknown method 'dino'"):
        policy_kwargs(method="dino")
    with pytest.raises(ValueError, match="unknown encoder"):
        policy_kwargs(encoder="vit")
    with pytest.raises(ValueError, match="unknown augmentation"):
        policy_kwargs(augmentation="crop+wobble")
    with pytest.raises(ValueError, match="larger than the observations"):
        sac(image_size=64)
    with pytest.raises(ValueError, match=r"method=.moco. with method_kwargs.*temprature"):
        sac(method="moco", method_kwargs={"temprature": 0.1})  # checked before the method exists
    with pytest.raises(ValueError, match=r"image observations \(a Box"):
        SAC(
            "MlpPolicy",
            envs.PointMassPixels(from_pixels=False),
            policy_kwargs=policy_kwargs(method="curl"),
        )
    stacked = gym.wrappers.FrameStackObservation(envs.PointMassPixels(frame_stack=1), 3)
    with pytest.raises(ValueError, match=r"FrameStackObservation.*VecFrameStack.*frame_stack=k"):
        RepresentationExtractor(stacked.observation_space)
    with pytest.raises(ValueError, match="channels-last"):
        RepresentationExtractor(spaces.Box(0, 255, (40, 40, 9), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8 pixel"):
        RepresentationExtractor(spaces.Box(0.0, 1.0, (9, 40, 40), dtype=np.float32))
    with pytest.raises(ValueError, match="needs rlrep's extractor"):
        SAC(SharedEncoderSACPolicy, env())


def test_a_forward_after_zero_grad_stops_the_step_instead_of_skipping_the_aux_loss():
    extractor, optimizer = bound_critic_extractor(sac())
    optimizer.zero_grad()  # before the forward: the aux loss has no batch to read yet
    extractor(batch()).sum().backward()
    with pytest.raises(RuntimeError, match=r"came after optimizer\.zero_grad"):
        optimizer.step()


def test_an_algorithm_not_found_inside_sb3_stops_training(monkeypatch):
    import rlrep.sb3.extractor as extractor_module

    monkeypatch.setattr(extractor_module, "find_algorithm", lambda module: None)
    model = sac()
    with pytest.raises(RuntimeError, match="could not find which"):
        model.learn(60)
    with pytest.warns(UserWarning, match="outside an SB3"):  # by hand: a warning, as before
        sac().critic.features_extractor.train()(batch())
