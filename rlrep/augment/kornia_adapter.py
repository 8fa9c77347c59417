"""Any kornia augmentation as an rlrep augmentation: frame-stack aware, dtype-preserving, with a
deterministic eval view.

kornia (the ecosystem's GPU augmentation library) draws one set of parameters per image. rlrep's
batches stack ``k`` frames along channels, ``(B, k·c, H, W)``, and every frame of a sample must
get the same parameters (CURL, RAD, DrQ): the module runs on the first frame of each sample, and
the parameters it drew are replayed on the other frames (kornia's ``params=``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from kornia.augmentation import AugmentationBase2D, AugmentationSequential

from rlrep.augment.base import (
    Augmentation,
    Sampler,
    check_frame_channels,
    from_float,
    to_float,
)

__all__ = ["EVAL_VIEWS", "KorniaAugmentation"]

#: Deterministic views for ``.eval()``: the input, its centre window, or the whole frame resized,
#: the last two at the size the random view has.
EVAL_VIEWS = ("identity", "center_crop", "resize")


class KorniaAugmentation(Augmentation):
    """A kornia augmentation (one, or an ``AugmentationSequential``) applied per stacked frame
    with parameters shared by the frames of a sample.

    Input ``(B, k·c, H, W)`` uint8 or float in [0, 1]; output of the same dtype, ``(B, k·c, h,
    w)`` with the module's output size. kornia draws from torch's global RNG: with ``seed`` or a
    ``generator``, the draw happens under a forked RNG seeded from it (reproducible, the global
    state untouched).

    :param module: e.g. ``kornia.augmentation.ColorJiggle(0.4, 0.4, 0.4, 0.1)`` or an
        ``AugmentationSequential`` of several.
    :param frame_channels: channels per stacked frame (3 RGB, 1 grayscale).
    :param eval_view: the ``.eval()`` view: ``"identity"`` (the default, for modules that keep
        the size), ``"center_crop"`` or ``"resize"`` to the random view's size (required when the
        module changes the size, e.g. ``RandomCrop`` → ``"center_crop"``, ``RandomResizedCrop``
        → ``"resize"``).
    :param seed: seed of this augmentation's own generator (``None``: torch's global RNG).
    """

    def __init__(
        self,
        module: AugmentationBase2D | AugmentationSequential,
        frame_channels: int = 3,
        eval_view: str | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if not isinstance(module, (AugmentationBase2D, AugmentationSequential)):
            raise TypeError(
                "KorniaAugmentation needs a kornia.augmentation module (e.g. "
                f"kornia.augmentation.ColorJiggle(...) or AugmentationSequential(...)), got "
                f"{type(module).__name__}; for rlrep's own steps pass their names to make()"
            )
        if eval_view is not None and eval_view not in EVAL_VIEWS:
            raise ValueError(f"eval_view must be one of {EVAL_VIEWS} or None, got {eval_view!r}")
        self.module = module
        self.frame_channels = check_frame_channels(frame_channels)
        if self.frame_channels == 1 and not _runs_on_grayscale(module):
            raise ValueError(
                f"kornia's {type(module).__name__} changes colours and needs RGB frames, but "
                "frame_channels=1 (grayscale stacks, e.g. Atari); drop it or keep kornia's "
                "geometric modules (RandomCrop, RandomAffine, RandomResizedCrop, ...), which run "
                "on any channels"
            )
        self.eval_view_mode = eval_view
        self._sizes: dict[tuple[int, int], tuple[int, int]] = {}

    def check_size(self, x: torch.Tensor) -> None:
        check_frame_channels(self.frame_channels, x.shape[1])

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        img, fc = to_float(x), self.frame_channels
        with _rng_from(sampler.generator, x.device):
            views = [self.module(img[:, :fc])]
            params = self.module._params  # what kornia drew for the first frames
            views += [
                self.module(img[:, i : i + fc], params=params) for i in range(fc, x.shape[1], fc)
            ]
        return from_float(torch.cat(views, dim=1).clamp_(0.0, 1.0), x)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)`` of the module's output for ``height × width`` frames (one probe per size)."""
        if (height, width) not in self._sizes:
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                probe = self.module(torch.zeros(1, self.frame_channels, height, width))
            self._sizes[(height, width)] = (int(probe.shape[-2]), int(probe.shape[-1]))
        return self._sizes[(height, width)]

    def eval_view(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        out_h, out_w = self.output_size(h, w)
        mode = self.eval_view_mode
        if mode is None:
            if (out_h, out_w) != (h, w):
                raise ValueError(
                    f"{type(self.module).__name__} turns {h}×{w} frames into {out_h}×{out_w}: "
                    "pass eval_view='center_crop' (crops) or 'resize' (resized crops) so the "
                    "eval view has the same size"
                )
            mode = "identity"
        if mode == "identity":
            return x
        if mode == "center_crop":
            top, left = (h - out_h) // 2, (w - out_w) // 2
            return x[..., top : top + out_h, left : left + out_w]
        resized = F.interpolate(to_float(x), (out_h, out_w), mode="bilinear", antialias=True)
        return from_float(resized.clamp_(0.0, 1.0), x)

    def extra_repr(self) -> str:
        return f"frame_channels={self.frame_channels}, eval_view={self.eval_view_mode!r}"


def _runs_on_grayscale(module: AugmentationBase2D | AugmentationSequential) -> bool:
    """Whether ``module`` runs on 1-channel frames (kornia's colour modules need 3): a probe on
    128×128 zeros; ``True`` when an RGB probe fails too (the size, not the channels)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            module(torch.zeros(2, 3, 128, 128))
        except (ValueError, TypeError, RuntimeError):
            return True  # no verdict at this size: kornia will say at the first call
        try:
            module(torch.zeros(2, 1, 128, 128))
        except (ValueError, TypeError, RuntimeError):
            return False
    return True


@contextlib.contextmanager
def _rng_from(generator: torch.Generator | None, device: torch.device) -> Iterator[None]:
    """torch's global RNG forked and seeded from ``generator`` inside (untouched without one)."""
    if generator is None:
        yield
        return
    seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
