"""SPR (Schwarzer et al. 2021) against a step-by-step loop of the paper's formula: rollout under
the taken actions, targets from the momentum networks only, valid-step masking, EMA targets."""

import pytest
import torch
import torch.nn.functional as F

import rlrep.encoders as E
from rlrep.methods.spr import SPR

K, B, A = 3, 5, 2
#: Episode ends mid-window: sample 0 after obs_{t+2}, sample 2 after obs_t, sample 3 after t+1.
VALID = torch.tensor(
    [
        [True, True, True, False],
        [True, True, True, True],
        [True, False, False, False],
        [True, True, False, False],
        [True, True, True, True],
    ]
)


def make_spr(seed=0, **kwargs):
    torch.manual_seed(seed)
    encoder = E.make("curl", (6, 20, 20), features_dim=16, num_filters=8)
    kwargs = {"action_dim": A, "steps": K, "projection_dim": 8, "hidden_dim": 12, **kwargs}
    method = SPR(encoder, **kwargs)
    with torch.no_grad():  # targets unlike the online side, so the test can tell them apart
        for p in [*method.target_encoder.parameters(), *method.target_projection.parameters()]:
            p.add_(0.1 * torch.randn_like(p))
    return method


def window(b=B, steps=K, seed=1):
    g = torch.Generator().manual_seed(seed)
    views = torch.rand(b, steps + 1, 6, 20, 20, generator=g)
    actions = torch.rand(b, steps, A, generator=g) * 2 - 1
    return views, actions


def reference_terms(method, views, actions):
    """``2 − 2 cos(ŷ_k, ỹ_k)`` ``(B, K)``, one sample and one step at a time."""
    rows = []
    for i in range(views.shape[0]):
        latent, row = method.encoder(views[i : i + 1, 0]), []
        for k in range(1, method.steps + 1):
            latent = method.transition(torch.cat([latent, actions[i : i + 1, k - 1]], 1))
            p = method.predictor(method.projection(latent))[0]
            with torch.no_grad():  # the momentum targets: stop-gradient (the paper's Eq. 4)
                y = method.target_projection(method.target_encoder(views[i : i + 1, k]))[0]
            row.append(2 - 2 * (p * y).sum() / (p.norm() * y.norm()))
        rows.append(torch.stack(row))
    return torch.stack(rows)


def test_loss_is_the_mean_over_valid_steps_of_the_rolled_out_prediction_error():
    method = make_spr()
    views, actions = window()
    out = method(views, actions, VALID)
    terms = reference_terms(method, views, actions)
    counted = VALID[:, 1:]
    torch.testing.assert_close(out.loss, terms[counted].sum() / counted.sum())
    torch.testing.assert_close(out.metrics["cosine"], (1 - terms[counted] / 2).mean())
    # Every observation valid: the plain mean over samples and steps.
    torch.testing.assert_close(method(views, actions).loss, terms.mean())
    # No valid target at all: zero, not NaN, and still differentiable.
    none = VALID.clone()
    none[:, 1:] = False
    empty = method(views, actions, none).loss
    assert empty.item() == 0.0 and empty.requires_grad
    assert set(out.metrics) >= {"cosine", "feature_std", "alignment", "uniformity"}
    assert all(not m.requires_grad for m in out.metrics.values())


def test_gradients_equal_those_of_the_per_sample_loop():
    method = make_spr()
    views, actions = window()
    views.requires_grad_(True)
    method(views, actions, VALID).loss.backward()
    got = {k: p.grad.clone() for k, p in method.named_parameters() if p.grad is not None}
    got_views = views.grad.clone()
    method.zero_grad()
    views.grad = None
    reference_terms(method, views, actions)[VALID[:, 1:]].mean().backward()
    want = {k: p.grad for k, p in method.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys() and not any(k.startswith("target_") for k in got)
    for key, grad in want.items():
        torch.testing.assert_close(got[key], grad, msg=key)
    torch.testing.assert_close(got_views, views.grad)


def test_gradients_reach_the_online_side_only_and_features_a_replaces_the_first_encoding():
    method = make_spr()
    views, actions = window()
    views.requires_grad_(True)
    calls = {"online": [], "target": []}
    method.encoder.register_forward_hook(lambda m, i, o: calls["online"].append(i[0].shape[0]))
    method.target_encoder.register_forward_hook(
        lambda m, i, o: calls["target"].append(i[0].shape[0])
    )
    method(views, actions, VALID).loss.backward()
    # One online pass over obs_t alone, one target pass over every later view.
    assert calls == {"online": [B], "target": [B * K]}
    for name in ("encoder", "transition", "projection", "predictor"):
        grads = [p.grad for p in getattr(method, name).parameters()]
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name
    for name in ("target_encoder", "target_projection"):
        for p in getattr(method, name).parameters():
            assert not p.requires_grad and p.grad is None, name
    # The targets carry no gradient back to their inputs: only obs_t's pixels get one.
    assert views.grad[:, 0].abs().sum() > 0
    assert torch.count_nonzero(views.grad[:, 1:]) == 0

    method.zero_grad()
    features_a = method.encoder(views[:, 0].detach()).detach().requires_grad_(True)
    calls["online"].clear()
    out = method(views.detach(), actions, VALID, features_a=features_a)
    assert calls["online"] == []  # the encoder is not re-run on obs_t
    torch.testing.assert_close(out.loss, method(views.detach(), actions, VALID).loss)
    method.zero_grad()
    out.loss.backward()
    assert features_a.grad is not None and features_a.grad.abs().sum() > 0
    assert all(p.grad is None for p in method.encoder.parameters())


def test_a_later_action_changes_the_later_predictions_only():
    method = make_spr()
    views, actions = window()
    changed = actions.clone()
    changed[:, 1] = -changed[:, 1]  # a_{t+1}: moves ẑ_2 and later, not ẑ_1
    only = [torch.zeros(B, K + 1, dtype=torch.bool) for _ in range(K)]
    for k, mask in enumerate(only, start=1):
        mask[:, 0] = mask[:, k] = True  # score step k alone
    before = [method(views, actions, m).loss for m in only]
    after = [method(views, changed, m).loss for m in only]
    torch.testing.assert_close(after[0], before[0])
    for k in range(1, K):
        assert not torch.allclose(after[k], before[k]), f"k={k + 1}"
    torch.testing.assert_close(torch.stack(after), reference_terms(method, views, changed).mean(0))
    # Actions beyond a_{t+K−1} (a longer window) are ignored.
    longer = torch.cat([actions, torch.randn(B, 2, A)], 1)
    torch.testing.assert_close(method(views, longer).loss, method(views, actions).loss)


def test_discrete_actions_are_one_hot_in_either_index_shape():
    method = make_spr(action_dim=4, discrete_actions=True)
    views, _ = window()
    index = torch.randint(0, 4, (B, K), generator=torch.Generator().manual_seed(2))
    flat = method(views, index, VALID).loss
    torch.testing.assert_close(method(views, index[..., None], VALID).loss, flat)
    # The same networks fed the one-hot vectors as continuous actions.
    continuous = make_spr(action_dim=4)
    continuous.load_state_dict(method.state_dict())
    torch.testing.assert_close(continuous(views, F.one_hot(index, 4).float(), VALID).loss, flat)
    torch.testing.assert_close(
        flat, reference_terms(continuous, views, F.one_hot(index, 4).float())[VALID[:, 1:]].mean()
    )
    with pytest.raises(ValueError, match="number of actions"):
        method(views, torch.full((B, K), 4), VALID)


def test_update_targets_moves_encoder_and_projection_targets_by_ema():
    method = make_spr()
    online = [method.encoder.head.fc.weight, method.projection.bias]
    target = [method.target_encoder.head.fc.weight, method.target_projection.bias]
    before = [t.clone() for t in target]
    method.update_targets()
    for o, t, t0 in zip(online, target, before, strict=True):
        torch.testing.assert_close(t, 0.99 * t0 + 0.01 * o)
    method.update_targets(momentum=0.0)
    for o, t in zip(online, target, strict=True):
        torch.testing.assert_close(t, o)
    pairs = [(method.encoder, method.target_encoder), (method.projection, method.target_projection)]
    got = method.momentum_pairs()
    assert [tuple(map(id, pair)) for pair in got] == [tuple(map(id, pair)) for pair in pairs]


def test_class_contract():
    method = make_spr(steps=5)
    assert method.offsets == (0, 1, 2, 3, 4, 5) and method.horizon == 5
    assert SPR.needs_actions and SPR.default_aux_weight == 1.0
    assert method.momentum == 0.99
    assert {id(p) for p in method.head_parameters()} == {
        id(p)
        for m in (method.transition, method.projection, method.predictor)
        for p in m.parameters()
    }


def test_errors_name_the_fix():
    method = make_spr()
    views, actions = window()
    with pytest.raises(ValueError, match=r"\(B, 4, C, H, W\)"):
        method(views[:, :3], actions)
    with pytest.raises(ValueError, match="needs the 3 actions"):
        method(views)
    with pytest.raises(ValueError, match="needs the 3 actions"):
        method(views, actions[:, :2])
    with pytest.raises(ValueError, match="action_dim=2"):
        method(views, torch.zeros(B, K, 3))
    with pytest.raises(ValueError, match=r"valid must be \(B, T\)"):
        method(views, actions, VALID[:, :3])
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match=r"SPR: action_dim .*action size"):
            make_spr(action_dim=bad)
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match="SPR: steps must be an integer >= 1"):
            make_spr(steps=bad)
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match=r"SPR: momentum must be in \[0, 1\]"):
            make_spr(momentum=bad)
    with pytest.raises(ValueError, match="SPR: projection_dim"):
        make_spr(projection_dim=0)
