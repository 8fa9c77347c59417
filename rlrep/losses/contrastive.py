"""Contrastive losses: CURL's bilinear InfoNCE, SimCLR's NT-Xent, MoCo's queue InfoNCE,
SupCon's multi-positive loss.

Pure functions of embeddings; each returns a scalar. Keys/targets are *not* detached here: the
caller decides (CURL and MoCo compute keys under ``torch.no_grad``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlrep.losses.checks import check_pair as _check_pair
from rlrep.losses.checks import check_temperature as _check_temperature
from rlrep.losses.negatives import contrastive_loss

__all__ = [
    "contrastive_accuracy",
    "info_nce",
    "info_nce_logits",
    "moco",
    "moco_logits",
    "nt_xent",
    "nt_xent_logits",
    "sup_con",
    "sup_con_rows",
]


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
    tau_plus: float = 0.0,
    beta: float = 0.0,
) -> torch.Tensor:
    """InfoNCE (van den Oord et al. 2018) with the other keys of the batch as negatives:

    ``L = −(1/N) Σ_i log( exp(s_ii) / Σ_j exp(s_ij) )``, ``s`` from :func:`info_nce_logits`.
    ``W`` given: CURL's loss exactly (no temperature, ``temperature=1``).

    :param query: ``(N, D)``; :param key: ``(N, D)``; :param W: optional ``(D, D)``.
    :param tau_plus: / :param beta: debiased (Chuang et al. 2020) and hard-negative (Robinson et
        al. 2021) forms, for cosine logits (:func:`~rlrep.losses.contrastive_loss`); 0: plain.
    :return: scalar loss.
    """
    logits = info_nce_logits(query, key, W, temperature)
    positives = torch.arange(logits.shape[0], device=logits.device)
    return contrastive_loss(logits, positives, tau_plus, beta, temperature)


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


def nt_xent(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float = 0.5,
    tau_plus: float = 0.0,
    beta: float = 0.0,
) -> torch.Tensor:
    """NT-Xent (Chen et al. 2020, SimCLR Eq. 1), symmetric over the two views:

    ``ℓ(i, j) = −log( exp(sim(z_i, z_j)/τ) / Σ_{k≠i} exp(sim(z_i, z_k)/τ) )`` over all 2N
    anchors (each view of each image), averaged; the other 2N − 2 views are the negatives.

    :param z1: ``(N, D)`` first views; :param z2: ``(N, D)`` second views (row-aligned).
    :param temperature: τ (SimCLR: 0.5 on CIFAR, 0.1 on ImageNet).
    :param tau_plus: / :param beta: debiased (Chuang et al. 2020, τ⁺) and hard-negative
        (Robinson et al. 2021, β) forms over the 2N − 2 negatives
        (:func:`~rlrep.losses.contrastive_loss`); 0: plain NT-Xent.
    :return: scalar loss.
    """
    logits, positives = nt_xent_logits(z1, z2, temperature)
    return contrastive_loss(logits, positives, tau_plus, beta, temperature)


def sup_con_rows(
    z: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 0.1,
    keep: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SupCon's ``L_out`` term of each anchor (Khosla et al. 2020, Eq. 2), without the mean:

    ``ℓ_i = −(1/|P(i)|) Σ_{p∈P(i)} log( exp(z_i·z_p/τ) / Σ_{a∈A(i)} exp(z_i·z_a/τ) )``,

    ``A(i)`` the kept samples but ``i``, ``P(i)`` those of ``A(i)`` with ``i``'s label; ``z``
    is L2-normalised here. Samples outside ``keep`` take no part at all: neither anchors nor
    positives nor negatives (e.g. frames past an episode end, or a held-out split).

    :param z: ``(N, D)`` embeddings. :param labels: ``(N,)`` integer labels.
    :param temperature: τ (0.1 in the paper).
    :param keep: ``(N,)`` bool, the samples that take part (``None``: all).
    :return: ``ℓ`` ``(N,)`` (0 where not counted), ``counted`` ``(N,)`` bool (kept anchors with
        at least one kept positive; average ``ℓ`` over these) and the logits ``(N, N)`` with
        self-pairs and dropped samples at −inf (argmax: the nearest kept other).
    """
    _check_temperature(temperature, "sup_con")
    if z.dim() != 2 or labels.shape != (z.shape[0],):
        raise ValueError(
            f"sup_con: expected z (N, D) and labels (N,), got {tuple(z.shape)} and "
            f"{tuple(labels.shape)}"
        )
    n = z.shape[0]
    if keep is None:
        keep = torch.ones(n, dtype=torch.bool, device=z.device)
    elif keep.shape != (n,):
        raise ValueError(f"sup_con: keep must be (N,) = ({n},) bool, got {tuple(keep.shape)}")
    keep = keep.bool()
    candidates = keep[None, :] & ~torch.eye(n, dtype=torch.bool, device=z.device)  # A(i)
    positives = (labels[:, None] == labels[None, :]) & candidates  # P(i)
    counts = positives.sum(dim=1)
    counted = keep & (counts > 0)
    zn = F.normalize(z, dim=1)
    logits = ((zn @ zn.T) / temperature).masked_fill(~candidates, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)
    return -positive_log_prob / counts.clamp(min=1), counted, logits


def sup_con(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Multi-positive contrastive loss, SupCon's ``L_out`` (Khosla et al. 2020, Eq. 2): the mean
    of :func:`sup_con_rows` over the anchors that have a positive.

    With V views of each of B images labelled by image index it is multi-view NT-Xent (V = 2:
    exactly :func:`nt_xent`); with window labels, the time positives of
    :class:`~rlrep.methods.TimeSupCon`.

    :param z: ``(N, D)`` embeddings. :param labels: ``(N,)`` integer labels.
    :param temperature: τ (0.1 in the paper).
    :return: scalar loss.
    """
    rows, counted, _ = sup_con_rows(z, labels, temperature)
    if not bool(counted.any()):
        raise ValueError(
            "sup_con: no sample shares its label with another, so no anchor has a positive; "
            "the batch needs at least two samples of some label (e.g. two views of an image)"
        )
    return rows[counted].mean()


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
    query: torch.Tensor,
    key: torch.Tensor,
    queue: torch.Tensor,
    temperature: float = 0.2,
    tau_plus: float = 0.0,
    beta: float = 0.0,
) -> torch.Tensor:
    """MoCo's InfoNCE (He et al. 2020; v2: Chen et al. 2020): each query's positive is its key,
    its negatives the ``K`` keys of earlier batches kept in ``queue``.

    ``L = −(1/N) Σ_i log( exp(q_i·k_i/τ) / (exp(q_i·k_i/τ) + Σ_j exp(q_i·n_j/τ)) )`` on
    L2-normalised vectors (normalised here). MoCo v2: τ = 0.2, K = 65,536.

    :param query: ``(N, D)``; :param key: ``(N, D)``; :param queue: ``(K, D)``.
    :param tau_plus: / :param beta: debiased and hard-negative forms over the queue
        (:func:`~rlrep.losses.contrastive_loss`); 0: plain.
    :return: scalar loss.
    """
    logits = moco_logits(query, key, queue, temperature)
    positives = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return contrastive_loss(logits, positives, tau_plus, beta, temperature)


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
