"""SB3 policies that take rlrep's options as plain keys, for configuration files that cannot call
Python: rl-zoo3's YAML.

rl-zoo3 evaluates a ``policy_kwargs`` *string* with ``eval()`` in its own module, where
``rlrep`` is no name (``--gym-packages rlrep`` imports it, but an import binds a name only in the
module that runs it), and passes a YAML *mapping* as it is; a dotted ``policy`` it imports. So a
policy of this module, given :func:`rlrep.sb3.policy_kwargs`'s options as ``policy_kwargs`` keys,
is all a plain YAML file needs:

.. code-block:: yaml

    rlrep/PointMassPixels-v0:
      policy: rlrep.sb3.zoo.ActorCriticPolicy  # PPO, A2C
      policy_kwargs:
        method: simclr
        rl_view: deterministic
        net_arch: [64]

Each class is its algorithm's SB3 policy (the ``"CnnPolicy"`` with rlrep's extractor):
:class:`SACPolicy`, :class:`TD3Policy` (TD3, DDPG), :class:`DQNPolicy`,
:class:`ActorCriticPolicy` (PPO, A2C), :class:`SharedEncoderSACPolicy`,
:class:`SharedEncoderTD3Policy` (CURL/DrQ wiring), and with sb3-contrib :class:`TQCPolicy`,
:class:`QRDQNPolicy`. The keys that :func:`~rlrep.sb3.policy_kwargs` names (``method``,
``augmentation``, ``encoder_kwargs``, ``pretrained``, …) go to it, the others (``net_arch``, …)
to SB3, so these policies build what ``policy_kwargs(**keys)`` gives a stock policy. The same
keys are what SB3 saves with the model and loads it from (a ``pretrained`` checkpoint is then
read again: keep the file, or use ``policy_kwargs(...)``'s own form, which records its config).

``replay_buffer_class`` has no plain form: zoo evaluates that string too and imports no dotted
name for it, and a buffer swapped in later would come after SB3 allocated its own, at full size.
There ``"__import__('rlrep.sb3').sb3.FrameStackReplayBuffer"`` reaches the plug-in (builtins
only).
"""

from __future__ import annotations

import importlib.util
import inspect
from typing import Any

from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from stable_baselines3.dqn.policies import CnnPolicy as _DQNCnnPolicy
from stable_baselines3.sac.policies import CnnPolicy as _SACCnnPolicy
from stable_baselines3.td3.policies import CnnPolicy as _TD3CnnPolicy

from rlrep.sb3 import shared
from rlrep.sb3.kwargs import policy_kwargs

__all__ = [
    "OPTIONS",
    "ActorCriticPolicy",
    "DQNPolicy",
    "SACPolicy",
    "SharedEncoderSACPolicy",
    "SharedEncoderTD3Policy",
    "TD3Policy",
    "plain_policy_kwargs",
]

#: The keys that :func:`rlrep.sb3.policy_kwargs` takes (the rest go to SB3 as they are).
OPTIONS = tuple(name for name in inspect.signature(policy_kwargs).parameters if name != "extra")


def plain_policy_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """SB3 policy kwargs from plain ones: :data:`OPTIONS` keys through
    :func:`rlrep.sb3.policy_kwargs`, the others passed on. Kwargs that already name a
    ``features_extractor_class`` (``policy_kwargs(...)``'s result, a saved policy's own
    parameters) are returned as they are.

    :param kwargs: the policy's keyword arguments, e.g. ``{"method": "curl", "net_arch": [64]}``.
    :return: the keyword arguments for the SB3 policy.
    :raises ValueError: rlrep options next to ``features_extractor_class`` or
        ``features_extractor_kwargs`` (one or the other), or an option
        :func:`~rlrep.sb3.policy_kwargs` refuses.
    """
    options = {key: value for key, value in kwargs.items() if key in OPTIONS}
    rest = {key: value for key, value in kwargs.items() if key not in OPTIONS}
    built = [
        key for key in ("features_extractor_class", "features_extractor_kwargs") if key in rest
    ]
    if built and options:
        raise ValueError(
            f"policy kwargs give rlrep options ({', '.join(options)}) and {' and '.join(built)}: "
            "give the options alone (the policy builds rlrep's extractor from them), or "
            "rlrep.sb3.policy_kwargs(...)'s result alone"
        )
    if "features_extractor_class" in rest:
        return rest
    if built:
        raise ValueError(
            "features_extractor_kwargs without features_extractor_class: give rlrep's extractor "
            "options as policy kwargs themselves (method=..., encoder_kwargs=..., "
            "augmentation_kwargs=...; see rlrep.sb3.policy_kwargs)"
        )
    return policy_kwargs(**options, **rest)


class _PlainOptions:
    """Turns rlrep's plain options into the SB3 policy kwargs (:func:`plain_policy_kwargs`)."""

    def __init__(
        self, observation_space: spaces.Space, action_space: spaces.Space, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(observation_space, action_space, *args, **plain_policy_kwargs(kwargs))


class SACPolicy(_PlainOptions, _SACCnnPolicy):
    """SB3's SAC ``"CnnPolicy"`` with rlrep's extractor, built from plain ``policy_kwargs`` keys
    (see the module docstring); actor and critic have encoders of their own, as in stock SB3."""


class TD3Policy(_PlainOptions, _TD3CnnPolicy):
    """SB3's TD3 (and DDPG) ``"CnnPolicy"`` with rlrep's extractor, from plain keys."""


class DQNPolicy(_PlainOptions, _DQNCnnPolicy):
    """SB3's DQN ``"CnnPolicy"`` with rlrep's extractor, from plain keys."""


class ActorCriticPolicy(_PlainOptions, ActorCriticCnnPolicy):
    """SB3's PPO and A2C ``"CnnPolicy"`` with rlrep's extractor, from plain keys
    (``rl_view: deterministic`` keeps PPO's importance ratios exact)."""


class SharedEncoderSACPolicy(_PlainOptions, shared.SharedEncoderSACPolicy):
    """:class:`rlrep.sb3.SharedEncoderSACPolicy` (CURL/DrQ wiring) from plain keys."""


class SharedEncoderTD3Policy(_PlainOptions, shared.SharedEncoderTD3Policy):
    """:class:`rlrep.sb3.SharedEncoderTD3Policy` (CURL/DrQ wiring) from plain keys."""


if importlib.util.find_spec("sb3_contrib") is not None:  # optional: rlrep[contrib]
    from sb3_contrib.qrdqn.policies import CnnPolicy as _QRDQNCnnPolicy
    from sb3_contrib.tqc.policies import CnnPolicy as _TQCCnnPolicy

    class TQCPolicy(_PlainOptions, _TQCCnnPolicy):
        """sb3-contrib's TQC ``"CnnPolicy"`` with rlrep's extractor, from plain keys."""

    class QRDQNPolicy(_PlainOptions, _QRDQNCnnPolicy):
        """sb3-contrib's QR-DQN ``"CnnPolicy"`` with rlrep's extractor, from plain keys."""

    __all__ += ["QRDQNPolicy", "TQCPolicy"]
