"""Losses against hand-worked cases and independent float64 numpy computations."""

import math

import numpy as np
import pytest
import torch

import rlrep.losses as L


def rand(n=8, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def np_log_softmax(m):
    m = m - m.max(axis=1, keepdims=True)
    return m - np.log(np.exp(m).sum(axis=1, keepdims=True))


def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_info_nce_hand_worked():
    eye = torch.eye(2, dtype=torch.float64)
    # logits = I; minus row max → [[0, -1], [-1, 0]]; loss = log(1 + e^-1).
    assert L.info_nce(eye, eye, W=eye).item() == pytest.approx(math.log(1 + math.exp(-1)))
    assert L.contrastive_accuracy(L.info_nce_logits(eye, eye, W=eye)).item() == 1.0


def test_info_nce_bilinear_and_cosine_match_numpy():
    q, k, W = rand(seed=0), rand(seed=1), rand(5, 5, seed=2)
    logits = q.numpy() @ W.numpy() @ k.numpy().T
    expected = -np.mean(np.diag(np_log_softmax(logits)))
    assert L.info_nce(q, k, W=W).item() == pytest.approx(expected, rel=1e-10)
    cos = unit(q.numpy()) @ unit(k.numpy()).T / 0.1
    expected = -np.mean(np.diag(np_log_softmax(cos)))
    assert L.info_nce(q, k, temperature=0.1).item() == pytest.approx(expected, rel=1e-10)


def test_nt_xent_matches_a_loop_over_anchors():
    z1, z2, t = rand(6, 4, 0), rand(6, 4, 1), 0.5
    z = unit(np.concatenate([z1.numpy(), z2.numpy()]))
    n, total = 6, 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = np.array([z[i] @ z[m] / t for m in range(2 * n) if m != i])
        total += -(z[i] @ z[j] / t - np.log(np.exp(sims).sum()))
    assert L.nt_xent(z1, z2, t).item() == pytest.approx(total / (2 * n), rel=1e-10)
    assert L.nt_xent(z1, z2).item() == pytest.approx(L.nt_xent(z2, z1).item(), rel=1e-12)
    # One pair: each anchor's only candidate is its positive (loss log(1) = 0, nothing learnt).
    with pytest.raises(ValueError, match="at least 2 samples"):
        L.nt_xent(z1[:1], z2[:1])


def test_moco_matches_numpy_with_positive_first():
    q, k, queue = rand(4, 3, 0), rand(4, 3, 1), rand(10, 3, 2)
    qn, kn, Qn = unit(q.numpy()), unit(k.numpy()), unit(queue.numpy())
    logits = np.concatenate([(qn * kn).sum(1, keepdims=True), qn @ Qn.T], axis=1) / 0.2
    expected = -np.mean(np_log_softmax(logits)[:, 0])
    assert L.moco(q, k, queue, 0.2).item() == pytest.approx(expected, rel=1e-10)
    assert L.moco_logits(q, k, queue).shape == (4, 11)


def test_byol_and_negative_cosine_hand_worked():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert L.byol(p, p * 3).item() == pytest.approx(0.0, abs=1e-6)
    assert L.byol(p, -p).item() == pytest.approx(4.0)
    assert L.byol(p, p.flip(1)).item() == pytest.approx(2.0)  # orthogonal
    assert L.negative_cosine(p, p).item() == pytest.approx(-1.0)


def test_barlow_twins_matches_numpy_and_is_symmetric():
    z1, z2 = rand(16, 6, 0), rand(16, 6, 1)

    def standardise(a):
        return (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5)  # biased variance, BN's eps

    c = standardise(z1.numpy()).T @ standardise(z2.numpy()) / 16
    off = c - np.diag(np.diag(c))
    expected = ((1 - np.diag(c)) ** 2).sum() + 5e-3 * (off**2).sum()
    assert L.barlow_twins(z1, z2).item() == pytest.approx(expected, rel=1e-10)
    assert L.barlow_twins(z2, z1).item() == pytest.approx(expected, rel=1e-10)


def test_barlow_twins_and_vicreg_hand_worked_zero():
    # Two decorrelated unit-variance dimensions, identical views.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert L.barlow_twins(z, z).item() == pytest.approx(
        0.0, abs=1e-4
    )  # eps 1e-5 keeps C_ii just < 1
    assert L.vicreg(z, z).item() == pytest.approx(0.0, abs=1e-12)  # std sqrt(4/3) > 1, cov 0


def test_vicreg_matches_numpy_and_is_symmetric():
    z1, z2 = rand(16, 6, 0) * 0.3, rand(16, 6, 1) * 0.3
    a, b = z1.numpy(), z2.numpy()
    sim = ((a - b) ** 2).mean()

    def var_cov(x):
        x = x - x.mean(0)
        std = np.sqrt(x.var(0, ddof=1) + 1e-4)
        cov = x.T @ x / (len(x) - 1)
        off = cov - np.diag(np.diag(cov))
        return np.maximum(0, 1 - std).mean(), (off**2).sum() / x.shape[1]

    (va, ca), (vb, cb) = var_cov(a), var_cov(b)
    expected = 25 * sim + 25 * (va + vb) / 2 + 1 * (ca + cb)
    assert L.vicreg(z1, z2).item() == pytest.approx(expected, rel=1e-10)
    assert L.vicreg(z2, z1).item() == pytest.approx(expected, rel=1e-10)


def test_contrastive_accuracy_hand_worked():
    logits = torch.tensor([[3.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    assert L.contrastive_accuracy(logits).item() == pytest.approx(2 / 3)
    assert L.contrastive_accuracy(logits, torch.tensor([0, 0, 2])).item() == 1.0


def test_off_diagonal():
    m = torch.arange(9.0).view(3, 3)
    assert L.off_diagonal(m).tolist() == [1, 2, 3, 5, 6, 7]


def test_gradients_flow_to_both_inputs():
    q, k = rand().requires_grad_(), rand(seed=1).requires_grad_()
    L.nt_xent(q, k).backward()
    assert q.grad.abs().sum() > 0 and k.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "call",
    [
        lambda: L.info_nce(torch.zeros(4, 3), torch.zeros(4, 2)),
        lambda: L.info_nce(torch.zeros(4, 3), torch.zeros(4, 3), W=torch.zeros(2, 2)),
        lambda: L.nt_xent(torch.zeros(4), torch.zeros(4)),
        lambda: L.moco(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(5, 2)),
        lambda: L.byol(torch.zeros(4, 3), torch.zeros(3, 3)),
        lambda: L.barlow_twins(torch.zeros(1, 3), torch.zeros(1, 3)),
        lambda: L.vicreg(torch.zeros(4, 3), torch.zeros(4, 2)),
    ],
)
def test_bad_shapes_raise_value_error(call):
    with pytest.raises(ValueError, match=r"\(N, D\)|\(D, D\)|\(K, D\)|at least 2"):
        call()


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True, "1"])
def test_redundancy_loss_weights_must_be_finite_and_non_negative(bad):
    import rlrep.methods as M
    from rlrep.encoders import make

    z = rand()
    encoder = make("curl", (9, 24, 24), num_filters=4, num_layers=2)
    for name, call in [
        ("lambd", lambda: L.barlow_twins(z, z, lambd=bad)),
        ("sim_weight", lambda: L.vicreg(z, z, sim_weight=bad)),
        ("var_weight", lambda: L.vicreg(z, z, var_weight=bad)),
        ("cov_weight", lambda: L.vicreg(z, z, cov_weight=bad)),
        ("lambd", lambda: M.make("barlow_twins", encoder, lambd=bad)),  # at construction
        ("cov_weight", lambda: M.make("vicreg", encoder, cov_weight=bad)),
    ]:
        with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
            call()


def np_sup_con(z, labels, t):
    """SupCon L_out (Khosla et al. 2020, Eq. 2) as a loop over anchors and positives."""
    z = unit(z)
    n, total, anchors = len(z), 0.0, 0
    for i in range(n):
        others = [a for a in range(n) if a != i]
        positives = [p for p in others if labels[p] == labels[i]]
        if not positives:
            continue
        log_denominator = np.log(sum(np.exp(z[i] @ z[a] / t) for a in others))
        total += -np.mean([z[i] @ z[p] / t - log_denominator for p in positives])
        anchors += 1
    return total / anchors


def test_sup_con_matches_a_loop_with_several_positives_and_lonely_anchors():
    z = rand(7, 4, seed=3)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3])  # 2 and 3 have no positive: not anchors
    expected = np_sup_con(z.numpy(), labels.numpy(), 0.1)
    assert L.sup_con(z, labels, 0.1).item() == pytest.approx(expected, rel=1e-10)


def test_sup_con_with_view_labels_is_nt_xent_and_hand_worked():
    z1, z2 = rand(5, 4, 0), rand(5, 4, 1)
    labels = torch.arange(5).repeat(2)
    assert L.sup_con(torch.cat([z1, z2]), labels, 0.5).item() == pytest.approx(
        L.nt_xent(z1, z2, 0.5).item(), rel=1e-12
    )
    # Three unit vectors, labels (0, 0, 1), τ = 1: z0 = z1 = e1, z2 = e2. Anchor 0: positive 1
    # (cos 1), others {1, 2} (cos 1, 0): −log(e / (e + 1)); anchor 1 the same; 2 no positive.
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    expected = -math.log(math.e / (math.e + 1))
    assert L.sup_con(z, torch.tensor([0, 0, 1]), 1.0).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="no anchor has a positive"):
        L.sup_con(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels \(N,\)"):
        L.sup_con(z, torch.tensor([0, 1]))
