"""DrQ-v2's update equals the reference code's, in float64.

The reference below is an independent port of facebookresearch/drqv2 at c0c650b (``drqv2.py``:
``RandomShiftsAug``, ``Encoder``, ``Actor``, ``Critic``, ``DrQV2Agent.update`` /
``update_critic`` / ``update_actor``; ``utils.py``: ``TruncatedNormal``, ``schedule``,
``soft_update_params``), written the way that code computes: separate Adam optimisers for the
encoder, the actor and the critic; the encoder trained by the critic loss alone; the actor on the
conv features detached; the critic's trunk and Q heads followed by a τ-EMA after every update.

Both start from :class:`DrQV2`'s weights (copied into the port) and see the same shifts and the
same Gaussian noise (the global torch generator, seeded the same before each update). The shift
is compared where the two coincide: the reference shifts float images by ``grid_sample`` with
per-sample integer offsets, rlrep crops a replicate-padded uint8 batch; for the same offsets
(the reference's x shift is rlrep's ``left``, its y shift rlrep's ``top``) the images agree
(:func:`test_the_shift_is_the_reference_grid_sample_shift`), and the update is then fed the same
shifted images on both sides — rlrep's uint8 crops, the reference's ``grid_sample`` output
(computed in float64, then cast to the float32 that the reference's encoder receives, which
makes it exact integers). Pixels are scaled by 1/255 in float32 on both sides, as the
reference's ``obs.float()`` and rlrep's ``update`` do, then cast to float64 and centred,
``− 0.5`` (the reference's ``Encoder.forward``: ``obs / 255.0 - 0.5``; rlrep's encoder with
``center_pixels=True``; in a float32 model both subtract in float32).

After each of two updates (σ from the schedule at agent steps 0 and 30,000, so the noise scale,
its ±0.3 clip and Adam's second step all take part) the losses, every trained parameter, every
target parameter and the gradients left on the parameters must agree to float64 rounding. The
actor's output biases are set to ±1.5 first, so that mean + clipped noise crosses ±1 for part of
the batch and the clamp (its straight-through gradient) takes part.
"""

import copy
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import distributions as pyd
from torch import nn

from rlrep import envs
from rlrep.agents import DrQV2, config_for
from rlrep.agents.drqv2 import n_step_targets

SIZE, PAD, BATCH, ACTIONS = 32, 4, 8, 2
CFG = {"num_filters": 4, "num_layers": 4, "hidden_dim": 16, "features_dim": 6,
       "batch_size": BATCH, "buffer_size": 100, "initial_steps": 1000, "pad": PAD}  # fmt: skip
STEPS = (0, 30_000)  # agent steps of the two updates: σ = 1.0, then 0.73


# --- the reference, ported -----------------------------------------------------------------------
class RandomShiftsAug(nn.Module):
    """``drqv2.RandomShiftsAug``; ``shift`` ``(n, 1, 1, 2)`` integer (x, y) offsets in
    ``[0, 2·pad]`` replaces its ``torch.randint`` draw when given."""

    def __init__(self, pad):
        super().__init__()
        self.pad = pad

    def forward(self, x, shift=None):
        n, _, h, w = x.size()
        assert h == w
        padding = tuple([self.pad] * 4)
        x = F.pad(x, padding, "replicate")
        eps = 1.0 / (h + 2 * self.pad)
        arange = torch.linspace(
            -1.0 + eps, 1.0 - eps, h + 2 * self.pad, device=x.device, dtype=x.dtype
        )[:h]
        arange = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
        base_grid = torch.cat([arange, arange.transpose(1, 0)], dim=2)
        base_grid = base_grid.unsqueeze(0).repeat(n, 1, 1, 1)
        if shift is None:
            shift = torch.randint(0, 2 * self.pad + 1, size=(n, 1, 1, 2), dtype=x.dtype)
        shift = shift.to(x.dtype) * (2.0 / (h + 2 * self.pad))
        grid = base_grid + shift
        return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


class TruncatedNormal(pyd.Normal):
    """``utils.TruncatedNormal``."""

    def __init__(self, loc, scale, low=-1.0, high=1.0, eps=1e-6):
        super().__init__(loc, scale, validate_args=False)
        self.low, self.high, self.eps = low, high, eps

    def _clamp(self, x):
        clamped_x = torch.clamp(x, self.low + self.eps, self.high - self.eps)
        return x - x.detach() + clamped_x.detach()

    def sample(self, clip=None, sample_shape=()):
        shape = self._extended_shape(torch.Size(sample_shape))
        eps = torch.empty(shape, dtype=self.loc.dtype).normal_()  # _standard_normal
        eps *= self.scale
        if clip is not None:
            eps = torch.clamp(eps, -clip, clip)
        return self._clamp(self.loc + eps)


def schedule(schdl, step):
    """``utils.schedule`` for ``linear(init, final, duration)``."""
    init, final, duration = (float(g) for g in re.match(r"linear\((.+),(.+),(.+)\)", schdl).groups())  # fmt: skip
    mix = np.clip(step / duration, 0.0, 1.0)
    return (1.0 - mix) * init + mix * final


def soft_update_params(net, target_net, tau):
    for param, target_param in zip(net.parameters(), target_net.parameters(), strict=True):
        target_param.data.copy_(tau * param.data + (1 - tau) * target_param.data)


class Encoder(nn.Module):
    def __init__(self, convnet):
        super().__init__()
        self.convnet = convnet

    def forward(self, obs):
        obs = (obs / 255.0).double() - 0.5  # the reference: obs / 255.0 - 0.5
        h = self.convnet(obs)
        return h.view(h.shape[0], -1)


class Actor(nn.Module):
    clamp_at = 1 - 1e-6  # TruncatedNormal's bounds

    def __init__(self, trunk, policy):
        super().__init__()
        self.trunk, self.policy = trunk, policy  # Linear, LayerNorm, Tanh | MLP

    def forward(self, obs, std):
        h = self.trunk(obs)
        mu = torch.tanh(self.policy(h))
        std = torch.ones_like(mu) * std
        return TruncatedNormal(mu, std)


class Critic(nn.Module):
    def __init__(self, trunk, q1, q2):
        super().__init__()
        self.trunk, self.Q1, self.Q2 = trunk, q1, q2

    def forward(self, obs, action):
        h_action = torch.cat([self.trunk(obs), action], dim=-1)
        return self.Q1(h_action), self.Q2(h_action)


class RefAgent:
    """``DrQV2Agent`` built from a :class:`DrQV2`'s weights."""

    def __init__(self, m: DrQV2):
        cfg = m.config
        enc = m.critic.features_extractor.encoder
        convs = []
        for layer in enc.convs:
            if isinstance(layer, nn.Conv2d):  # ours may be channels-last
                convs += [copy.deepcopy(layer).to(memory_format=torch.contiguous_format), nn.ReLU()]
        self.encoder = Encoder(nn.Sequential(*convs))

        def trunk(head):
            assert head.tanh
            return nn.Sequential(copy.deepcopy(head.fc), copy.deepcopy(head.norm), nn.Tanh())

        def critic(sb3_critic):
            q1, q2 = (copy.deepcopy(q) for q in sb3_critic.q_networks)
            return Critic(trunk(sb3_critic.features_extractor.encoder.head), q1, q2)

        mu = m.actor.mu
        assert isinstance(mu[-1], nn.Tanh)
        self.actor = Actor(trunk(m.actor.features_extractor.head), copy.deepcopy(mu[:-1]))
        self.critic, self.critic_target = critic(m.critic), critic(m.critic_target)
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), lr=cfg.lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr)
        self.aug = RandomShiftsAug(pad=cfg.pad)
        self.clamped = 0  # the test's: actor-loss actions that the clamp moved
        self.critic_target_tau, self.stddev_clip = cfg.critic_tau, cfg.std_clip
        self.stddev_schedule = f"linear({cfg.std_start},{cfg.std_end},{cfg.std_steps})"

    def update_critic(self, obs, action, reward, discount, next_obs, step):
        with torch.no_grad():
            stddev = schedule(self.stddev_schedule, step)
            dist = self.actor(next_obs, stddev)
            next_action = dist.sample(clip=self.stddev_clip)
            target_Q1, target_Q2 = self.critic_target(next_obs, next_action)
            target_V = torch.min(target_Q1, target_Q2)
            target_Q = reward + (discount * target_V)
        Q1, Q2 = self.critic(obs, action)
        critic_loss = F.mse_loss(Q1, target_Q) + F.mse_loss(Q2, target_Q)
        self.encoder_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.encoder_opt.step()
        return critic_loss

    def update_actor(self, obs, step):
        stddev = schedule(self.stddev_schedule, step)
        dist = self.actor(obs, stddev)
        action = dist.sample(clip=self.stddev_clip)
        self.clamped += int((action.detach().abs() >= self.actor.clamp_at).sum())  # (a count)
        Q1, Q2 = self.critic(obs, action)
        actor_loss = -torch.min(Q1, Q2).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        return actor_loss

    def update(self, obs, action, reward, discount, next_obs, step, shifts):
        """``DrQV2Agent.update`` on a batch, the augmentation's offsets given (``shifts``: those of
        ``obs`` and of ``next_obs``); the shift runs in float64 and is cast to the float32 that
        the reference's encoder receives (exact integers)."""
        obs = self.aug(obs.double(), shifts[0]).float()
        next_obs = self.aug(next_obs.double(), shifts[1]).float()
        obs = self.encoder(obs)
        with torch.no_grad():
            next_obs = self.encoder(next_obs)
        losses = {"critic_loss": self.update_critic(obs, action, reward, discount, next_obs, step)}
        losses["actor_loss"] = self.update_actor(obs.detach(), step)
        soft_update_params(self.critic, self.critic_target, self.critic_target_tau)
        return losses


# --- pairing the two ----------------------------------------------------------------------------
class GivenOffsets:
    """A stand-in for rlrep's :class:`~rlrep.augment.base.Sampler` that returns given offsets."""

    def __init__(self, *offsets):
        self.offsets = list(offsets)

    def randint(self, low, high, size):
        return self.offsets.pop(0)


def rlrep_shift(m: DrQV2, x, top, left):
    return m.shift.random_view(x, GivenOffsets(top, left))


def reference_shift(top, left):
    return torch.stack([left, top], dim=1).view(-1, 1, 1, 2)  # grid_sample's (x, y)


def paired_tensors(m: DrQV2, ref: RefAgent) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every trained or target tensor of the model, next to the reference's."""

    def named(prefix, ours, theirs):
        ours, theirs = list(ours.named_parameters()), list(theirs.parameters())
        assert len(ours) == len(theirs), prefix
        return {f"{prefix}.{k}": (a, b) for (k, a), b in zip(ours, theirs, strict=True)}

    enc = m.critic.features_extractor.encoder
    convs = [c for c in enc.convs if isinstance(c, nn.Conv2d)]
    ref_convs = [c for c in ref.encoder.convnet if isinstance(c, nn.Conv2d)]
    pairs = {}
    for i, (a, b) in enumerate(zip(convs, ref_convs, strict=True)):
        pairs |= named(f"encoder.conv{i}", a, b)
    for name, ours, theirs in (("critic", m.critic, ref.critic), ("target", m.critic_target, ref.critic_target)):  # fmt: skip
        head = ours.features_extractor.encoder.head
        pairs |= named(f"{name}.trunk.fc", head.fc, theirs.trunk[0])
        pairs |= named(f"{name}.trunk.ln", head.norm, theirs.trunk[1])
        pairs |= named(f"{name}.q1", ours.q_networks[0], theirs.Q1)
        pairs |= named(f"{name}.q2", ours.q_networks[1], theirs.Q2)
    head = m.actor.features_extractor.head
    pairs |= named("actor.trunk.fc", head.fc, ref.actor.trunk[0])
    pairs |= named("actor.trunk.ln", head.norm, ref.actor.trunk[1])
    pairs |= named("actor.policy", m.actor.mu, ref.actor.policy)
    return pairs


def build():
    torch.manual_seed(0)
    m = DrQV2(envs.PointMassPixels(image_size=SIZE), config_for("drqv2", "cartpole-swingup", **CFG), seed=0)  # fmt: skip
    m.policy.double()
    with torch.no_grad():  # mean actions near ±0.9: mean + clipped noise crosses ±1 in part of
        m.actor.mu[-2].bias.copy_(torch.tensor([1.5, -1.5]))  # the batch, so the clamp matters
    ref = RefAgent(m)
    pairs = paired_tensors(m, ref)
    # The optimisers hold the same parameters: the critic's (encoder included) and the actor's.
    critic_params = {id(a) for k, (a, _) in pairs.items() if k.startswith(("encoder", "critic"))}
    assert {id(p) for g in m.critic.optimizer.param_groups for p in g["params"]} == critic_params
    actor_params = {id(a) for k, (a, _) in pairs.items() if k.startswith("actor")}
    assert {id(p) for g in m.actor.optimizer.param_groups for p in g["params"]} == actor_params
    for key, (ours, theirs) in pairs.items():
        assert torch.equal(ours.detach(), theirs.detach()), f"{key} differs before the update"
    return m, ref, pairs


def test_two_updates_equal_the_reference_code_in_float64():
    m, ref, pairs = build()
    rng = torch.Generator().manual_seed(1)
    shape = (BATCH, 9, SIZE, SIZE)
    for i, step in enumerate(STEPS):
        obs, next_obs = (torch.randint(0, 256, shape, generator=rng, dtype=torch.uint8) for _ in range(2))  # fmt: skip
        offsets = [torch.randint(0, 2 * PAD + 1, (BATCH,), generator=rng) for _ in range(4)]
        action = torch.rand(BATCH, ACTIONS, generator=rng, dtype=torch.float64) * 2 - 1
        reward = torch.rand(BATCH, 1, generator=rng, dtype=torch.float64)
        discount = 0.99**3 * (torch.rand(BATCH, 1, generator=rng) < 0.8).double()
        m.num_timesteps = step  # rlrep's σ follows the agent step
        assert m.stddev() == pytest.approx(schedule(ref.stddev_schedule, step), abs=1e-15)
        torch.manual_seed(100 + i)  # the noise: same draws on both sides
        ours = m.update(
            rlrep_shift(m, obs, *offsets[:2]),
            action,
            reward,
            discount,
            rlrep_shift(m, next_obs, *offsets[2:]),
        )
        torch.manual_seed(100 + i)
        shifts = (reference_shift(*offsets[:2]), reference_shift(*offsets[2:]))
        theirs = ref.update(obs.float(), action, reward, discount, next_obs.float(), step, shifts)
        assert ours.keys() == theirs.keys() == {"critic_loss", "actor_loss"}
        for key in ours:
            torch.testing.assert_close(ours[key], theirs[key].detach(), rtol=1e-12, atol=1e-12, msg=lambda text, i=i, key=key: f"update {i}: {key}: {text}")  # fmt: skip
        for key, (a, b) in pairs.items():
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-10, atol=1e-12, msg=f"update {i}: {key}")  # fmt: skip
        # Gradients left by the update: the critic loss's on the encoder, the critic's plus the
        # actor loss's on the critic's trunk and Q heads, the actor loss's on the actor.
        for key, (a, b) in pairs.items():
            assert (a.grad is None) == (b.grad is None), f"update {i}: grad {key}"
            if a.grad is not None:
                torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12, msg=f"update {i}: grad {key}")  # fmt: skip
        assert all(b.grad is None for k, (_, b) in pairs.items() if k.startswith("target"))
        assert all(b.grad is not None for k, (_, b) in pairs.items() if not k.startswith("target"))  # fmt: skip
    assert 0 < ref.clamped < len(STEPS) * BATCH * ACTIONS  # the clamp took part


def test_the_shift_is_the_reference_grid_sample_shift():
    m, _, _ = build()
    rng = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (BATCH, 9, SIZE, SIZE), generator=rng, dtype=torch.uint8)
    top, left = (torch.randint(0, 2 * PAD + 1, (BATCH,), generator=rng) for _ in range(2))
    top[:2], left[:2] = torch.tensor([0, 2 * PAD]), torch.tensor([2 * PAD, 0])  # the extremes
    ours = rlrep_shift(m, x, top, left)
    theirs = RandomShiftsAug(PAD)(x.double(), reference_shift(top, left))
    torch.testing.assert_close(ours.double(), theirs, rtol=0, atol=1e-9)
    assert torch.equal(theirs.float().to(torch.uint8), ours)  # exact integers in float32


def test_n_step_targets_are_the_reference_replay_sums_on_whole_windows():
    # ReplayBuffer._sample: reward += discount * r_{t+i}; discount *= d_{t+i} * γ, d = 1 here
    # (DMC episodes end by time limit only; the reference samples windows inside an episode).
    rng, gamma, n = torch.Generator().manual_seed(3), 0.99, 3
    rewards = torch.rand(BATCH, n, generator=rng, dtype=torch.float64)
    returns, discounts, last = n_step_targets(
        rewards, torch.zeros(BATCH, n), torch.ones(BATCH, n + 1, dtype=torch.bool), gamma
    )
    reward, discount = torch.zeros(BATCH, 1, dtype=torch.float64), torch.ones(BATCH, 1, dtype=torch.float64)  # fmt: skip
    for i in range(n):
        reward += discount * rewards[:, i : i + 1]
        discount *= gamma
    torch.testing.assert_close(returns, reward, rtol=1e-14, atol=0)
    torch.testing.assert_close(discounts, discount, rtol=1e-14, atol=0)
    assert last.tolist() == [n] * BATCH
