"""Better negatives: debiased and hard-negative InfoNCE on precomputed logits, MoCHi's mixing.

:func:`contrastive_from_logits` takes similarities already divided by the temperature (from
:func:`~rlrep.losses.contrastive.moco_logits` or :func:`~rlrep.losses.contrastive.nt_xent_logits`)
and applies Chuang et al.'s debiasing and Robinson et al.'s hard-negative reweighting.
:func:`mochi_negatives` synthesises extra hard negatives for a MoCo queue (Kalantidis et al.).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F

from rlrep.losses.checks import check_temperature

__all__ = [
    "MochiPlan",
    "contrastive_from_logits",
    "contrastive_loss",
    "mochi_mix",
    "mochi_negatives",
    "sample_mochi_plan",
]


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _check_logits(positive, negatives, mask, tau_plus, beta, temperature) -> None:
    fn = "contrastive_from_logits"
    if positive.dim() != 1 or negatives.dim() != 2 or negatives.shape[0] != positive.shape[0]:
        raise ValueError(
            f"{fn}: expected positive (N,) and negatives (N, M), got {tuple(positive.shape)} and "
            f"{tuple(negatives.shape)}; pass the positive column squeezed, e.g. logits[:, 0]"
        )
    if positive.shape[0] == 0 or negatives.shape[1] == 0:
        raise ValueError(f"{fn}: needs N >= 1 anchors and M >= 1 negatives, got {negatives.shape}")
    if mask is not None and (mask.dtype != torch.bool or mask.shape != negatives.shape):
        raise ValueError(
            f"{fn}: negative_mask must be a bool tensor of shape (N, M) = {tuple(negatives.shape)}"
            f", got {mask.dtype} {tuple(mask.shape)}; True marks a negative to use"
        )
    if not (_is_number(tau_plus) and 0 <= tau_plus < 1):
        raise ValueError(
            f"{fn}: tau_plus must be a number in [0, 1), got {tau_plus!r}; it is the class prior "
            "(Chuang et al. use 0.1 on CIFAR-10, 0 switches debiasing off)"
        )
    if not (_is_number(beta) and beta >= 0):
        raise ValueError(
            f"{fn}: beta must be a finite number >= 0, got {beta!r}; 0 is no reweighting "
            "(Robinson et al. use 0.5–1)"
        )
    if tau_plus > 0 and temperature is None:
        raise ValueError(
            f"{fn}: tau_plus > 0 needs the temperature the logits were divided by (for the floor "
            "M·e^{-1/t}); pass temperature=t"
        )
    check_temperature(1.0 if temperature is None else temperature, fn)


def _log_negative_sum(negatives: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """``(N,)`` log Σ_j w_j e^{s_j} over each row's unmasked s_j; −inf where a row has none.

    ``w_j = M e^{β s_j} / Σ_k e^{β s_k}`` (all 1 when β = 0), so
    ``log Σ_j w_j e^{s_j} = log M + logsumexp((1 + β) s) − logsumexp(β s)``.
    """

    def lse(x: torch.Tensor) -> torch.Tensor:
        # masked_fill also zeroes the gradient of the dropped entries (no 0 · nan from −inf rows).
        return torch.logsumexp(x.masked_fill(~mask, float("-inf")), dim=1)

    if beta == 0:
        log_sum = lse(negatives)
    else:
        count = mask.sum(dim=1).to(negatives.dtype)
        log_sum = count.log() + lse((1 + beta) * negatives) - lse(beta * negatives)
    return log_sum.masked_fill(~mask.any(dim=1), float("-inf"))  # not −inf − (−inf) = nan


def contrastive_from_logits(
    positive: torch.Tensor,
    negatives: torch.Tensor,
    negative_mask: torch.Tensor | None = None,
    tau_plus: float = 0.0,
    beta: float = 0.0,
    temperature: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE with debiased (Chuang et al. 2020) and hard-negative (Robinson et al. 2021) ``Ng``.

    ``L = −(1/N) Σ_i log( e^{p_i} / (e^{p_i} + Ng_i) )`` with ``p_i = s(i, i⁺)/t`` and
    ``n_ij = s(i, j)/t`` logits *already divided by the temperature* t; over the ``M_i`` negatives
    that ``negative_mask`` keeps in row i:

    - plain (``tau_plus = 0, beta = 0``): ``Ng_i = Σ_j e^{n_ij}`` — InfoNCE, equal to
      ``F.cross_entropy`` with the positive as the target class;
    - hard negatives (Robinson et al. 2021, "Contrastive Learning with Hard Negative Samples",
      §3 and reference code): each negative reweighted by
      ``w_ij = M_i e^{β n_ij} / Σ_k e^{β n_ik}`` (mean 1 over the row; β multiplies the logit
      s/t, as their ``imp = (beta * neg.log()).exp()``), ``Σ_j w_ij e^{n_ij}`` replacing
      ``Σ_j e^{n_ij}``;
    - debiased (Chuang et al. 2020, "Debiased Contrastive Learning", §3 and reference code),
      with class prior ``τ⁺ = tau_plus``, applied after the reweighting as their code does:
      ``Ng_i = max( (Σ_j w_ij e^{n_ij} − M_i τ⁺ e^{p_i}) / (1 − τ⁺), M_i e^{−1/t} )``.
      The floor ``M_i e^{−1/t}`` is the smallest value ``Σ_j e^{s_ij/t}`` can take for cosine
      similarities ``s ≥ −1``; it is the only use of ``temperature``, required when
      ``tau_plus > 0``. With ``tau_plus = 0`` no floor is applied: for cosine logits the
      (reweighted) sum is ``≥ M_i e^{−1/t}`` anyway, so the reference code's clamp is inactive.

    Computed in log space (logsumexp); the debiased difference only in linear space, after
    subtracting each row's largest of its log terms, so float32 with t = 0.1 (or smaller) cannot
    overflow.

    :param positive: ``(N,)`` positive logits ``s(i, i⁺)/t``.
    :param negatives: ``(N, M)`` candidate negative logits ``s(i, j)/t``; entries that the mask
        drops may be anything, ``-inf`` included. Kept entries must be finite when ``beta > 0``.
    :param negative_mask: ``(N, M)`` bool, True = use as a negative; None uses all M columns.
        For NT-Xent pass the ``(2N, 2N)`` logits of
        :func:`~rlrep.losses.contrastive.nt_xent_logits` with self and positive masked out.
        ``M_i`` counts the kept entries of row i; a row with none contributes loss 0.
    :param tau_plus: τ⁺ in [0, 1), the probability that a "negative" shares the anchor's class.
    :param beta: β ≥ 0, the concentration on hard negatives (0: uniform).
    :param temperature: t > 0 the logits were divided by (only for the debiasing floor).
    :return: scalar loss (mean over the N anchors).
    """
    _check_logits(positive, negatives, negative_mask, tau_plus, beta, temperature)
    mask = torch.ones_like(negatives, dtype=torch.bool) if negative_mask is None else negative_mask
    log_neg = _log_negative_sum(negatives, mask, float(beta))
    if tau_plus == 0:
        return (torch.logaddexp(positive, log_neg) - positive).mean()
    count = mask.sum(dim=1).to(negatives.dtype)
    log_floor = count.log() - 1 / temperature
    shift = torch.maximum(torch.maximum(positive, log_neg), log_floor).detach()
    pos = (positive - shift).exp()
    ng = ((log_neg - shift).exp() - tau_plus * count * pos) / (1 - tau_plus)
    ng = torch.maximum(ng, (log_floor - shift).exp())
    return ((pos + ng).log() + shift - positive).mean()


def contrastive_loss(
    logits: torch.Tensor,
    positives: torch.Tensor,
    tau_plus: float = 0.0,
    beta: float = 0.0,
    temperature: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """The InfoNCE family's loss from ``(N, M)`` logits (already divided by t) whose column
    ``positives[i]`` is row i's positive; every other finite entry is a negative (``-inf``
    excludes one, as NT-Xent's self-similarity). ``tau_plus = beta = 0``: exactly
    ``F.cross_entropy(logits, positives)``; otherwise :func:`contrastive_from_logits`'s
    debiased / hard-negative form (meant for cosine logits: the floor assumes s ≥ −1).

    :param logits: ``(N, M)``; :param positives: ``(N,)`` column of each row's positive.
    """
    if tau_plus == 0 and beta == 0:
        return F.cross_entropy(logits, positives)
    columns = torch.arange(logits.shape[1], device=logits.device)
    positive = logits.gather(1, positives[:, None]).squeeze(1)
    mask = (columns[None, :] != positives[:, None]) & torch.isfinite(logits)
    return contrastive_from_logits(positive, logits, mask, tau_plus, beta, temperature)


class MochiPlan(NamedTuple):
    """The random choices of one MoCHi step (:func:`sample_mochi_plan`); every index points into
    the ``(K, D)`` negatives, s = ``n_mix_pairs``, s′ = ``n_mix_query``.

    ``hard`` ``(N, n_hard)``: each query's hardest negatives, hardest first. ``pairs``
    ``(N, s, 2)``: the n_a, n_b of each mixed pair, drawn from ``hard``. ``alpha`` ``(N, s)``:
    α ~ U(0, 1). ``mates`` ``(N, s′)``: the n_c mixed with the query, drawn from ``hard``.
    ``beta`` ``(N, s′)``: β ~ U(0, 0.5).
    """

    hard: torch.Tensor
    pairs: torch.Tensor
    alpha: torch.Tensor
    mates: torch.Tensor
    beta: torch.Tensor


def _check_mochi(query, negatives, n_hard, n_mix_pairs, n_mix_query) -> None:
    fn = "mochi_negatives"
    if query.dim() != 2 or negatives.dim() != 2 or negatives.shape[1] != query.shape[1]:
        raise ValueError(
            f"{fn}: expected query (N, D) and negatives (K, D) with the same D, got "
            f"{tuple(query.shape)} and {tuple(negatives.shape)}"
        )
    for name, v in (("n_mix_pairs", n_mix_pairs), ("n_mix_query", n_mix_query)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{fn}: {name} must be an int >= 0, got {v!r}")
    k = negatives.shape[0]
    ok = isinstance(n_hard, numbers.Integral) and not isinstance(n_hard, bool)
    if not (ok and 1 <= n_hard <= k):
        raise ValueError(
            f"{fn}: n_hard must be an int in [1, K] = [1, {k}] (K = the number of negatives), "
            f"got {n_hard!r}; use n_hard <= K or a longer queue"
        )


def sample_mochi_plan(
    query: torch.Tensor,
    negatives: torch.Tensor,
    n_hard: int,
    n_mix_pairs: int,
    n_mix_query: int,
    generator: torch.Generator | None = None,
) -> MochiPlan:
    """Ranks the negatives of each query by cosine ``q̂·n̂`` and draws MoCHi's mixing choices.

    Positions in the top ``n_hard`` set are drawn uniformly and independently (n_a = n_b is
    possible, with probability 1/n_hard; h is then that hard negative); all randomness comes from
    ``generator`` (on CPU or ``query``'s device), so a seeded generator gives the same plan.

    :param query: ``(N, D)``; :param negatives: ``(K, D)`` (e.g. the MoCo queue).
    :return: a :class:`MochiPlan` (indices and coefficients; no gradient).
    """
    _check_mochi(query, negatives, n_hard, n_mix_pairs, n_mix_query)
    n, dev = query.shape[0], query.device
    gen_dev = generator.device if generator is not None else dev
    dtype = query.dtype if query.is_floating_point() else torch.get_default_dtype()
    with torch.no_grad():
        sims = F.normalize(query, dim=1) @ F.normalize(negatives, dim=1).T
        hard = sims.topk(n_hard, dim=1).indices  # sorted: hardest first

        def draw(shape: tuple[int, ...]) -> torch.Tensor:
            at = torch.randint(n_hard, (n, *shape), generator=generator, device=gen_dev)
            return hard.gather(1, at.to(dev).reshape(n, -1)).reshape(n, *shape)

        def uniform(shape: tuple[int, ...], high: float) -> torch.Tensor:
            u = torch.rand((n, *shape), generator=generator, device=gen_dev, dtype=dtype)
            return high * u.to(dev)

        pairs, alpha = draw((n_mix_pairs, 2)), uniform((n_mix_pairs,), 1.0)
        mates, beta = draw((n_mix_query,)), uniform((n_mix_query,), 0.5)
    return MochiPlan(hard, pairs, alpha, mates, beta)


def mochi_mix(
    query: torch.Tensor, negatives: torch.Tensor, plan: MochiPlan, normalize: bool = True
) -> torch.Tensor:
    """The synthetic negatives of ``plan``, deterministic (Kalantidis et al. 2020, §4):

    ``h = α n̂_a + (1 − α) n̂_b`` (s of them per query), then ``h′ = β q̂ + (1 − β) n̂_c``
    (s′ of them), on L2-normalised q̂, n̂; each then L2-normalised unless ``normalize=False``
    (the raw mixes, in the convex hull of the hard negatives and the query).

    :param query: ``(N, D)``; :param negatives: ``(K, D)``; :param plan: from
        :func:`sample_mochi_plan` on the same tensors.
    :return: ``(N, s + s′, D)``, the s pair mixes first. Differentiable; see
        :func:`mochi_negatives` for the detached version the paper uses.
    """
    q, neg = F.normalize(query, dim=1), F.normalize(negatives, dim=1)
    alpha, beta = plan.alpha.unsqueeze(-1), plan.beta.unsqueeze(-1)
    pair_mix = alpha * neg[plan.pairs[..., 0]] + (1 - alpha) * neg[plan.pairs[..., 1]]
    query_mix = beta * q.unsqueeze(1) + (1 - beta) * neg[plan.mates]
    mixed = torch.cat([pair_mix, query_mix], dim=1)
    return F.normalize(mixed, dim=2) if normalize else mixed


def mochi_negatives(
    query: torch.Tensor,
    negatives: torch.Tensor,
    n_hard: int,
    n_mix_pairs: int,
    n_mix_query: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """MoCHi (Kalantidis et al. 2020, "Hard Negative Mixing for Contrastive Learning", §4):
    synthetic hard negatives for each query, to append to its MoCo logits.

    For each q̂_i the K negatives are ranked by ``q̂_i·n̂`` and the top ``n_hard`` (the paper's N)
    kept; ``n_mix_pairs`` (s) negatives ``h = normalise(α n̂_a + (1 − α) n̂_b)``, α ~ U(0, 1),
    and ``n_mix_query`` (s′) negatives ``h′ = normalise(β q̂_i + (1 − β) n̂_c)``, β ~ U(0, 0.5),
    with n_a, n_b, n_c drawn from the top set. Computed without gradient (the paper treats the
    mixed features as constants). Use: ``torch.einsum("nd,nsd->ns", q̂, h) / τ`` as extra
    negative columns of :func:`~rlrep.losses.contrastive.moco_logits`.

    The choices are :func:`sample_mochi_plan`'s and the mixing :func:`mochi_mix`'s: the same
    generator state gives ``mochi_mix(query, negatives, sample_mochi_plan(...))``.

    :param query: ``(N, D)`` queries; :param negatives: ``(K, D)`` (normalised here).
    :param generator: source of all randomness (None: torch's global generator).
    :return: ``(N, s + s′, D)`` L2-normalised, ``requires_grad`` False.
    """
    plan = sample_mochi_plan(query, negatives, n_hard, n_mix_pairs, n_mix_query, generator)
    with torch.no_grad():
        return mochi_mix(query, negatives, plan)
