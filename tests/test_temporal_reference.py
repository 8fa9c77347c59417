"""ATC (Stooke, Lee, Abbeel & Laskin 2021) against a per-sample loop written from the paper and
astooke/rlpyt ``ul/algos/ul_for_rl/augmented_temporal_contrast.py``, in float64: each anchor
``obs_t`` through the online encoder, the compressor, the residual predictor ``c + MLP(c)`` and
the bilinear ``W``, scored against the momentum target's compressed code of every sample's
``obs_{t+k}``; cross-entropy with its own positive, averaged over the samples whose positive is
valid (the others still serve as negatives). Loss, gradients and accuracy are compared.

CPC and SPR have their per-sample references in ``test_cpc.py`` and ``test_spr.py``.
"""

import pytest
import torch
from torch import nn

import rlrep.encoders as E
from rlrep.methods.atc import ATC

B, DT = 6, 2
#: obs_{t+k} of samples 1 and 4 is past their episode's end (or unusable): not counted.
VALID = torch.tensor([[True, True], [True, False], [True, True], [True, True],
                      [True, False], [True, True]])  # fmt: skip


def make_atc(seed: int = 0) -> ATC:
    """A tiny float64 ATC whose momentum target differs from the online networks, so a loss that
    reads the wrong side (or drops the residual predictor) changes."""
    torch.manual_seed(seed)
    encoder = E.make("curl", (6, 20, 20), features_dim=10, num_filters=4, num_layers=2)
    method = ATC(encoder, delta_t=DT, latent_dim=8, hidden_dim=12).double()
    with torch.no_grad():
        for p in [*method.target_encoder.parameters(), *method.target_compressor.parameters()]:
            p.add_(0.2 * torch.randn_like(p))
    return method


def windows(seed: int = 1) -> torch.Tensor:
    """``(B, 2, 6, 20, 20)``: the augmented ``obs_t`` and ``obs_{t+k}`` of each sample."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 2, 6, 20, 20, generator=g, dtype=torch.float64)


def affine(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``W x + b`` for one vector ``x`` ``(in,)``."""
    out = layer.weight @ x
    return out if layer.bias is None else out + layer.bias


def reference_terms(method: ATC, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each anchor's cross-entropy ``(B,)`` and scores ``(B, B)``, one sample at a time."""
    first, relu, last = method.predictor
    assert isinstance(first, nn.Linear) and isinstance(relu, nn.ReLU)
    with torch.no_grad():  # the positives: momentum encoder and compressor, no gradient
        keys = [
            affine(method.target_compressor, method.target_encoder(views[j : j + 1, 1])[0])
            for j in range(B)
        ]
    terms, rows = [], []
    for i in range(B):
        c = affine(method.compressor, method.encoder(views[i : i + 1, 0])[0])
        residual = c + affine(last, torch.relu(affine(first, c)))  # rlpyt's anchor + anchor_mlp
        query = method.W.weight @ residual
        scores = torch.stack([query @ key for key in keys])
        terms.append(torch.logsumexp(scores, 0) - scores[i])
        rows.append(scores)
    return torch.stack(terms), torch.stack(rows)


def online_grads(method: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.clone() for k, p in method.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("valid", [None, VALID], ids=["all_valid", "invalid_positives"])
def test_atc_loss_gradients_and_accuracy_equal_a_per_sample_loop(valid):
    method, views = make_atc(), windows().requires_grad_()
    counted = torch.ones(B, dtype=torch.bool) if valid is None else valid[:, 1]
    out = method(views, valid=valid)
    out.loss.backward()
    got, got_views = online_grads(method), views.grad.clone()
    method.zero_grad()
    views.grad = None

    terms, scores = reference_terms(method, views)
    expected = terms[counted].mean()
    torch.testing.assert_close(out.loss, expected)
    correct = (scores.argmax(1) == torch.arange(B))[counted].float()
    torch.testing.assert_close(out.metrics["accuracy"], correct.mean())

    expected.backward()
    want = online_grads(method)
    assert got.keys() == want.keys()
    assert not any(k.startswith("target_") for k in got)  # the momentum side never learns
    for key, grad in want.items():
        torch.testing.assert_close(got[key], grad, msg=key)
    for name in ("encoder.", "compressor.", "predictor.0.", "predictor.2.", "W."):
        assert any(want[k].abs().sum() > 0 for k in want if k.startswith(name)), name
    torch.testing.assert_close(got_views, views.grad)
    assert torch.count_nonzero(got_views[:, 1]) == 0  # no gradient through the positives


def test_atc_residual_predictor_and_invalid_negatives_matter():
    """The two parts of the loss the per-sample loop could miss on a degenerate case: the
    predictor's MLP is far from zero here (the residual is not just ``c``), and an invalid
    positive still enters every other row's denominator."""
    method, views = make_atc(), windows()
    with torch.no_grad():
        c = method.compressor(method.encoder(views[:, 0]))
        assert method.predictor(c).norm() > 0.1 * c.norm()
        loss = method(views, valid=VALID).loss
        terms, scores = reference_terms(method, views)
        # Scoring each counted row against the counted columns only gives another loss.
        kept = VALID[:, 1]
        own = scores[kept][:, kept]
        without = (torch.logsumexp(own, 1) - own.diagonal()).mean()
    torch.testing.assert_close(loss, terms[kept].mean())
    assert (loss - without).abs() > 1e-3


def test_atc_features_a_stands_for_the_anchor_and_no_valid_positive_gives_zero():
    method, views = make_atc(), windows()
    features_a = method.encoder(views[:, 0]).detach().requires_grad_()
    torch.testing.assert_close(
        method(views, valid=VALID, features_a=features_a).loss,
        reference_terms(method, views)[0][VALID[:, 1]].mean(),
    )
    none = VALID.clone()
    none[:, 1] = False
    loss = method(views.requires_grad_(), valid=none).loss
    assert loss.item() == 0.0 and loss.requires_grad  # no NaN from an empty mean
