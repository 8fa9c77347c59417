"""Methods: gradients reach the online side only, EMA arithmetic, queues, losses recomputed."""

import pytest
import torch
from torch import nn

import rlrep.augment as A
import rlrep.encoders as E
import rlrep.losses as L
import rlrep.methods as M


def small_encoder(device="cpu"):
    return E.PixelEncoder((9, 16, 16), features_dim=8, num_layers=2, num_filters=4).to(device)


def views(device="cpu", b=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (b, 9, 20, 20), generator=g, dtype=torch.uint8).to(device)
    aug = A.make("crop", size=16, seed=seed)
    return aug(x), aug(x)


def test_update_momentum_arithmetic_and_buffers():
    online, target = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), None
    target = M.make_target(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
        online[1].running_mean.fill_(5.0)
    before = [p.clone() for p in target.parameters()]
    M.update_momentum(online, target, 0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    assert target[1].running_mean.eq(5.0).all()
    M.update_momentum(online, target, 0.0)
    assert all(
        torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters(), strict=True)
    )
    assert not any(p.requires_grad for p in target.parameters())
    with pytest.raises(ValueError, match="momentum"):
        M.update_momentum(online, target, 1.5)
    with pytest.raises(ValueError, match="copy of the online"):
        M.update_momentum(online, nn.Linear(3, 2), 0.5)


def test_cosine_momentum_schedule():
    assert M.cosine_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert M.cosine_momentum(50, 100, 0.996) == pytest.approx(0.998)
    assert M.cosine_momentum(100, 100, 0.996) == pytest.approx(1.0)


#: Options that make every head learn from the first step (SwAV freezes its prototypes).
LEARN_NOW = {"swav": {"freeze_prototypes_steps": 0}, "memory_bank": {"num_instances": 16},
             "spr": {"action_dim": 2}}  # fmt: skip


def forward(method, device):
    """The method's output on a batch: two views, or windows of views (temporal methods)."""
    if not isinstance(method, M.TemporalMethod):
        a, b = views(device)
        return method(a, b, **({"index": torch.arange(8)} if method.needs_index else {}))
    steps = len(method.offsets)
    window = torch.stack([views(device, seed=s)[0] for s in range(steps)], 1)  # (8, T, 9, 16, 16)
    actions = torch.randn(8, method.horizon, 2, device=device)
    return method(window, actions if method.needs_actions else None)


@pytest.mark.parametrize("name", list(M.METHODS))
def test_gradients_reach_online_side_only_and_targets_follow(name, device):
    torch.manual_seed(0)  # initial weights independent of the tests run before
    encoder = small_encoder(device)
    method = M.make(name, encoder, **LEARN_NOW.get(name, {})).to(device)
    out = forward(method, device)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert "feature_std" in out.metrics and not out.metrics["feature_std"].requires_grad
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())
    heads = list(method.head_parameters())
    assert all(p.grad is not None for p in heads)
    targets = [m for n, m in method.named_children() if n.startswith("target")]
    for target in targets:
        assert all(not p.requires_grad and p.grad is None for p in target.parameters())
    # One optimiser step on the online side, then the EMA step moves each target toward it.
    olds = [[p.clone() for p in t.parameters()] for t in targets]
    torch.optim.SGD(list(encoder.parameters()) + heads, lr=0.1).step()
    method.update_targets(momentum=0.5)
    online_of = {id(target): online for online, target in method.momentum_pairs()}
    assert set(online_of) == {id(t) for t in targets}  # every target declared, and moved
    for target, old in zip(targets, olds, strict=True):
        online = online_of[id(target)]
        for t, o, p in zip(target.parameters(), old, online.parameters(), strict=True):
            torch.testing.assert_close(t, 0.5 * o + 0.5 * p)


def test_curl_loss_is_bilinear_info_nce_of_query_and_momentum_key():
    encoder = small_encoder()
    curl = M.CURL(encoder)
    a, b = views()
    out = curl(a, b)
    expected = L.info_nce(encoder(a), curl.target_encoder(b).detach(), W=curl.W)
    torch.testing.assert_close(out.loss, expected)
    assert 0 <= out.metrics["accuracy"].item() <= 1
    assert curl.W.shape == (8, 8) and curl.W.min() >= 0 and curl.W.max() < 1  # U[0, 1) init


def test_curl_with_an_external_key_encoder_leaves_it_to_its_owner():
    encoder, critic_target = small_encoder(), small_encoder()
    curl = M.CURL(encoder, target_encoder=critic_target)
    assert not any(k.startswith("target") for k in curl.state_dict())
    assert {id(p) for p in curl.parameters()}.isdisjoint(id(p) for p in critic_target.parameters())
    before = [p.clone() for p in critic_target.parameters()]
    a, b = views()
    out = curl(a, b)
    torch.testing.assert_close(
        out.loss, L.info_nce(encoder(a), critic_target(b).detach(), W=curl.W)
    )
    curl.update_targets()
    assert all(torch.equal(p, q) for p, q in zip(critic_target.parameters(), before, strict=True))


def test_moco_enqueues_normalised_keys_with_wraparound():
    moco = M.MoCo(small_encoder(), queue_size=12, out_dim=4)
    a, b = views(b=8)
    moco(a, b)
    assert moco.queue_ptr.item() == 8
    with torch.no_grad():
        keys = torch.nn.functional.normalize(moco.target_projector(moco.target_encoder(b)), dim=1)
    torch.testing.assert_close(moco.queue[:8], keys)
    moco(a, b)
    assert moco.queue_ptr.item() == 4
    torch.testing.assert_close(moco.queue[8:], keys[:4])
    torch.testing.assert_close(moco.queue[:4], keys[4:])
    assert "queue" in moco.state_dict() and "queue_ptr" in moco.state_dict()
    moco.eval()
    moco(a, b)
    assert moco.queue_ptr.item() == 4  # evaluation does not enqueue


def test_symmetrised_methods_are_symmetric_in_their_views():
    a, b = views()
    for name in ("byol", "simsiam", "simclr", "barlow_twins", "vicreg"):
        torch.manual_seed(0)
        method = M.make(name, small_encoder())
        torch.testing.assert_close(method(a, b).loss, method(b, a).loss, msg=name)


def test_simsiam_stops_the_gradient_of_the_target_branch():
    """Loss *and gradients* equal the paper's formula with stop-grad on z (Chen & He 2021, Alg. 1):
    without the stop-gradient the value is the same but the gradients are not."""
    torch.manual_seed(0)
    method = M.SimSiam(small_encoder(), hidden_dim=8, out_dim=8)
    a, b = views()
    method(a, b).loss.backward()
    got = {k: p.grad.clone() for k, p in method.named_parameters() if p.grad is not None}
    method.zero_grad()
    features = method.encoder(torch.cat([a, b]))
    z = method.projector(features)
    p_a, p_b = method.predictor(z).chunk(2)
    z_a, z_b = z.detach().chunk(2)
    expected = (
        -(torch.cosine_similarity(p_a, z_b).mean() + torch.cosine_similarity(p_b, z_a).mean()) / 2
    )
    expected.backward()
    assert got.keys() == {k for k, p in method.named_parameters() if p.grad is not None}
    for k, p in method.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(got[k], p.grad, msg=k)


def test_make_errors():
    with pytest.raises(ValueError, match="valid names: curl, simclr"):
        M.make("dino", small_encoder())
    with pytest.raises(ValueError, match="features_dim"):
        M.make("curl", nn.Conv2d(9, 4, 3))


def test_byol_loss_and_gradients_follow_the_paper_with_a_frozen_target():
    """``[2 − 2cos(q(g(f(a))), g_t(f_t(b))) + (a ↔ b)] / 2``, the target branch a constant."""
    torch.manual_seed(0)
    method = M.BYOL(small_encoder(), hidden_dim=8, out_dim=8)
    with torch.no_grad():  # a target unlike the online network, so the test can tell them apart
        for p in method.target_encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    a, b = views()
    loss = method(a, b).loss
    loss.backward()
    got = {k: p.grad.clone() for k, p in method.named_parameters() if p.grad is not None}
    method.zero_grad()
    p_a, p_b = method.predictor(method.projector(method.encoder(torch.cat([a, b])))).chunk(2)
    z_a, z_b = method.target_projector(method.target_encoder(torch.cat([a, b]))).detach().chunk(2)
    expected = (
        (2 - 2 * torch.cosine_similarity(p_a, z_b)).mean()
        + (2 - 2 * torch.cosine_similarity(p_b, z_a)).mean()
    ) / 2
    torch.testing.assert_close(loss, expected)
    expected.backward()
    assert not any(k.startswith("target_") for k in got)
    for k, p in method.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(got[k], p.grad, msg=k)
