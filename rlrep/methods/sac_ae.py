"""SAC-AE (Yarats, Zhang, Kostrikov, Amos, Pineau & Fergus 2019, "Improving Sample Efficiency
in Model-Free Reinforcement Learning from Images"): a deterministic autoencoder whose
reconstruction loss trains the RL encoder (reference code: denisyarats/pytorch_sac_ae)."""

from __future__ import annotations

import torch
from torch import nn

from rlrep.encoders.pixel import delta_orthogonal_init_
from rlrep.methods.base import AuxOutput
from rlrep.methods.temporal import TemporalMethod, check_offset, masked_mean
from rlrep.metrics import feature_std

__all__ = ["SACAE", "PixelDecoder", "preprocess_obs"]


def preprocess_obs(obs: torch.Tensor, bits: int = 5) -> torch.Tensor:
    """The reconstruction target of SAC-AE's code (``utils.preprocess_obs``, after Kingma &
    Dhariwal 2018, Glow): pixels quantised to ``bits`` bits, dequantised with uniform noise,
    centred: ``floor(p / 2^(8−bits)) / 2^bits + U(0, 1) / 2^bits − 0.5`` in [−0.5, 0.5).

    :param obs: ``(B, C, H, W)`` uint8 pixels ``p`` in [0, 255], or floats in [0, 1] (``p =
        255·x``; exact for ``uint8 / 255`` in float32, so both forms give the same target).
    :param bits: bits kept per pixel (the code: 5).
    :return: ``(B, C, H, W)`` float32; the noise is drawn from torch's global RNG.
    """
    pixels = obs.float() if obs.dtype == torch.uint8 else obs.float() * 255.0
    bins = 2**bits
    target = torch.floor(pixels / 2 ** (8 - bits)) / bins
    return target + torch.rand_like(target) / bins - 0.5


def _init_(module: nn.Module) -> None:
    """The reference code's ``weight_init``: rlrep's delta-orthogonal init, extended to the
    transposed convs (weights ``(C_in, C_out, 3, 3)``, orthogonal centre tap, ReLU gain)."""
    if isinstance(module, nn.ConvTranspose2d):
        nn.init.zeros_(module.weight)
        nn.init.zeros_(module.bias)
        mid = module.weight.shape[2] // 2
        nn.init.orthogonal_(module.weight[:, :, mid, mid], nn.init.calculate_gain("relu"))
    else:
        delta_orthogonal_init_(module)


class PixelDecoder(nn.Module):
    """SAC-AE's decoder, the mirror of CURL's 4-layer encoder (:class:`~rlrep.encoders.PixelEncoder`):
    Linear(D → F·h·w), ReLU, reshape to ``(F, h, w)``, 3 × [ConvTranspose2d(F → F, 3, stride 1),
    ReLU], ConvTranspose2d(F → C, 3, stride 2, output_padding p), no final activation.

    ``h = ((H − 3)//2 + 1) − 6`` is the encoder's conv map height for ``H`` (likewise ``w``);
    the last layer outputs ``2(h + 6) + 1 + p``, so ``p = 1`` for even ``H`` and 0 for odd
    (the code fixes ``p = 1``, right for its 84×84).

    :param view_shape: ``(C, H, W)`` of the images to reconstruct; ``H, W >= 15``.
    :param features_dim: D, the latent size in. :param num_filters: F (the code: 32).
    """

    def __init__(
        self, view_shape: tuple[int, int, int], features_dim: int, num_filters: int = 32
    ) -> None:
        super().__init__()
        c, height, width = view_shape
        self.map_shape = (num_filters, *(((s - 3) // 2 + 1) - 6 for s in (height, width)))
        if min(self.map_shape[1:]) < 1:
            raise ValueError(
                f"SACAE: view_shape {tuple(view_shape)} is too small for CURL's encoder "
                "(a 3×3 stride-2 conv and three 3×3 convs): H and W must be >= 15"
            )
        padding = tuple(1 - s % 2 for s in (height, width))  # even sizes need one more row
        self.fc = nn.Linear(features_dim, num_filters * self.map_shape[1] * self.map_shape[2])
        layers: list[nn.Module] = []
        for _ in range(3):
            layers += [nn.ConvTranspose2d(num_filters, num_filters, 3, stride=1), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(num_filters, c, 3, stride=2, output_padding=padding))
        self.deconvs = nn.Sequential(*layers)
        self.apply(_init_)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` latents → ``(B, C, H, W)`` reconstructions (targets in [−0.5, 0.5))."""
        h = torch.relu(self.fc(z)).unflatten(1, self.map_shape)
        return self.deconvs(h)


class SACAE(TemporalMethod):
    """Reconstruct the view the encoder saw from its latent ``z`` (a window of one).

    ``loss = MSE(decoder(z), preprocess_obs(view)) + latent_penalty · mean_i ½‖z_i‖²
    + ½ · decoder_weight_decay · Σ_{w ∈ decoder} ‖w‖²``, the code's ``update_decoder``. Both
    means run over the samples whose ``valid[:, 0]`` holds (the MSE per sample, then
    averaged: the code's element mean when all are valid).

    The last term stands for the code's ``Adam(decoder.parameters(),
    weight_decay=decoder_weight_lambda)``: Adam's (coupled, not AdamW) weight decay adds
    ``λ·w`` to each decoder gradient, which is the gradient of ``½·λ·‖w‖²``. Written into the
    loss it decays the decoder (biases included, as Adam's group does) whichever optimiser
    holds it; that optimiser must not add its own decay, and the SB3 plug-in's ``aux_weight``
    scales it with the rest of the loss (equal to the code at the default weight 1).

    Differences from the code: the decoder mirrors rlrep's encoder of 4 conv layers whatever
    the encoder is, sized for ``view_shape`` (the code: 84×84 only); the code's encoder ends
    in tanh (``rlrep.encoders.make("curl", ..., tanh=True)``) and its decoder has its own
    Adam (lr 1e-3) while here heads share the auxiliary optimiser.

    Metrics: ``reconstruction_mse`` (the masked MSE), ``latent_norm`` (mean ``‖z‖`` over
    valid samples), ``feature_std`` of ``z``; no contrastive keys.

    :param encoder: online encoder (``features_dim`` D).
    :param view_shape: ``(C, H, W)`` of the views; ``None``: ``encoder.observation_shape``.
    :param num_filters: the decoder's channels (the code: 32).
    :param latent_penalty: weight of ``½‖z‖²`` (the code's ``decoder_latent_lambda``, 1e-6;
        Ghosh et al. 2019's regularised autoencoder).
    :param decoder_weight_decay: λ (the code's ``decoder_weight_lambda``, 1e-7).
    :param bits: bits per pixel of the target (the code: 5).
    :param gather_distributed: accepted for a uniform constructor; the loss is per sample, so
        nothing is gathered (DDP's gradient averaging is the whole-batch loss already).
    """

    #: The code steps this loss with an Adam optimiser of its own, where a constant factor has
    #: no effect; summed with SAC's critic loss here, weight 1 would start it 36× below that
    #: loss on DMC. 5 starts it within 10× on both tasks (docs/benchmarks.md, ``aux_scales.py``).
    default_aux_weight = 5.0

    def __init__(
        self,
        encoder: nn.Module,
        view_shape: tuple[int, int, int] | None = None,
        num_filters: int = 32,
        latent_penalty: float = 1e-6,
        decoder_weight_decay: float = 1e-7,
        bits: int = 5,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(encoder, gather_distributed)
        if view_shape is None:
            view_shape = getattr(encoder, "observation_shape", None)
            if view_shape is None:
                raise ValueError(
                    f"SACAE: {type(encoder).__name__} has no 'observation_shape'; pass "
                    "view_shape=(C, H, W), the size of the views the decoder reconstructs"
                )
        shape = tuple(view_shape)
        if len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise ValueError(f"SACAE: view_shape must be 3 positive ints (C, H, W), got {shape}")
        self.view_shape: tuple[int, int, int] = shape  # type: ignore[assignment]
        penalties = {"latent_penalty": latent_penalty, "decoder_weight_decay": decoder_weight_decay}
        for name, value in penalties.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"SACAE: {name} must be a number >= 0, got {value!r}")
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 8:
            raise ValueError(f"SACAE: bits must be an integer in [1, 8], got {bits!r}")
        self.latent_penalty = float(latent_penalty)
        self.decoder_weight_decay = float(decoder_weight_decay)
        self.bits = bits
        self.offsets = (0,)
        self.decoder = PixelDecoder(
            self.view_shape, self.features_dim, check_offset(num_filters, "SACAE: num_filters")
        )

    def weight_decay(self) -> torch.Tensor:
        """``½ · decoder_weight_decay · Σ ‖w‖²`` over the decoder's parameters (scalar)."""
        squares = sum(p.pow(2).sum() for p in self.decoder.parameters())
        return 0.5 * self.decoder_weight_decay * squares  # type: ignore[return-value]

    def forward(  # type: ignore[override]
        self,
        views: torch.Tensor,
        actions: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        features_a: torch.Tensor | None = None,
    ) -> AuxOutput:
        """Loss and metrics for ``views`` ``(B, 1, C, H, W)`` (``view_shape``), ``valid``
        ``(B, 1)``; ``features_a`` ``(B, D)``: the encoder's latents of ``views[:, 0]``, with
        their graph (the RL loss's forward), used instead of encoding again."""
        valid = self.check_window(views, actions, valid)
        view, mask = views[:, 0], valid[:, 0]
        if tuple(view.shape[1:]) != self.view_shape:
            raise ValueError(
                f"SACAE: views must be (B, 1, *view_shape) = (B, 1, {self.view_shape}), got "
                f"{tuple(views.shape)}; build SACAE with view_shape={tuple(view.shape[1:])}"
            )
        if features_a is not None and tuple(features_a.shape) != (view.shape[0], self.features_dim):
            raise ValueError(
                f"SACAE: features_a must be the encoder's features of views[:, 0], (B, D) = "
                f"{(view.shape[0], self.features_dim)}, got {tuple(features_a.shape)}"
            )
        z = self.encoder(view) if features_a is None else features_a  # (B, D)
        reconstruction = self.decoder(z)  # (B, C, H, W)
        target = preprocess_obs(view, self.bits).to(reconstruction.dtype)
        errors = (reconstruction - target).pow(2).flatten(1).mean(dim=1)  # (B,)
        mse = masked_mean(errors, mask)
        latent = masked_mean(0.5 * z.pow(2).sum(dim=1), mask)
        loss = mse + self.latent_penalty * latent
        if self.decoder_weight_decay:
            loss = loss + self.weight_decay()
        metrics = {
            "reconstruction_mse": mse.detach(),
            "latent_norm": masked_mean(z.detach().norm(dim=1), mask),
            "feature_std": feature_std(z.detach()),
        }
        return AuxOutput(loss, metrics)
