"""SAC-AE (Yarats et al. 2019) against the reference code's formulas: decoder sizes and layers,
the 5-bit dequantised target, MSE + latent penalty + decoder weight decay, masks, gradients."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rlrep.encoders as E
from rlrep.methods.sac_ae import SACAE, preprocess_obs

SHAPE = (6, 24, 24)


def make(seed=0, **kwargs):
    torch.manual_seed(seed)
    method = SACAE(E.make("curl", SHAPE, features_dim=8), num_filters=4, **kwargs)
    with torch.no_grad():  # biases off their zero init, so terms over them show in the tests
        for name, p in method.decoder.named_parameters():
            if name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return method


def views(b=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 1, *SHAPE), dtype=torch.uint8, generator=g)


def run(method, x, seed=2, **kwargs):
    torch.manual_seed(seed)  # the target's noise
    return method(x, **kwargs)


def target_by_hand(x, noise, bits=5):
    """The code's preprocess_obs on integer pixels, floor by integer division."""
    step, bins = 2 ** (8 - bits), 2**bits
    return (x.long() // step).float() / bins + noise / bins - 0.5


@pytest.mark.parametrize("hw", [(84, 84), (64, 64), (32, 32), (24, 40), (33, 20)])
def test_decoder_reconstructs_exactly_the_view_shape(hw):
    torch.manual_seed(0)
    encoder = E.make("curl", (3, *hw))
    method = SACAE(encoder, num_filters=32)
    assert method.view_shape == (3, *hw)
    assert method.decoder(torch.zeros(2, 50)).shape == (2, 3, *hw)
    # Its first map is the encoder's last conv map, mirrored.
    assert method.decoder.fc.out_features == encoder.conv_dim


def test_decoder_layers_follow_the_code_and_small_views_raise():
    decoder = make(view_shape=(6, 84, 84)).decoder
    z = torch.randn(3, 8)
    convs = [m for m in decoder.deconvs if isinstance(m, nn.ConvTranspose2d)]
    h = F.relu(F.linear(z, decoder.fc.weight, decoder.fc.bias)).view(3, 4, 35, 35)
    for conv in convs[:3]:
        h = F.relu(F.conv_transpose2d(h, conv.weight, conv.bias))
    h = F.conv_transpose2d(h, convs[3].weight, convs[3].bias, stride=2, output_padding=1)
    out = decoder(z)
    torch.testing.assert_close(out, h)
    assert out.min() < 0  # no final activation
    with pytest.raises(ValueError, match="too small"):
        make(view_shape=(6, 14, 24))


@pytest.mark.parametrize("bits", [5, 3, 8])
def test_target_is_the_codes_dequantised_pixels(bits):
    x = views()[:, 0]
    torch.manual_seed(3)
    got = preprocess_obs(x, bits)
    torch.manual_seed(3)  # the same noise as inside preprocess_obs
    torch.testing.assert_close(got, target_by_hand(x, torch.rand(x.shape), bits))
    torch.manual_seed(3)
    torch.testing.assert_close(preprocess_obs(x.float() / 255, bits), got, rtol=0, atol=0)
    above = got + 0.5 - (x.long() // 2 ** (8 - bits)).float() / 2**bits
    assert above.min() >= 0 and above.max() < 1 / 2**bits and above.std() > 0


def test_loss_and_gradients_equal_the_codes_update_decoder():
    method, x = make(latent_penalty=0.1, decoder_weight_decay=0.01), views()
    out = run(method, x)
    out.loss.backward()
    got = {k: p.grad.clone() for k, p in method.named_parameters()}
    method.zero_grad()
    h = method.encoder(x[:, 0])
    torch.manual_seed(2)
    target = target_by_hand(x[:, 0], torch.rand(x[:, 0].shape))
    rec_loss = F.mse_loss(method.decoder(h), target)
    latent_loss = (0.5 * h.pow(2).sum(1)).mean()
    decay = 0.5 * 0.01 * sum((p**2).sum() for p in method.decoder.parameters())
    expected = rec_loss + 0.1 * latent_loss + decay
    torch.testing.assert_close(out.loss, expected)
    expected.backward()
    for k, p in method.named_parameters():
        torch.testing.assert_close(got[k], p.grad, msg=k)
    assert any(got[k].abs().sum() > 0 for k in got if k.startswith("encoder."))
    torch.testing.assert_close(out.metrics["reconstruction_mse"], rec_loss.detach())
    torch.testing.assert_close(out.metrics["latent_norm"], h.detach().norm(dim=1).mean())
    assert set(out.metrics) == {"reconstruction_mse", "latent_norm", "feature_std"}
    assert out.metrics["feature_std"] > 0 and not out.metrics["reconstruction_mse"].requires_grad
    # uint8 pixels and the same pixels as floats in [0, 1] give the same loss.
    torch.testing.assert_close(run(method, x.float() / 255).loss, out.loss)


def test_weight_decay_term_adds_lambda_w_to_the_decoder_gradients_only():
    x, lam = views(), 0.05
    grads = []
    for decay in (lam, 0.0):
        method = make(decoder_weight_decay=decay)
        run(method, x).loss.backward()
        grads.append({k: p.grad.clone() for k, p in method.named_parameters()})
    for k, p in method.named_parameters():
        extra = grads[0][k] - grads[1][k]  # the other terms' gradients cancel
        expected = lam * p.detach() if k.startswith("decoder.") else torch.zeros_like(p)
        torch.testing.assert_close(extra, expected, msg=k)


def test_features_a_is_used_with_its_graph():
    method, x = make(latent_penalty=0.1), views()
    calls = []
    method.encoder.register_forward_hook(lambda *_: calls.append(1))
    features_a = method.encoder(x[:, 0]).detach().requires_grad_()
    calls.clear()
    out = run(method, x, features_a=features_a)
    assert calls == []  # the encoder is not run again
    out.loss.backward()
    assert features_a.grad.abs().sum() > 0
    torch.testing.assert_close(out.loss, run(method, x).loss)


def test_masked_samples_do_not_change_the_loss():
    method, x = make(latent_penalty=0.1, decoder_weight_decay=0.0), views()
    valid = torch.tensor([[True], [False], [True], [True], [False]])
    out = run(method, x, valid=valid)
    other = x.clone()
    other[~valid[:, 0]] = 255 - other[~valid[:, 0]]
    torch.testing.assert_close(run(method, other, valid=valid).loss, out.loss)
    keep = valid[:, 0]
    with torch.no_grad():
        h = method.encoder(x[keep, 0])
        torch.manual_seed(2)
        target = target_by_hand(x[:, 0], torch.rand(x[:, 0].shape))[keep]
        expected = F.mse_loss(method.decoder(h), target) + 0.1 * (0.5 * h.pow(2).sum(1)).mean()
    torch.testing.assert_close(out.loss, expected)


def test_defaults_and_bad_arguments():
    method = make()
    assert method.view_shape == SHAPE and method.offsets == (0,) and not method.needs_actions
    assert (method.latent_penalty, method.decoder_weight_decay, method.bits) == (1e-6, 1e-7, 5)
    assert SACAE.default_aux_weight == 5.0

    class Bare(nn.Module):
        features_dim = 8

    with pytest.raises(ValueError, match="view_shape"):
        SACAE(Bare())
    assert SACAE(Bare(), view_shape=(3, 32, 32)).view_shape == (3, 32, 32)
    encoder = E.make("curl", SHAPE, features_dim=8)
    for bad in (
        {"bits": 0},
        {"bits": 9},
        {"latent_penalty": -1.0},
        {"decoder_weight_decay": -1.0},
        {"num_filters": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SACAE(encoder, **bad)
    x = views()
    with pytest.raises(ValueError, match="view_shape"):
        method(x[..., :20])
    with pytest.raises(ValueError, match="offsets"):
        method(x.expand(-1, 2, -1, -1, -1))
    with pytest.raises(ValueError, match="features_a"):
        method(x, features_a=torch.zeros(5, 7))
