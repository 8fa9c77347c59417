"""Metric-learning losses against hand-worked cases and naive float64 numpy loops."""

import math

import pytest
import torch

from rlrep.losses.contrastive import info_nce
from rlrep.losses.metric_learning import (
    binary_nce,
    lifted_structured,
    margin_contrastive,
    n_pair,
    triplet,
)


def rand(n=8, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def t64(rows):
    return torch.tensor(rows, dtype=torch.float64)


# margin_contrastive


def test_margin_contrastive_hand_worked():
    # 1-D pairs, m = 1: similar d = 3 → 3²/2 = 4.5; dissimilar d = 0.5 → (1 − 0.5)²/2 = 0.125;
    # dissimilar d = 2 ≥ m → 0. Mean: (4.5 + 0.125 + 0)/3.
    x1, x2 = t64([[0.0], [0.0], [0.0]]), t64([[3.0], [0.5], [2.0]])
    same = torch.tensor([True, False, False])
    expected = (4.5 + 0.125) / 3
    assert margin_contrastive(x1, x2, same).item() == pytest.approx(expected, rel=1e-12)
    # {0, 1} floats are the same flags as bools.
    assert margin_contrastive(x1, x2, same.double()).item() == pytest.approx(expected, rel=1e-12)


def test_margin_contrastive_matches_a_loop_over_pairs():
    x1, x2, m = rand(10, 4, 0), rand(10, 4, 1), 3.0
    same = torch.tensor([1, 0, 0, 1, 0, 1, 0, 0, 1, 0], dtype=torch.bool)
    a, b, total = x1.numpy(), x2.numpy(), 0.0
    hinge_active = 0
    for i in range(10):
        d = math.sqrt(sum((a[i, k] - b[i, k]) ** 2 for k in range(4)))
        if same[i]:
            total += d * d / 2
        else:
            total += max(0.0, m - d) ** 2 / 2
            hinge_active += d < m
    assert 0 < hinge_active < 6  # some negatives inside the margin, some outside
    assert margin_contrastive(x1, x2, same, m).item() == pytest.approx(total / 10, rel=1e-10)


def test_margin_contrastive_gradient_finite_at_coincident_points():
    x1 = rand(4, 3, 0).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()  # every pair coincides: d = 0
    same = torch.tensor([True, False, True, False])
    loss = margin_contrastive(x1, x2, same, margin=1.0)
    assert loss.item() == pytest.approx(0.5 * 1.0 / 2, rel=1e-12)  # two negatives, each 1²/2 /4
    loss.backward()
    assert torch.isfinite(x1.grad).all() and torch.isfinite(x2.grad).all()


# triplet


def test_triplet_hand_worked_uses_squared_distances():
    # 1-D, α = 0.2: a=0, p=1, n=3 → 1 − 9 + 0.2 < 0 → 0; a=0, p=2, n=1 → 4 − 1 + 0.2 = 3.2.
    # Mean 1.6 (unsquared distances would give (0 + 2 − 1 + 0.2)/2 = 0.6).
    a, p, n = t64([[0.0], [0.0]]), t64([[1.0], [2.0]]), t64([[3.0], [1.0]])
    assert triplet(a, p, n).item() == pytest.approx(1.6, rel=1e-12)


def test_triplet_matches_a_loop_over_triplets():
    a, p, n = rand(12, 3, 0), rand(12, 3, 1), rand(12, 3, 2)
    A, P, Nn, total, active = a.numpy(), p.numpy(), n.numpy(), 0.0, 0
    for i in range(12):
        dp = sum((A[i, k] - P[i, k]) ** 2 for k in range(3))
        dn = sum((A[i, k] - Nn[i, k]) ** 2 for k in range(3))
        total += max(0.0, dp - dn + 1.0)
        active += dp - dn + 1.0 > 0
    assert 0 < active < 12  # both sides of the hinge are exercised
    assert triplet(a, p, n, margin=1.0).item() == pytest.approx(total / 12, rel=1e-10)


def test_triplet_zero_when_negatives_are_far():
    a = rand(6, 4, 0)
    p = a + 0.01 * rand(6, 4, 1)
    assert triplet(a, p, a + 100.0).item() == 0.0
    # α alone is the loss when positive and negative coincide.
    assert triplet(a, p, p, margin=0.2).item() == pytest.approx(0.2, rel=1e-12)


# n_pair


def test_n_pair_hand_worked():
    # a·pᵀ = [[1·3 + 0·0, 1·1 + 0·1], [0·3 + 2·0, 0·1 + 2·1]] = [[3, 1], [0, 2]].
    # i = 0: log(1 + e^(1−3)); i = 1: log(1 + e^(0−2)). Both log(1 + e^−2).
    a, p = t64([[1.0, 0.0], [0.0, 2.0]]), t64([[3.0, 0.0], [1.0, 1.0]])
    expected = math.log(1 + math.exp(-2))
    assert n_pair(a, p).item() == pytest.approx(expected, rel=1e-12)


def test_n_pair_matches_a_loop_and_info_nce_with_identity():
    a, p = rand(7, 4, 0), rand(7, 4, 1)
    A, P, total = a.numpy(), p.numpy(), 0.0
    for i in range(7):
        s = sum(math.exp(A[i] @ P[j] - A[i] @ P[i]) for j in range(7) if j != i)
        total += math.log(1 + s)
    assert n_pair(a, p).item() == pytest.approx(total / 7, rel=1e-10)
    W = torch.eye(4, dtype=torch.float64)
    assert n_pair(a, p).item() == pytest.approx(info_nce(a, p, W=W).item(), rel=1e-12)


# lifted_structured


def test_lifted_structured_hand_worked():
    # 1-D x = [0, 1, 3], labels [0, 0, 1], α = 1. P = {(0, 1)}, D01 = 1; negatives: D02 = 3,
    # D12 = 2. J = log(e^(1−3) + e^(1−2)) + 1 ≈ 0.3133 > 0; L = J²/(2·1).
    x, y = t64([[0.0], [1.0], [3.0]]), torch.tensor([0, 0, 1])
    J = math.log(math.exp(-2) + math.exp(-1)) + 1
    assert lifted_structured(x, y).item() == pytest.approx(J**2 / 2, rel=1e-12)


def naive_lifted(x, y, alpha):
    n = len(y)

    def dist(i, j):
        return math.sqrt(sum((x[i, k] - x[j, k]) ** 2 for k in range(x.shape[1])))

    total, pairs, clipped = 0.0, 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            if y[i] != y[j]:
                continue
            s = 0.0
            for k in range(n):
                if y[k] != y[i]:
                    s += math.exp(alpha - dist(i, k))
            for ell in range(n):
                if y[ell] != y[j]:
                    s += math.exp(alpha - dist(j, ell))
            J = math.log(s) + dist(i, j)
            total += max(0.0, J) ** 2
            pairs, clipped = pairs + 1, clipped + (J <= 0)
    return total / (2 * pairs), clipped


def test_lifted_structured_matches_a_loop_over_pairs():
    x, y = rand(10, 4, 0), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 0, 2])
    expected, clipped = naive_lifted(x.numpy(), y.tolist(), 1.5)
    assert clipped == 0
    assert lifted_structured(x, y, margin=1.5).item() == pytest.approx(expected, rel=1e-10)
    # Classes moved apart: half of the 12 J_ij are < 0, clipped by max(0, ·).
    x = x + 3.0 * y[:, None].double()
    expected, clipped = naive_lifted(x.numpy(), y.tolist(), 1.0)
    assert clipped == 6
    assert lifted_structured(x, y, margin=1.0).item() == pytest.approx(expected, rel=1e-10)


def test_lifted_structured_zero_for_separated_clusters_and_finite_gradient():
    # J ≈ log(Σ e^(1 − ~100)) + ~0.01 < 0 for every positive pair.
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    x = 0.01 * rand(6, 3, 0) + 100.0 * y[:, None].double()
    assert lifted_structured(x, y).item() == 0.0
    x = rand(4, 3, 0)
    x = torch.cat([x[:1], x]).requires_grad_()  # rows 0 and 1 coincide, same label: D01 = 0
    lifted_structured(x, torch.tensor([0, 0, 1, 1, 2])).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# binary_nce


def test_binary_nce_hand_worked():
    # σ(0) = 1/2, σ(ln 3) = 3/4, σ(−ln 3) = 1/4.
    # i = 0: s⁺ = 0 → log 2; s⁻ = 0 → log 2; s⁻ = ln 3 → −log σ(−ln 3) = log 4. Sum 4 log 2.
    # i = 1: s⁺ = ln 3 → log 4/3; s⁻ = −ln 3 (twice) → −log σ(ln 3) = log 4/3 each.
    ln3 = math.log(3)
    pos, neg = t64([0.0, ln3]), t64([[0.0, ln3], [-ln3, -ln3]])
    expected = (4 * math.log(2) + 3 * math.log(4 / 3)) / 2
    assert binary_nce(pos, neg).item() == pytest.approx(expected, rel=1e-12)


def test_binary_nce_matches_a_loop_and_is_stable():
    pos, neg = rand(6, 1, 0)[:, 0] * 3, rand(6, 4, 1) * 3
    P, Nn, total = pos.numpy(), neg.numpy(), 0.0
    for i in range(6):
        total -= math.log(1 / (1 + math.exp(-P[i])))
        for k in range(4):
            total -= math.log(1 - 1 / (1 + math.exp(-Nn[i, k])))
    assert binary_nce(pos, neg).item() == pytest.approx(total / 6, rel=1e-10)
    # |s| = 1000: σ saturates, logsigmoid does not (no log 0 = −inf, no overflow).
    assert binary_nce(t64([1000.0]), t64([[-1000.0]])).item() == pytest.approx(0.0, abs=1e-300)
    assert binary_nce(t64([-1000.0]), t64([[1000.0]])).item() == pytest.approx(2000.0, rel=1e-12)


# bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: margin_contrastive(torch.zeros(4, 3), torch.zeros(4, 2), torch.ones(4)), "x1, x2"),
        (
            lambda: margin_contrastive(torch.zeros(4, 3), torch.zeros(4, 3), torch.ones(3)),
            r"\(N,\)",
        ),
        (
            lambda: margin_contrastive(torch.zeros(4, 3), torch.zeros(4, 3), torch.ones(4), 0.0),
            "> 0",
        ),
        (lambda: triplet(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(5, 3)), "negative"),
        (lambda: triplet(torch.zeros(4, 3), torch.zeros(4), torch.zeros(4, 3)), "positive"),
        (lambda: triplet(*[torch.zeros(4, 3)] * 3, margin=-0.1), ">= 0"),
        (lambda: triplet(*[torch.zeros(4, 3)] * 3, margin=float("nan")), "finite"),
        (lambda: n_pair(torch.zeros(1, 3), torch.zeros(1, 3)), "at least 2"),
        (lambda: n_pair(torch.zeros(4, 3), torch.zeros(3, 3)), r"\(N, D\)"),
        (lambda: lifted_structured(torch.zeros(4, 3), torch.tensor([0, 1, 2])), r"labels \(N,\)"),
        (lambda: lifted_structured(torch.zeros(3, 3), torch.tensor([0, 1, 2])), ">= 2 samples"),
        (lambda: lifted_structured(torch.zeros(3, 3), torch.tensor([1, 1, 1])), "distinct labels"),
        (lambda: binary_nce(torch.zeros(4), torch.zeros(3, 2)), r"\(N, K\)"),
        (lambda: binary_nce(torch.zeros(4, 1), torch.zeros(4, 2)), r"\(N,\)"),
        (lambda: binary_nce(torch.zeros(4), torch.zeros(4, 0)), "K >= 1"),
    ],
)
def test_bad_input_raises_value_error_naming_the_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()
