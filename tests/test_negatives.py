"""Debiased / hard-negative InfoNCE and MoCHi against hand-worked cases, naive loops and the
papers' reference code (Chuang et al. 2020; Robinson et al. 2021) transcribed in float64."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rlrep.losses as L
from rlrep.losses.contrastive import nt_xent_logits
from rlrep.losses.negatives import (
    MochiPlan,
    contrastive_from_logits,
    mochi_mix,
    mochi_negatives,
    sample_mochi_plan,
)


def rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def cosine_logits(n=6, m=9, t=0.5, seed=0):
    """Positive (N,) and negatives (N, M): cosines of random vectors divided by t."""
    q, k, neg = F.normalize(rand(n, 4, seed=seed), dim=1), rand(n, 4, seed=seed + 1), rand(m, 4)
    k, neg = F.normalize(k, dim=1), F.normalize(neg, dim=1)
    return (q * k).sum(1) / t, q @ neg.T / t


def unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def naive(pos, negs, tau_plus=0.0, beta=0.0, t=None):
    """Per-anchor loop of −log(e^p / (e^p + Ng)) with Chuang's Ng and Robinson's weights."""
    total = 0.0
    for p, row in zip(pos.tolist(), negs.tolist(), strict=True):
        m = len(row)
        w = [m * math.exp(beta * s) / sum(math.exp(beta * x) for x in row) for s in row]
        ng = sum(wj * math.exp(s) for wj, s in zip(w, row, strict=True))
        if tau_plus > 0:
            ng = max((ng - m * tau_plus * math.exp(p)) / (1 - tau_plus), m * math.exp(-1 / t))
        total += -math.log(math.exp(p) / (math.exp(p) + ng))
    return total / len(pos)


def reference_criterion(out_1, out_2, tau_plus, beta, temperature, estimator):
    """Robinson et al.'s ``criterion`` (HCL main.py; Chuang et al.'s DCL is its beta = 0 case)."""
    batch_size = out_1.shape[0]
    out = torch.cat([out_1, out_2], dim=0)
    neg = torch.exp(torch.mm(out, out.t().contiguous()) / temperature)
    mask = torch.ones((batch_size, 2 * batch_size), dtype=bool)
    for i in range(batch_size):
        mask[i, i] = 0
        mask[i, i + batch_size] = 0
    mask = torch.cat((mask, mask), 0)
    neg = neg.masked_select(mask).view(2 * batch_size, -1)
    pos = torch.exp(torch.sum(out_1 * out_2, dim=-1) / temperature)
    pos = torch.cat([pos, pos], dim=0)
    if estimator == "hard":
        N = batch_size * 2 - 2
        imp = (beta * neg.log()).exp()
        reweight_neg = (imp * neg).sum(dim=-1) / imp.mean(dim=-1)
        Ng = (-tau_plus * N * pos + reweight_neg) / (1 - tau_plus)
        Ng = torch.clamp(Ng, min=N * np.e ** (-1 / temperature))
    else:
        Ng = neg.sum(dim=-1)
    return (-torch.log(pos / (pos + Ng))).mean()


def nt_xent_inputs(z1, z2, t):
    """NT-Xent's (2N, 2N) logits as positive (2N,), negatives (2N, 2N), mask (self, positive out)."""
    logits, positives = nt_xent_logits(z1, z2, t)
    rows = torch.arange(logits.shape[0])
    mask = ~torch.eye(logits.shape[0], dtype=torch.bool)
    mask[rows, positives] = False
    return logits[rows, positives], logits, mask


# --- contrastive_from_logits --------------------------------------------------------------------


def test_plain_equals_cross_entropy_and_a_loop():
    pos, negs = cosine_logits(t=0.2)
    loss = contrastive_from_logits(pos, negs)
    target = torch.zeros(len(pos), dtype=torch.long)
    ce = F.cross_entropy(torch.cat([pos[:, None], negs], dim=1), target)
    assert loss.item() == pytest.approx(ce.item(), rel=1e-12)
    assert loss.item() == pytest.approx(naive(pos, negs), rel=1e-12)


def test_plain_hand_worked():
    # p = 1, negatives 0 and 0: −log(e / (e + 2)) = log(1 + 2/e).
    loss = contrastive_from_logits(torch.tensor([1.0]), torch.zeros(1, 2))
    assert loss.item() == pytest.approx(math.log(1 + 2 / math.e), rel=1e-6)


@pytest.mark.parametrize("tau_plus, beta", [(0.0, 0.0), (0.1, 0.0), (0.0, 0.7), (0.2, 0.7)])
def test_mask_excludes_entries(tau_plus, beta):
    pos, negs = cosine_logits(n=4, m=6)
    keep = torch.tensor([0, 2, 3, 5])
    mask = torch.zeros(4, 6, dtype=torch.bool)
    mask[:, keep] = True
    garbage = negs.clone()
    garbage[:, [1, 4]] = torch.tensor(
        [float("-inf"), 1e6], dtype=torch.float64
    )  # dropped: must not matter
    kw = {"tau_plus": tau_plus, "beta": beta, "temperature": 0.5}
    expected = contrastive_from_logits(pos, negs[:, keep], **kw)
    assert contrastive_from_logits(pos, garbage, mask, **kw).item() == pytest.approx(
        expected.item(), rel=1e-12
    )
    # Ragged rows: M_i differs per anchor; the mean of the per-anchor losses.
    mask = torch.rand(4, 6, generator=torch.Generator().manual_seed(3)) < 0.6
    mask[:, 0] = True
    per_anchor = [
        contrastive_from_logits(pos[i : i + 1], negs[i : i + 1, mask[i]], **kw) for i in range(4)
    ]
    assert contrastive_from_logits(pos, negs, mask, **kw).item() == pytest.approx(
        torch.stack(per_anchor).mean().item(), rel=1e-12
    )


def test_row_without_negatives_contributes_zero_with_finite_gradients():
    pos, negs = cosine_logits(n=3, m=4)
    pos, negs = pos.clone().requires_grad_(), negs.clone().requires_grad_()
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    for kw in ({}, {"beta": 0.5}, {"tau_plus": 0.1, "beta": 0.5, "temperature": 0.5}):
        loss = contrastive_from_logits(pos, negs, mask, **kw)
        keep = [0, 2]
        rest = contrastive_from_logits(pos[keep], negs[keep], **kw)
        assert loss.item() == pytest.approx(rest.item() * 2 / 3, rel=1e-12)
        pos.grad = negs.grad = None
        loss.backward()
        assert torch.isfinite(pos.grad).all() and torch.isfinite(negs.grad).all()
        assert pos.grad[1] == 0 and (negs.grad[1] == 0).all()


def test_debiased_matches_loop():
    pos, negs = cosine_logits(t=0.5)
    for tau_plus in (0.05, 0.1, 0.3):
        loss = contrastive_from_logits(pos, negs, tau_plus=tau_plus, temperature=0.5)
        assert loss.item() == pytest.approx(naive(pos, negs, tau_plus, t=0.5), rel=1e-12)


def test_debiased_floor_active_matches_loop():
    # cos(pos) = 1, cos(negs) = −0.9, t = 0.5, τ⁺ = 0.1, M = 2: the debiased sum
    # (2e^{-1.8} − 2·0.1·e^2)/0.9 = (0.331 − 1.478)/0.9 < 0, so Ng = the floor 2e^{-2}.
    t, tau_plus = 0.5, 0.1
    pos, negs = torch.full((3,), 1 / t), torch.full((3, 2), -0.9 / t)
    assert (2 * math.exp(-1.8) - 2 * tau_plus * math.exp(2)) / 0.9 < 2 * math.exp(-2)
    loss = contrastive_from_logits(pos.double(), negs.double(), tau_plus=tau_plus, temperature=t)
    assert loss.item() == pytest.approx(naive(pos, negs, tau_plus, t=t), rel=1e-12)
    assert loss.item() == pytest.approx(math.log(1 + 2 * math.exp(-2) / math.exp(2)), rel=1e-12)
    # Mixed batch: random rows (floor inactive) and the rows above (active).
    p2, n2 = cosine_logits(n=3, m=2, t=t)
    pos, negs = torch.cat([pos.double(), p2]), torch.cat([negs.double(), n2])
    loss = contrastive_from_logits(pos, negs, tau_plus=tau_plus, temperature=t)
    assert loss.item() == pytest.approx(naive(pos, negs, tau_plus, t=t), rel=1e-12)


def test_debiased_hand_worked():
    # One negative, t = 0.5: p = 0.5/t = 1, n = 0/t = 0, τ⁺ = 0.2.
    # Ng = (e^0 − 1·0.2·e^1)/0.8 = (1 − 0.5437)/0.8 = 0.5704 > floor e^{-2} = 0.1353;
    # L = −log(e/(e + 0.5704)) = log(1 + 0.5704/e) = log(1.2098) = 0.19050.
    pos, negs = torch.tensor([1.0], dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    loss = contrastive_from_logits(pos, negs, tau_plus=0.2, temperature=0.5)
    assert loss.item() == pytest.approx(math.log(1 + (1 - 0.2 * math.e) / 0.8 / math.e), rel=1e-12)
    assert loss.item() == pytest.approx(0.19050, abs=1e-5)
    # Two negatives, cos 1 and cos −1 with t = 1 (logits 1, −1), positive cos 1, τ⁺ = 0.5:
    # (e + e^{-1} − 2·0.5·e)/0.5 = 2e^{-1} = the floor 2e^{-1}; L = log(1 + 2e^{-1}/e).
    pos, negs = torch.tensor([1.0], dtype=torch.float64), torch.tensor([[1.0, -1.0]]).double()
    loss = contrastive_from_logits(pos, negs, tau_plus=0.5, temperature=1.0)
    assert loss.item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), rel=1e-12)


def test_hard_beta_zero_is_plain_and_matches_loop():
    pos, negs = cosine_logits(t=0.2)
    plain = contrastive_from_logits(pos, negs)
    assert contrastive_from_logits(pos, negs, beta=0.0).item() == plain.item()
    for beta in (0.3, 1.0, 2.0):
        loss = contrastive_from_logits(pos, negs, beta=beta)
        assert loss.item() == pytest.approx(naive(pos, negs, beta=beta), rel=1e-12)
        assert loss.item() > plain.item()  # the hardest negatives weigh more than 1
        debiased = contrastive_from_logits(pos, negs, tau_plus=0.1, beta=beta, temperature=0.2)
        assert debiased.item() == pytest.approx(naive(pos, negs, 0.1, beta, t=0.2), rel=1e-12)


def test_hard_hand_worked():
    # Negatives 0 and 1, β = 1: w = 2·(1, e)/(1 + e); Σ w e^n = 2(1 + e²)/(1 + e); p = 0.
    loss = contrastive_from_logits(
        torch.zeros(1).double(), torch.tensor([[0.0, 1.0]]).double(), beta=1.0
    )
    assert loss.item() == pytest.approx(math.log(1 + 2 * (1 + math.e**2) / (1 + math.e)), rel=1e-12)


@pytest.mark.parametrize("tau_plus, beta", [(0.0, 0.0), (0.1, 0.0), (0.0, 0.5), (0.1, 1.0)])
def test_nt_xent_matrix_matches_the_reference_code(tau_plus, beta):
    z1, z2, t = F.normalize(rand(5, 8, seed=1), dim=1), F.normalize(rand(5, 8, seed=2), dim=1), 0.5
    estimator = "hard" if tau_plus > 0 or beta > 0 else "easy"
    expected = reference_criterion(z1, z2, tau_plus, beta, t, estimator)
    pos, logits, mask = nt_xent_inputs(z1, z2, t)
    loss = contrastive_from_logits(pos, logits, mask, tau_plus, beta, temperature=t)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize("t", [0.1, 0.01])
@pytest.mark.parametrize("tau_plus, beta", [(0.0, 0.0), (0.1, 0.0), (0.0, 1.0), (0.1, 1.0)])
def test_float32_with_small_temperature_is_finite(t, tau_plus, beta):
    z1, z2 = F.normalize(rand(64, 16, seed=4), dim=1), F.normalize(rand(64, 16, seed=5), dim=1)
    z2 = F.normalize(z1 + 0.1 * z2, dim=1)  # positives close: cosine near 1, logits near 1/t
    pos, logits, mask = nt_xent_inputs(z1.float(), z2.float(), t)
    pos, logits = pos.requires_grad_(), logits.detach().requires_grad_()
    loss = contrastive_from_logits(pos, logits, mask, tau_plus, beta, temperature=t)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pos.grad).all()
    assert torch.isfinite(logits.grad).all()
    p64, l64, _ = nt_xent_inputs(z1, z2, t)
    expected = contrastive_from_logits(p64, l64, mask, tau_plus, beta, temperature=t)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-4)


def test_gradients_flow_to_positive_and_negatives():
    pos, negs = (x.clone().requires_grad_() for x in cosine_logits())
    contrastive_from_logits(pos, negs, tau_plus=0.1, temperature=0.5).backward()
    assert (pos.grad < 0).all() and (negs.grad > 0).all()  # raise the positive, lower negatives
    # β > 0: an easy negative's weight falls as the hard ones' rise; the hardest still gets pushed.
    pos.grad = negs.grad = None
    contrastive_from_logits(pos, negs, beta=2.0).backward()
    hardest = negs.argmax(dim=1, keepdim=True)
    assert (pos.grad < 0).all() and (negs.grad.gather(1, hardest) > 0).all()


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"positive": torch.zeros(3, 1)}, r"positive \(N,\) and negatives \(N, M\)"),
        ({"positive": torch.zeros(2)}, r"positive \(N,\) and negatives \(N, M\)"),
        ({"negatives": torch.zeros(3, 0)}, "M >= 1"),
        ({"negative_mask": torch.ones(3, 4)}, "bool tensor of shape"),
        ({"negative_mask": torch.ones(3, 5, dtype=torch.bool)}, "bool tensor of shape"),
        ({"tau_plus": 1.0, "temperature": 0.5}, r"tau_plus must be a number in \[0, 1\)"),
        ({"tau_plus": -0.1}, r"tau_plus must be a number in \[0, 1\)"),
        ({"beta": -1.0}, "beta must be a finite number >= 0"),
        ({"beta": float("inf")}, "beta must be a finite number >= 0"),
        ({"tau_plus": 0.1}, "pass temperature=t"),
        ({"tau_plus": 0.1, "temperature": 0.0}, "temperature must be a finite number > 0"),
    ],
)
def test_contrastive_from_logits_bad_arguments(kw, match):
    args = {"positive": torch.zeros(3), "negatives": torch.zeros(3, 4)} | kw
    with pytest.raises(ValueError, match=match):
        contrastive_from_logits(**args)


# --- MoCHi --------------------------------------------------------------------------------------


def mochi_inputs(n=4, k=20, d=6):
    """Queries and negatives of very different norms: the ranking must use cosines."""
    scale = torch.logspace(-1, 1, k, dtype=torch.float64)[
        torch.randperm(k, generator=torch.Generator().manual_seed(9))
    ]
    return 5 * rand(n, d, seed=7), rand(k, d, seed=8) * scale[:, None]


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_mochi_shape_and_unit_norm():
    q, neg = mochi_inputs()
    out = mochi_negatives(q, neg, n_hard=5, n_mix_pairs=7, n_mix_query=3, generator=seeded())
    assert out.shape == (4, 10, 6) and out.dtype == torch.float64
    assert torch.allclose(out.norm(dim=2), torch.ones(4, 10, dtype=torch.float64), atol=1e-12)
    assert mochi_negatives(q, neg, 5, 0, 0, generator=seeded()).shape == (4, 0, 6)


def test_mochi_top_n_hard_matches_naive_argsort():
    q, neg = mochi_inputs()
    plan = sample_mochi_plan(q, neg, 5, 3, 2, generator=seeded())
    sims = unit(q.numpy()) @ unit(neg.numpy()).T
    expected = np.argsort(-sims, axis=1)[:, :5]
    assert plan.hard.tolist() == expected.tolist()  # hardest first
    assert not np.array_equal(np.argsort(-(q.numpy() @ neg.numpy().T), axis=1)[:, :5], expected)


def test_mochi_mixes_are_in_the_convex_hull_of_the_hard_set():
    q, neg = mochi_inputs()
    n_hard, s, s2 = 5, 200, 200
    plan = sample_mochi_plan(q, neg, n_hard, s, s2, generator=seeded(1))
    out = mochi_negatives(q, neg, n_hard, s, s2, generator=seeded(1))
    assert torch.equal(out, mochi_mix(q, neg, plan))  # the plan is the one used
    raw = mochi_mix(q, neg, plan, normalize=False).numpy()
    qn, nn = unit(q.numpy()), unit(neg.numpy())
    alpha, beta = plan.alpha.numpy(), plan.beta.numpy()
    assert alpha.min() >= 0 and alpha.max() <= 1 and alpha.max() > 0.9 and alpha.min() < 0.1
    assert beta.min() >= 0 and beta.max() <= 0.5 and beta.max() > 0.45
    for i in range(q.shape[0]):
        top = set(plan.hard[i].tolist())
        assert set(plan.pairs[i].flatten().tolist()) <= top and set(plan.mates[i].tolist()) <= top
        a, b = plan.pairs[i, :, 0].numpy(), plan.pairs[i, :, 1].numpy()
        hull = alpha[i, :, None] * nn[a] + (1 - alpha[i, :, None]) * nn[b]
        np.testing.assert_allclose(raw[i, :s], hull, rtol=0, atol=1e-12)
        c = plan.mates[i].numpy()
        with_query = beta[i, :, None] * qn[i] + (1 - beta[i, :, None]) * nn[c]
        np.testing.assert_allclose(raw[i, s:], with_query, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.numpy(), unit(raw), rtol=0, atol=1e-12)


def test_mochi_mix_hand_worked():
    # q = (0, 3) → (0, 1); negatives (2, 0) → (1, 0) and (0, -1).
    q, neg = torch.tensor([[0.0, 3.0]]), torch.tensor([[2.0, 0.0], [0.0, -1.0]])
    one = torch.ones(1, 1)
    plan = MochiPlan(
        hard=torch.tensor([[0, 1]]),
        pairs=torch.tensor([[[0, 1]]]),
        alpha=0.5 * one,  # (0.5, −0.5) → (1, −1)/√2
        mates=torch.tensor([[0]]),
        beta=0.25 * one,  # 0.25·(0, 1) + 0.75·(1, 0) = (0.75, 0.25) → (3, 1)/√10
    )
    out = mochi_mix(q, neg, plan)
    expected = (
        torch.tensor([[[1.0, -1.0]]]) / math.sqrt(2),
        torch.tensor([[[3.0, 1.0]]]) / math.sqrt(10),
    )
    assert torch.allclose(out, torch.cat(expected, dim=1), atol=1e-6)


def test_mochi_reproducible_and_without_gradient():
    q, neg = (x.clone().requires_grad_() for x in mochi_inputs())
    a = mochi_negatives(q, neg, 5, 4, 2, generator=seeded(3))
    b = mochi_negatives(q, neg, 5, 4, 2, generator=seeded(3))
    c = mochi_negatives(q, neg, 5, 4, 2, generator=seeded(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not a.requires_grad and a.grad_fn is None


@pytest.mark.parametrize(
    "args, match",
    [
        ((21, 1, 1), r"n_hard must be an int in \[1, K\] = \[1, 20\]"),
        ((0, 1, 1), r"n_hard must be an int in \[1, K\]"),
        ((2.5, 1, 1), r"n_hard must be an int in \[1, K\]"),
        ((5, -1, 1), "n_mix_pairs must be an int >= 0"),
        ((5, 1, -2), "n_mix_query must be an int >= 0"),
    ],
)
def test_mochi_bad_arguments(args, match):
    q, neg = mochi_inputs()
    with pytest.raises(ValueError, match=match):
        mochi_negatives(q, neg, *args)


def test_mochi_bad_shapes():
    with pytest.raises(ValueError, match=r"query \(N, D\) and negatives \(K, D\)"):
        mochi_negatives(torch.zeros(4, 3), torch.zeros(10, 2), 2, 1, 1)
    with pytest.raises(ValueError, match=r"query \(N, D\) and negatives \(K, D\)"):
        sample_mochi_plan(torch.zeros(3), torch.zeros(10, 3), 2, 1, 1)


def _np_unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _np_hcl(pos, negs, t, tau_plus, beta):
    """One anchor of Robinson et al.'s reference criterion (Chuang et al.'s at β = 0), from
    exponentiated similarities: importance weights, reweighted sum, debiasing, floor."""
    m = len(negs)
    imp = negs**beta
    reweighted = (imp * negs).sum() / imp.mean()
    ng = max((-tau_plus * m * pos + reweighted) / (1 - tau_plus), m * np.exp(-1 / t))
    return -np.log(pos / (pos + ng))


@pytest.mark.parametrize(("tau_plus", "beta"), [(0.1, 0.0), (0.0, 0.5), (0.1, 1.0)])
def test_nt_xent_and_moco_options_match_a_loop_over_anchors(tau_plus, beta):
    g = torch.Generator().manual_seed(7)
    z1, z2 = (torch.randn(5, 4, generator=g, dtype=torch.float64) for _ in range(2))
    t = 0.5
    z = _np_unit(torch.cat([z1, z2]).numpy())
    total = 0.0
    for i in range(10):
        p = (i + 5) % 10
        sims = np.exp(z @ z[i] / t)
        negs = np.array([sims[j] for j in range(10) if j not in (i, p)])
        total += _np_hcl(sims[p], negs, t, tau_plus, beta)
    got = L.nt_xent(z1, z2, t, tau_plus=tau_plus, beta=beta).item()
    assert got == pytest.approx(total / 10, rel=1e-9)
    queue = torch.randn(7, 4, generator=g, dtype=torch.float64)
    q, k, qu = _np_unit(z1.numpy()), _np_unit(z2.numpy()), _np_unit(queue.numpy())
    expected = np.mean(
        [_np_hcl(np.exp(q[i] @ k[i] / 0.2), np.exp(qu @ q[i] / 0.2), 0.2, tau_plus, beta)
         for i in range(5)]
    )  # fmt: skip
    got = L.moco(z1, z2, queue, 0.2, tau_plus=tau_plus, beta=beta).item()
    assert got == pytest.approx(expected, rel=1e-9)
