"""The agents' Adam: PyTorch's fused kernel where it has one, the same update rule.

CURL, DrQ and DrQ-v2 step ``torch.optim.Adam`` with its defaults, which on a CPU loops over the
parameters one tensor and one elementwise op at a time (``foreach`` is a CUDA-only default). The
agents hold 7–11M trainable values, so that loop is ~15% of a CURL-SAC update at batch 32 on a
2-core CPU (37 of 234 ms, ``torch.profiler``); ``fused=True`` (CPU since PyTorch 2.4, CUDA since
2.0) runs one kernel per step, 5× faster there. The update rule is Adam's, its values the loop's
up to float rounding (the reference-code tests compare them in float64).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["adam", "adam_kwargs"]


@functools.cache
def _fused_on(device_type: str) -> bool:
    try:  # constructing one is PyTorch's own check of the device and version
        torch.optim.Adam([torch.zeros(1, device=device_type)], fused=True)
    except (RuntimeError, ValueError, AssertionError):  # AssertionError: torch without CUDA
        return False
    return True


def adam_kwargs(device: torch.device | str = "cpu") -> dict[str, Any]:
    """``{"fused": True}`` where PyTorch has a fused Adam for ``device`` and for the CPU (SB3
    builds a policy's optimisers before moving it to its device; the pyproject's PyTorch ≥ 2.4
    has both for CPUs and CUDA), else ``{}``: the keywords the
    agents add to every ``torch.optim.Adam`` they build, SB3's included (``optimizer_kwargs``)."""
    device_type = torch.device(device).type
    return {"fused": True} if _fused_on("cpu") and _fused_on(device_type) else {}


def adam(params: Iterable[torch.nn.Parameter], device: torch.device | str, **kwargs: Any):
    """``torch.optim.Adam(params, **kwargs)``, fused where :func:`adam_kwargs` says it can be."""
    return torch.optim.Adam(params, **kwargs, **adam_kwargs(device))
