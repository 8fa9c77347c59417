"""AuxObjective: views, the loss from a batch (reusing anchor features), the EMA step, metrics."""

import pytest
import torch

import rlrep.augment as A
import rlrep.encoders as E
import rlrep.losses as L
import rlrep.methods as M
from rlrep.metrics import effective_rank
from rlrep.objective import AuxObjective


def objective(method="curl", **kwargs):
    torch.manual_seed(0)
    encoder = E.make("curl", (9, 20, 20), num_filters=4, num_layers=2, features_dim=8)
    return AuxObjective(A.make("crop", size=20, seed=3), M.make(method, encoder), **kwargs)


def obs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (6, 9, 24, 24), generator=g, dtype=torch.uint8)


def test_loss_draws_two_views_and_equals_the_method_on_them():
    obj, batch = objective(), obs()
    out = obj.loss(batch, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    view_a, view_b = obj.augment.random(batch, g), obj.augment.random(batch, g)
    method = obj.method
    expected = L.info_nce(
        method.encoder(view_a), method.target_encoder(view_b).detach(), W=method.W
    )
    torch.testing.assert_close(out.loss, expected)


def test_given_anchor_features_are_reused_not_recomputed():
    obj, batch = objective(), obs()
    view_a, view_b = obj.views(batch)
    features = obj.encoder(view_a)
    calls = []
    handle = obj.encoder.register_forward_hook(lambda *args: calls.append(1))
    out = obj.loss(view_a=view_a, view_b=view_b, features_a=features)
    handle.remove()
    assert calls == []  # the key comes from the target encoder; the query is the given features
    out.loss.backward()
    assert features.grad_fn is not None and obj.encoder.head.fc.weight.grad.abs().sum() > 0


def test_metrics_are_means_since_the_last_pop_and_rank_every_uses_the_anchor():
    obj = objective(rank_every=2)
    outs, ranks = [], []
    for seed in range(4):
        view_a, view_b = obj.views(obs(seed))
        features = obj.encoder(view_a)
        outs.append(obj.loss(view_a=view_a, view_b=view_b, features_a=features))
        if seed % 2 == 1:  # calls 2 and 4
            ranks.append(effective_rank(features.detach()))
    metrics = obj.pop_metrics()
    assert set(metrics) == {
        "loss",
        "accuracy",
        "feature_std",
        "alignment",
        "uniformity",
        "mi_bound",
        "effective_rank",
    }
    assert metrics["loss"] == pytest.approx(sum(o.loss.item() for o in outs) / 4, rel=1e-6)
    assert metrics["accuracy"] == pytest.approx(
        sum(o.metrics["accuracy"].item() for o in outs) / 4, rel=1e-6
    )
    assert metrics["effective_rank"] == pytest.approx(sum(r.item() for r in ranks) / 2, rel=1e-6)
    assert obj.pop_metrics() == {}


def test_update_targets_is_the_methods_ema_step_at_the_given_momentum():
    obj = objective("byol")
    with torch.no_grad():
        for t in obj.method.target_encoder.parameters():
            t.add_(1.0)
    before = [t.clone() for t in obj.method.target_encoder.parameters()]
    obj.update_targets(0.9)
    for t, old, o in zip(
        obj.method.target_encoder.parameters(), before, obj.encoder.parameters(), strict=True
    ):
        torch.testing.assert_close(t, 0.9 * old + 0.1 * o)


def test_bad_calls_name_the_fix():
    obj = objective()
    view = obj.augment.random(obs())
    with pytest.raises(ValueError, match="features_a needs the view"):
        obj.loss(obs(), features_a=obj.encoder(view))
    with pytest.raises(ValueError, match="pass obs"):
        obj.loss(view_a=view)
    with pytest.raises(ValueError, match="rank_every must be an int >= 0"):
        AuxObjective(obj.augment, obj.method, rank_every=-1)


def windows(b=6, length=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, length + 1, 9, 24, 24), generator=g, dtype=torch.uint8)


def test_sequence_loss_views_the_methods_offsets_each_augmented_independently():
    torch.manual_seed(0)
    encoder = E.make("curl", (9, 20, 20), num_filters=4, num_layers=2, features_dim=8)
    obj = AuxObjective(A.make("crop", size=20, seed=3), M.ATC(encoder, delta_t=3, latent_dim=8))
    batch = windows()
    out = obj.sequence_loss(batch, generator=torch.Generator().manual_seed(5))
    # The same generator draws one crop per observation at offsets (0, 3), in one batch.
    g = torch.Generator().manual_seed(5)
    picked = batch[:, [0, 3]].flatten(0, 1)
    views = obj.augment.random(picked, g).unflatten(0, (6, 2))
    torch.testing.assert_close(out.loss, obj.method(views).loss)
    assert not torch.equal(views[:, 0], obj.augment.random(batch[:, 0], g))  # not one shared crop
    # A float RL view (SB3 scales the batch) with uint8 windows: the others are scaled to match.
    view_first = obj.augment.random(batch[:, 0]).float() / 255
    features = encoder(view_first)
    seen = []
    real = obj.method.forward
    obj.method.forward = lambda v, *a, **k: seen.append(v) or real(v, *a, **k)
    obj.sequence_loss(batch, view_first=view_first, features_first=features)
    assert seen[0].dtype == torch.float32 and seen[0][:, 1].max() <= 1.0
    assert torch.equal(seen[0][:, 0], view_first)


def test_sequence_and_view_calls_are_refused_for_the_other_kind_of_method():
    temporal = AuxObjective(A.make("crop", size=20), M.ATC(E.make("curl", (9, 20, 20))))
    with pytest.raises(ValueError, match="call sequence_loss"):
        temporal.loss(obs())
    with pytest.raises(ValueError, match=r"L >= 1"):
        temporal.sequence_loss(windows(length=0))
    with pytest.raises(ValueError, match="call loss"):
        objective().sequence_loss(windows())
    with pytest.raises(ValueError, match="multi-crop"):
        AuxObjective(A.multi_crop("2x20,2x12", "crop"), M.ATC(E.make("curl", (9, 20, 20))))
