"""Representation methods: heads, momentum targets and the loss from two views of a batch.

``method = make("curl", encoder)``; ``out = method(view_a, view_b)``; ``out.loss.backward()``;
optimiser step; ``method.update_targets()``. Names in :data:`METHODS`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from rlrep.methods.base import AuxOutput, Method, features_dim_of
from rlrep.methods.byol import BYOL, SimSiam
from rlrep.methods.curl import CURL
from rlrep.methods.ema import cosine_momentum, make_target, update_momentum
from rlrep.methods.heads import mlp
from rlrep.methods.moco import MoCo
from rlrep.methods.symmetric import BarlowTwins, SimCLR, VICReg

__all__ = [
    "BYOL",
    "CURL",
    "METHODS",
    "AuxOutput",
    "BarlowTwins",
    "Method",
    "MoCo",
    "SimCLR",
    "SimSiam",
    "VICReg",
    "cosine_momentum",
    "features_dim_of",
    "make",
    "make_target",
    "mlp",
    "update_momentum",
]

METHODS: dict[str, type[Method]] = {
    "curl": CURL,
    "simclr": SimCLR,
    "moco": MoCo,
    "byol": BYOL,
    "simsiam": SimSiam,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
}


def make(name: str, encoder: nn.Module, **kwargs: Any) -> Method:
    """Build the method called ``name`` around the online ``encoder`` (needs ``features_dim``).

    :param kwargs: the method's own options (e.g. ``temperature``, ``momentum``).
    """
    if name not in METHODS:
        raise ValueError(
            f"methods.make: unknown method {name!r}; valid names: {', '.join(METHODS)}"
        )
    return METHODS[name](encoder, **kwargs)
