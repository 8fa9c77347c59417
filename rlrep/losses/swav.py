"""SwAV's online clustering (Caron et al. 2020): Sinkhorn–Knopp codes and swapped prediction."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from rlrep.losses.checks import check_temperature

__all__ = ["sinkhorn", "swapped_prediction"]


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Soft codes that spread a batch evenly over the prototypes (SwAV, Caron et al. 2020, Eq. 3
    and Alg. 1 of the paper's code): Sinkhorn–Knopp on ``Q = exp(scores / ε)``.

    Starting from ``Q / ΣQ``, each iteration scales every column (prototype) to sum to ``1/K``,
    then every row (sample) to sum to ``1/B``; the result is multiplied by ``B``. So, exactly:
    **each row sums to 1** (a sample's code is a distribution over the K prototypes); and each
    column sums to ``B/K`` at convergence (an equipartition of the batch over the prototypes),
    approximately after the paper's 3 iterations. Computed without gradient (codes are targets).

    :param scores: ``(B, K)`` similarities of B embeddings to K prototypes (cosines in SwAV).
    :param epsilon: ε, the entropy regularisation (0.05; smaller gives harder codes).
    :param iterations: Sinkhorn–Knopp iterations (3).
    :return: ``(B, K)`` codes, in ``scores``' dtype (computed in float32 or wider).
    """
    if scores.dim() != 2 or min(scores.shape) == 0:
        raise ValueError(
            f"sinkhorn: expected scores of shape (B, K) with B, K >= 1, got {tuple(scores.shape)}"
        )
    if not (isinstance(epsilon, numbers.Real) and math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"sinkhorn: epsilon must be a finite number > 0, got {epsilon!r} (0.05)")
    if not isinstance(iterations, numbers.Integral) or iterations < 1:
        raise ValueError(f"sinkhorn: iterations must be an integer >= 1, got {iterations!r} (3)")
    b, k = scores.shape
    s = scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores
    # Subtracting the global max leaves Q / ΣQ unchanged and keeps exp() finite.
    q = torch.exp((s - s.max()) / epsilon)
    q = q / q.sum()
    for _ in range(iterations):
        q = q / (q.sum(dim=0, keepdim=True) * k)  # each prototype's mass → 1/K
        q = q / (q.sum(dim=1, keepdim=True) * b)  # each sample's mass → 1/B
    return (q * b).to(scores.dtype)


def swapped_prediction(
    scores: Sequence[torch.Tensor], codes: Sequence[torch.Tensor], temperature: float = 0.1
) -> torch.Tensor:
    """SwAV's swapped prediction (Caron et al. 2020, Eq. 1–2): the code of view ``g`` is
    predicted from every other view ``v``,

    ``L = mean over pairs (g, v ≠ g) of  −(1/B) Σ_i Σ_k q_g[i, k] · log softmax(s_v[i] / τ)_k``,

    with ``g`` over the views that have codes (the global crops) and ``v`` over all views
    (globals and multi-crop locals); the paper's code averages over the same pairs.

    :param scores: V tensors ``(B, K)``, each view's embeddings · normalised prototypesᵀ.
    :param codes: G ≤ V tensors ``(B, K)`` (from :func:`sinkhorn`), the codes of ``scores[:G]``;
        treated as targets (detach them; :func:`sinkhorn` already does).
    :param temperature: τ (0.1).
    :return: scalar loss.
    """
    check_temperature(temperature, "swapped_prediction")
    if len(scores) < 2 or not 1 <= len(codes) <= len(scores):
        raise ValueError(
            f"swapped_prediction: needs V >= 2 score tensors and 1..V codes (one per view that "
            f"is predicted), got V={len(scores)} and {len(codes)} codes"
        )
    shape = scores[0].shape
    if len(shape) != 2 or any(t.shape != shape for t in (*scores, *codes)):
        raise ValueError(
            "swapped_prediction: every score and code tensor must have the same shape (B, K), "
            f"got {[tuple(t.shape) for t in scores]} and {[tuple(t.shape) for t in codes]}"
        )
    log_p = [F.log_softmax(s / temperature, dim=1) for s in scores]
    terms = [
        -(q * log_p[v]).sum(dim=1).mean()
        for g, q in enumerate(codes)
        for v in range(len(scores))
        if v != g
    ]
    return torch.stack(terms).mean()
