"""The CURL / SAC-AE pixel encoder (Yarats et al. 2019; Laskin et al. 2020)."""

from __future__ import annotations

import torch
from torch import nn

from rlrep.encoders.base import PixelEncoderBase

__all__ = ["PixelEncoder", "PixelHead", "delta_orthogonal_init_"]


def delta_orthogonal_init_(module: nn.Module) -> None:
    """SAC-AE / CURL initialisation: orthogonal Linear weights; convs zero except an orthogonal
    centre tap (delta-orthogonal, gain of ReLU); zero biases.
    """
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.zeros_(module.weight)
        nn.init.zeros_(module.bias)
        mid = module.weight.shape[2] // 2
        nn.init.orthogonal_(module.weight[:, :, mid, mid], nn.init.calculate_gain("relu"))


class PixelHead(nn.Module):
    """CURL's encoder head: Linear → LayerNorm → optional tanh, ``(B, conv_dim) → (B, features_dim)``.

    :param conv_dim: flattened conv features in. :param features_dim: features out.
    :param tanh: squash the normalised features with tanh.

    Built with PyTorch's default init; :class:`PixelEncoder` (and whoever copies its head)
    applies :func:`delta_orthogonal_init_`.
    """

    def __init__(self, conv_dim: int, features_dim: int, tanh: bool = False) -> None:
        super().__init__()
        self.fc = nn.Linear(conv_dim, features_dim)
        self.norm = nn.LayerNorm(features_dim)
        self.tanh = tanh

    def forward(self, conv_features: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.fc(conv_features))
        return torch.tanh(h) if self.tanh else h


class PixelEncoder(PixelEncoderBase):
    """Conv(C→32, 3×3, stride 2), ``num_layers − 1`` × Conv(32→32, 3×3, stride 1), ReLU after
    each, no padding; Linear → ``features_dim``; LayerNorm; optional tanh.

    84×84 input → 32×35×35 = 39,200 conv features → 50. CURL's code uses no tanh
    (``output_logits=True``); its paper's pseudo-code shows one.

    :param observation_shape: ``(C, H, W)``, e.g. ``(9, 84, 84)``.
    :param features_dim: latent size (CURL: 50).
    :param num_layers: conv layers (CURL: 4). :param num_filters: channels (CURL: 32).
    :param tanh: squash the normalised features with tanh.
    :param center_pixels: feed the convs ``obs / 255 − 0.5`` (in [−0.5, 0.5], DrQ-v2's
        encoder) instead of ``obs / 255`` (CURL's, DrQ's, SAC-AE's). Not a reparametrisation
        the first conv's bias absorbs: its weight gradient ``Σ δ·x`` changes with the offset.
    :param channels_last: keep conv weights and inputs in ``torch.channels_last`` memory format
        (same results up to float rounding; 0.8–0.9× the time of a forward + backward on this
        project's CPU, see ``experiments/bench_curl_official.py``).
    """

    def __init__(
        self,
        observation_shape: tuple[int, int, int],
        features_dim: int = 50,
        num_layers: int = 4,
        num_filters: int = 32,
        tanh: bool = False,
        channels_last: bool = False,
        center_pixels: bool = False,
    ) -> None:
        super().__init__(observation_shape, features_dim)
        smallest = 4 * num_layers - 1  # a 3×3/2 conv, then num_layers − 1 3×3/1 convs, to 1×1
        if min(self.observation_shape[1:]) < smallest:
            h, w = self.observation_shape[1:]
            raise ValueError(
                f"PixelEncoder ({num_layers} conv layers): needs images of at least "
                f"{smallest}×{smallest}, got {h}×{w}"
            )
        # In-place ReLUs: a conv's backward needs its input, not its output.
        layers: list[nn.Module] = [
            nn.Conv2d(self.observation_shape[0], num_filters, 3, stride=2),
            nn.ReLU(inplace=True),
        ]
        for _ in range(num_layers - 1):
            layers += [nn.Conv2d(num_filters, num_filters, 3, stride=1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers, nn.Flatten())
        self.conv_dim = self._flat_size(self.convs)
        self.head = PixelHead(self.conv_dim, features_dim, tanh)
        self.tanh = tanh
        self.apply(delta_orthogonal_init_)
        self.channels_last = bool(channels_last)
        self.center_pixels = bool(center_pixels)
        if self.channels_last:
            self.convs.to(memory_format=torch.channels_last)

    def forward_conv(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, conv_dim)`` flattened conv features."""
        x = self.preprocess(obs)
        if self.center_pixels:
            x = x - 0.5
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.convs(x)

    def forward_head(self, conv_features: torch.Tensor) -> torch.Tensor:
        """``(B, conv_dim)`` → ``(B, features_dim)``: Linear, LayerNorm, optional tanh."""
        return self.head(conv_features)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_conv(obs))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Weights saved before the head was its own module name its layers fc.* and norm.*.
        for key in [k for k in state_dict if k.startswith((f"{prefix}fc.", f"{prefix}norm."))]:
            state_dict[f"{prefix}head.{key[len(prefix) :]}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
