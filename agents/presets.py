"""Agent presets as data: CURL-SAC's hyperparameters (Laskin et al. 2020, Table 3) per task.

One table of values, resolved per task by :func:`curl_sac_config`; code lives in
:mod:`rlrep.agents.curl_sac`. Where the paper and the reference code (MishaLaskin/curl) differ, the
choice and the alternative are noted next to the value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["CURL_SAC", "PPO_AUX", "CURLSACConfig", "curl_sac_config"]


@dataclass(frozen=True)
class CURLSACConfig:
    """CURL-SAC hyperparameters. Step counts are agent steps (one action, repeated)."""

    # None: CURL's per-task value (Table 3), from rlrep.envs.default_action_repeat.
    action_repeat: int | None = None
    image_size: int = 100  # rendered; the encoder sees the 84 crop
    crop_size: int = 84
    frame_stack: int = 3
    buffer_size: int = 100_000  # replay capacity in transitions (agent steps; Table 3: 100k)
    initial_steps: int = 1000  # random-action agent steps before learning (Table 3: 1000)
    # Paper text: 512. Reference code: 32 by default, 128 in its scripts.
    batch_size: int = 512
    hidden_dim: int = 1024
    features_dim: int = 50
    num_filters: int = 32
    num_layers: int = 4
    # The code has no tanh on the encoder output (output_logits=True); the paper's sketch does.
    encoder_tanh: bool = False
    lr: float = 1e-3  # actor, critic and encoder (2e-4 for cheetah-run)
    alpha_lr: float = 1e-4
    alpha_beta1: float = 0.5
    init_temperature: float = 0.1
    gamma: float = 0.99
    critic_tau: float = 0.01  # Q heads
    encoder_tau: float = 0.05  # critic encoder → target encoder (the CURL key encoder)
    actor_update_freq: int = 2
    target_update_freq: int = 2
    curl_update_freq: int = 1
    # The reference code steps the encoder twice per CURL update (encoder_optimizer holds the
    # critic's conv layers, cpc_optimizer the whole CURL module; curl#28). True reproduces it.
    double_encoder_step: bool = True
    # Conv weights and inputs in channels-last memory format: same update, faster on the CPU
    # (experiments/bench_curl_official.py). None: on when the agent runs on the CPU (unmeasured
    # on GPUs, where it stays off).
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value, default = getattr(self, f.name), f.default
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
                raise ValueError(f"CURL-SAC option {f.name} must be a finite {kind}, got {value!r}")
        if self.channels_last is not None and not isinstance(self.channels_last, bool):
            raise ValueError(
                f"CURL-SAC option channels_last must be True, False or None, got {self.channels_last!r}"
            )
        repeat = self.action_repeat
        if repeat is not None and not (isinstance(repeat, int) and not isinstance(repeat, bool)):
            raise ValueError(
                f"CURL-SAC option action_repeat must be an int or None, got {repeat!r}"
            )
        for name in _POSITIVE:
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"CURL-SAC option {name} must be > 0, got {getattr(self, name)}")
        checks = (
            (self.batch_size >= 2, f"batch_size {self.batch_size} < 2 (CURL needs negatives)"),
            (self.initial_steps >= 0, f"initial_steps {self.initial_steps} < 0"),
            (0 <= self.gamma <= 1, f"gamma {self.gamma} is outside [0, 1]"),
            (0 < self.critic_tau <= 1, f"critic_tau {self.critic_tau} is outside (0, 1]"),
            (0 < self.encoder_tau <= 1, f"encoder_tau {self.encoder_tau} is outside (0, 1]"),
            (0 <= self.alpha_beta1 < 1, f"alpha_beta1 {self.alpha_beta1} is outside [0, 1)"),
            (self.crop_size <= self.image_size, f"crop_size {self.crop_size} > image_size"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"CURL-SAC option {message}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_POSITIVE = ("action_repeat", "image_size", "crop_size", "frame_stack", "buffer_size",
             "hidden_dim", "features_dim", "num_filters", "num_layers", "lr", "alpha_lr",
             "init_temperature", "actor_update_freq", "target_update_freq", "curl_update_freq")  # fmt: skip


CURL_SAC = CURLSACConfig()

# Per-task differences from the defaults (Table 3); the action repeats of the same table live
# with the environments (rlrep.envs.default_action_repeat), which apply them.
_CURL_TASKS: dict[str, dict[str, Any]] = {"cheetah-run": {"lr": 2e-4}}


def curl_sac_config(task: str, **overrides: Any) -> CURLSACConfig:
    """The CURL-SAC configuration for a DMC task: defaults, the task's row of Table 3 (learning
    rate; the action repeat is the env's), then ``overrides``. Tasks outside the table get the
    defaults."""
    unknown = set(overrides) - set(CURLSACConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown CURL-SAC options {sorted(unknown)}; valid: {sorted(CURLSACConfig.__dataclass_fields__)}"
        )
    return replace(CURL_SAC, **{**_CURL_TASKS.get(task, {}), **overrides})


#: PPO with an auxiliary loss on pixels (SB3 PPO defaults otherwise).
PPO_AUX: dict[str, Any] = {
    "method": "simclr",
    "augmentation": "crop",
    "aux_weight": None,  # the method's default_aux_weight
    "rl_view": "deterministic",  # PPO's ratios on the rollout's (center) view (DrAC)
    "n_steps": 512,
    "batch_size": 128,
    "n_epochs": 4,
    "learning_rate": 3e-4,
    "n_envs": 4,
}
