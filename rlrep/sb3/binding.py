"""The thin adapter between SB3's optimisers and an extractor's :class:`~rlrep.objective.AuxObjective`.

Every SB3 algorithm runs the same sequence for each of its optimisers: the loss's forward
(which calls the features extractor), ``optimizer.zero_grad()``, ``loss.backward()``, an optional
gradient clip, ``optimizer.step()``. The extractor only *records* its last training forward (the
observations, the RL view and its features); the adapter bound to the optimiser that steps the
extractor's encoder then, explicitly:

1. at ``zero_grad()``: computes the auxiliary loss once from that record, reusing the RL view's
   features as the anchor; backpropagates ``aux_weight × loss`` to the method's heads (and the
   second view's encoder pass), and adds its gradient at the anchor features to the RL loss's
   through a hook on those features, so the encoder takes one backward for both losses and the
   clip covers their sum (what ``rl_loss + aux_weight × aux_loss`` gives);
2. after ``step()`` (an optimiser post-step hook): the step of the method's heads (by an
   optimiser of the same class and options: the objective is not part of the policy, see
   :class:`AuxBinding`), the method's EMA target step, and the objective's metrics into the
   algorithm's logger under ``aux/``.

So the stock SAC ``CnnPolicy``, whose critic runs its extractor twice per gradient step (critic
loss, then actor loss), computes the auxiliary loss once per gradient step: on the critic's
encoder, as CURL does (its actor reads the critic's encoder). The actor's own encoder learns from
the actor loss alone, unless the extractors are built with ``aux_on_actor=True``, which gives it
an auxiliary loss of its own too (a second loss, a second momentum-encoder pass per step).

Methods that learn from time (:data:`rlrep.methods.TEMPORAL`) get the windows that start at the
batch SB3 just sampled: :class:`~rlrep.sb3.FrameStackReplayBuffer` records the slots of each
sample and gives ``obs_t … obs_{t+L}`` with the actions between them
(:meth:`~rlrep.sb3.FrameStackReplayBuffer.get_sequences`). With a ``decoupled`` extractor the
RL losses read the conv output detached (they train the encoder's head, not its convs) and the
auxiliary loss backpropagates into head and convs directly, from an anchor of its own.

SB3 gives a policy no reference to its algorithm or logger: :func:`find_algorithm` finds the
algorithm once, at an extractor's first training forward, as the ``self`` of the SB3 method on the
call stack (``train()``) whose policy holds the extractor.
"""

from __future__ import annotations

import sys
import warnings
import weakref
from typing import TYPE_CHECKING, Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from rlrep.augment.base import pixel_range_checked
from rlrep.methods.base import AuxOutput
from rlrep.sb3.buffer import FrameStackReplayBuffer

if TYPE_CHECKING:
    from rlrep.sb3.extractor import RepresentationExtractor

__all__ = ["AuxBinding", "bind_policy", "find_algorithm", "inside_sb3"]


def find_algorithm(module: torch.nn.Module) -> BaseAlgorithm | None:
    """The SB3 algorithm on the call stack whose policy contains ``module``, or ``None``."""
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        policy = (
            getattr(candidate, "policy", None) if isinstance(candidate, BaseAlgorithm) else None
        )
        if policy is not None and any(m is module for m in policy.modules()):
            return candidate
        frame = frame.f_back
    return None


def _owner_names(policy: torch.nn.Module, extractors: list[RepresentationExtractor]) -> list[str]:
    """Logger prefixes: the submodule that holds each extractor (``actor``, ``critic``, …), or
    nothing for a single extractor."""
    if len(extractors) == 1:
        return [""]
    names = {}
    for name, module in policy.named_modules():
        for i, ex in enumerate(extractors):
            if module is ex and i not in names:
                names[i] = name.rsplit("features_extractor", 1)[0].rstrip("._").replace(".", "_")
    return [names.get(i, str(i)) or str(i) for i in range(len(extractors))]


def _actor_only_extractors(policy: torch.nn.Module) -> list[torch.nn.Module]:
    """The extractors that only the actor reads, when actor and critic have encoders of their
    own: SAC/TD3's ``actor.features_extractor``, or an on-policy policy's ``pi_features_extractor``
    with ``share_features_extractor=False``."""
    actor = getattr(getattr(policy, "actor", None), "features_extractor", None)
    actor = getattr(policy, "pi_features_extractor", actor)
    critic = getattr(getattr(policy, "critic", None), "features_extractor", None)
    critic = getattr(policy, "vf_features_extractor", critic)
    return [] if actor is None or critic is None or actor is critic else [actor]


def bind_policy(algorithm: BaseAlgorithm) -> None:
    """Bind every objective-carrying extractor of ``algorithm.policy`` to the optimiser that
    steps its encoder (SB3 keeps optimisers as ``.optimizer`` of the policy or its submodules);
    extractors no optimiser steps (SB3's target networks) drop their objective. Where the actor
    has an encoder of its own (stock SAC/TD3 ``CnnPolicy``), only the critic's learns from the
    auxiliary loss, as in CURL, unless the extractor was built with ``aux_on_actor=True`` or
    ``decoupled=True`` (then the aux loss is all that trains its convs)."""
    from rlrep.sb3.extractor import RepresentationExtractor

    policy = algorithm.policy
    extractors: list[RepresentationExtractor] = []
    for module in policy.modules():
        wanted = isinstance(module, RepresentationExtractor) and module.has_objective
        if wanted and all(module is not e for e in extractors):
            extractors.append(module)
    optimizers = [
        m.optimizer
        for m in policy.modules()
        if isinstance(getattr(m, "optimizer", None), torch.optim.Optimizer)
    ]
    actor_only = _actor_only_extractors(policy)
    owned = []  # (extractor, its optimiser); target networks are in none
    for extractor in extractors:
        # The critic's encoder learns the representation; a decoupled actor's convs learn from
        # its aux loss alone (the actor loss trains its head only), so it keeps it.
        keep = extractor.aux_on_actor or extractor.decoupled
        if any(extractor is e for e in actor_only) and not keep:
            extractor.release_objective()
            continue
        extractor.set_action_space(algorithm.action_space)  # for methods conditioned on actions
        first = next(extractor.encoder.parameters())
        owner = next(
            (o for o in optimizers for g in o.param_groups for p in g["params"] if p is first),
            None,
        )
        if owner is not None:
            owned.append((extractor, owner))
        else:  # a target network's copy of the extractor: it never trains an objective
            extractor.release_objective()
    names = _owner_names(policy, [extractor for extractor, _ in owned])
    for (extractor, owner), name in zip(owned, names, strict=True):
        if extractor.binding is None:
            AuxBinding(extractor, owner, algorithm, prefix=f"aux/{name}." if name else "aux/")


class AuxBinding:
    """Drives one extractor's objective from ``optimizer`` (see the module docstring).

    The objective's heads (CURL's W, projectors, predictors) are in no SB3 optimiser (the
    objective is not part of the policy's module tree, so that SB3's target networks hold no
    copy of it): ``head_optimizer``, of ``optimizer``'s class and options, steps them right after
    ``optimizer`` with its current learning rate. SB3's gradient clipping
    (``clip_grad_norm_(policy.parameters())`` in PPO, A2C, DQN) therefore covers the encoder's
    summed RL + aux gradient but not the heads'.

    :param extractor: the :class:`~rlrep.sb3.RepresentationExtractor` with an objective.
    :param optimizer: the optimiser whose ``step()`` moves the extractor's encoder.
    :param algorithm: the SB3 algorithm, for its logger (held weakly).
    :param prefix: logger key prefix, e.g. ``"aux/critic."``.
    """

    def __init__(
        self,
        extractor: RepresentationExtractor,
        optimizer: torch.optim.Optimizer,
        algorithm: BaseAlgorithm,
        prefix: str = "aux/",
    ) -> None:
        self.extractor, self.optimizer, self.prefix = extractor, optimizer, prefix
        self._algorithm = weakref.ref(algorithm)
        self._hook_fired: list[bool] | None = None
        objective = extractor.objective
        objective.to(next(extractor.encoder.parameters()).device)
        self.heads = list(objective.method.head_parameters())
        # Same class and options (lr, betas, eps, weight decay, ...) as the encoder's optimiser.
        self.head_optimizer = (
            type(optimizer)(self.heads, **optimizer.defaults) if self.heads else None
        )
        pending = extractor._pending_state
        if self.head_optimizer is not None and pending is not None and "optimizer" in pending:
            self.head_optimizer.load_state_dict(pending["optimizer"])
        extractor._pending_state = None
        bindings = getattr(optimizer, "_rlrep_bindings", None)
        if bindings is None:  # first binding on this optimiser: wrap zero_grad, hook step
            bindings = optimizer._rlrep_bindings = []
            optimizer.zero_grad = _ZeroGradThenAux(optimizer.zero_grad, bindings)
            optimizer.register_step_post_hook(_after_step(bindings))
        bindings.append(self)
        extractor.binding = self

    def apply_aux(self) -> None:
        """Backpropagate the auxiliary loss of the extractor's last training forward (if any)."""
        for p in self.heads:
            p.grad = None
        record = self.extractor.pop_record()
        self._hook_fired = None
        if record is None:
            return
        obs, view, features = record
        weight, decoupled = self.extractor.aux_weight, self.extractor.decoupled
        with pixel_range_checked():  # the extractor checked obs when it recorded them
            if view is None:  # rl_view="deterministic": the aux loss draws its views itself
                (weight * self._aux_loss(obs, None, None).loss).backward()
                return
            # The anchor is the RL view's features, cut from their graph: the aux loss's gradient
            # at them joins the RL loss's in the one backward through the encoder (hook below).
            # Decoupled, the RL loss stops at the conv output, so it cannot carry the aux
            # gradient into the convs: the recorded features are the aux loss's own head pass
            # on the attached conv output (the extractor's), and it backpropagates through them
            # into head and convs now; the RL loss's backward adds its head gradient later.
            anchor = features if decoupled else features.detach().requires_grad_()
            (weight * self._aux_loss(obs, view, anchor).loss).backward()
            if decoupled:
                return
        fired = self._hook_fired = [anchor.grad is None]
        if anchor.grad is not None:
            extra = anchor.grad

            def add_aux_gradient(grad: torch.Tensor) -> torch.Tensor:
                fired[0] = True
                return grad + extra

            features.register_hook(add_aux_gradient)

    def _aux_loss(
        self, obs: torch.Tensor, view: torch.Tensor | None, anchor: torch.Tensor | None
    ) -> AuxOutput:
        """The objective's loss on the recorded batch (the RL view and its features as anchor,
        when given): two views, a memory bank's rows, or the replay windows of a temporal
        method."""
        objective = self.extractor.objective
        if objective.temporal:
            windows, actions, valid = self._windows(obs)
            return objective.sequence_loss(
                windows, actions, valid, view_first=view, features_first=anchor
            )
        index = self._replay_slots(obs) if objective.method.needs_index else None
        if view is None:
            return objective.loss(obs, index=index)
        return objective.loss(obs, view_a=view, features_a=anchor, index=index)

    def _windows(
        self, obs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(windows, actions, valid)`` of the batch ``obs`` came from: the replay buffer's
        windows of ``horizon`` transitions that start at the slots of its last sample (just
        ``obs`` for a window of one, SAC-AE's)."""
        method = self.extractor.objective.method
        if method.horizon == 0:
            return obs[:, None], None, None
        name = type(method).__name__
        algorithm = self._algorithm()
        buffer = getattr(algorithm, "replay_buffer", None)
        slots = getattr(buffer, "last_sample_slots", None)
        if not isinstance(buffer, FrameStackReplayBuffer) or slots is None:
            raise ValueError(
                f"{name} learns from windows of {method.horizon + 1} consecutive observations of "
                "the replay buffer: train an off-policy algorithm (SAC, TD3, DQN, TQC, QR-DQN) with "
                "replay_buffer_class=rlrep.sb3.FrameStackReplayBuffer (SB3's buffers give "
                "single transitions only)"
            )
        if slots.shape[0] != obs.shape[0]:
            raise ValueError(
                f"{name}: the replay buffer's last sample has {slots.shape[0]} transitions but "
                f"the batch {obs.shape[0]}; the windows must start at the batch SB3 trains on"
            )
        slots = slots.numpy()
        seq = buffer.get_sequences(slots // buffer.n_envs, slots % buffer.n_envs, method.horizon)
        first = seq.observations[:, 0].to(obs.device)
        scaled = first if obs.dtype == torch.uint8 else first.to(obs.dtype) / 255.0
        if not torch.allclose(scaled, obs, atol=1e-6):  # one sync per step: a guard worth it
            raise RuntimeError(
                f"{name}: the replay windows do not start at the observations SB3 trained on; "
                "the buffer was sampled again between SB3's sample and its update"
            )
        return seq.observations.to(obs.device), seq.actions, seq.valid

    def _replay_slots(self, obs: torch.Tensor) -> torch.Tensor:
        """The replay slots of the batch ``obs`` came from (``FrameStackReplayBuffer`` records
        them at each sample), checked against the method's bank size."""
        algorithm = self._algorithm()
        buffer = getattr(algorithm, "replay_buffer", None)
        slots = getattr(buffer, "last_sample_slots", None)
        method = self.extractor.objective.method
        if slots is None or slots.shape[0] != obs.shape[0]:
            raise ValueError(
                f"{type(method).__name__} tells transitions apart by their replay slot: train an "
                "off-policy algorithm (SAC, TD3, DQN, TQC, QR-DQN) with "
                "replay_buffer_class=rlrep.sb3.FrameStackReplayBuffer"
            )
        rows = buffer.buffer_size * buffer.n_envs
        if method.num_instances != rows:
            raise ValueError(
                f"{type(method).__name__} has {method.num_instances} instances but the replay "
                f"buffer {rows} slots; pass method_kwargs={{'num_instances': {rows}}}"
            )
        return slots

    def after_step(self) -> None:
        """EMA step of the method's targets and metrics to the logger, after ``step()``."""
        if self._hook_fired is not None and not self._hook_fired[0]:
            raise RuntimeError(
                "rlrep: the auxiliary gradient was computed at optimizer.zero_grad() but the loss "
                "backpropagated before step() did not pass through the features it was computed "
                "for; rlrep's SB3 adapter needs SB3's order in train(): forward, zero_grad(), "
                f"backward(), step() {_versions()}"
            )
        if self.extractor.has_pending_record:  # a forward after zero_grad(): the aux loss missed it
            raise RuntimeError(
                "rlrep: the optimiser stepped an encoder whose last training forward came after "
                "optimizer.zero_grad(), so its auxiliary loss was never computed; rlrep's SB3 "
                f"adapter needs SB3's order in train(): forward, zero_grad(), backward(), step() "
                f"{_versions()}"
            )
        self._hook_fired = None
        if self.head_optimizer is not None and any(p.grad is not None for p in self.heads):
            self.head_optimizer.param_groups[0]["lr"] = self.optimizer.param_groups[0]["lr"]
            self.head_optimizer.step()
        objective = self.extractor.objective
        objective.update_targets()
        algorithm = self._algorithm()
        logger = getattr(algorithm, "_logger", None) if algorithm is not None else None
        metrics = objective.pop_metrics()
        if logger is None:
            return
        for key, value in metrics.items():
            logger.record_mean(self.prefix + key, value)


def _versions() -> str:
    """The versions to name in a report of a binding that broke."""
    import stable_baselines3

    return f"(stable-baselines3 {stable_baselines3.__version__}, torch {torch.__version__})"


class _ZeroGradThenAux:
    """``optimizer.zero_grad`` followed by each binding's :meth:`AuxBinding.apply_aux`."""

    def __init__(self, zero_grad: Any, bindings: list[AuxBinding]) -> None:
        self.zero_grad, self.bindings = zero_grad, bindings

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.zero_grad(*args, **kwargs)
        for binding in self.bindings:
            binding.apply_aux()


def _after_step(bindings: list[AuxBinding]):
    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for binding in bindings:
            binding.after_step()

    return hook


def inside_sb3() -> bool:
    """Whether an SB3 or sb3-contrib algorithm's ``learn()`` or ``train()`` is on the call
    stack (not merely a policy's forward, which a user may call by hand)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if frame.f_code.co_name in ("learn", "train") and module.startswith(
            ("stable_baselines3.", "sb3_contrib.")
        ):
            return True
        frame = frame.f_back
    return False


def unbound_error() -> RuntimeError:
    """An extractor trained inside SB3 whose algorithm was not found: its auxiliary loss would
    never run, so training stops."""
    return RuntimeError(
        "rlrep: an SB3 algorithm is training this RepresentationExtractor, but rlrep could not "
        "find which (it looks for the algorithm whose policy holds the extractor on the call "
        "stack of train()), so the auxiliary loss would never run. This SB3 is not supported "
        f"{_versions()}: install the stable-baselines3 version rlrep's pyproject allows"
    )


def warn_unbound() -> None:
    """Say, once per extractor, that its auxiliary loss is not applied outside SB3's train()."""
    warnings.warn(
        "RepresentationExtractor trained outside an SB3 algorithm's train(): the auxiliary loss "
        "is not applied. Call extractor.objective.loss(...) in your own update, or train through "
        "SAC/TD3/DQN/PPO/A2C",
        stacklevel=3,
    )
