"""rlrep: self-supervised representation learning as a plug-in for pixel-based RL.

Subpackages: :mod:`rlrep.augment` (batched, frame-stack-aware augmentations),
:mod:`rlrep.losses` (pure loss functions), :mod:`rlrep.methods` (CURL, SimCLR, MoCo, BYOL,
SimSiam, Barlow Twins, VICReg with their heads and momentum targets), :mod:`rlrep.encoders`
(pixel encoders) and :mod:`rlrep.metrics` (representation health).
"""

__version__ = "0.1.0"
