"""Run augmentations in sequence with one random source."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from rlrep.augment.base import (
    SeededGenerators,
    check_images,
    check_pixel_range,
    pixel_range_checked,
)

__all__ = ["Compose"]


class Compose(nn.Module):
    """Apply ``augmentations`` in order; in ``.eval()`` each gives its deterministic view.

    :param augmentations: the steps, each a module ``forward(x, generator=None)``.
    :param seed: seed of the generator shared by every step; ``None`` uses torch's global RNG
        (or each step's own seed, where it has one).
    """

    def __init__(self, augmentations: Iterable[nn.Module], seed: int | None = None) -> None:
        super().__init__()
        self.steps = nn.ModuleList(augmentations)
        self.seed = seed
        self._generators = SeededGenerators(seed)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random view in training mode, the deterministic view in ``.eval()`` mode."""
        return self.random(x, generator) if self.training else self.deterministic(x)

    def random(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random view of ``x`` (each step in turn) whatever the module's mode."""
        self._check(x)
        if generator is None:
            generator = self._generators.get(x.device)
        with pixel_range_checked():  # checked once above; steps keep values in [0, 1]
            for step in self.steps:
                x = step.random(x, generator=generator)
        return x

    def deterministic(self, x: torch.Tensor) -> torch.Tensor:
        """The ``.eval()`` view of ``x`` whatever the module's mode."""
        self._check(x)
        with pixel_range_checked():
            for step in self.steps:
                x = step.deterministic(x)
        return x

    def _check(self, x: torch.Tensor) -> None:
        """Shape and dtype (each step checks them too), and the value range once for all steps."""
        if len(self.steps) == 0:
            check_images(x, "Compose")
        elif isinstance(x, torch.Tensor):
            check_pixel_range(x, type(self.steps[0]).__name__)

    def __len__(self) -> int:
        return len(self.steps)
