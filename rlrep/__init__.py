"""rlrep: self-supervised representation learning as a plug-in for pixel-based RL.

Subpackages: :mod:`rlrep.augment` (batched, frame-stack-aware augmentations),
:mod:`rlrep.losses` (pure loss functions), :mod:`rlrep.methods` (CURL, SimCLR, MoCo, BYOL,
SimSiam, Barlow Twins, VICReg with their heads and momentum targets), :mod:`rlrep.encoders`
(pixel encoders) and :mod:`rlrep.metrics` (representation health).

``import rlrep`` registers rlrep's gymnasium ids (``dmc/<task>-v0``, ``rlrep/PointMassPixels-v0``)
with import-path entry points (:mod:`rlrep.gym_ids`), so
``gymnasium.make("rlrep:dmc/cartpole-swingup-v0")`` works in a fresh interpreter; it imports
neither :mod:`rlrep.envs` nor :mod:`rlrep.agents` (nor MuJoCo) until an env or agent is made.
"""

from rlrep.gym_ids import register_envs as _register_envs

__version__ = "0.1.0"

_register_envs()
