"""Encoders: shapes, in-network pixel scaling, CURL's init and architecture."""

import pytest
import torch
from torch import nn

import rlrep.encoders as E

SHAPES = {
    "curl": (9, 84, 84),
    "nature": (9, 84, 84),
    "impala": (3, 64, 64),
    "resnet18": (3, 32, 32),
}
DIMS = {"curl": 50, "nature": 512, "impala": 256, "resnet18": 512}


@pytest.mark.parametrize("name", list(E.ENCODERS))
def test_shapes_and_uint8_scaling(name, device):
    torch.manual_seed(0)
    enc = E.make(name, SHAPES[name]).to(device).eval()
    x = torch.randint(0, 256, (3, *SHAPES[name]), dtype=torch.uint8, device=device)
    out = enc(x)
    assert out.shape == (3, DIMS[name]) == (3, enc.features_dim)
    torch.testing.assert_close(out, enc(x.float() / 255))


def test_curl_encoder_architecture_and_init():
    enc = E.PixelEncoder((9, 84, 84))
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0], c.padding[0]) for c in convs] == [
        (9, 32, 2, 0),
        (32, 32, 1, 0),
        (32, 32, 1, 0),
        (32, 32, 1, 0),
    ]
    assert enc.conv_dim == 32 * 35 * 35 == 39_200 and enc.head.fc.out_features == 50
    for c in convs:  # delta-orthogonal: only the centre tap is non-zero, and it is orthogonal
        w = c.weight.detach()
        assert w[:, :, [0, 2]].abs().sum() == 0 and w[:, :, :, [0, 2]].abs().sum() == 0
        centre = w[:, :, 1, 1]
        gram = centre.T @ centre if centre.shape[0] >= centre.shape[1] else centre @ centre.T
        torch.testing.assert_close(gram, 2.0 * torch.eye(gram.shape[0]), atol=1e-5, rtol=0)
    out = enc(torch.randint(0, 256, (4, 9, 84, 84), dtype=torch.uint8))
    torch.testing.assert_close(out.mean(1), torch.zeros(4), atol=1e-5, rtol=0)  # LayerNorm
    tanh = E.PixelEncoder((9, 84, 84), tanh=True)(torch.rand(2, 9, 84, 84))
    assert tanh.abs().max() < 1


def test_conv_and_head_split_equals_forward():
    enc = E.PixelEncoder((6, 32, 32), features_dim=10)
    x = torch.rand(2, 6, 32, 32)
    torch.testing.assert_close(enc.forward_head(enc.forward_conv(x)), enc(x))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="channels-last"):
        E.make("curl", (84, 84, 9))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        E.make("nature", (84, 84))
    with pytest.raises(ValueError, match="unknown encoder"):
        E.make("vit", (3, 32, 32))
    with pytest.raises(ValueError, match="at least 36"):
        E.make("nature", (3, 32, 32))
    enc = E.make("curl", (9, 84, 84))
    with pytest.raises(ValueError, match=r"expected \(B, 9, H, W\)"):
        enc(torch.zeros(2, 84, 84, 9))


def test_pixel_encoder_loads_weights_saved_before_the_head_was_a_module():
    enc = E.PixelEncoder((9, 36, 36), num_filters=4, num_layers=2)
    saved = {k.removeprefix("head."): v for k, v in enc.state_dict().items()}  # fc.*, norm.*
    assert "fc.weight" in saved and "norm.bias" in saved
    fresh = E.PixelEncoder((9, 36, 36), num_filters=4, num_layers=2)
    fresh.load_state_dict(saved)
    for key, value in enc.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
