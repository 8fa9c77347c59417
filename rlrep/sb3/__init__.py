"""Stable-Baselines3 plug-in: any rlrep method as an auxiliary loss of a stock SB3 algorithm.

.. code-block:: python

    from stable_baselines3 import SAC
    from rlrep.sb3 import policy_kwargs
    model = SAC("CnnPolicy", env, policy_kwargs=policy_kwargs(method="curl", augmentation="crop"))

- :func:`policy_kwargs` — the extractor (augmentation + encoder + method) for any SB3 policy.
- :class:`SharedEncoderSACPolicy`, :class:`SharedEncoderTD3Policy` — CURL/DrQ wiring: one
  encoder trained by critic + aux loss, read detached by the actor.
- :class:`FrameStackReplayBuffer` — stores each frame once; timeouts stay non-terminal.
- :class:`FrozenEncoderFeatures` — feature replay: a frozen pretrained encoder's features as the
  observation, for ``"MlpPolicy"`` agents (exact for a frozen encoder with a deterministic view).
- aux loss, contrastive accuracy, feature std and effective rank reach SB3's logger under
  ``aux/`` with no callback (:mod:`rlrep.sb3.binding`).

This is the only part of rlrep that knows SB3's internals.
"""

from rlrep.sb3.buffer import FrameStackReplayBuffer, SequenceSamples
from rlrep.sb3.checks import check_image_space
from rlrep.sb3.extractor import RepresentationExtractor
from rlrep.sb3.features import FrozenEncoderFeatures
from rlrep.sb3.kwargs import policy_kwargs
from rlrep.sb3.probe_callback import StateProbeCallback
from rlrep.sb3.shared import DetachedFeatures, SharedEncoderSACPolicy, SharedEncoderTD3Policy

__all__ = [
    "DetachedFeatures",
    "FrameStackReplayBuffer",
    "FrozenEncoderFeatures",
    "RepresentationExtractor",
    "SequenceSamples",
    "SharedEncoderSACPolicy",
    "SharedEncoderTD3Policy",
    "StateProbeCallback",
    "check_image_space",
    "policy_kwargs",
]
