"""Self-supervised and metric-learning losses as pure functions of embeddings; each returns a
scalar tensor (:func:`sinkhorn` and the MoCHi helpers return codes and negatives).

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
    sup_con,
    sup_con_rows,
)
from rlrep.losses.metric_learning import (
    binary_nce,
    lifted_structured,
    margin_contrastive,
    n_pair,
    triplet,
)
from rlrep.losses.negatives import (
    MochiPlan,
    contrastive_from_logits,
    contrastive_loss,
    mochi_mix,
    mochi_negatives,
    sample_mochi_plan,
)
from rlrep.losses.redundancy import barlow_twins, off_diagonal, vicreg
from rlrep.losses.similarity import byol, negative_cosine
from rlrep.losses.swav import sinkhorn, swapped_prediction

__all__ = [
    "MochiPlan",
    "barlow_twins",
    "binary_nce",
    "byol",
    "contrastive_accuracy",
    "contrastive_from_logits",
    "contrastive_loss",
    "info_nce",
    "info_nce_logits",
    "lifted_structured",
    "margin_contrastive",
    "mochi_mix",
    "mochi_negatives",
    "moco",
    "moco_logits",
    "n_pair",
    "negative_cosine",
    "nt_xent",
    "nt_xent_logits",
    "off_diagonal",
    "sample_mochi_plan",
    "sinkhorn",
    "sup_con",
    "sup_con_rows",
    "swapped_prediction",
    "triplet",
    "vicreg",
]
