"""TimeSupCon: the valid frames of one window are positives, other windows negatives, invalid
frames take no part — checked against SupCon's formula written out with loops, NT-Xent, and
the pixels of masked frames."""

import math

import pytest
import torch

import rlrep.encoders as E
from rlrep.losses import nt_xent, sup_con, sup_con_rows
from rlrep.methods import TimeSupCon


def method(window=2, temperature=0.1):
    torch.manual_seed(0)
    encoder = E.PixelEncoder((3, 12, 12), features_dim=8, num_layers=2, num_filters=4)
    return TimeSupCon(encoder, window=window, hidden_dim=16, out_dim=8, temperature=temperature)


def windows(b=6, t=3, seed=1):
    return torch.rand(b, t, 3, 12, 12, generator=torch.Generator().manual_seed(seed))


def embeddings(m, views):
    """The projections ``(B, T, E)`` the method scores, computed frame by frame."""
    return torch.stack([m.projector(m.encoder(views[:, j])) for j in range(views.shape[1])], 1)


def loop_loss(z, valid, temperature):
    """SupCon's L_out (Khosla et al. 2020, Eq. 2) over the valid frames, window = label."""
    frames = [(i, j) for i in range(z.shape[0]) for j in range(z.shape[1]) if valid[i, j]]
    unit = {f: z[f] / z[f].norm() for f in frames}
    terms = []
    for anchor in frames:
        others = [f for f in frames if f != anchor]
        positives = [f for f in others if f[0] == anchor[0]]
        if not positives:
            continue
        denominator = sum(math.exp(float(unit[anchor] @ unit[a]) / temperature) for a in others)
        terms.append(
            -sum(math.log(math.exp(float(unit[anchor] @ unit[p]) / temperature) / denominator)
                 for p in positives) / len(positives)
        )  # fmt: skip
    return sum(terms) / len(terms)


def test_loss_is_sup_con_over_the_valid_frames_with_window_labels():
    m, views = method(), windows()
    valid = torch.ones(6, 3, dtype=torch.bool)
    valid[0, 2] = False  # episode ended after obs_{t+1}
    valid[3, 1:] = False  # after obs_t: obs_t has no positive and is only a negative
    out = m(views, valid=valid)
    with torch.no_grad():
        expected = loop_loss(embeddings(m, views), valid, 0.1)
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)


def test_with_a_window_of_one_step_it_is_nt_xent_of_obs_t_and_obs_t1():
    m, views = method(window=1, temperature=0.5), windows(t=2)
    z = embeddings(m, views)
    torch.testing.assert_close(m(views).loss, nt_xent(z[:, 0], z[:, 1], 0.5))


def test_masked_frames_take_no_part_and_get_no_gradient():
    m = method()
    valid = torch.ones(6, 3, dtype=torch.bool)
    valid[2, 1:] = False
    views = windows().requires_grad_(True)
    out = m(views, valid=valid)
    out.loss.backward()
    assert views.grad[2, 1:].abs().sum() == 0 and views.grad[2, 0].abs().sum() > 0
    assert views.grad[~valid].abs().sum() == 0 and views.grad[valid].abs().sum() > 0
    other = views.detach().clone()
    other[2, 1:] = torch.rand(2, 3, 12, 12)  # what a masked step holds does not matter
    torch.testing.assert_close(m(other, valid=valid).loss, out.loss)


def test_a_batch_of_windows_cut_after_obs_t_gives_zero_loss_not_nan():
    m = method()
    valid = torch.zeros(6, 3, dtype=torch.bool)
    valid[:, 0] = True
    out = m(windows(), valid=valid)
    out.loss.backward()
    assert out.loss.item() == 0.0
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_reused_features_of_obs_t_give_the_same_loss():
    m, views = method(), windows()
    torch.testing.assert_close(m(views, features_a=m.encoder(views[:, 0])).loss, m(views).loss)


def test_accuracy_counts_anchors_whose_nearest_other_frame_is_in_their_window():
    m, views = method(), windows()
    out = m(views)
    with torch.no_grad():
        z = torch.nn.functional.normalize(embeddings(m, views).flatten(0, 1), dim=1)
        similarity = (z @ z.T).fill_diagonal_(-2)
        window = torch.arange(18) // 3
        expected = (window[similarity.argmax(1)] == window).float().mean()
    torch.testing.assert_close(out.metrics["accuracy"], expected)


def test_sup_con_rows_hand_worked_case_with_a_dropped_sample():
    # Unit vectors at 0°, 0°, 90°, 180°; labels 0, 0, 1, 1; the third is dropped.
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    keep = torch.tensor([True, True, False, True])
    rows, counted, _ = sup_con_rows(z, labels, temperature=1.0, keep=keep)
    e = math.e
    # Anchor 0: candidates 1 (cos 1), 3 (cos −1); positive 1. Anchor 3: its only positive is
    # dropped, so it is not counted.
    assert counted.tolist() == [True, True, False, False]
    assert rows[0].item() == pytest.approx(-math.log(e / (e + 1 / e)))
    assert rows[1].item() == pytest.approx(rows[0].item())
    torch.testing.assert_close(sup_con(z, labels, 1.0), sup_con_rows(z, labels, 1.0)[0].mean())


def test_sup_con_rows_of_a_sample_without_any_candidate_is_zero_with_a_finite_gradient():
    z = torch.randn(3, 4, requires_grad=True)
    rows, counted, _ = sup_con_rows(z, torch.arange(3), keep=torch.tensor([True, False, False]))
    rows.sum().backward()
    assert not counted.any() and rows.tolist() == [0.0, 0.0, 0.0]
    assert torch.isfinite(z.grad).all()


def test_bad_settings_and_shapes_name_what_was_expected():
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        method(window=0)
    with pytest.raises(ValueError, match=r"offsets \(0, 1, 2\).*\(B, 3, C, H, W\)"):
        method()(windows(t=2))
    with pytest.raises(ValueError, match=r"keep must be \(N,\)"):
        sup_con_rows(torch.randn(4, 2), torch.arange(4), keep=torch.ones(3, dtype=torch.bool))
