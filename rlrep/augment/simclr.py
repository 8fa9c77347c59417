"""The SimCLR image recipe (Chen et al. 2020) and its random resized crop, batched on device.

BYOL (Grill et al. 2020) uses the same recipe with two asymmetric views: blur p = 1.0 for the
first, blur p = 0.1 and solarize p = 0.2 for the second.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rlrep.augment.base import Augmentation, Sampler, from_float, to_float
from rlrep.augment.compose import Compose
from rlrep.augment.geometric import RandomFlip, _pair
from rlrep.augment.photometric import ColorJitter, GaussianBlur, RandomGrayscale, RandomSolarize

__all__ = ["RandomResizedCrop", "simclr_recipe"]


class RandomResizedCrop(Augmentation):
    """Crop a random box (area fraction in ``scale``, aspect ratio in ``ratio``, log-uniform)
    and resize it to ``size`` with bilinear sampling: one batched ``grid_sample``.

    Boxes that do not fit are clamped to the image (torchvision retries instead). Eval: the whole
    image resized to ``size``.
    """

    def __init__(
        self,
        size: int | tuple[int, int] = 32,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"RandomResizedCrop: need 0 < scale[0] <= scale[1] <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"RandomResizedCrop: need 0 < ratio[0] <= ratio[1], got {ratio}")
        self.size, self.scale, self.ratio = _pair(size, "RandomResizedCrop: size"), scale, ratio

    def random_view(self, x: torch.Tensor, sampler: Sampler) -> torch.Tensor:
        b = x.shape[0]
        area = sampler.uniform(b, *self.scale)
        log_ratio = sampler.uniform(b, math.log(self.ratio[0]), math.log(self.ratio[1]))
        aspect = log_ratio.exp()
        # Box sides as fractions of the image side (area is relative, so H and W cancel).
        bw = (area * aspect).sqrt().clamp_(max=1.0)
        bh = (area / aspect).sqrt().clamp_(max=1.0)
        # Box centre in normalised coordinates [-1, 1], keeping the box inside the image.
        cx = (sampler.uniform(b) * 2 - 1) * (1 - bw)
        cy = (sampler.uniform(b) * 2 - 1) * (1 - bh)
        theta = torch.zeros(b, 2, 3, device=x.device)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = bw, cx, bh, cy
        return self._sample(x, theta)

    def eval_view(self, x: torch.Tensor) -> torch.Tensor:
        if (x.shape[2], x.shape[3]) == self.size:
            return x
        img = F.interpolate(to_float(x), size=self.size, mode="bilinear", align_corners=False)
        return from_float(img, x)

    def _sample(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        img = to_float(x)
        grid = F.affine_grid(
            theta.to(img.dtype), [x.shape[0], x.shape[1], *self.size], align_corners=False
        )
        out = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return from_float(out, x)

    def extra_repr(self) -> str:
        return f"size={self.size}, scale={self.scale}, ratio={self.ratio}"


def simclr_recipe(
    size: int | tuple[int, int] = 32,
    scale: tuple[float, float] = (0.08, 1.0),
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
    jitter_p: float = 0.8,
    grayscale_p: float = 0.2,
    blur_p: float = 0.5,
    solarize_p: float = 0.0,
    seed: int | None = None,
) -> Compose:
    """SimCLR's augmentation: random resized crop, flip (p = 0.5), colour jitter
    (0.4, 0.4, 0.4, 0.1, p = 0.8), grayscale (p = 0.2), Gaussian blur (p = ``blur_p``) and
    solarize (p = ``solarize_p``, 0 for SimCLR, 0.2 for BYOL's second view).

    For RGB input (C = 3·k); use ``blur_p=0`` for CIFAR-sized images, as SimCLR does.
    """
    b, c, s, h = jitter
    steps = [
        RandomResizedCrop(size, scale=scale),
        RandomFlip(p=0.5),
        ColorJitter(b, c, s, h, p=jitter_p),
        RandomGrayscale(p=grayscale_p),
    ]
    if blur_p > 0:
        steps.append(GaussianBlur(p=blur_p))
    if solarize_p > 0:
        steps.append(RandomSolarize(p=solarize_p))
    return Compose(steps, seed=seed)
