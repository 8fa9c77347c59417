"""One SB3 training step rewritten in plain PyTorch, for the plug-in's gradient tests.

Every network is a function of a flat parameter dict ``P`` (names as in
``model.policy.named_parameters()``; an objective's heads and targets under
``"{extractor}.objective.{name}"``), written out with ``torch.nn.functional`` from the papers'
and SB3's definitions, not by calling rlrep's or SB3's modules. The random quantities of the
step (each augmentation's views in call order, the squashed Gaussian's standard-normal draws,
the replay sample or rollout minibatch) are the ones the real step drew (``Trace``), so the
reference is that step's arithmetic: the RL loss, ``+ w ×`` the auxiliary loss at the RL view's
features, SB3's gradient clip, an SGD step, the EMA target step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# --- networks as functions of P ---------------------------------------------------------------


def linears(P: dict, prefix: str) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The Linear layers of an ``nn.Sequential`` at ``prefix``, in order."""
    index = sorted(
        {int(k[len(prefix) + 1 :].split(".")[0]) for k in P if k.startswith(prefix + ".")}
    )
    out = []
    for i in index:
        weight = P.get(f"{prefix}.{i}.weight")
        if weight is not None and weight.dim() == 2:
            out.append((weight, P.get(f"{prefix}.{i}.bias")))
    return out


def mlp(P: dict, prefix: str, x: torch.Tensor, act=F.relu, last_act: bool = False):
    """SB3's ``create_mlp``: Linear, act, …, Linear (``last_act``: an act after it too)."""
    layers = linears(P, prefix)
    for i, (weight, bias) in enumerate(layers):
        x = F.linear(x, weight, bias)
        if i < len(layers) - 1 or last_act:
            x = act(x)
    return x


def conv_trunk(P: dict, prefix: str, view: torch.Tensor) -> torch.Tensor:
    """CURL's conv trunk (Laskin et al. 2020): 3×3 convs, the first with stride 2, ReLU each,
    flattened. ``view`` ``(B, C, H, W)`` in [0, 1]."""
    x = view.double()
    i = 0
    while f"{prefix}.convs.{i}.weight" in P:
        x = F.relu(
            F.conv2d(x, P[f"{prefix}.convs.{i}.weight"], P[f"{prefix}.convs.{i}.bias"],
                     stride=2 if i == 0 else 1)
        )  # fmt: skip
        i += 2  # Conv2d, ReLU
    return x.flatten(1)


def pixel_head(P: dict, prefix: str, h: torch.Tensor) -> torch.Tensor:
    """CURL's head: Linear → LayerNorm (no tanh, as CURL's code)."""
    z = F.linear(h, P[f"{prefix}.fc.weight"], P[f"{prefix}.fc.bias"])
    return F.layer_norm(z, z.shape[-1:], P[f"{prefix}.norm.weight"], P[f"{prefix}.norm.bias"])


def encoder(P: dict, prefix: str, view: torch.Tensor) -> torch.Tensor:
    return pixel_head(P, f"{prefix}.head", conv_trunk(P, prefix, view))


def bn_mlp(P: dict, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """rlrep's projector/predictor: Linear (no bias) → BatchNorm (batch statistics) → ReLU →
    Linear."""
    x = F.linear(x, P[f"{prefix}.0.weight"])
    x = F.batch_norm(x, None, None, P[f"{prefix}.1.weight"], P[f"{prefix}.1.bias"], training=True)
    return F.linear(F.relu(x), P[f"{prefix}.3.weight"], P[f"{prefix}.3.bias"])


# --- auxiliary losses, at the RL view's features (the anchor) ---------------------------------


def curl_loss(P: dict, objective: str, anchor: torch.Tensor, view_b: torch.Tensor) -> torch.Tensor:
    """CURL: ``logits = q W kᵀ`` with ``k`` the momentum encoder's (no gradient), cross-entropy
    with the diagonal as positives."""
    key = encoder(P, f"{objective}.target_encoder", view_b).detach()
    logits = anchor @ P[f"{objective}.W"] @ key.T
    return F.cross_entropy(logits, torch.arange(len(logits)))


def byol_loss(P: dict, objective: str, online: str, anchor: torch.Tensor, view_a: torch.Tensor,
              view_b: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """BYOL (Grill et al. 2020): the mean of ``2 − 2 cos(q(g(f(a))), g_t(f_t(b)))`` and the
    same with a and b swapped; ``f(a)`` is the anchor, ``f(b)`` a pass of the online encoder
    ``online``."""
    features = torch.cat([anchor, encoder(P, online, view_b)])
    projections = bn_mlp(P, f"{objective}.projector", features)
    p_a, p_b = bn_mlp(P, f"{objective}.predictor", projections).chunk(2)
    with torch.no_grad():
        target = encoder(P, f"{objective}.target_encoder", torch.cat([view_a, view_b]))
        z_a, z_b = bn_mlp(P, f"{objective}.target_projector", target).chunk(2)

    def byol(p, z):
        return (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()

    return (byol(p_b, z_a) + byol(p_a, z_b)) / 2


def aux_loss(method: str, P: dict, extractor: str, anchor: torch.Tensor, view_a: torch.Tensor,
             view_b: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """The auxiliary loss of the extractor at ``extractor`` (its objective's heads and targets
    under ``{extractor}.objective``), with ``anchor`` the RL view's features."""
    objective = f"{extractor}.objective"
    if method == "curl":
        return curl_loss(P, objective, anchor, view_b)
    if method == "byol":
        return byol_loss(P, objective, f"{extractor}.encoder", anchor, view_a, view_b)
    raise ValueError(method)


EMA_PAIRS = {  # method → (its momentum, [(online, target)]); online "encoder": the extractor's
    "curl": (0.95, [("encoder", "target_encoder")]),
    "byol": (0.996, [("encoder", "target_encoder"), ("projector", "target_projector")]),
}


# --- the SB3 pieces ---------------------------------------------------------------------------


def squashed_gaussian(mean: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor):
    """SAC's action and log-probability (Haarnoja et al. 2018, appendix C; SB3's epsilon 1e-6)."""
    std = log_std.clamp(-20, 2).exp()
    gaussian = mean + std * eps
    action = torch.tanh(gaussian)
    log_prob = (
        -((gaussian - mean) ** 2) / (2 * std**2) - std.log() - math.log(math.sqrt(2 * math.pi))
    )
    return action, log_prob.sum(1) - torch.log(1 - action**2 + 1e-6).sum(1)


def clip_(grads: dict, names: list[str], max_norm: float) -> None:
    """``clip_grad_norm_`` over ``names`` (SB3 clips ``policy.parameters()``), in place."""
    total = torch.sqrt(sum((grads[n] ** 2).sum() for n in names))
    coef = min(1.0, max_norm / (float(total) + 1e-6))
    for n in names:
        grads[n] = grads[n] * coef


def grads_of(loss: torch.Tensor, P: dict, names: list[str]) -> dict[str, torch.Tensor]:
    out = torch.autograd.grad(loss, [P[n] for n in names], allow_unused=True, retain_graph=True)
    return {n: torch.zeros_like(P[n]) if g is None else g for n, g in zip(names, out, strict=True)}


def sgd(P: dict, grads: dict, lr: float) -> dict:
    """``P`` after one SGD step on ``grads`` (the others unchanged), detached."""
    return {n: (p - lr * grads[n] if n in grads else p).detach() for n, p in P.items()}


def ema_targets(method: str, P: dict, after: dict, extractor: str) -> dict:
    """The objective's targets after their EMA step ``θ_t ← m θ_t + (1 − m) θ`` toward the
    online networks as they are after the optimiser step (``after``)."""
    momentum, pairs = EMA_PAIRS[method]
    objective, out = f"{extractor}.objective", {}
    for online, target in pairs:
        online = f"{extractor}.encoder" if online == "encoder" else f"{objective}.{online}"
        prefix = f"{objective}.{target}."
        for n in P:
            if n.startswith(prefix):
                source = after[f"{online}.{n[len(prefix) :]}"]
                out[n] = momentum * P[n] + (1 - momentum) * source
    return out


# --- one train() step of each algorithm -------------------------------------------------------
#
# Each returns ``(grads, after)``: ``grads[optimizer]`` the gradient each optimiser sees before
# its step (the RL loss + w × aux loss, clipped as SB3 clips), and ``after`` every parameter
# after the step (SGD on the policy's and the heads' parameters, then the EMA of the targets).


class Step:
    """The replayed randomness of one ``train()`` and the bookkeeping shared by the steps."""

    def __init__(self, trace, P: dict, method: str, weight: float, lr: float) -> None:
        self.trace, self.P, self.method, self.w, self.lr = trace, P, method, weight, lr
        self._views = {label: iter(views) for label, views in trace.views.items()}
        self._eps = iter(trace.eps)
        self.grads: dict[str, dict] = {}
        self.after = {n: p.detach() for n, p in P.items()}

    def view(self, label: str) -> torch.Tensor:
        """The next random view the augmentation of extractor ``label`` drew."""
        return next(self._views[label])

    def det(self, label: str) -> torch.Tensor:
        return self.trace.det[label][0]

    def eps(self) -> torch.Tensor:
        return next(self._eps)

    def aux(self, extractor: str, anchor, view_a) -> torch.Tensor:
        """``w ×`` the aux loss; its second view is the next one ``extractor``'s augmentation
        drew (at the optimiser's ``zero_grad``)."""
        view_b = self.view(extractor)
        return self.w * aux_loss(self.method, self.P, extractor, anchor, view_a, view_b)

    def optimise(self, name: str, loss, params: list[str], extractors=(), clip=None) -> None:
        """The gradient of ``loss`` for optimiser ``name`` (its ``params``) and the heads of the
        objectives of ``extractors``; SB3's clip over ``params``; SGD; the EMA targets."""
        heads = [n for e in extractors for n in self.P if n.startswith(f"{e}.objective.")
                 and self.P[n].requires_grad and ".target_" not in n]  # fmt: skip
        grads = grads_of(loss, self.P, params + heads)
        if clip is not None:
            clip_(grads, params, clip)
        self.grads[name] = {n: grads[n] for n in params}
        self.after.update(sgd({n: self.P[n] for n in params + heads}, grads, self.lr))
        for e in extractors:
            self.after.update(ema_targets(self.method, self.P, self.after, e))


def features(P: dict, prefix: str, view, decoupled: bool):
    """(RL features, aux anchor) of a RepresentationExtractor's encoder at ``prefix``;
    decoupled (ATC), the RL losses read the conv output detached, the anchor with its graph."""
    if not decoupled:
        f = encoder(P, prefix, view)
        return f, f
    conv = conv_trunk(P, prefix, view)
    return pixel_head(P, f"{prefix}.head", conv.detach()), pixel_head(P, f"{prefix}.head", conv)


def q_values(P: dict, critic: str, f, actions, n: int = 2) -> torch.Tensor:
    return torch.cat([mlp(P, f"{critic}.qf{i}", torch.cat([f, actions], 1)) for i in range(n)], 1)


def sac(s: Step, model, params: dict, variant: str) -> None:
    """SAC (SB3 ``SAC.train``, one gradient step). ``variant``: "default" (CURL's placement:
    the critic's encoder learns the aux loss), "aux_on_actor", "decoupled", "shared"
    (:class:`rlrep.sb3.SharedEncoderSACPolicy`)."""
    P, d, gamma = s.P, s.trace.samples[0], model.gamma
    A, C, T = (
        "actor.features_extractor",
        "critic.features_extractor",
        "critic_target.features_extractor",
    )
    decoupled, shared = variant == "decoupled", variant == "shared"
    ent = s.trace.ent_coef

    def actor(P, label_view):
        if shared:  # the critic's conv trunk, detached, and the actor's own head
            f = pixel_head(P, f"{A}.head", conv_trunk(P, f"{C}.encoder", label_view).detach())
            f_anchor = f
        else:
            f, f_anchor = features(P, f"{A}.encoder", label_view, decoupled)
        latent = mlp(P, "actor.latent_pi", f, last_act=True)
        mean = F.linear(latent, P["actor.mu.weight"], P["actor.mu.bias"])
        log_std = F.linear(latent, P["actor.log_std.weight"], P["actor.log_std.bias"])
        action, log_prob = squashed_gaussian(mean, log_std, s.eps())
        return action, log_prob.reshape(-1, 1), f_anchor

    actor_views = C if shared else A
    v_pi = s.view(actor_views)
    a_pi, log_prob, anchor_pi = actor(P, v_pi)
    with torch.no_grad():
        a_next, log_prob_next, _ = actor(P, s.view(actor_views))
        view_t = s.view(T) if shared else s.det(T)
        q_next = q_values(P, "critic_target", encoder(P, f"{T}.encoder", view_t), a_next)
        q_next = q_next.min(1, keepdim=True).values - ent * log_prob_next
        y = d.rewards + (1 - d.dones) * gamma * q_next
    v = s.view(C)
    f, anchor = features(P, f"{C}.encoder", v, decoupled)
    q = q_values(P, "critic", f, d.actions)
    critic_loss = 0.5 * sum(F.mse_loss(q[:, i : i + 1], y) for i in range(2))
    s.optimise("critic", critic_loss + s.aux(C, anchor, v), params["critic"], [C])
    after = s.after
    v2 = s.view(C)
    if shared or decoupled:
        conv = conv_trunk(after, f"{C}.encoder", v2).detach()
        f2 = pixel_head(after, f"{C}.encoder.head", conv)
    else:
        f2 = encoder(after, f"{C}.encoder", v2)
    if shared:
        f2 = f2.detach()
    q_pi = q_values(after, "critic", f2, a_pi).min(1, keepdim=True).values
    actor_loss = (ent * log_prob - q_pi).mean()
    aux_actor = variant in ("aux_on_actor", "decoupled")
    if aux_actor:
        actor_loss = actor_loss + s.aux(A, anchor_pi, v_pi)
    s.optimise("actor", actor_loss, params["actor"], [A] if aux_actor else [])


def td3(s: Step, model, params: dict) -> None:
    """TD3 (SB3 ``TD3.train``, policy delay 1, no target smoothing noise)."""
    P, d, gamma = s.P, s.trace.samples[0], model.gamma
    A, C = "actor.features_extractor", "critic.features_extractor"
    AT, CT = "actor_target.features_extractor", "critic_target.features_extractor"

    def mu(P, actor, f):
        return torch.tanh(mlp(P, f"{actor}.mu", f))

    with torch.no_grad():
        a_next = mu(P, "actor_target", encoder(P, f"{AT}.encoder", s.det(AT))).clamp(-1, 1)
        q_next = q_values(P, "critic_target", encoder(P, f"{CT}.encoder", s.det(CT)), a_next)
        y = d.rewards + (1 - d.dones) * gamma * q_next.min(1, keepdim=True).values
    v = s.view(C)
    f = encoder(P, f"{C}.encoder", v)
    q = q_values(P, "critic", f, d.actions)
    critic_loss = sum(F.mse_loss(q[:, i : i + 1], y) for i in range(2))
    s.optimise("critic", critic_loss + s.aux(C, f, v), params["critic"], [C])
    after = s.after
    a = mu(P, "actor", encoder(P, f"{A}.encoder", s.view(A)))
    f2 = encoder(after, f"{C}.encoder", s.view(C)).detach()  # q1_forward: no gradient
    actor_loss = -mlp(after, "critic.qf0", torch.cat([f2, a], 1)).mean()
    s.optimise("actor", actor_loss, params["actor"])


def dqn(s: Step, model, params: dict) -> None:
    """DQN (SB3 ``DQN.train``): Huber loss on the taken action's Q, gradient clipped."""
    P, d, gamma = s.P, s.trace.samples[0], model.gamma
    E, ET = "q_net.features_extractor", "q_net_target.features_extractor"
    with torch.no_grad():
        q_next = mlp(P, "q_net_target.q_net", encoder(P, f"{ET}.encoder", s.det(ET)))
        y = d.rewards + (1 - d.dones) * gamma * q_next.max(1).values.reshape(-1, 1)
    v = s.view(E)
    f = encoder(P, f"{E}.encoder", v)
    q = mlp(P, "q_net.q_net", f).gather(1, d.actions.long())
    loss = F.smooth_l1_loss(q, y) + s.aux(E, f, v)
    s.optimise("policy", loss, params["policy"], [E], clip=model.max_grad_norm)


def on_policy(s: Step, model, params: dict) -> None:
    """PPO (one epoch, one minibatch) or A2C (SB3 ``train``): Gaussian policy, shared
    extractor, gradient clipped."""
    P, d = s.P, s.trace.samples[0]
    E = "features_extractor"
    v = s.view(E)
    f = encoder(P, f"{E}.encoder", v)
    latent_pi = mlp(P, "mlp_extractor.policy_net", f, act=torch.tanh, last_act=True)
    latent_vf = mlp(P, "mlp_extractor.value_net", f, act=torch.tanh, last_act=True)
    mean = F.linear(latent_pi, P["action_net.weight"], P["action_net.bias"])
    log_std = P["log_std"].expand_as(mean)
    log_prob = (-((d.actions - mean) ** 2) / (2 * log_std.exp() ** 2) - log_std
                - math.log(math.sqrt(2 * math.pi))).sum(1)  # fmt: skip
    entropy = (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum(1)
    values = F.linear(latent_vf, P["value_net.weight"], P["value_net.bias"]).flatten()
    advantages = d.advantages
    if type(model).__name__ == "PPO":
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        ratio = torch.exp(log_prob - d.old_log_prob)
        clipped = ratio.clamp(1 - model.clip_range(1.0), 1 + model.clip_range(1.0))
        policy_loss = -torch.min(advantages * ratio, advantages * clipped).mean()
    else:
        policy_loss = -(advantages * log_prob).mean()
    loss = policy_loss - model.ent_coef * entropy.mean()
    loss = loss + model.vf_coef * F.mse_loss(d.returns, values) + s.aux(E, f, v)
    s.optimise("policy", loss, params["policy"], [E], clip=model.max_grad_norm)


def quantile_huber(current: torch.Tensor, target: torch.Tensor, sum_over_quantiles: bool):
    """The quantile regression loss (Dabney et al. 2018, Eq. 10, κ = 1): ``current``
    ``(B, [critics,] N)``, ``target`` ``(B, [1,] M)``. The midpoints ``(i + ½)/N`` in float32,
    as sb3-contrib computes them."""
    n = current.shape[-1]
    tau = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    tau = tau.view(*([1] * (current.dim() - 1)), n, 1)
    delta = target.unsqueeze(-2) - current.unsqueeze(-1)
    huber = torch.where(delta.abs() > 1, delta.abs() - 0.5, 0.5 * delta**2)
    loss = (tau - (delta.detach() < 0).float()).abs() * huber  # float32, as sb3-contrib
    return loss.sum(-2).mean() if sum_over_quantiles else loss.mean()


def tqc(s: Step, model, params: dict) -> None:
    """TQC (Kuznetsov et al. 2020; sb3-contrib ``TQC.train``): SAC's actor, quantile critics,
    the target's top quantiles of each critic dropped."""
    P, d, gamma, ent = s.P, s.trace.samples[0], model.gamma, s.trace.ent_coef
    A, C, T = (
        "actor.features_extractor",
        "critic.features_extractor",
        "critic_target.features_extractor",
    )
    n_critics = model.critic.n_critics

    def actor(view):
        latent = mlp(P, "actor.latent_pi", encoder(P, f"{A}.encoder", view), last_act=True)
        mean = F.linear(latent, P["actor.mu.weight"], P["actor.mu.bias"])
        log_std = F.linear(latent, P["actor.log_std.weight"], P["actor.log_std.bias"])
        action, log_prob = squashed_gaussian(mean, log_std, s.eps())
        return action, log_prob.reshape(-1, 1)

    def quantiles(P, critic, f, actions):
        x = torch.cat([f, actions], 1)
        return torch.stack([mlp(P, f"{critic}.qf{i}", x) for i in range(n_critics)], 1)

    a_pi, log_prob = actor(s.view(A))
    with torch.no_grad():
        a_next, log_prob_next = actor(s.view(A))
        f_next = encoder(P, f"{T}.encoder", s.det(T))
        q_next = (
            quantiles(P, "critic_target", f_next, a_next).reshape(len(a_next), -1).sort().values
        )
        kept = q_next.shape[1] - model.top_quantiles_to_drop_per_net * n_critics
        y = d.rewards + (1 - d.dones) * gamma * (q_next[:, :kept] - ent * log_prob_next)
    v = s.view(C)
    f = encoder(P, f"{C}.encoder", v)
    critic_loss = quantile_huber(quantiles(P, "critic", f, d.actions), y[:, None], False)
    s.optimise("critic", critic_loss + s.aux(C, f, v), params["critic"], [C])
    f2 = encoder(s.after, f"{C}.encoder", s.view(C))
    q_pi = quantiles(s.after, "critic", f2, a_pi).mean(2).mean(1, keepdim=True)
    s.optimise("actor", (ent * log_prob - q_pi).mean(), params["actor"])


def qrdqn(s: Step, model, params: dict) -> None:
    """QR-DQN (Dabney et al. 2018; sb3-contrib ``QRDQN.train``), gradient clipped."""
    P, d, gamma = s.P, s.trace.samples[0], model.gamma
    E, ET = "quantile_net.features_extractor", "quantile_net_target.features_extractor"
    n, b = model.n_quantiles, len(d.actions)

    def quantiles(net, f):
        return mlp(P, f"{net}.quantile_net", f).view(b, n, -1)

    with torch.no_grad():
        q_next = quantiles("quantile_net_target", encoder(P, f"{ET}.encoder", s.det(ET)))
        greedy = q_next.mean(1, keepdim=True).argmax(2, keepdim=True).expand(b, n, 1)
        y = d.rewards + (1 - d.dones) * gamma * q_next.gather(2, greedy).squeeze(2)
    v = s.view(E)
    f = encoder(P, f"{E}.encoder", v)
    actions = d.actions[..., None].long().expand(b, n, 1)
    current = quantiles("quantile_net", f).gather(2, actions).squeeze(2)
    loss = quantile_huber(current, y, True) + s.aux(E, f, v)
    s.optimise("policy", loss, params["policy"], [E], clip=model.max_grad_norm)
