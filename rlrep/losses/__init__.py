"""Self-supervised losses as pure functions of embeddings; each returns a scalar tensor.

Shapes, formulas and papers are in each docstring. Nothing here holds state or imports the rest
of rlrep.
"""

from rlrep.losses.contrastive import (
    contrastive_accuracy,
    info_nce,
    info_nce_logits,
    moco,
    moco_logits,
    nt_xent,
    nt_xent_logits,
)
from rlrep.losses.redundancy import barlow_twins, off_diagonal, vicreg
from rlrep.losses.similarity import byol, negative_cosine

__all__ = [
    "barlow_twins",
    "byol",
    "contrastive_accuracy",
    "info_nce",
    "info_nce_logits",
    "moco",
    "moco_logits",
    "negative_cosine",
    "nt_xent",
    "nt_xent_logits",
    "off_diagonal",
    "vicreg",
]
