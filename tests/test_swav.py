"""SwAV: Sinkhorn's marginals, swapped prediction against a loop, the method's stop-gradients,
prototype freezing and queue."""

import math

import numpy as np
import pytest
import torch

import rlrep.encoders as E
import rlrep.losses as L
import rlrep.methods as M


def scores(b=6, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, k, generator=g, dtype=torch.float64) * 2 - 1


def np_sinkhorn(s, eps, iters):
    """The paper's Algorithm (facebookresearch/swav ``distributed_sinkhorn``), in numpy: Q is
    K × B there."""
    q = np.exp(s / eps).T
    q /= q.sum()
    k, b = q.shape
    for _ in range(iters):
        q /= q.sum(axis=1, keepdims=True)
        q /= k
        q /= q.sum(axis=0, keepdims=True)
        q /= b
    return (q * b).T


def test_sinkhorn_matches_the_reference_and_its_rows_are_distributions():
    s = scores()
    codes = L.sinkhorn(s, epsilon=0.05, iterations=3)
    np.testing.assert_allclose(codes.numpy(), np_sinkhorn(s.numpy(), 0.05, 3), rtol=1e-10)
    np.testing.assert_allclose(codes.sum(dim=1).numpy(), np.ones(6), rtol=1e-12)
    assert not codes.requires_grad and L.sinkhorn(s.requires_grad_()).grad_fn is None


def test_sinkhorn_converges_to_an_equipartition_of_the_batch():
    s = scores(b=12, k=4, seed=1)
    three = L.sinkhorn(s, epsilon=0.5, iterations=3).sum(dim=0)
    many = L.sinkhorn(s, epsilon=0.5, iterations=200).sum(dim=0)
    np.testing.assert_allclose(many.numpy(), np.full(4, 12 / 4), rtol=1e-9)
    assert (three - 3).abs().max() < 0.2  # approximately after the paper's 3 iterations


def test_sinkhorn_hand_worked_equal_scores_give_uniform_codes():
    # Equal scores: Q ∝ 1 → every row is (1/K, …, 1/K) = (0.5, 0.5).
    codes = L.sinkhorn(torch.zeros(3, 2, dtype=torch.float64))
    torch.testing.assert_close(codes, torch.full((3, 2), 0.5, dtype=torch.float64))


def test_sinkhorn_is_finite_for_float32_cosines_and_rejects_bad_arguments():
    s = (scores(64, 300, 2) * 1.0).float()
    assert torch.isfinite(L.sinkhorn(s, epsilon=0.01)).all()
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        L.sinkhorn(torch.zeros(3))
    with pytest.raises(ValueError, match="epsilon"):
        L.sinkhorn(s, epsilon=0)
    with pytest.raises(ValueError, match="iterations"):
        L.sinkhorn(s, iterations=0)


def test_swapped_prediction_matches_a_loop_over_pairs_and_samples():
    s = [scores(4, 3, seed) for seed in range(4)]  # 2 global + 2 local views
    q = [L.sinkhorn(s[0]), L.sinkhorn(s[1])]
    t, total, pairs = 0.1, 0.0, 0
    for g in range(2):
        for v in range(4):
            if v == g:
                continue
            for i in range(4):
                logits = s[v][i].numpy() / t
                log_p = logits - math.log(np.exp(logits).sum())
                total -= (q[g][i].numpy() * log_p).sum() / 4
            pairs += 1
    assert pairs == 6
    assert L.swapped_prediction(s, q, t).item() == pytest.approx(total / pairs, rel=1e-10)


def test_swapped_prediction_hand_worked():
    # Two views, K = 2, one sample: scores 0 → log softmax = log 0.5 for both prototypes, so
    # each term is −Σ q log 0.5 = log 2 whatever the code.
    s = [torch.zeros(1, 2), torch.zeros(1, 2)]
    q = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.3, 0.7]])]
    assert L.swapped_prediction(s, q).item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="same shape"):
        L.swapped_prediction([torch.zeros(2, 2), torch.zeros(2, 3)], [torch.zeros(2, 2)])


def encoder():
    return E.ResNet18((3, 16, 16), width=2)


def crops(b=8, sides=(16, 16, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, 3, s, s, generator=g) for s in sides]


def test_swav_loss_is_the_swapped_prediction_of_its_own_codes_with_local_views():
    torch.manual_seed(0)
    swav = M.SwAV(encoder(), hidden_dim=16, out_dim=8, num_prototypes=10, freeze_prototypes_steps=0)
    views = crops()
    out = swav(*views)
    with torch.no_grad():
        prototypes = swav.prototypes.weight  # normalised in place by the forward
        torch.testing.assert_close(prototypes.norm(dim=1), torch.ones(10))
        z = [torch.nn.functional.normalize(f, dim=1) for f in _projections(swav, views)]
        s = [zv @ prototypes.T for zv in z]
        expected = L.swapped_prediction(s, [L.sinkhorn(s[0]), L.sinkhorn(s[1])], 0.1)
    torch.testing.assert_close(out.loss.detach(), expected)
    assert {"feature_std", "alignment", "uniformity", "prototypes_used"} <= set(out.metrics)


def _projections(swav, views):
    """The projector's outputs per view, with BatchNorm over all views as in the forward."""
    features = swav.encode_views(tuple(views))
    return swav.projector(torch.cat(features)).chunk(len(views))


def test_swav_codes_carry_no_gradient_and_frozen_prototypes_learn_nothing():
    torch.manual_seed(0)
    swav = M.SwAV(encoder(), hidden_dim=16, out_dim=8, num_prototypes=10, freeze_prototypes_steps=1)
    views = crops(sides=(16, 16))
    swav(*views).loss.backward()
    assert swav.prototypes.weight.grad is None  # frozen on the first step
    assert all(p.grad is not None for p in swav.encoder.parameters())
    swav(*views).loss.backward()
    assert swav.prototypes.weight.grad is not None and swav.steps.item() == 2
    # The codes are targets: no graph leads from them back to the scores.
    live = torch.randn(8, 10, requires_grad=True)
    assert not swav._codes(0, live * 2).requires_grad


def test_swav_queue_fills_then_joins_the_codes():
    torch.manual_seed(0)
    swav = M.SwAV(encoder(), hidden_dim=16, out_dim=8, num_prototypes=10, queue_size=16)
    views = crops(sides=(16, 16))
    swav(*views)
    assert swav.queued.item() == 8 and swav.queue[8:].abs().sum() == 0
    swav(*crops(sides=(16, 16), seed=1))
    assert swav.queued.item() == 16
    with torch.no_grad():
        b_scores = torch.randn(8, 10)
        codes = swav._codes(0, b_scores)
        expected = L.sinkhorn(torch.cat([swav.queue[:, 0] @ swav.prototypes.weight.T, b_scores]))
    torch.testing.assert_close(codes, expected[16:])
    swav.eval()
    swav(*views)
    assert swav.steps.item() == 2  # evaluation neither counts nor enqueues


def test_two_view_methods_refuse_local_views_and_multi_view_ones_take_them():
    views = crops()
    with pytest.raises(ValueError, match=r"exactly two views.*MULTI_VIEW"):
        M.CURL(encoder())(*views)
    assert set(M.MULTI_VIEW) == {"swav", "simclr", "byol", "simsiam"}
    for name in M.MULTI_VIEW:
        out = M.make(name, encoder())(*views)
        assert torch.isfinite(out.loss)
