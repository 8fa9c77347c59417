"""A Stable-Baselines3 features extractor: augment → encode, plus an auxiliary objective.

The extractor is a function of the observation (a random or the deterministic view, encoded).
When it carries a method, it also owns an :class:`~rlrep.objective.AuxObjective` and remembers its
last training forward; :mod:`rlrep.sb3.binding` computes the auxiliary loss from that record once
per optimiser step, takes the EMA step and logs the metrics (see there).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

import rlrep.augment as augment_lib
import rlrep.encoders as encoder_lib
import rlrep.methods as method_lib
from rlrep.augment.base import (
    check_frame_channels,
    check_pixel_range,
    infer_frame_channels,
    pixel_range_checked,
)
from rlrep.checkpoint import read_pretrained
from rlrep.objective import AuxObjective
from rlrep.sb3.binding import (
    AuxBinding,
    bind_policy,
    find_algorithm,
    inside_sb3,
    unbound_error,
    warn_unbound,
)
from rlrep.sb3.checks import (
    NORMALIZE_IMAGES_FIX,
    check_aux_weight,
    check_image_space,
    check_method_options,
    check_training_options,
)
from rlrep.sb3.frames import reconcile_frame_channels

__all__ = ["RepresentationExtractor"]


class RepresentationExtractor(BaseFeaturesExtractor):
    """Augment → encode, plus an auxiliary self-supervised loss while training.

    Build it through :func:`rlrep.sb3.policy_kwargs`. SB3 hands it observations scaled to [0, 1]
    (``normalize_images=True``, SB3's default); raw 0–255 floats raise ``ValueError`` naming
    ``normalize_images`` (one ``aminmax`` per forward; augmentation and encoder skip theirs).

    - training mode: features of a random view (``rl_view="augmented"``, as RAD, DrQ, CURL) or
      of the deterministic view (``"deterministic"``); when gradients are on and there is a
      ``method`` with ``aux_weight > 0``, the forward is recorded for the auxiliary loss, which
      the SB3 optimiser stepping this encoder adds once per step (:mod:`rlrep.sb3.binding`; the
      RL view is the anchor, a second random view the positive; for the methods in
      :data:`rlrep.methods.TEMPORAL`, the replay buffer's windows that start at that batch).
      With ``decoupled=True`` the RL losses read the conv trunk's output detached,
      ``head(conv.detach())``: they train the encoder's head (CURL's fc + LayerNorm) and the RL
      heads, not the convs, which the auxiliary loss trains (with the head), as ATC
      (Stooke et al. 2021) and the ``atc-sac`` agent.
    - evaluation mode (``predict``, rollouts, SB3's target networks, which SB3 keeps in eval
      mode): features of the deterministic view (center crop), no auxiliary loss.

    :param observation_space: uint8 ``(C, H, W)`` images, ``C = 3·k`` for colour augmentations.
    :param encoder: name in :data:`rlrep.encoders.ENCODERS`.
    :param augmentation: spec for :func:`rlrep.augment.make` (``None``: no augmentation), or a
        kornia augmentation module (applied per stacked frame, :class:`~rlrep.augment.KorniaAugmentation`).
    :param image_size: side the encoder sees; default: H (crop: round(0.84·H), i.e. 100 → 84).
    :param method: name in :data:`rlrep.methods.METHODS`, or ``None`` (augmentation only).
    :param aux_weight: weight of the auxiliary loss added to the RL loss; default: the method's
        ``default_aux_weight`` (chosen so every method starts on SAC's critic-loss scale; docs/benchmarks.md).
    :param rl_view: ``"augmented"`` or ``"deterministic"`` input for the RL loss.
    :param encoder_kwargs: / :param method_kwargs: / :param augmentation_kwargs: passed on.
    :param pretrained: a ``rlrep pretrain`` checkpoint (a path, or the forms of
        :func:`rlrep.checkpoint.read_pretrained`): its encoder (name, options, weights) replaces
        ``encoder``/``encoder_kwargs``; views must have the shape it was trained on.
    :param freeze: keep the pretrained encoder fixed (no gradient, eval mode); the RL heads
        learn on its features (a representation trained beforehand).
    :param decoupled: the RL losses do not train the convolutional trunk: they read its output
        detached and train the encoder's head (``forward_head``: CURL's fc + LayerNorm, the
        last Linear of ``nature`` and ``impala``) and the RL heads; the auxiliary ``method``
        trains the convs (and the head), online from the replay data (ATC's setting, Stooke et
        al. 2021; ``resnet18``'s head is the identity, so there the RL losses train none of the
        encoder).
    :param rank_every: log the effective rank of the RL view's features every ``rank_every``
        auxiliary steps (an SVD; a collapse alarm), ``0`` for never.
    :param aux_on_actor: where the actor has an encoder of its own (stock SAC/TD3
        ``CnnPolicy``; PPO/A2C with ``share_features_extractor=False``), give it an auxiliary loss
        too; default ``False``: only the critic's encoder learns from it, as in CURL.
    :param frame_channels: channels per stacked frame, 3 (RGB) or 1 (grayscale, e.g. Atari);
        default: 3 when C is a multiple of 3, else 1. When the algorithm's env tells (SB3's
        ``VecFrameStack``), a different value is refused at the first update with the fix.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        encoder: str = "curl",
        augmentation: str | torch.nn.Module | None = "crop",
        image_size: int | None = None,
        method: str | None = None,
        aux_weight: float | None = None,
        rl_view: str = "augmented",
        encoder_kwargs: dict[str, Any] | None = None,
        method_kwargs: dict[str, Any] | None = None,
        augmentation_kwargs: dict[str, Any] | None = None,
        pretrained: str | dict[str, Any] | None = None,
        freeze: bool = False,
        rank_every: int = 100,
        frame_channels: int | None = None,
        decoupled: bool = False,
        aux_on_actor: bool = False,
    ) -> None:
        c, h, w = check_image_space(observation_space)
        frame_channels_given = frame_channels is not None
        frame_channels = check_frame_channels(
            infer_frame_channels(c) if frame_channels is None else frame_channels, c
        )
        aux_weight = check_aux_weight(aux_weight, method) or 0.0  # 0.0: no method
        check_training_options(freeze, pretrained, method, aux_weight, decoupled)
        checkpoint = None if pretrained is None else read_pretrained(pretrained)
        if checkpoint is not None:
            encoder, encoder_kwargs = (
                checkpoint["config"]["encoder"],
                checkpoint["config"]["encoder_kwargs"],
            )
        if rl_view not in ("augmented", "deterministic"):
            raise ValueError(f"rl_view must be 'augmented' or 'deterministic', got {rl_view!r}")
        aug_kwargs = dict(augmentation_kwargs or {})
        names = augmentation.split("+") if isinstance(augmentation, str) else []
        if image_size is None:
            image_size = round(0.84 * h) if "crop" in names and "size" not in aug_kwargs else h
        for name, key in (("crop", "size"), ("resized_crop", "size")):
            if name in names:
                aug_kwargs.setdefault(key, image_size)
        if image_size > min(h, w):
            raise ValueError(
                f"image_size {image_size} is larger than the observations ({h}×{w}); render larger "
                "frames (CURL renders 100 for an 84 crop) or pass a smaller image_size"
            )
        augment = augment_lib.make(augmentation, frame_channels=frame_channels, **aug_kwargs)
        with torch.no_grad():
            view_shape = augment.deterministic(torch.zeros(1, c, h, w, dtype=torch.uint8)).shape[1:]
        if checkpoint is not None and tuple(checkpoint["config"]["view_shape"]) != tuple(
            view_shape
        ):
            raise ValueError(
                f"the pretrained encoder was trained on views of shape {tuple(checkpoint['config']['view_shape'])}, "
                f"but this env's observations give {tuple(view_shape)}; pretrain on matching frames "
                "(e.g. --dataset dmc:TASK with the same image and crop size)"
            )
        net = encoder_lib.make(encoder, tuple(view_shape), **(encoder_kwargs or {}))
        if checkpoint is not None and checkpoint["encoder"] is not None:
            net.load_state_dict(checkpoint["encoder"])
        if method is not None:  # the objective is built later: check its options now
            check_method_options(method, method_kwargs, net, _needs_actions)
        self.freeze = freeze
        if freeze:
            net.requires_grad_(False)
        super().__init__(observation_space, net.features_dim)
        self.augment, self.encoder = augment, net
        self.view_shape = tuple(view_shape)
        self.frame_channels = frame_channels
        # Given (policy_kwargs) or inferred; an inferred one follows the env's VecFrameStack
        # when learn() starts (rlrep.sb3.frames.reconcile_frame_channels).
        self.frame_channels_given = frame_channels_given
        self._augment_spec = (augmentation, aug_kwargs)
        self.aux_weight, self.rl_view = float(aux_weight), rl_view
        self.decoupled = decoupled
        self.aux_on_actor = bool(aux_on_actor)
        self.action_space: gym.Space | None = None  # the algorithm's, set by the binding
        # The objective (heads, momentum targets, metrics) is deliberately *not* a submodule:
        # SB3 builds its target networks with this same constructor, loads the online state into
        # them and polyak-averages ``zip(online.parameters(), target.parameters())``, so a
        # registered method would be copied into every target and averaged each step. It is
        # built on first use, from the RNG state of this moment (so its initial weights do not
        # depend on when that is and do not shift the policy's own), saved as this module's
        # extra state, and its heads are stepped by the binding (rlrep.sb3.binding).
        self._objective: list[AuxObjective] = []
        self._objective_spec = (
            None
            if method is None
            else (method, dict(method_kwargs or {}), rank_every, torch.random.get_rng_state())
        )
        self._pending_state: dict[str, Any] | None = None  # loaded before the objective exists
        self._released = False  # a target's copy, dropped (release_objective)
        self.binding: AuxBinding | None = None  # set by rlrep.sb3.binding
        self._record: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None = None
        self._warned_unbound = False
        self._attached = False  # found the SB3 algorithm training it (see _attach)

    @property
    def has_objective(self) -> bool:
        """Whether this extractor carries an auxiliary objective (built or not yet)."""
        return bool(self._objective) or self._objective_spec is not None

    @property
    def objective(self) -> AuxObjective | None:
        """The :class:`~rlrep.objective.AuxObjective` (built on first access), or ``None``:
        without a method, or for a target network's copy once the algorithm has trained."""
        if not self._objective and self._objective_spec is not None:
            self._objective.append(self._build_objective())
        return self._objective[0] if self._objective else None

    @property
    def can_build_objective(self) -> bool:
        """Whether the objective is built or can be: a method conditioned on actions (SPR) waits
        for the algorithm's action space (:meth:`set_action_space`) or ``action_dim``."""
        if self._objective or self._objective_spec is None:
            return True
        name, kwargs = self._objective_spec[:2]
        needs = _needs_actions(method_lib.METHODS[name]) and "action_dim" not in kwargs
        return not needs or self.action_space is not None

    def set_action_space(self, action_space: gym.Space) -> None:
        """The algorithm's action space, for methods conditioned on actions (SPR): their
        ``action_dim`` and ``discrete_actions`` unless given in ``method_kwargs``."""
        self.action_space = action_space

    def _build_objective(self) -> AuxObjective:
        name, kwargs, rank_every, rng_state = self._objective_spec
        kwargs = dict(kwargs)
        if _needs_actions(method_lib.METHODS[name]) and "action_dim" not in kwargs:
            if self.action_space is None:
                raise ValueError(
                    f"method {name!r} is conditioned on actions: the extractor learns the "
                    "action space when an SB3 algorithm first trains it; outside one, pass "
                    "method_kwargs={'action_dim': ..., 'discrete_actions': ...}"
                )
            discrete = isinstance(self.action_space, gym.spaces.Discrete)
            kwargs.setdefault("discrete_actions", discrete)
            kwargs["action_dim"] = (
                int(self.action_space.n) if discrete else int(np.prod(self.action_space.shape))
            )
        self._objective_spec = None
        with torch.random.fork_rng(devices=[]):
            torch.random.set_rng_state(rng_state)
            objective = AuxObjective(
                self.augment, method_lib.make(name, self.encoder, **kwargs), rank_every
            )
        objective.to(next(self.encoder.parameters()).device).train(self.training)
        if self._pending_state is not None:
            self._load_objective_state(objective, self._pending_state["objective"])
        return objective

    def release_objective(self) -> None:
        """Drop the objective: a target network's copy, never trained (see :func:`bind_policy`)."""
        self._objective, self._objective_spec, self._pending_state = [], None, None
        self._released = True

    def _apply(self, fn, *args, **kwargs):
        # .to(device) / .double() / ...: the objective is not a submodule, so it follows here
        # (its method's online encoder is this module's, already converted).
        super()._apply(fn, *args, **kwargs)
        if self._objective:
            method = self._objective[0].method
            encoder = method._modules.pop("encoder")
            try:
                self._objective[0]._apply(fn, *args, **kwargs)
            finally:
                method._modules["encoder"] = encoder
        return self

    @property
    def method(self) -> method_lib.Method | None:
        """The objective's method (heads, targets), or ``None``."""
        objective = self.objective
        return None if objective is None else objective.method

    # --- state: the objective travels as extra state (no encoder copy) -------------------------
    def get_extra_state(self) -> dict[str, Any]:
        """``{"objective": its state without the encoder, "optimizer": the heads' optimiser}``
        (tensors and plain containers: SB3 loads them with ``weights_only=True``); ``{}``
        without an objective."""
        if not self._objective and self._pending_state is not None:
            return self._pending_state  # loaded, not built yet (e.g. SB3's target networks)
        if not self.can_build_objective:
            return {}  # waits for the action space: nothing trained yet
        objective = self.objective
        if objective is None:
            return {}
        state = {
            "objective": {
                k: v
                for k, v in objective.state_dict().items()
                if not k.startswith("method.encoder.")
            }
        }
        if self.binding is not None and self.binding.head_optimizer is not None:
            state["optimizer"] = self.binding.head_optimizer.state_dict()
        elif self._pending_state is not None and "optimizer" in self._pending_state:
            state["optimizer"] = self._pending_state["optimizer"]
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if not state or self._released:
            return
        if not self.has_objective:
            raise ValueError(
                "this state was saved with an auxiliary method but the extractor has none "
                "(method=None): build the policy with the method it was saved with"
            )
        if self._objective:
            self._load_objective_state(self._objective[0], state["objective"])
        if self.binding is not None and self.binding.head_optimizer is not None:
            if "optimizer" in state:
                self.binding.head_optimizer.load_state_dict(state["optimizer"])
        else:  # applied when the objective is built / the binding made
            self._pending_state = state

    @staticmethod
    def _load_objective_state(objective: AuxObjective, state: dict[str, Any]) -> None:
        missing, unexpected = objective.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("method.encoder.")]
        if missing or unexpected:
            raise ValueError(
                f"the saved auxiliary state does not fit this extractor's method (missing "
                f"{missing}, unexpected {unexpected}): build it with the method and options it "
                "was saved with"
            )

    def train(self, mode: bool = True) -> RepresentationExtractor:
        super().train(mode)
        if self.freeze:
            self.encoder.eval()  # a frozen encoder keeps its BatchNorm statistics
        if self._objective:  # not a submodule: follows explicitly
            self._objective[0].train(mode)
        if not mode:
            self._record = None  # rollouts: drop the last update's batch
        if not getattr(self, "_attached", True):  # learn() starts with set_training_mode()
            self._attach()
        return self

    def set_frame_channels(self, frame_channels: int) -> None:
        """Rebuild the augmentation for frames of ``frame_channels`` channels (what the env's
        frame stacking says, before training starts)."""
        augmentation, kwargs = self._augment_spec
        channels = self._observation_space.shape[0]
        fc = check_frame_channels(frame_channels, channels)
        augment = augment_lib.make(augmentation, frame_channels=fc, **kwargs).train(self.training)
        self.augment, self.frame_channels = augment, fc
        if self._objective:  # its views come from the same augmentation
            self._objective[0].augment = augment

    # --- forward -------------------------------------------------------------------------------
    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` observations (floats in [0, 1] from SB3) → ``(B, features_dim)``."""
        check_pixel_range(observations, type(self).__name__, fix=NORMALIZE_IMAGES_FIX)
        with pixel_range_checked():  # every view below comes from the observations checked here
            return self._forward(observations)

    def _forward(self, observations: torch.Tensor) -> torch.Tensor:
        if not self.training:  # the view follows the augmentation's mode (see shared.py)
            aug = self.augment
            return self.encoder(
                aug.random(observations) if aug.training else aug.deterministic(observations)
            )
        augmented = self.rl_view == "augmented"
        view = self.augment.random(observations) if augmented else None
        x = view if augmented else self.augment.deterministic(observations)
        # Decoupled (ATC's setting): the RL losses read the conv output without its graph, so
        # they train the head and not the convs.
        conv = self.encoder.forward_conv(x) if self.decoupled else None
        features = self.encoder(x) if conv is None else self.encoder.forward_head(conv.detach())
        if torch.is_grad_enabled():
            if not self._attached:
                self._attach()
            if self.has_objective and self.aux_weight > 0:
                # Decoupled, the aux loss's anchor is a second head pass on the conv output with
                # its graph: the aux loss trains convs and head through it (rlrep.sb3.binding).
                # A deterministic RL view gets no anchor: the aux loss draws views of its own.
                anchor = (
                    features if conv is None or not augmented else self.encoder.forward_head(conv)
                )
                self._remember(observations, view, anchor)
        return features

    def _attach(self) -> None:
        """When SB3's ``learn()`` (or ``train()``) first sets the policy's mode, before any env
        step: one frame layout for env, extractors and replay buffer, and the objectives bound
        to their optimisers (once per policy; failing that, at the first training forward)."""
        algorithm = find_algorithm(self)
        if algorithm is None:
            if inside_sb3():  # SB3 trains it, yet its algorithm is not found: never silent
                raise unbound_error()
            return  # called by hand: tried again at the next training forward
        reconcile_frame_channels(algorithm)
        bind_policy(algorithm)
        for module in algorithm.policy.modules():
            if isinstance(module, RepresentationExtractor):
                module._attached = True

    def _remember(
        self, observations: torch.Tensor, view: torch.Tensor | None, features: torch.Tensor
    ) -> None:
        """Keep this training forward for the auxiliary loss (the latest one wins)."""
        if self.binding is None and not self._warned_unbound:  # outside SB3: say so once
            self._warned_unbound = True
            warn_unbound()
        self._record = (observations, view, features)

    @property
    def has_pending_record(self) -> bool:
        """Whether a training forward is recorded and not yet used by the auxiliary loss."""
        return self._record is not None

    def pop_record(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None:
        """The last training forward (observations, RL view or ``None``, features), then forget it.
        Decoupled, the features are the head's on the conv output *with* its graph (the aux
        loss's anchor), not the RL losses' (on the detached conv output)."""
        record, self._record = self._record, None
        return record


def _needs_actions(cls: type) -> bool:
    return issubclass(cls, method_lib.TemporalMethod) and cls.needs_actions
