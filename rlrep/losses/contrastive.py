"""Contrastive losses: CURL's bilinear InfoNCE, SimCLR's NT-Xent, MoCo's queue InfoNCE.

Pure functions of embeddings; each returns a scalar. Keys/targets are *not* detached here: the
caller decides (CURL and MoCo compute keys under ``torch.no_grad``).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

__all__ = [
    "contrastive_accuracy",
    "info_nce",
    "info_nce_logits",
    "moco",
    "moco_logits",
    "nt_xent",
    "nt_xent_logits",
]


def _check_pair(
    a: torch.Tensor, b: torch.Tensor, fn: str, names: str = "query, key", min_batch: int = 1
) -> None:
    """Equal ``(N, D)`` shapes with ``N >= min_batch`` (2 where the batch supplies negatives)."""
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(
            f"{fn}: expected {names} of equal shape (N, D), got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[0] < min_batch:
        why = "the other samples of the batch are the negatives" if min_batch > 1 else "no loss"
        raise ValueError(
            f"{fn}: needs a batch of at least {min_batch} samples ({why}), got N={a.shape[0]}; "
            f"use a batch size >= {min_batch}"
        )


def _check_temperature(temperature: float, fn: str) -> None:
    """``ValueError`` unless ``temperature`` is a finite number > 0 (0 gives NaN logits).

    A tensor (a learnable temperature) is not checked: reading it would sync with the device.
    """
    if isinstance(temperature, torch.Tensor):
        return
    ok = isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
    if not (ok and math.isfinite(temperature) and temperature > 0):
        raise ValueError(
            f"{fn}: temperature must be a finite number > 0, got {temperature!r}; "
            "typical values are 0.1–0.5 (SimCLR 0.5, MoCo v2 0.2; 1 for CURL)"
        )


def info_nce_logits(
    query: torch.Tensor,
    key: torch.Tensor,
    W: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``(N, N)`` logits whose diagonal holds the positive pairs.

    With ``W`` (D×D): CURL's bilinear similarity ``q W kᵀ`` with each row's max subtracted for
    stability (Laskin et al. 2020, Eq. 1 and reference code); without: cosine similarity.
    Both are divided by ``temperature``.

    :param query: ``(N, D)`` anchors.
    :param key: ``(N, D)`` positives; row i of ``key`` is the positive of row i of ``query``.
    """
    _check_pair(query, key, "info_nce", min_batch=2)
    _check_temperature(temperature, "info_nce")
    if W is not None:
        if W.shape != (query.shape[1], key.shape[1]):
            raise ValueError(
                f"info_nce: W must be (D, D) = {(query.shape[1], key.shape[1])}, got {tuple(W.shape)}"
            )
        logits = query @ W @ key.T
        logits = logits - logits.max(dim=1, keepdim=True).values
    else:
        logits = F.normalize(query, dim=1) @ F.normalize(key, dim=1).T
    return logits / temperature


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    W: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """InfoNCE (van den Oord et al. 2018) with the other keys of the batch as negatives:

    ``L = −(1/N) Σ_i log( exp(s_ii) / Σ_j exp(s_ij) )``, ``s`` from :func:`info_nce_logits`.
    ``W`` given: CURL's loss exactly (no temperature, ``temperature=1``).

    :param query: ``(N, D)``; :param key: ``(N, D)``; :param W: optional ``(D, D)``.
    :return: scalar loss.
    """
    logits = info_nce_logits(query, key, W, temperature)
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def nt_xent_logits(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """SimCLR's ``(2N, 2N)`` logits (cosine / temperature, self-similarity set to −inf) and the
    ``(2N,)`` index of each anchor's positive (``i ↔ i + N``).
    """
    _check_pair(z1, z2, "nt_xent", "z1, z2", min_batch=2)
    _check_temperature(temperature, "nt_xent")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.T) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    idx = torch.arange(n, device=z.device)
    return logits, torch.cat([idx + n, idx])


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent (Chen et al. 2020, SimCLR Eq. 1), symmetric over the two views:

    ``ℓ(i, j) = −log( exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) )`` over all 2N
    anchors (each view of each image), averaged; the other 2N − 2 views are the negatives.

    :param z1: ``(N, D)`` first views; :param z2: ``(N, D)`` second views (row-aligned).
    :param temperature: τ (SimCLR: 0.5 on CIFAR, 0.1 on ImageNet).
    :return: scalar loss.
    """
    logits, positives = nt_xent_logits(z1, z2, temperature)
    return F.cross_entropy(logits, positives)


def moco_logits(
    query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2
) -> torch.Tensor:
    """``(N, 1 + K)`` logits: column 0 the positive ``q·k``, then ``q·queueᵀ``; cosine / τ."""
    _check_pair(query, key, "moco")  # the negatives come from the queue: N = 1 is fine
    _check_temperature(temperature, "moco")
    if queue.dim() != 2 or queue.shape[1] != query.shape[1]:
        raise ValueError(
            f"moco: queue must be (K, D) with D = {query.shape[1]}, got {tuple(queue.shape)}"
        )
    if queue.shape[0] == 0:
        raise ValueError("moco: the queue is empty (K = 0); it must hold at least one negative key")
    q, k = F.normalize(query, dim=1), F.normalize(key, dim=1)
    positive = (q * k).sum(dim=1, keepdim=True)
    negative = q @ F.normalize(queue, dim=1).T
    return torch.cat([positive, negative], dim=1) / temperature


def moco(
    query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2
) -> torch.Tensor:
    """MoCo's InfoNCE (He et al. 2020; v2: Chen et al. 2020): each query's positive is its key,
    its negatives the ``K`` keys of earlier batches kept in ``queue``.

    ``L = −(1/N) Σ_i log( exp(q_i·k_i/τ) / (exp(q_i·k_i/τ) + Σ_j exp(q_i·n_j/τ)) )`` on
    L2-normalised vectors (normalised here). MoCo v2: τ = 0.2, K = 65,536.

    :param query: ``(N, D)``; :param key: ``(N, D)``; :param queue: ``(K, D)``.
    :return: scalar loss.
    """
    logits = moco_logits(query, key, queue, temperature)
    return F.cross_entropy(
        logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    )


def contrastive_accuracy(
    logits: torch.Tensor, positives: torch.Tensor | None = None
) -> torch.Tensor:
    """Top-1 accuracy of picking the positive: the share of rows whose largest logit is at
    ``positives[i]`` (default: the diagonal, as in :func:`info_nce_logits`).

    :param logits: ``(N, M)``; :param positives: ``(N,)`` column index of each row's positive.
    :return: scalar tensor in [0, 1] (no host sync).
    """
    if positives is None:
        positives = torch.arange(logits.shape[0], device=logits.device)
    return (logits.argmax(dim=1) == positives).float().mean()
