"""Representation methods: heads, momentum targets and the loss from two views of a batch
(or more: multi-crop's local views, for the methods in :data:`MULTI_VIEW`).

``method = make("curl", encoder)``; ``out = method(view_a, view_b)``; ``out.loss.backward()``;
optimiser step; ``method.update_targets()``. Names in :data:`METHODS`.

The methods in :data:`TEMPORAL` (:class:`TemporalMethod`) learn from windows of time instead:
``method(views, actions, valid)`` with the views of ``obs_t … obs_{t+L}`` at their ``offsets``.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from rlrep.methods.atc import ATC
from rlrep.methods.base import (
    AuxOutput,
    Method,
    contrastive_metrics,
    features_dim_of,
    target_pairs,
    view_metrics,
)
from rlrep.methods.byol import BYOL, SimSiam
from rlrep.methods.cpc import CPC
from rlrep.methods.curl import CURL
from rlrep.methods.ema import cosine_momentum, make_target, update_momentum
from rlrep.methods.heads import mlp
from rlrep.methods.memory_bank import MemoryBank
from rlrep.methods.moco import MoCo
from rlrep.methods.mocov3 import MoCoV3
from rlrep.methods.nnclr import NNCLR
from rlrep.methods.sac_ae import SACAE
from rlrep.methods.spr import SPR
from rlrep.methods.swav import SwAV
from rlrep.methods.symmetric import BarlowTwins, SimCLR, VICReg
from rlrep.methods.temporal import TemporalMethod
from rlrep.methods.time_sup_con import TimeSupCon

__all__ = [
    "ATC",
    "BYOL",
    "CPC",
    "CURL",
    "METHODS",
    "MULTI_VIEW",
    "NNCLR",
    "SACAE",
    "SPR",
    "TEMPORAL",
    "AuxOutput",
    "BarlowTwins",
    "MemoryBank",
    "Method",
    "MoCo",
    "MoCoV3",
    "SimCLR",
    "SimSiam",
    "SwAV",
    "TemporalMethod",
    "TimeSupCon",
    "VICReg",
    "check_options",
    "contrastive_metrics",
    "cosine_momentum",
    "features_dim_of",
    "make",
    "make_target",
    "mlp",
    "target_pairs",
    "update_momentum",
    "view_metrics",
]

METHODS: dict[str, type[Method]] = {
    "curl": CURL,
    "simclr": SimCLR,
    "moco": MoCo,
    "byol": BYOL,
    "simsiam": SimSiam,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
    "swav": SwAV,
    "nnclr": NNCLR,
    "moco_v3": MoCoV3,
    "memory_bank": MemoryBank,
    "atc": ATC,
    "spr": SPR,
    "cpc": CPC,
    "sac_ae": SACAE,
    "time_sup_con": TimeSupCon,
}

#: Names of the methods that take more than two views (multi-crop).
MULTI_VIEW: tuple[str, ...] = tuple(name for name, cls in METHODS.items() if cls.multi_view)

#: Names of the methods that learn from windows of time (:class:`TemporalMethod`).
TEMPORAL: tuple[str, ...] = tuple(
    name for name, cls in METHODS.items() if issubclass(cls, TemporalMethod)
)


def check_options(name: str, options: dict[str, Any]) -> None:
    """``ValueError`` unless ``name`` is a method and ``options`` are among its constructor's
    keyword arguments (before anything is built or loaded)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid names: {', '.join(METHODS)}")
    params = inspect.signature(METHODS[name]).parameters
    valid = [k for k in params if k not in ("encoder", "gather_distributed")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"method {name!r} has no option {', '.join(map(repr, unknown))}; its options: "
            f"{', '.join(valid)}"
        )


def make(name: str, encoder: nn.Module, **kwargs: Any) -> Method:
    """Build the method called ``name`` around the online ``encoder`` (needs ``features_dim``).

    :param kwargs: the method's own options (e.g. ``temperature``, ``momentum``).
    """
    if name not in METHODS:
        raise ValueError(
            f"methods.make: unknown method {name!r}; valid names: {', '.join(METHODS)}"
        )
    return METHODS[name](encoder, **kwargs)
