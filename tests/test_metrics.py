"""Representation metrics against loops over samples and pairs, and hand-worked cases."""

import math

import numpy as np
import pytest
import torch

from rlrep.metrics import alignment, info_nce_bound, uniformity


def rand(n, d, seed):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def unit(v):
    return v / np.linalg.norm(v)


def test_alignment_matches_a_loop_and_a_hand_worked_pair():
    x, y = rand(6, 3, 0), rand(6, 3, 1)
    expected = np.mean(
        [np.linalg.norm(unit(a) - unit(b)) ** 2 for a, b in zip(x.numpy(), y.numpy(), strict=True)]
    )
    assert alignment(x, y).item() == pytest.approx(expected, rel=1e-6)
    # e1 vs e2: ‖e1 − e2‖ = √2, so α = 2 gives 2 and α = 1 gives √2; scale does not matter.
    e1, e2 = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 0.5]])
    assert alignment(e1, e2).item() == pytest.approx(2.0)
    assert alignment(e1, e2, alpha=1).item() == pytest.approx(math.sqrt(2))


def test_uniformity_matches_a_loop_over_distinct_pairs_and_hand_worked():
    x = rand(5, 3, 2)
    z = [unit(v) for v in x.numpy()]
    pairs = [np.exp(-2 * np.sum((z[i] - z[j]) ** 2)) for i in range(5) for j in range(i + 1, 5)]
    assert uniformity(x).item() == pytest.approx(math.log(np.mean(pairs)), rel=1e-6)
    # Two antipodal points: ‖z1 − z2‖² = 4, so log exp(−2·4) = −8; collapsed points give 0.
    assert uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])).item() == pytest.approx(-8.0)
    assert uniformity(torch.ones(4, 3)).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="N >= 2"):
        uniformity(torch.ones(1, 3))


def test_info_nce_bound_is_log_n_minus_the_loss():
    # A uniform guess among N = 8 candidates has loss log 8 and certifies nothing.
    assert info_nce_bound(math.log(8), 8) == pytest.approx(0.0)
    assert info_nce_bound(torch.tensor(0.5), 4).item() == pytest.approx(math.log(4) - 0.5)
    with pytest.raises(ValueError, match="num_candidates"):
        info_nce_bound(1.0, 1)
