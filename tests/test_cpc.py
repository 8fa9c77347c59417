"""CPC (van den Oord et al. 2018) against a per-sample loop: a hand-written GRU, each row's
InfoNCE with logsumexp, the mean over the counted (sample, k) pairs."""

import math

import pytest
import torch

import rlrep.encoders as E
from rlrep.methods.cpc import CPC

B, C, K = 6, 3, 2  # windows of C + K = 5 observations: context 0..2, targets 3 (k=1), 4 (k=2)


def make(seed=0, **kwargs):
    torch.manual_seed(seed)
    encoder = E.make("curl", (6, 24, 24), features_dim=8)
    return CPC(encoder, context_steps=C, prediction_steps=K, context_dim=12, **kwargs)


def windows(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, C + K, 6, 24, 24, generator=g)


def mixed_valid():
    valid = torch.ones(B, C + K, dtype=torch.bool)
    valid[1, 4:] = False  # the episode ends after the k=1 target: counts for k=1 only
    valid[2, 2:] = False  # ends inside the context: counts for no k
    valid[3, 1] = False  # one invalid context step (e.g. outside the split): no k
    valid[4, 3] = False  # the k=1 target alone is invalid: counts for k=2 only
    return valid


def gru_by_hand(gru, inputs):
    """PyTorch's GRU equations (r, z, n gates), one step at a time from a zero state."""
    h = torch.zeros(inputs.shape[0], gru.hidden_size)
    for x in inputs.unbind(1):
        i_r, i_z, i_n = (x @ gru.weight_ih_l0.T + gru.bias_ih_l0).chunk(3, 1)
        h_r, h_z, h_n = (h @ gru.weight_hh_l0.T + gru.bias_hh_l0).chunk(3, 1)
        r, u = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        h = (1 - u) * n + u * h
    return h


def reference(method, views, valid):
    """Per-row cross-entropies, keyed by (sample, k), over the counted pairs only."""
    z = torch.stack([method.encoder(views[:, j]) for j in range(C + K)], 1)  # one offset a pass
    context = gru_by_hand(method.gru, z[:, :C])
    terms = {}
    for i in range(B):
        if not bool(valid[i, :C].all()):
            continue
        for k in range(1, K + 1):
            if not bool(valid[i, C - 1 + k]):
                continue
            prediction = method.W[k - 1].weight @ context[i]  # W_k c_i, (D,)
            scores = torch.stack([z[j, C - 1 + k] @ prediction for j in range(B)])
            terms[i, k] = torch.logsumexp(scores, 0) - scores[i]
    return terms, z


def grads(module):
    return {k: p.grad.clone() for k, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("valid", [None, mixed_valid()], ids=["all_valid", "mixed"])
def test_loss_and_gradients_equal_a_per_sample_loop(valid):
    method, views = make(), windows()
    out = method(views, valid=valid)
    out.loss.backward()
    got = grads(method)
    method.zero_grad()
    terms, _ = reference(
        method, views, torch.ones(B, C + K, dtype=torch.bool) if valid is None else valid
    )
    if valid is not None:  # the pairs the mask should count
        assert sorted(terms) == [(0, 1), (0, 2), (1, 1), (4, 2), (5, 1), (5, 2)]
    expected = torch.stack(list(terms.values())).mean()
    torch.testing.assert_close(out.loss, expected)
    expected.backward()
    for prefix in ("encoder.", "gru.", "W.0.", "W.1."):  # encoder, GRU and every W_k learn
        keys = [k for k in got if k.startswith(prefix)]
        assert keys and any(got[k].abs().sum() > 0 for k in keys), prefix
    assert got.keys() == grads(method).keys()
    for k, p in method.named_parameters():
        torch.testing.assert_close(got[k], p.grad, msg=k)


def test_metrics_are_those_of_the_first_prediction_step():
    method, views, valid = make(), windows(), mixed_valid()
    with torch.no_grad():
        out = method(views, valid=valid)
        terms, z = reference(method, views, valid)
        first = [i for i, k in terms if k == 1]  # rows counted at k = 1
        loss_1 = torch.stack([terms[i, 1] for i in first]).mean()
        context = gru_by_hand(method.gru, z[:, :C])
        scores = method.W[0](context) @ z[:, C].T
    correct = [int(scores[i].argmax()) == i for i in first]
    torch.testing.assert_close(out.metrics["accuracy"], torch.tensor(sum(correct) / len(first)))
    torch.testing.assert_close(out.metrics["mi_bound"], math.log(B) - loss_1)
    assert {"feature_std", "alignment", "uniformity"} <= out.metrics.keys()
    assert all(not v.requires_grad for v in out.metrics.values())


def test_features_a_stands_for_the_first_view():
    method, views = make(), windows()
    seen = []
    method.encoder.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    features_a = method.encoder(views[:, 0]).detach().requires_grad_()
    seen.clear()
    out = method(views, features_a=features_a)
    assert seen == [B * (C + K - 1)]  # one pass over views[:, 1:], none over views[:, 0]
    out.loss.backward()
    assert features_a.grad is not None and features_a.grad.abs().sum() > 0
    torch.testing.assert_close(out.loss, method(views).loss)


def test_window_offsets_and_a_fully_masked_batch():
    method = make()
    assert method.offsets == (0, 1, 2, 3, 4) and method.horizon == 4
    assert not method.needs_actions and len(method.W) == K
    views = windows().requires_grad_()
    valid = torch.zeros(B, C + K, dtype=torch.bool)
    loss = method(views, valid=valid).loss
    assert loss.item() == 0.0  # no NaN from an empty mean
    loss.backward()


def test_wrong_shapes_and_bad_arguments_raise():
    method, views = make(), windows()
    with pytest.raises(ValueError, match="offsets"):
        method(views[:, :4])
    with pytest.raises(ValueError, match="valid"):
        method(views, valid=torch.ones(B, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="features_a"):
        method(views, features_a=torch.zeros(B, 9))
    with pytest.raises(ValueError, match="at least 2 samples"):
        method(views[:1])
    encoder = E.make("curl", (6, 24, 24), features_dim=8)
    for bad in (
        {"context_steps": 0},
        {"prediction_steps": 0},
        {"context_dim": 0},
        {"context_steps": True},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            CPC(encoder, **bad)


class Pixels(torch.nn.Module):
    """An encoder that autocast leaves in float32 (no matmul): the first 8 pixels."""

    features_dim = 8

    def forward(self, x):
        return 10 * x.flatten(1)[:, :8]


def test_bfloat16_autocast_computes_the_gru_and_logits_in_float32():
    """Under ``rlrep pretrain --amp on`` CPC collapsed on DMC frames: the logits of similar
    frames, rounded to bfloat16, were one value. Nearly equal latents: the loss must not change
    with autocast."""
    torch.manual_seed(0)
    cpc = CPC(Pixels(), context_steps=C, prediction_steps=K, context_dim=12)
    g = torch.Generator().manual_seed(2)
    views = 0.5 + 0.01 * torch.rand(B, C + K, 6, 4, 4, generator=g)
    exact = cpc(views).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = cpc(views).loss
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, rtol=1e-6, atol=1e-6)
