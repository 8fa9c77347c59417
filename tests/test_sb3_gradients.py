"""The plug-in's update is exactly ``RL loss + w × aux loss``, for every wiring.

One ``train()`` of each stock algorithm runs with the plug-in, in float64, with its randomness
recorded (views, Gaussian draws, the sampled batch); :mod:`tests.sb3_reference` recomputes that
step in plain PyTorch. The gradient every optimiser sees before its step (encoder: the RL loss's
plus ``w ×`` the aux loss's, at the RL view's features; RL heads), the objective's heads after
their step and its EMA targets after theirs must agree to ~1e-10. Checked to fail each when the
aux gradient at the RL features is dropped, when the weight is dropped, and when the EMA step is
dropped (rlrep.sb3.binding).
"""

from __future__ import annotations

from collections import defaultdict

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

from rlrep import envs
from rlrep.sb3 import FrameStackReplayBuffer, SharedEncoderSACPolicy, policy_kwargs
from rlrep.sb3.extractor import RepresentationExtractor
from tests import sb3_reference as ref

LR, WEIGHT, BATCH = 0.05, 0.3, 8
OFF_POLICY, DISCRETE = {"SAC", "TD3", "DQN", "TQC", "QRDQN"}, {"DQN", "QRDQN"}
MOVES = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)

# case id → (algorithm, policy, method, extra policy_kwargs, reference step)
CASES = {
    "SAC-CnnPolicy-curl": (SAC, "CnnPolicy", "curl", {}, lambda s, m, p: ref.sac(s, m, p, "default")),
    "SAC-aux_on_actor-curl": (SAC, "CnnPolicy", "curl", {"aux_on_actor": True},
                              lambda s, m, p: ref.sac(s, m, p, "aux_on_actor")),
    "SAC-decoupled-curl": (SAC, "CnnPolicy", "curl", {"decoupled": True},
                           lambda s, m, p: ref.sac(s, m, p, "decoupled")),
    "SAC-SharedEncoder-byol": (SAC, SharedEncoderSACPolicy, "byol", {},
                               lambda s, m, p: ref.sac(s, m, p, "shared")),
    "TD3-CnnPolicy-byol": (TD3, "CnnPolicy", "byol", {}, ref.td3),
    "DQN-CnnPolicy-curl": (DQN, "CnnPolicy", "curl", {}, ref.dqn),
    "PPO-CnnPolicy-byol": (PPO, "CnnPolicy", "byol", {}, ref.on_policy),
    "A2C-CnnPolicy-curl": (A2C, "CnnPolicy", "curl", {}, ref.on_policy),
    "TQC-CnnPolicy-curl": ("TQC", "CnnPolicy", "curl", {"n_quantiles": 5}, ref.tqc),
    "QRDQN-CnnPolicy-byol": ("QRDQN", "CnnPolicy", "byol", {"n_quantiles": 5}, ref.qrdqn),
}  # fmt: skip


@pytest.fixture
def float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def contrib(name: str):
    """An sb3-contrib algorithm (the ``contrib`` extra), or a skip without it."""
    return getattr(pytest.importorskip("sb3_contrib"), name)


def make_model(algo, policy, method: str, extra: dict):
    if isinstance(algo, str):
        algo = contrib(algo)
    off_policy, discrete = algo.__name__ in OFF_POLICY, algo.__name__ in DISCRETE
    env = envs.PointMassPixels(image_size=24, frame_stack=3)
    if discrete:  # four moves
        env = gym.wrappers.TransformAction(env, lambda a: MOVES[a], gym.spaces.Discrete(4))
    method_kwargs = {"hidden_dim": 32, "out_dim": 16} if method == "byol" else {}
    pk = policy_kwargs(
        method=method, aux_weight=WEIGHT, method_kwargs=method_kwargs, net_arch=[16],
        encoder_kwargs={"num_filters": 4, "num_layers": 2, "features_dim": 12},
        optimizer_class=torch.optim.SGD, optimizer_kwargs={}, **extra,
    )  # fmt: skip
    kw = {"seed": 0, "learning_rate": LR, "policy_kwargs": pk}
    if off_policy:
        kw.update(buffer_size=100, learning_starts=40, batch_size=BATCH,
                  replay_buffer_class=FrameStackReplayBuffer)  # fmt: skip
    if algo is TD3:
        kw.update(policy_delay=1, target_policy_noise=0.0)
    if discrete or algo in (PPO, A2C):
        kw.update(max_grad_norm=0.5)  # active: the clip must cover RL + aux gradient
    if algo is PPO:
        kw.update(n_steps=BATCH, batch_size=BATCH, n_epochs=1)
    if algo is A2C:
        kw.update(n_steps=BATCH)
    model = algo(policy, env, **kw)
    if not off_policy:  # one rollout, no update yet
        _, callback = model._setup_learn(BATCH, callback=None)
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=BATCH)
    else:
        model.learn(40)  # fills the buffer; no update yet
    return model


class Trace:
    """What one ``train()`` drew and saw: each extractor's random and deterministic views in
    call order, the Gaussian's standard-normal draws, the batch, each optimiser's gradients
    just before its step."""

    def __init__(self, model, monkeypatch) -> None:
        self.views, self.det = defaultdict(list), defaultdict(list)
        self.eps, self.samples, self.grads = [], [], {}
        self.ent_coef = (
            model.log_ent_coef.detach().exp() if getattr(model, "log_ent_coef", None) is not None
            else None
        )  # fmt: skip
        seen = set()
        for label, module in model.policy.named_modules():
            if isinstance(module, RepresentationExtractor) and id(module) not in seen:
                seen.add(id(module))
                self._record_views(label, module.augment)
        names = {id(p): n for n, p in model.policy.named_parameters()}
        for label, module in model.policy.named_modules():
            if isinstance(getattr(module, "optimizer", None), torch.optim.Optimizer):
                self._record_grads(label or "policy", module.optimizer, names)
        original = torch.distributions.Normal.rsample

        def rsample(dist, sample_shape=torch.Size()):  # noqa: B008
            out = original(dist, sample_shape)
            self.eps.append(((out - dist.loc) / dist.scale).detach())
            return out

        monkeypatch.setattr(torch.distributions.Normal, "rsample", rsample)
        buffer = getattr(model, "replay_buffer", None)
        if buffer is not None:
            sample = buffer.sample
            buffer.sample = lambda *a, **k: self.samples.append(sample(*a, **k)) or self.samples[-1]
        else:
            get = model.rollout_buffer.get

            def rollout_get(*a, **k):
                for batch in get(*a, **k):
                    self.samples.append(batch)
                    yield batch

            model.rollout_buffer.get = rollout_get

    def _record_views(self, label: str, augment) -> None:
        random, deterministic = augment.random, augment.deterministic
        augment.random = lambda x, *a, **k: self._keep(self.views[label], random(x, *a, **k))
        augment.deterministic = lambda x: self._keep(self.det[label], deterministic(x))

    @staticmethod
    def _keep(views: list, view: torch.Tensor) -> torch.Tensor:
        views.append(view.detach().clone())
        return view

    def _record_grads(self, label: str, optimizer, names: dict) -> None:
        def hook(opt, args, kwargs):
            self.grads[label] = {
                names[id(p)]: torch.zeros_like(p) if p.grad is None else p.grad.clone()
                for group in opt.param_groups for p in group["params"]
            }  # fmt: skip

        optimizer.register_step_pre_hook(hook)


def parameters(model) -> dict[str, torch.Tensor]:
    """The policy's parameters and each bound objective's (not its encoder, the extractor's),
    by name; ``{extractor}.objective.{name}`` for the latter."""
    out = dict(model.policy.named_parameters())
    for label, module in model.policy.named_modules():
        if isinstance(module, RepresentationExtractor) and module.binding is not None:
            for name, p in module.objective.method.named_parameters():
                if not name.startswith("encoder."):
                    out[f"{label}.objective.{name}"] = p
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_one_step_is_rl_loss_plus_weight_times_aux_loss(case, float64, monkeypatch):
    algo, policy, method, extra, reference = CASES[case]
    model = make_model(algo, policy, method, extra)
    algo = type(model)
    # The objectives are built at the first training forward, from the RNG state of their
    # extractor's construction: built now (the same weights), they can be read before the step.
    for module in model.policy.modules():
        if isinstance(module, RepresentationExtractor) and module.has_objective:
            module.set_action_space(model.action_space)
            _ = module.objective  # built from its construction-time RNG state, as later
    trace = Trace(model, monkeypatch)
    # Pre-step values as leaves; gradients for whatever trains (targets have none).
    P = {n: p.detach().clone().requires_grad_(p.requires_grad)
         for n, p in _all_parameters(model).items()}  # fmt: skip
    opt_params = {}
    torch.manual_seed(7)
    if algo in (PPO, A2C):
        model.train()
    else:
        model.train(gradient_steps=1, batch_size=BATCH)
    for label, grads in trace.grads.items():
        opt_params[label] = list(grads)
    step = ref.Step(trace, P, method, WEIGHT, LR)
    reference(step, model, opt_params)
    assert set(step.grads) == set(trace.grads)
    for label, grads in trace.grads.items():
        for name, grad in grads.items():
            torch.testing.assert_close(grad, step.grads[label][name], rtol=1e-9, atol=1e-11,
                                       msg=lambda m, n=name, o=label: f"{o} gradient of {n}: {m}")  # fmt: skip
    now = parameters(model)
    checked = [n for n in now if ".objective." in n]
    assert checked, "no objective was bound"
    for name in checked:
        torch.testing.assert_close(now[name].detach(), step.after[name], rtol=1e-9, atol=1e-11,
                                   msg=lambda m, n=name: f"{n} after the step: {m}")  # fmt: skip


def _all_parameters(model) -> dict[str, torch.Tensor]:
    """Like :func:`parameters`, for every extractor with an objective (bound later)."""
    out = dict(model.policy.named_parameters())
    for label, module in model.policy.named_modules():
        if isinstance(module, RepresentationExtractor) and module.has_objective:
            for name, p in module.objective.method.named_parameters():
                if not name.startswith("encoder."):
                    out[f"{label}.objective.{name}"] = p
    return out
