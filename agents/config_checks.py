"""Validation of agent configurations (:mod:`rlrep.agents.presets`): every option of the type of
its default, sizes positive, ranges named in the error."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

__all__ = ["check_options", "check_ranges"]


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


def check_ranges(label: str, checks: tuple[tuple[bool, str], ...]) -> None:
    """``ValueError`` "``label`` option ``message``" for the first ``(ok, message)`` not ok."""
    for ok, message in checks:
        if not ok:
            raise ValueError(f"{label} option {message}")
