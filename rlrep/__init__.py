"""rlrep: self-supervised representation learning as a plug-in for pixel-based RL.

Subpackages: :mod:`rlrep.augment` (batched, frame-stack-aware augmentations),
:mod:`rlrep.losses` (pure loss functions), :mod:`rlrep.methods` (CURL, SimCLR, MoCo, BYOL,
SimSiam, Barlow Twins, VICReg with their heads and momentum targets), :mod:`rlrep.encoders`
(pixel encoders) and :mod:`rlrep.metrics` (representation health).

``import rlrep`` registers rlrep's gymnasium ids (``dmc/<task>-v0``, ``rlrep/PointMassPixels-v0``)
with import-path entry points, so ``gymnasium.make("rlrep:dmc/cartpole-swingup-v0")`` works in a
fresh interpreter; no environment code (and no MuJoCo) is imported until an env is made.
"""

from rlrep.envs.registration import register_envs as _register_envs

__version__ = "0.1.0"

_register_envs()
