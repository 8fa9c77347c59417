"""SPR (Schwarzer, Anand, Goel, Hjelm, Courville & Bachman 2021, "Data-Efficient Reinforcement
Learning with Self-Predictive Representations"): roll a latent transition model forward from
``obs_t`` under the taken actions and predict the momentum encoder's projections of
``obs_{t+1} … obs_{t+K}``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rlrep.methods.base import AuxOutput, view_metrics
from rlrep.methods.ema import check_momentum, make_target
from rlrep.methods.temporal import TemporalMethod, action_inputs, check_offset, masked_mean

__all__ = ["SPR"]


class SPR(TemporalMethod):
    """Self-Predictive Representations on the encoder's flat features ``z`` ``(B, D)``.

    Online: ``ẑ_0 = z_0 = f_o(obs_t)``, ``ẑ_k = T(ẑ_{k−1}, a_{t+k−1})`` for ``k = 1 … K``, then
    ``ŷ_k = q(g_o(ẑ_k))``. Target: ``ỹ_k = g_m(f_m(obs_{t+k}))`` without gradient, ``f_m`` and
    ``g_m`` EMA copies of the encoder and of ``g_o``. Loss (the code's ``spr_loss``):
    ``‖n(ŷ_k) − n(ỹ_k)‖² = 2 − 2 cos(ŷ_k, ỹ_k)``, ``n = F.normalize(eps=1e-3)`` in float32,
    averaged over the valid ``(sample, k)``. Step 0 is left out (the code's
    ``t0_spr_loss_weight = 0``).

    Differences from the paper and mila-iqia/spr (Atari, conv maps):

    - The transition model ``T`` is an MLP on the flat features, as SPR-for-DMC follow-ups
      (PlayVirtual, Yu et al. 2021) use: ``Linear(D + A → hidden) → LayerNorm → ReLU →
      Linear(hidden → D)``, instead of the paper's conv net on the spatial maps with actions
      one-hot broadcast over the pixels; no min-max renormalisation of ``ẑ_k``.
    - ``g_o = Linear(D → projection_dim)`` stands in for the code's default projection
      (``classifier="q_l1"``: the Q-head's first layer, which a plug-in method cannot reach);
      the predictor ``q`` is ``Linear(projection_dim → projection_dim)``
      (``final_classifier="linear"``).
    - Steps after an episode end (``valid`` false) are dropped from the mean; the code multiplies
      them by a nonterminal mask and so counts them as zeros in its mean.
    - Loss scale: this loss is the mean over steps of ``2 − 2 cos``, as the code's
      ``model_spr_loss``, which the code weighs by ``model_spr_weight = 5``; the paper weighs
      ``Σ_k −cos`` by ``λ = 2``. Both give each step's cosine the gradient weight 2, which is
      ``aux_weight = K`` here (the paper's scale: ``aux_weight=5`` at its ``K = 5``, as the
      ``spr-sac`` agent's ``spr_weight``). :attr:`default_aux_weight` is 1, which starts the
      loss on SAC's critic-loss scale (docs/benchmarks.md, ``experiments/aux_scales.py``).

    ``forward(views, actions, valid, features_a)`` (see :class:`TemporalMethod`): ``views``
    ``(B, K + 1, C, H, W)``, ``actions`` ``(B, K, A)`` floats or ``(B, K)`` / ``(B, K, 1)``
    indices, ``valid`` ``(B, K + 1)``. Only ``views[:, 0]`` goes through the online encoder
    (``features_a`` stands for it when given); ``views[:, 1:]`` go through the target encoder
    alone, in one pass.

    Metrics: :func:`~rlrep.methods.base.view_metrics` of ``z_0`` against the target encoder's
    features of ``obs_{t+1}`` (``feature_std`` and ``uniformity`` of the representation the RL
    head reads, so collapse shows; ``alignment`` of consecutive observations), over every row,
    valid or not (selecting rows would sync with the host); ``cosine``, the mean valid
    ``cos(ŷ_k, ỹ_k)`` (1 − loss / 2).

    :param encoder: the online encoder (``features_dim`` D).
    :param action_dim: A, the action size (continuous) or number of actions (discrete).
    :param discrete_actions: actions are integer indices, one-hot encoded here.
    :param steps: K, the prediction horizon (paper: 5).
    :param projection_dim: ``g_o``'s output size.
    :param hidden_dim: the transition model's hidden width.
    :param momentum: EMA momentum of ``f_m`` and ``g_m`` (code: ``momentum_tau = 0.01`` per
        update, i.e. 0.99).
    :param gather_distributed: accepted for a uniform signature; SPR's loss compares no samples
        across the batch, so nothing is gathered.
    """

    needs_actions = True
    default_aux_weight = 1.0

    def __init__(
        self,
        encoder: nn.Module,
        action_dim: int,
        discrete_actions: bool = False,
        steps: int = 5,
        projection_dim: int = 256,
        hidden_dim: int = 256,
        momentum: float = 0.99,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(encoder, gather_distributed)
        if not isinstance(action_dim, int) or isinstance(action_dim, bool) or action_dim < 1:
            raise ValueError(
                f"SPR: action_dim must be an integer >= 1, got {action_dim!r}; pass the env's "
                "action size (continuous) or its number of actions (discrete_actions=True)"
            )
        self.action_dim = action_dim
        self.discrete_actions = bool(discrete_actions)
        self.steps = check_offset(steps, "SPR: steps")
        self.offsets = tuple(range(self.steps + 1))
        check_offset(projection_dim, "SPR: projection_dim")
        check_offset(hidden_dim, "SPR: hidden_dim")
        self.momentum = check_momentum(momentum, "SPR: momentum")
        d = self.features_dim
        self.transition = nn.Sequential(
            nn.Linear(d + action_dim, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, d),
        )
        self.projection = nn.Linear(d, projection_dim)
        self.predictor = nn.Linear(projection_dim, projection_dim)
        self.target_encoder = make_target(encoder)
        self.target_projection = make_target(self.projection)

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The transition model's latents ``ẑ_1 … ẑ_K`` ``(B, K, D)`` from ``ẑ_0 = z0``
        ``(B, D)`` under ``actions`` ``(B, K, A)`` (model inputs, one-hot for discrete).

        Sequential in ``k`` (each step reads the previous prediction), batched over samples.
        """
        latent, latents = z0, []
        for k in range(actions.shape[1]):
            latent = self.transition(torch.cat([latent, actions[:, k]], dim=1))
            latents.append(latent)
        return torch.stack(latents, 1)

    def forward(  # type: ignore[override]
        self,
        views: torch.Tensor,
        actions: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        valid = self.check_window(views, actions, valid)
        assert actions is not None  # check_window raises without them
        b, k = views.shape[0], self.steps
        z0 = self.encoder(views[:, 0]) if features_a is None else features_a
        inputs = action_inputs(actions[:, :k], self.action_dim, self.discrete_actions)
        latents = self.rollout(z0, inputs.to(z0.dtype))
        predictions = self.predictor(self.projection(latents.flatten(0, 1))).unflatten(0, (b, k))
        with torch.no_grad():
            target_features = self.target_encoder(views[:, 1:].flatten(0, 1))
            targets = self.target_projection(target_features).unflatten(0, (b, k))
        # float32 as the code's spr_loss: normalising low-precision activations loses the cosine.
        p = F.normalize(predictions.float(), dim=-1, eps=1e-3)
        y = F.normalize(targets.float(), dim=-1, eps=1e-3)
        counted = valid[:, 1:]  # ŷ_k is scored where obs_{t+k} is usable
        loss = masked_mean((p - y).pow(2).sum(-1), counted)
        metrics = {
            **view_metrics(z0, target_features.unflatten(0, (b, k))[:, 0]),
            "cosine": masked_mean((p.detach() * y).sum(-1), counted),
        }
        return AuxOutput(loss, metrics)

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.encoder, self.target_encoder), (self.projection, self.target_projection)]
