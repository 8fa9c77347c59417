"""CURL-SAC's update equals the reference code's, in float64.

The reference below is an independent port of MishaLaskin/curl at 8416d6e (``curl_sac.py``,
``encoder.py``): its modules, its ``update`` order, its optimisers (including ``cpc_optimizer``
over the whole CURL module), written the way that code computes. Both start from the same weights
and see the same crops and the same Gaussian noise (the global torch generator, seeded the same);
after each of two updates — step 0 (critic, actor, α, soft targets, CURL) and step 1 (critic,
CURL), so Adam's second moments take part — every loss, every gradient left on a parameter and
every parameter must agree to float64 rounding. Pixels are scaled by 1/255 in float32, as both the
reference (``.float()`` replay tensors) and SB3 do, then cast to float64.
"""

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlrep import envs
from rlrep.agents.curl_sac import CURLSAC
from rlrep.agents.presets import curl_sac_config

CFG = {"image_size": 40, "crop_size": 32, "num_filters": 4, "num_layers": 2, "hidden_dim": 16,
       "features_dim": 6, "batch_size": 8, "buffer_size": 100, "initial_steps": 1000}  # fmt: skip


# --- the reference, ported -----------------------------------------------------------------------
def gaussian_logprob(noise, log_std):
    residual = (-0.5 * noise.pow(2) - log_std).sum(-1, keepdim=True)
    return residual - 0.5 * np.log(2 * np.pi) * noise.size(-1)


def squash(mu, pi, log_pi):
    mu, pi = torch.tanh(mu), torch.tanh(pi)
    log_pi = log_pi - torch.log(F.relu(1 - pi.pow(2)) + 1e-6).sum(-1, keepdim=True)
    return mu, pi, log_pi


class RefEncoder(nn.Module):
    def __init__(self, convs, fc, ln):
        super().__init__()
        self.convs, self.fc, self.ln = nn.ModuleList(convs), fc, ln

    def forward(self, obs, detach=False):
        h = (obs / 255.0).double()  # float32 scaling, as the reference's .float() replay tensors
        for conv in self.convs:
            h = torch.relu(conv(h))
        h = h.view(h.size(0), -1)
        if detach:
            h = h.detach()
        return self.ln(self.fc(h))  # output_logits=True: no tanh


class RefActor(nn.Module):
    def __init__(self, encoder, trunk):
        super().__init__()
        self.encoder, self.trunk = encoder, trunk

    def forward(self, obs, detach_encoder=False):
        mu, log_std = self.trunk(self.encoder(obs, detach=detach_encoder)).chunk(2, dim=-1)
        log_std = torch.tanh(log_std)
        log_std = -10 + 0.5 * (2 - -10) * (log_std + 1)
        noise = torch.randn_like(mu)
        pi = mu + noise * log_std.exp()
        log_pi = gaussian_logprob(noise, log_std)
        return squash(mu, pi, log_pi)


class RefCritic(nn.Module):
    def __init__(self, encoder, q1, q2):
        super().__init__()
        self.encoder, self.Q1, self.Q2 = encoder, q1, q2

    def forward(self, obs, action, detach_encoder=False):
        h = self.encoder(obs, detach=detach_encoder)
        return self.Q1(torch.cat([h, action], 1)), self.Q2(torch.cat([h, action], 1))


class RefCURL(nn.Module):
    def __init__(self, critic, critic_target, W):
        super().__init__()
        self.encoder, self.encoder_target = critic.encoder, critic_target.encoder
        self.W = W

    def compute_logits(self, z_a, z_pos):
        logits = torch.matmul(z_a, torch.matmul(self.W, z_pos.T))
        return logits - torch.max(logits, 1)[0][:, None]


def soft_update(net, target, tau):
    for p, t in zip(net.parameters(), target.parameters(), strict=True):
        t.data.copy_(tau * p.data + (1 - tau) * t.data)


class RefAgent:
    """Built from a CURLSAC's weights; ``update`` is the reference's ``CurlSacAgent.update``."""

    def __init__(self, m: CURLSAC):
        cfg = m.config

        def encoder(pixel_encoder, head):
            convs = [
                copy.deepcopy(c).to(memory_format=torch.contiguous_format)  # ours: channels-last
                for c in pixel_encoder.convs
                if isinstance(c, nn.Conv2d)
            ]
            return RefEncoder(convs, copy.deepcopy(head.fc), copy.deepcopy(head.norm))

        def critic(sb3_critic):
            enc = sb3_critic.features_extractor.encoder
            q1, q2 = (copy.deepcopy(q) for q in sb3_critic.q_networks)
            return RefCritic(encoder(enc, enc.head), q1, q2)

        self.critic, self.critic_target = critic(m.critic), critic(m.critic_target)
        actor_encoder = encoder(m.encoder, m.actor.features_extractor.head)
        actor_encoder.convs = self.critic.encoder.convs  # copy_conv_weights_from: tied
        last = nn.Linear(cfg.hidden_dim, 2 * m.actor.mu.out_features).double()
        with torch.no_grad():
            last.weight.copy_(torch.cat([m.actor.mu.weight, m.actor.log_std.weight]))
            last.bias.copy_(torch.cat([m.actor.mu.bias, m.actor.log_std.bias]))
        trunk = nn.Sequential(*copy.deepcopy(list(m.actor.latent_pi)), last)
        self.actor = RefActor(actor_encoder, trunk)
        self.log_alpha = torch.tensor(np.log(cfg.init_temperature)).requires_grad_(True)
        self.curl = RefCURL(
            self.critic, self.critic_target, nn.Parameter(m.objective.method.W.detach().clone())
        )
        self.target_entropy, self.cfg, self.gamma = -2.0, cfg, m.gamma
        adam = torch.optim.Adam
        self.actor_optimizer = adam(self.actor.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        self.critic_optimizer = adam(self.critic.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        self.log_alpha_optimizer = adam([self.log_alpha], lr=cfg.alpha_lr, betas=(0.5, 0.999))
        self.encoder_optimizer = adam(self.critic.encoder.parameters(), lr=cfg.lr)
        self.cpc_optimizer = adam(self.curl.parameters(), lr=cfg.lr)

    @property
    def alpha(self):
        return self.log_alpha.exp()

    def update_critic(self, obs, action, reward, next_obs, not_done):
        with torch.no_grad():
            _, policy_action, log_pi = self.actor(next_obs)
            target_q1, target_q2 = self.critic_target(next_obs, policy_action)
            target_v = torch.min(target_q1, target_q2) - self.alpha.detach() * log_pi
            target_q = reward + (not_done * self.gamma * target_v)
        q1, q2 = self.critic(obs, action)
        loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        self.critic_optimizer.zero_grad()
        loss.backward()
        self.critic_optimizer.step()
        return loss

    def update_actor_and_alpha(self, obs):
        _, pi, log_pi = self.actor(obs, detach_encoder=True)
        actor_q1, actor_q2 = self.critic(obs, pi, detach_encoder=True)
        actor_loss = (self.alpha.detach() * log_pi - torch.min(actor_q1, actor_q2)).mean()
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()
        self.log_alpha_optimizer.zero_grad()
        alpha_loss = (self.alpha * (-log_pi - self.target_entropy).detach()).mean()
        alpha_loss.backward()
        self.log_alpha_optimizer.step()
        return actor_loss, alpha_loss

    def update_cpc(self, obs_anchor, obs_pos):
        z_a = self.curl.encoder(obs_anchor)
        with torch.no_grad():
            z_pos = self.curl.encoder_target(obs_pos)
        logits = self.curl.compute_logits(z_a, z_pos)
        loss = nn.CrossEntropyLoss()(logits, torch.arange(logits.shape[0]).long())
        self.encoder_optimizer.zero_grad()
        self.cpc_optimizer.zero_grad()
        loss.backward()
        self.encoder_optimizer.step()
        self.cpc_optimizer.step()
        return loss

    def update(self, obs, action, reward, next_obs, not_done, pos, step):
        losses = {"critic_loss": self.update_critic(obs, action, reward, next_obs, not_done)}
        if step % self.cfg.actor_update_freq == 0:
            losses["actor_loss"], losses["ent_coef_loss"] = self.update_actor_and_alpha(obs)
        if step % self.cfg.target_update_freq == 0:
            soft_update(self.critic.Q1, self.critic_target.Q1, self.cfg.critic_tau)
            soft_update(self.critic.Q2, self.critic_target.Q2, self.cfg.critic_tau)
            soft_update(self.critic.encoder, self.critic_target.encoder, self.cfg.encoder_tau)
        if step % self.cfg.curl_update_freq == 0:
            losses["curl_loss"] = self.update_cpc(obs, pos)
        return losses


# --- pairing the two ----------------------------------------------------------------------------
def paired_tensors(m: CURLSAC, ref: RefAgent) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every trained or target tensor of the model, next to the reference's."""

    def encoder_pairs(name, ours, head, theirs):
        convs = [c for c in ours.convs if isinstance(c, nn.Conv2d)]
        out = {}
        for i, (a, b) in enumerate(zip(convs, theirs.convs, strict=True)):
            out |= {f"{name}.conv{i}.weight": (a.weight, b.weight)}
            out |= {f"{name}.conv{i}.bias": (a.bias, b.bias)}
        for part, a, b in (("fc", head.fc, theirs.fc), ("ln", head.norm, theirs.ln)):
            out |= {f"{name}.{part}.weight": (a.weight, b.weight)}
            out |= {f"{name}.{part}.bias": (a.bias, b.bias)}
        return out

    def q_pairs(name, sb3_critic, ref_critic):
        out = {}
        for q, (ours, theirs) in enumerate(
            zip(sb3_critic.q_networks, (ref_critic.Q1, ref_critic.Q2), strict=True)
        ):
            for (k, a), b in zip(ours.named_parameters(), theirs.parameters(), strict=True):
                out[f"{name}.q{q}.{k}"] = (a, b)
        return out

    enc, tenc = m.encoder, m.target_encoder
    pairs = encoder_pairs("critic.encoder", enc, enc.head, ref.critic.encoder)
    pairs |= encoder_pairs("target.encoder", tenc, tenc.head, ref.critic_target.encoder)
    pairs |= q_pairs("critic", m.critic, ref.critic)
    pairs |= q_pairs("target", m.critic_target, ref.critic_target)
    head, ref_enc = m.actor.features_extractor.head, ref.actor.encoder
    pairs |= {"actor.fc.weight": (head.fc.weight, ref_enc.fc.weight)}
    pairs |= {"actor.fc.bias": (head.fc.bias, ref_enc.fc.bias)}
    pairs |= {"actor.ln.weight": (head.norm.weight, ref_enc.ln.weight)}
    pairs |= {"actor.ln.bias": (head.norm.bias, ref_enc.ln.bias)}
    trunk = ref.actor.trunk
    for i in (0, 2):
        pairs[f"actor.trunk{i}.weight"] = (m.actor.latent_pi[i].weight, trunk[i].weight)
        pairs[f"actor.trunk{i}.bias"] = (m.actor.latent_pi[i].bias, trunk[i].bias)
    a = m.actor.mu.out_features
    for part, ours, rows in (("mu", m.actor.mu, slice(0, a)), ("log_std", m.actor.log_std, slice(a, None))):  # fmt: skip
        pairs[f"actor.{part}.weight"] = (ours.weight, trunk[4].weight[rows])
        pairs[f"actor.{part}.bias"] = (ours.bias, trunk[4].bias[rows])
    pairs["W"] = (m.objective.method.W, ref.curl.W)
    pairs["log_alpha"] = (m.log_ent_coef, ref.log_alpha)
    return pairs


def test_one_update_equals_the_reference_code_in_float64():
    torch.manual_seed(0)
    cfg = curl_sac_config("cartpole-swingup", **CFG)
    m = CURLSAC(envs.PointMassPixels(image_size=CFG["image_size"]), cfg, seed=0)
    m.policy.double()
    ref = RefAgent(m)
    pairs = paired_tensors(m, ref)
    for key, (ours, theirs) in pairs.items():
        assert torch.equal(ours.detach(), theirs.detach()), f"{key} differs before the update"

    rng = torch.Generator().manual_seed(1)
    shape = (CFG["batch_size"], 9, CFG["crop_size"], CFG["crop_size"])
    for step in range(2):
        obs, next_obs, pos = (torch.randint(0, 256, shape, generator=rng, dtype=torch.uint8) for _ in range(3))  # fmt: skip
        action = torch.rand(CFG["batch_size"], 2, generator=rng, dtype=torch.float64) * 2 - 1
        reward = torch.rand(CFG["batch_size"], 1, generator=rng, dtype=torch.float64)
        done = (torch.rand(CFG["batch_size"], 1, generator=rng) < 0.3).double()
        torch.manual_seed(100 + step)  # the actor's noise: same draws on both sides
        ours = m.update(obs, action, reward, next_obs, done, pos)
        torch.manual_seed(100 + step)
        theirs = ref.update(
            obs.float(), action, reward, next_obs.float(), 1 - done, pos.float(), step
        )
        assert ours.keys() == theirs.keys()
        assert set(ours) == ({"critic_loss", "actor_loss", "ent_coef_loss", "curl_loss"} if step == 0 else {"critic_loss", "curl_loss"})  # fmt: skip
        for key in ours:
            torch.testing.assert_close(ours[key], theirs[key].detach(), rtol=1e-12, atol=1e-12, msg=f"step {step}: {key}")  # fmt: skip
        for key, (a, b) in pairs.items():
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-10, atol=1e-12, msg=f"step {step}: {key}")  # fmt: skip
    # Gradients left on the parameters after the second update (critic and CURL steps).
    for key, (a, b) in pairs.items():
        if "actor.mu" in key or "actor.log_std" in key:
            continue  # compared through the joint layer below
        assert (a.grad is None) == (b.grad is None), key
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12, msg=f"grad {key}")
    joint = ref.actor.trunk[4].weight.grad
    ours = torch.cat([m.actor.mu.weight.grad, m.actor.log_std.weight.grad])
    torch.testing.assert_close(ours, joint, rtol=1e-10, atol=1e-12)
    assert math.isfinite(ours.abs().sum().item())
