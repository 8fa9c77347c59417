"""Validation of agent configurations (:mod:`rlrep.agents.presets`): every option of the type of
its default, sizes positive, ranges named in the error."""

from __future__ import annotations

import math
import sys
from dataclasses import fields
from typing import Any

__all__ = ["check_options", "check_ranges", "whole_rollouts"]


def check_options(config: Any, label: str, positive: tuple[str, ...]) -> None:
    """``ValueError`` naming the option unless every field has its default's type (ints not
    bools, finite floats), the ``positive`` ones are > 0 and ``action_repeat`` and
    ``channels_last`` are of their kinds or ``None``."""
    for f in fields(config):
        value, default = getattr(config, f.name), f.default
        if isinstance(default, (bool, int)):
            ok = isinstance(value, type(default)) and not (
                isinstance(value, bool) and not isinstance(default, bool)
            )
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
        else:
            continue
        if not ok:
            kind = type(default).__name__
            raise ValueError(f"{label} option {f.name} must be a finite {kind}, got {value!r}")
    channels_last = getattr(config, "channels_last", None)
    if channels_last is not None and not isinstance(channels_last, bool):
        raise ValueError(
            f"{label} option channels_last must be True, False or None, got {channels_last!r}"
        )
    repeat = config.action_repeat
    if repeat is not None and not (isinstance(repeat, int) and not isinstance(repeat, bool)):
        raise ValueError(f"{label} option action_repeat must be an int or None, got {repeat!r}")
    for name in positive:
        if getattr(config, name) is not None and getattr(config, name) <= 0:
            raise ValueError(f"{label} option {name} must be > 0, got {getattr(config, name)}")
    _check_sizes(config, label)


def _check_sizes(config: Any, label: str) -> None:
    """Options that are valid alone but not together."""
    batch, buffer = getattr(config, "batch_size", None), getattr(config, "buffer_size", None)
    if batch is not None and buffer is not None and buffer < batch:
        raise ValueError(
            f"{label} option buffer_size {buffer} < batch_size {batch}: the replay could never "
            "hold one batch of distinct transitions; pass buffer_size >= batch_size"
        )
    pad, side = getattr(config, "pad", None), getattr(config, "image_size", None)
    if pad is not None and side is not None and 2 * pad >= side:
        raise ValueError(
            f"{label} option pad {pad} is half the {side}-px image or more: a shifted view would "
            "be mostly padding (DrQ pads 4 at 84 px); pass a smaller pad"
        )


def check_ranges(label: str, checks: tuple[tuple[bool, str], ...]) -> None:
    """``ValueError`` "``label`` option ``message``" for the first ``(ok, message)`` not ok."""
    for ok, message in checks:
        if not ok:
            raise ValueError(f"{label} option {message}")


def whole_rollouts(model: Any, frames: int, repeat: int, agent: str) -> int:
    """``frames`` rounded up to whole rollouts of an on-policy agent (SB3 collects ``n_steps``
    per env before it stops), said on stderr when it changes; off-policy agents: as given."""
    if not hasattr(model, "n_steps"):
        return frames
    rollout = model.n_steps * model.n_envs * repeat
    whole = -(-frames // rollout) * rollout
    if whole != frames:
        print(
            f"{agent} trains whole rollouts of {rollout} frames (n_steps {model.n_steps} × n_envs "
            f"{model.n_envs} × action repeat {repeat}): {frames} frames become {whole}",
            file=sys.stderr,
        )
    return whole
