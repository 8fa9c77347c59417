"""Metric-learning losses: margin contrastive, triplet, N-pair, lifted structured and binary NCE.

Pure functions of embeddings (or logits); each returns a scalar. Distances are Euclidean on the
embeddings as given: nothing is normalised here (normalise first where the paper does).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from rlrep.losses.checks import check_pair

__all__ = ["binary_nce", "lifted_structured", "margin_contrastive", "n_pair", "triplet"]


def _check_margin(margin: float, fn: str, typical: str, allow_zero: bool = True) -> None:
    """``ValueError`` unless ``margin`` is a finite number ``>= 0`` (``> 0`` without
    ``allow_zero``). A tensor (a learnable margin) is not checked: reading it would sync.
    """
    if isinstance(margin, torch.Tensor):
        return
    ok = isinstance(margin, numbers.Real) and not isinstance(margin, bool)
    if not (ok and math.isfinite(margin) and (margin >= 0 if allow_zero else margin > 0)):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{fn}: margin must be a finite number {bound}, got {margin!r}; {typical}")


def margin_contrastive(
    x1: torch.Tensor, x2: torch.Tensor, same: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Contrastive loss on pairs (Hadsell, Chopra & LeCun 2006), batch mean:

    ``L = (1/N) Σ_i [ same_i · d_i²/2 + (1 − same_i) · max(0, m − d_i)²/2 ]``,
    ``d_i = ‖x1_i − x2_i‖₂``. The factors 1/2 are the paper's (``L_S = D²/2``,
    ``L_D = max(0, m − D)²/2``); their label is ``Y = 1 − same``. Similar pairs are pulled
    together; dissimilar ones are pushed apart until they are ``m`` apart.

    The similar term uses ``d²`` directly; the dissimilar one ``sqrt(max(d², tiny))``, so the
    gradient stays finite at coincident points (there it is 0: no direction to push along).

    :param x1: ``(N, D)``; :param x2: ``(N, D)`` (row-aligned pairs).
    :param same: ``(N,)`` bool, or float in {0, 1}: 1 where the pair is similar.
    :param margin: ``m > 0``.
    :return: scalar loss.
    """
    check_pair(x1, x2, "margin_contrastive", "x1, x2")
    _check_margin(margin, "margin_contrastive", "e.g. 1.0", allow_zero=False)
    if same.shape != (x1.shape[0],):
        raise ValueError(
            f"margin_contrastive: expected same of shape (N,) = ({x1.shape[0]},), one flag per "
            f"pair, got {tuple(same.shape)}"
        )
    sq = (x1 - x2).pow(2).sum(dim=1)
    d = sq.clamp(min=torch.finfo(sq.dtype).tiny).sqrt()
    same = same.to(sq.dtype)
    return (same * sq / 2 + (1 - same) * F.relu(margin - d).pow(2) / 2).mean()


def triplet(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 0.2
) -> torch.Tensor:
    """FaceNet's triplet loss (Schroff, Kalenichenko & Philbin 2015) on *squared* Euclidean
    distances, batch mean:

    ``L = (1/N) Σ_i max(0, ‖a_i − p_i‖² − ‖a_i − n_i‖² + α)``.

    FaceNet's α = 0.2 is for unit-norm embeddings; L2-normalise them first to match. Triplet
    selection (hard / semi-hard mining) is the caller's.

    :param anchor: ``(N, D)``; :param positive: ``(N, D)``; :param negative: ``(N, D)``.
    :param margin: α ``>= 0``.
    :return: scalar loss.
    """
    check_pair(anchor, positive, "triplet", "anchor, positive")
    check_pair(anchor, negative, "triplet", "anchor, negative")
    _check_margin(margin, "triplet", "FaceNet: 0.2 on unit-norm embeddings")
    d_pos = (anchor - positive).pow(2).sum(dim=1)
    d_neg = (anchor - negative).pow(2).sum(dim=1)
    return F.relu(d_pos - d_neg + margin).mean()


def n_pair(anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Multi-class N-pair loss (Sohn 2016), the other anchors' positives being the negatives:

    ``L = (1/N) Σ_i log(1 + Σ_{j≠i} exp(a_i·p_j − a_i·p_i))``

    on raw dot products (no normalisation, no temperature). This is the cross-entropy of the
    ``(N, N)`` logits ``a pᵀ`` with the diagonal as target, i.e. equal to
    ``info_nce(anchor, positive, W=torch.eye(D))`` (that one subtracts each row's max first,
    which leaves the loss unchanged). Sohn also adds a small L2 penalty on the embeddings; it is
    not included: add ``λ·(a.pow(2).sum(1) + p.pow(2).sum(1)).mean()`` yourself.

    :param anchor: ``(N, D)``; :param positive: ``(N, D)``, row i the positive of anchor i.
    :return: scalar loss.
    """
    check_pair(anchor, positive, "n_pair", "anchor, positive", min_batch=2)
    logits = anchor @ positive.T
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def lifted_structured(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Lifted structured loss (Song, Xiang, Jegelka & Savarese 2016, Eq. 4, the smooth bound):

    ``J_ij = log( Σ_{(i,k)∈N} exp(α − D_ik) + Σ_{(j,l)∈N} exp(α − D_jl) ) + D_ij``,
    ``L = 1/(2|P|) Σ_{(i,j)∈P} max(0, J_ij)²``,

    ``P`` the positive pairs ``i < j`` (same label), ``N`` the negative pairs (different labels),
    ``D`` the Euclidean distance matrix (computed from differences, not from the Gram matrix, so
    near-duplicates are exact), α the margin. The sum is a stable log-sum-exp.

    Reads ``labels`` on the host (one sync) to list the positive pairs.

    :param embeddings: ``(N, D)``; :param labels: ``(N,)`` integer class of each row.
    :param margin: α ``>= 0``.
    :return: scalar loss.
    """
    if embeddings.dim() != 2 or labels.shape != (embeddings.shape[0],):
        raise ValueError(
            f"lifted_structured: expected embeddings (N, D) and labels (N,), got "
            f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )
    _check_margin(margin, "lifted_structured", "the paper's α is 1.0")
    same = labels[:, None] == labels[None, :]
    i, j = torch.triu(same, diagonal=1).nonzero(as_tuple=True)
    if i.numel() == 0:
        raise ValueError(
            "lifted_structured: no positive pair (every label occurs once); the batch must hold "
            ">= 2 samples of some label, e.g. sample several per class"
        )
    if bool(same.all()):
        raise ValueError(
            "lifted_structured: no negative pair (all labels are equal); the batch must hold "
            ">= 2 distinct labels"
        )
    dist = torch.cdist(embeddings, embeddings, compute_mode="donot_use_mm_for_euclid_dist")
    # log Σ_{k: y_k ≠ y_i} exp(α − D_ik) per row; a row whose label fills the batch has no
    # negative only when all labels are equal, ruled out above.
    row = (margin - dist).masked_fill(same, float("-inf")).logsumexp(dim=1)
    J = torch.logaddexp(row[i], row[j]) + dist[i, j]
    return F.relu(J).pow(2).sum() / (2 * i.numel())


def binary_nce(positive_logits: torch.Tensor, negative_logits: torch.Tensor) -> torch.Tensor:
    """Noise-contrastive estimation as binary classification (Gutmann & Hyvärinen 2010; K noise
    samples per data sample, ν = K, as in their 2012 JMLR paper):

    ``L = (1/N) Σ_i [ −log σ(s⁺_i) − Σ_k log σ(−s⁻_ik) ]``  (note ``1 − σ(s) = σ(−s)``).

    The logits are the model's log-ratio ``s(u) = log p_model(u) − log(K·p_noise(u))``: the
    caller subtracts the noise log-density and ``log K``. Computed with ``logsigmoid``, so large
    logits neither overflow nor give ``log 0``.

    :param positive_logits: ``(N,)`` logits of the data samples.
    :param negative_logits: ``(N, K)`` logits of the K noise samples drawn for each.
    :return: scalar loss.
    """
    p, n = positive_logits, negative_logits
    if p.dim() != 1 or n.dim() != 2 or n.shape[0] != p.shape[0]:
        raise ValueError(
            f"binary_nce: expected positive_logits (N,) and negative_logits (N, K), got "
            f"{tuple(p.shape)} and {tuple(n.shape)}"
        )
    if p.shape[0] == 0 or n.shape[1] == 0:
        raise ValueError(
            f"binary_nce: needs N >= 1 data samples and K >= 1 noise samples each, got "
            f"N={p.shape[0]}, K={n.shape[1]}"
        )
    return (-F.logsigmoid(p) - F.logsigmoid(-n).sum(dim=1)).mean()
