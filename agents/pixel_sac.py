"""What CURL-SAC and DrQ share: SAC from pixels with one encoder trained by the critic.

Both reference codes (MishaLaskin/curl, denisyarats/drq) build the same networks: a pixel encoder
(4 convs of 32 filters, 50-d LayerNorm feature) owned by the critic, an actor with its own
Linear + LayerNorm head over the critic's conv features read detached, Q heads and actor MLP
from CURL's ``weight_init``, the actor's log σ mapped into [−10, 2] by a tanh, and a float64
log α. :class:`PixelSAC` holds that, and the steps they share (the actor and α step, the action
of the actor from conv features); each agent adds its own critic step and ``train()``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.utils import get_device
from stable_baselines3.sac.policies import Actor
from torch import nn

from rlrep.agents.optim import adam_kwargs
from rlrep.agents.overlap import OverlappedLearn
from rlrep.sb3 import FrameStackReplayBuffer, SharedEncoderSACPolicy, policy_kwargs

__all__ = [
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "CURLActor",
    "CURLSACPolicy",
    "PixelSAC",
    "orthogonal_init_",
    "pixel_encoder_kwargs",
    "scale_pixels",
]

#: CURL's and DrQ's bounds of log σ (``actor_log_std_min`` / ``max``; DrQ's ``log_std_bounds``).
LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


def orthogonal_init_(module: nn.Module) -> None:
    """CURL's ``weight_init`` for Linear layers: orthogonal weights (gain 1), zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight)
        nn.init.zeros_(module.bias)


def scale_pixels(views: tuple[torch.Tensor, ...], channels_last: bool) -> tuple[torch.Tensor, ...]:
    """uint8 views → float32 in [0, 1] (``x.float() / 255``), channels-last when asked."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    # The layout change on the uint8 bytes (4× fewer than floats), then one float copy scaled in
    # place (no second float batch allocated): the same values as x.float() / 255.
    return tuple(x.contiguous(memory_format=fmt).to(torch.float32).div_(255.0) for x in views)


class CURLActor(Actor):
    """SB3's SAC actor with CURL's (and DrQ's) log σ mapping and initialisation.

    ``log σ = LOG_STD_MIN + ½ (LOG_STD_MAX − LOG_STD_MIN)(tanh(x) + 1)`` = ``−10 + 6(tanh x + 1)``
    (SB3 clamps x to [−20, 2] instead: σ ≈ 1.1 at init where CURL gives σ ≈ 0.02).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latent_pi.apply(orthogonal_init_)
        actions, hidden = self.mu.out_features, self.mu.in_features
        joint = nn.init.orthogonal_(torch.empty(2 * actions, hidden))  # CURL: one Linear(h, 2A)
        with torch.no_grad():
            self.mu.weight.copy_(joint[:actions])
            self.log_std.weight.copy_(joint[actions:])
            self.mu.bias.zero_()
            self.log_std.bias.zero_()

    def dist_params(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, features_dim)`` → mean and log σ, each ``(B, |A|)``, before the tanh squash."""
        latent = self.latent_pi(features)
        squashed = torch.tanh(self.log_std(latent))
        return self.mu(latent), LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (squashed + 1)

    def get_action_dist_params(self, obs: torch.Tensor):
        return *self.dist_params(self.extract_features(obs, self.features_extractor)), {}

    def action_log_prob_from_features(
        self, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A sampled squashed action ``(B, |A|)`` and its log-probability ``(B,)``."""
        return self.action_dist.log_prob_from_params(*self.dist_params(features))


class CURLSACPolicy(SharedEncoderSACPolicy):
    """:class:`~rlrep.sb3.SharedEncoderSACPolicy` with :class:`CURLActor` and Q heads initialised
    as CURL's (orthogonal weights, zero biases)."""

    def make_actor(self, features_extractor=None) -> CURLActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return CURLActor(**actor_kwargs).to(self.device)

    def make_critic(self, features_extractor=None) -> ContinuousCritic:
        critic = super().make_critic(features_extractor)
        for q_net in critic.q_networks:
            q_net.apply(orthogonal_init_)
        return critic


def pixel_encoder_kwargs(config: Any, device: Any, tanh: bool) -> dict[str, Any]:
    """The ``encoder_kwargs`` of an agent's CURL-style encoder from its config: sizes, the tanh,
    and channels-last memory when ``config.channels_last`` is ``None`` and ``device`` is the CPU
    (faster there; unmeasured on GPUs, where it stays off)."""
    channels_last = config.channels_last
    if channels_last is None:
        channels_last = get_device(device).type == "cpu"
    return {
        "features_dim": config.features_dim,
        "num_filters": config.num_filters,
        "num_layers": config.num_layers,
        "tanh": tanh,
        "channels_last": channels_last,
    }


class PixelSAC(OverlappedLearn, SAC):
    """SB3's SAC with the shared networks above; subclasses set :attr:`default_config`, write
    ``train()`` and the critic step, and may change the view the policy acts on
    (:meth:`acting_view`).

    :param env: a pixel env with uint8 ``(3·k, H, W)`` observations (``rlrep.envs.make_dmc``).
    :param config: the agent's hyperparameters (a dataclass of :mod:`rlrep.agents.presets`
        with the fields read here: network sizes, ``lr``, ``alpha_lr``, ``alpha_beta1``,
        ``init_temperature``, ``gamma``, ``buffer_size``, ``initial_steps``, ``batch_size``);
        ``None``: :attr:`default_config`.
    :param overlap: step the env while the update runs (:mod:`rlrep.agents.overlap`: the official
        codes' order, act → update → store; give the env as :func:`~rlrep.agents.overlap.env_worker`
        for the two to run at once); ``False``: SB3's order, act → store → update.
    :param storage_device: where the replay frames live (``"cuda"`` keeps them on the GPU).
    :param kwargs: passed to SB3's ``SAC`` (``seed``, ``device``, ``tensorboard_log``, ``verbose``).
    """

    #: The agent's preset (:mod:`rlrep.agents.presets`).
    default_config: Any = None
    #: Attributes an agent adds that SB3's save skips: modules registered on the policy (saved
    #: with it) and helpers rebuilt by ``_setup_model``.
    unsaved_attributes: tuple[str, ...] = ()
    #: Optimisers an agent adds beyond SB3's, saved with the model under these names.
    extra_optimizers: tuple[str, ...] = ()

    def __init__(
        self,
        env: Any,
        config: Any = None,
        storage_device: str = "cpu",
        overlap: bool = False,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("policy", None)  # SB3's load() passes the saved policy class; it is fixed here
        self.overlap = overlap
        config = self.default_config if config is None else config
        self.config = config
        encoder_kwargs = pixel_encoder_kwargs(
            config, kwargs.get("device", "auto"), config.encoder_tanh
        )
        kwargs.setdefault("policy_kwargs", policy_kwargs(
            method=None,  # the agents' update() steps everything itself
            encoder="curl",
            encoder_kwargs=encoder_kwargs,
            net_arch=[config.hidden_dim, config.hidden_dim],
            optimizer_kwargs=adam_kwargs(get_device(kwargs.get("device", "auto"))),
            **self.acting_view(config),
        ))  # fmt: skip
        super().__init__(
            CURLSACPolicy,
            env,
            learning_rate=config.lr,
            buffer_size=config.buffer_size,
            learning_starts=config.initial_steps,
            batch_size=config.batch_size,
            gamma=config.gamma,
            train_freq=1,
            gradient_steps=1,
            ent_coef=f"auto_{config.init_temperature}",
            target_entropy="auto",
            replay_buffer_class=FrameStackReplayBuffer,
            replay_buffer_kwargs={"storage_device": storage_device},
            _init_setup_model=_init_setup_model,
            **kwargs,
        )

    @staticmethod
    def acting_view(config: Any) -> dict[str, Any]:
        """``policy_kwargs`` of the view the policy acts on: the observation itself (DrQ's
        shift, whose evaluation view is the identity); CURL-SAC acts on the center crop."""
        return {"augmentation": "shift", "augmentation_kwargs": {"pad": config.pad}}

    def _setup_model(self) -> None:
        super()._setup_model()
        cfg = self.config
        self.encoder = self.critic.features_extractor.encoder
        self.target_encoder = self.critic_target.features_extractor.encoder
        # log α is a float64 scalar in both reference codes (np.log → torch.tensor); SB3's is a
        # float32 (1,) tensor.
        self.log_ent_coef = torch.tensor(
            math.log(cfg.init_temperature), dtype=torch.float64, device=self.device
        ).requires_grad_(True)
        self.ent_coef_optimizer = torch.optim.Adam(
            [self.log_ent_coef], lr=cfg.alpha_lr, betas=(cfg.alpha_beta1, 0.999)
        )
        self._q_params = [p for q in self.critic.q_networks for p in q.parameters()]
        self._target_q_params = [p for q in self.critic_target.q_networks for p in q.parameters()]
        self._encoder_params = list(self.encoder.parameters())
        self._target_encoder_params = list(self.target_encoder.parameters())

    def register_objective(self, objective: nn.Module) -> None:
        """``self.objective`` = ``objective``, registered on the policy so that its heads and
        targets are saved with the model, but without a second copy of the encoder it trains:
        its entries that are the critic's tensors leave the policy's state dict and are filled
        back from the critic's on load."""
        self.policy.objective = objective.to(self.device)
        self.objective = self.policy.objective
        state = self.policy.state_dict(keep_vars=True)
        owner = {id(t): k for k, t in state.items() if not k.startswith("objective.")}
        aliases = {k: owner[id(t)] for k, t in state.items()
                   if k.startswith("objective.") and id(t) in owner}  # fmt: skip

        def drop(module, state_dict, prefix, local_metadata) -> None:
            for alias in aliases:
                state_dict.pop(prefix + alias, None)

        def fill(module, state_dict, prefix, *args) -> None:
            for alias, source in aliases.items():
                if prefix + source in state_dict:
                    state_dict.setdefault(prefix + alias, state_dict[prefix + source])

        self.policy.register_state_dict_post_hook(drop)
        self.policy.register_load_state_dict_pre_hook(fill)

    def _excluded_save_params(self) -> list[str]:
        own = ["encoder", "target_encoder", "_q_params", "_target_q_params", "_encoder_params",
               "_target_encoder_params", *self.unsaved_attributes, *self.extra_optimizers]  # fmt: skip
        return [*super()._excluded_save_params(), *own]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, *self.extra_optimizers], variables

    def scaled(self, *views: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """uint8 views → float32 in [0, 1], once per batch, in the convs' memory format."""
        return scale_pixels(views, self.encoder.channels_last)

    def _actor(self, conv_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled action and its log-probability ``(B, 1)`` from the critic's conv features,
        through the actor's own Linear + LayerNorm head."""
        actions, log_prob = self.actor.action_log_prob_from_features(
            self.actor.features_extractor.head(conv_features)
        )
        return actions, log_prob.reshape(-1, 1)

    def update_actor_and_alpha(
        self, obs: torch.Tensor, conv: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor step on ``obs`` (encoder read detached: the actor never trains the convs),
        then α's; their detached losses. ``conv``: the encoder's conv features of ``obs``,
        detached, when the caller has them."""
        with torch.no_grad():
            if conv is None:
                conv = self.encoder.forward_conv(obs)  # once: the actor's convs are the critic's
            critic_features = self.encoder.forward_head(conv)
        actions_pi, log_prob = self._actor(conv)
        alpha = self.log_ent_coef.exp()
        q_pi = torch.min(*self.critic.q_values(critic_features, actions_pi))
        actor_loss = (alpha.detach() * log_prob - q_pi).mean()
        self.actor.optimizer.zero_grad()
        actor_loss.backward()
        self.actor.optimizer.step()
        alpha_loss = (alpha * (-log_prob - self.target_entropy).detach()).mean()
        self.ent_coef_optimizer.zero_grad()
        alpha_loss.backward()
        self.ent_coef_optimizer.step()
        return actor_loss.detach(), alpha_loss.detach()

    def soft_target_value(
        self, next_obs: torch.Tensor, rewards: torch.Tensor, dones: torch.Tensor
    ) -> torch.Tensor:
        """SAC's target ``r + γ (1 − d)(min Q̄(s′, a′) − α log π(a′|s′))``, ``a′ ~ π(s′)``,
        ``(B, 1)``, without gradient; ``next_obs`` a scaled view."""
        alpha = self.log_ent_coef.exp().detach()
        with torch.no_grad():
            next_actions, next_log_prob = self._actor(self.encoder.forward_conv(next_obs))
            target_q = torch.min(
                *self.critic_target.q_values(self.target_encoder(next_obs), next_actions)
            )
            return rewards + (1 - dones) * self.gamma * (target_q - alpha * next_log_prob)

    def log_train(self, logs: dict[str, list[torch.Tensor]], objective: str | None = None) -> None:
        """Log the means of one ``train()`` call (one host sync per key): the RL losses under
        SB3's ``train/`` keys, and the auxiliary objective's loss (``<objective>_loss`` among
        ``logs``) and metrics as ``aux/loss``, ``aux/<metric>``: the names the SB3 plug-in and
        ``rlrep pretrain`` log them under.

        :param logs: per-step detached values of each key.
        :param objective: the name of the auxiliary objective's loss key prefix (``"curl"``).
        """
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", self.log_ent_coef.exp().item())
        for key, values in logs.items():
            name = "aux/loss" if objective and key == f"{objective}_loss" else f"train/{key}"
            self.logger.record(name, torch.stack(values).float().mean().item())
        if objective is not None:  # accuracy, feature health
            for key, value in self.objective.pop_metrics().items():
                if key != "loss":
                    self.logger.record(f"aux/{key}", value)
