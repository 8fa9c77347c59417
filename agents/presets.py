"""Agent presets as data: the hyperparameters of CURL-SAC (Laskin et al. 2020, Table 3), DrQ
(Kostrikov, Yarats & Fergus 2020), DrQ-v2 (Yarats et al. 2021), ATC-SAC (Stooke et al. 2021) and
SPR-SAC, per task.

One table of values per agent, resolved per task by :func:`config_for`; code lives in
:mod:`rlrep.agents.curl_sac`, :mod:`rlrep.agents.drq` and :mod:`rlrep.agents.drqv2`. Where a paper
and its reference code differ, the choice and the alternative are noted next to the value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from rlrep.agents.config_checks import check_options, check_ranges
from rlrep.envs.tasks import SYNTHETIC_TASK

__all__ = [
    "ATC_SAC",
    "CURL_SAC",
    "DRQ",
    "DRQ_V2",
    "PPO_AUX",
    "SPR_SAC",
    "ATCSACConfig",
    "CURLSACConfig",
    "DrQConfig",
    "DrQV2Config",
    "SPRSACConfig",
    "config_for",
    "curl_sac_config",
]


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
        check_options(self, "CURL-SAC", _POSITIVE)
        check_ranges("CURL-SAC", (
            (self.batch_size >= 2, f"batch_size {self.batch_size} < 2 (CURL needs negatives)"),
            (self.initial_steps >= 0, f"initial_steps {self.initial_steps} < 0"),
            (0 <= self.gamma <= 1, f"gamma {self.gamma} is outside [0, 1]"),
            (0 < self.critic_tau <= 1, f"critic_tau {self.critic_tau} is outside (0, 1]"),
            (0 < self.encoder_tau <= 1, f"encoder_tau {self.encoder_tau} is outside (0, 1]"),
            (0 <= self.alpha_beta1 < 1, f"alpha_beta1 {self.alpha_beta1} is outside [0, 1)"),
            (self.crop_size <= self.image_size, f"crop_size {self.crop_size} > image_size"),
        ))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_POSITIVE = ("action_repeat", "image_size", "crop_size", "frame_stack", "buffer_size",
             "hidden_dim", "features_dim", "num_filters", "num_layers", "lr", "alpha_lr",
             "init_temperature", "actor_update_freq", "target_update_freq", "curl_update_freq")  # fmt: skip


CURL_SAC = CURLSACConfig()

# Per-task differences from the defaults (Table 3); the action repeats of the same table live
# with the environments (rlrep.envs.default_action_repeat), which apply them.
_CURL_TASKS: dict[str, dict[str, Any]] = {"cheetah-run": {"lr": 2e-4}}
# The synthetic task (40×40 frames, 50-step episodes) at a width a CPU trains in ~90 s (the
# quick start): small nets, a short random phase, crops 40 → 32.
_CURL_SYNTHETIC = {"image_size": 40, "crop_size": 32, "batch_size": 64, "initial_steps": 300,
                   "hidden_dim": 64, "num_filters": 16, "buffer_size": 2000}  # fmt: skip


@dataclass(frozen=True)
class DrQConfig:
    """DrQ hyperparameters (Kostrikov, Yarats & Fergus 2020; denisyarats/drq ``config.yaml``).
    Step counts are agent steps."""

    # None: the per-task value of PlaNet's benchmark, which CURL's Table 3 shares (env default).
    action_repeat: int | None = None
    image_size: int = 84  # rendered and seen: the shift pads by 4 and crops back to 84
    pad: int = 4
    frame_stack: int = 3
    buffer_size: int = 100_000
    initial_steps: int = 1000  # num_seed_steps
    # Paper and the code's comment: 512 ("please use 512 to reproduce"); config default 128.
    batch_size: int = 512
    hidden_dim: int = 1024
    features_dim: int = 50
    num_filters: int = 32
    num_layers: int = 4
    encoder_tanh: bool = True  # DrQ's encoder ends in tanh (output_logits=False)
    lr: float = 1e-3  # actor, critic (with the encoder)
    alpha_lr: float = 1e-3  # DrQ steps log α with the same lr and Adam's default betas
    alpha_beta1: float = 0.9
    init_temperature: float = 0.1
    gamma: float = 0.99
    critic_tau: float = 0.01  # the whole critic, encoder included
    actor_update_freq: int = 2
    target_update_freq: int = 2
    target_views: int = 2  # K: the target averaged over K augmentations of next_obs
    critic_views: int = 2  # M: the critic loss summed over M augmentations of obs
    channels_last: bool | None = None  # as CURL-SAC's

    def __post_init__(self) -> None:
        check_options(self, "DrQ", _DRQ_POSITIVE)
        check_ranges("DrQ", (
            (self.batch_size >= 1, f"batch_size {self.batch_size} < 1"),
            (self.initial_steps >= 0, f"initial_steps {self.initial_steps} < 0"),
            (self.pad >= 0, f"pad {self.pad} < 0"),
            (0 <= self.gamma <= 1, f"gamma {self.gamma} is outside [0, 1]"),
            (0 < self.critic_tau <= 1, f"critic_tau {self.critic_tau} is outside (0, 1]"),
            (0 <= self.alpha_beta1 < 1, f"alpha_beta1 {self.alpha_beta1} is outside [0, 1)"),
        ))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_DRQ_POSITIVE = ("action_repeat", "image_size", "frame_stack", "buffer_size", "hidden_dim",
                 "features_dim", "num_filters", "num_layers", "lr", "alpha_lr",
                 "init_temperature", "actor_update_freq", "target_update_freq", "target_views",
                 "critic_views")  # fmt: skip

DRQ = DrQConfig()


@dataclass(frozen=True)
class DrQV2Config:
    """DrQ-v2 hyperparameters (Yarats, Fergus, Lazaric & Pinto 2021; facebookresearch/drqv2
    ``cfgs/config.yaml`` and ``cfgs/task/*.yaml``). Step counts are agent steps."""

    action_repeat: int = 2
    image_size: int = 84
    pad: int = 4
    frame_stack: int = 3
    # The code's 1M; the replay stores each frame once (~21 KB per transition at 9×84×84), so
    # 1M holds ~22 GB when full (host RAM grows as frames arrive; a GPU ring is allocated
    # whole): pass buffer_size=100_000 on smaller machines.
    buffer_size: int = 1_000_000
    initial_steps: int = 2000  # num_seed_frames 4000 at action repeat 2: uniform actions
    batch_size: int = 256
    n_step: int = 3
    hidden_dim: int = 1024
    features_dim: int = 50
    num_filters: int = 32
    num_layers: int = 4
    lr: float = 1e-4  # encoder, actor, critic
    gamma: float = 0.99
    critic_tau: float = 0.01  # the critic's trunk and Q heads (there is no target encoder)
    update_every: int = 2  # one update every 2 agent steps
    # Exploration σ, linear from std_start to std_end over std_steps agent steps ('medium'
    # tasks: 500k; 'easy' ones 100k, per task below), also the target policy's noise.
    std_start: float = 1.0
    std_end: float = 0.1
    std_steps: int = 500_000
    std_clip: float = 0.3  # the target's and the actor loss's noise is clipped to ±0.3
    channels_last: bool | None = None  # as CURL-SAC's

    def __post_init__(self) -> None:
        check_options(self, "DrQ-v2", _DRQV2_POSITIVE)
        check_ranges("DrQ-v2", (
            (self.batch_size >= 1, f"batch_size {self.batch_size} < 1"),
            (self.initial_steps >= 0, f"initial_steps {self.initial_steps} < 0"),
            (self.pad >= 0, f"pad {self.pad} < 0"),
            (0 <= self.gamma <= 1, f"gamma {self.gamma} is outside [0, 1]"),
            (0 < self.critic_tau <= 1, f"critic_tau {self.critic_tau} is outside (0, 1]"),
            (self.std_start >= 0 and self.std_end >= 0, "std_start / std_end must be >= 0"),
        ))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_DRQV2_POSITIVE = ("action_repeat", "image_size", "frame_stack", "buffer_size", "n_step",
                   "hidden_dim", "features_dim", "num_filters", "num_layers", "lr",
                   "update_every", "std_steps", "std_clip")  # fmt: skip

DRQ_V2 = DrQV2Config()

# DrQ-v2's 'easy' tasks anneal σ over 100k agent steps (cfgs/task/easy.yaml).
_DRQV2_EASY = ("cartpole-balance", "cartpole-balance_sparse", "cartpole-swingup",
               "ball_in_cup-catch", "finger-spin", "hopper-stand", "pendulum-swingup",
               "walker-stand", "walker-walk", "reacher-easy", "reacher-hard")  # fmt: skip
_DRQV2_TASKS: dict[str, dict[str, Any]] = {task: {"std_steps": 100_000} for task in _DRQV2_EASY}
_DRQV2_TASKS[SYNTHETIC_TASK] = {"action_repeat": 1}  # one step per action


@dataclass(frozen=True)
class ATCSACConfig:
    """ATC-SAC hyperparameters: SAC on an encoder trained by ATC (Stooke, Lee, Abbeel & Laskin
    2021; astooke/rlpyt ``ul/experiments/rl_with_ul/configs/dmc_sac_with_ul.py`` and the launch
    script of its final DMC runs). Step counts are agent steps."""

    action_repeat: int | None = None  # the final runs' frame skips: PlaNet's, as CURL's table
    image_size: int = 84
    pad: int = 4  # random shift of RL and ATC views alike
    frame_stack: int = 3
    buffer_size: int = 100_000
    initial_steps: int = 10_000  # min_steps_rl = min_steps_ul = 1e4 (random actions before)
    batch_size: int = 256  # 512 for cheetah-run (per task below)
    hidden_dim: int = 1024
    features_dim: int = 50  # the RL's fc1: Linear + LayerNorm over the ATC-trained convs
    num_filters: int = 32
    num_layers: int = 4
    encoder_tanh: bool = False
    lr: float = 1e-3  # q_lr, pi_lr (2e-4 for cheetah-run)
    alpha_lr: float = 1e-4
    alpha_beta1: float = 0.5
    init_temperature: float = 0.1
    gamma: float = 0.99
    critic_tau: float = 0.01
    encoder_tau: float = 0.05  # the critic's target encoder
    actor_update_freq: int = 2
    target_update_freq: int = 2
    # stop_rl_conv_grad: the RL losses do not train the convs; ATC alone does.
    decoupled: bool = True
    atc_batch_size: int = 256  # ul_batch_size, its own sample (ul_use_rl_samples=False)
    atc_lr: float = 1e-3  # ul_learning_rate
    # Agent steps over which atc_lr anneals to 0 by a cosine; 0: constant. The reference anneals
    # over its runs' lengths (per task below); a fixed horizon keeps a run that is extended on
    # resume identical to one planned that long.
    atc_lr_steps: int = 0
    atc_delta_t: int = 1
    atc_latent_dim: int = 128
    atc_hidden_dim: int = 512
    atc_momentum: float = 0.99  # ul_target_update_tau 0.01, every update
    atc_clip_grad_norm: float = 10.0
    channels_last: bool | None = None  # as CURL-SAC's

    def __post_init__(self) -> None:
        check_options(self, "ATC-SAC", _ATC_POSITIVE)
        check_ranges("ATC-SAC", (
            (self.batch_size >= 1, f"batch_size {self.batch_size} < 1"),
            (self.atc_batch_size >= 2, f"atc_batch_size {self.atc_batch_size} < 2 (negatives)"),
            (self.initial_steps >= 0, f"initial_steps {self.initial_steps} < 0"),
            (self.atc_lr_steps >= 0, f"atc_lr_steps {self.atc_lr_steps} < 0"),
            (self.pad >= 0, f"pad {self.pad} < 0"),
            (0 <= self.gamma <= 1, f"gamma {self.gamma} is outside [0, 1]"),
            (0 < self.critic_tau <= 1, f"critic_tau {self.critic_tau} is outside (0, 1]"),
            (0 < self.encoder_tau <= 1, f"encoder_tau {self.encoder_tau} is outside (0, 1]"),
            (0 <= self.atc_momentum <= 1, f"atc_momentum {self.atc_momentum} is outside [0, 1]"),
            (0 <= self.alpha_beta1 < 1, f"alpha_beta1 {self.alpha_beta1} is outside [0, 1)"),
        ))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_ATC_POSITIVE = ("action_repeat", "image_size", "frame_stack", "buffer_size", "hidden_dim",
                 "features_dim", "num_filters", "num_layers", "lr", "alpha_lr",
                 "init_temperature", "actor_update_freq", "target_update_freq", "atc_lr",
                 "atc_delta_t", "atc_latent_dim", "atc_hidden_dim", "atc_clip_grad_norm")  # fmt: skip

ATC_SAC = ATCSACConfig()
# The final DMC runs (launch_dmc_sac_with_ul_final_1.py): learning rates, batches, and their
# lengths in agent steps (10k random steps + the budget), over which ATC's lr anneals.
_ATC_TASKS: dict[str, dict[str, Any]] = {
    "cheetah-run": {"lr": 2e-4, "batch_size": 512, "atc_batch_size": 512, "atc_lr_steps": 260_000},
    "ball_in_cup-catch": {"atc_lr_steps": 85_000},
    "cartpole-swingup": {"atc_lr_steps": 47_500},
    "walker-walk": {"atc_lr_steps": 260_000},
    "hopper-hop": {"atc_lr_steps": 260_000},
}


@dataclass(frozen=True)
class SPRSACConfig:
    """SPR-SAC hyperparameters: CURL-SAC's (Table 3) for everything SAC, DrQ's shift for the
    views, SPR's (Schwarzer et al. 2021; mila-iqia/spr) for the auxiliary loss. Step counts are
    agent steps."""

    action_repeat: int | None = None  # PlaNet's per-task values, as CURL's table
    image_size: int = 84  # rendered and seen: the shift pads by 4 and crops back to 84
    pad: int = 4
    frame_stack: int = 3
    buffer_size: int = 100_000
    initial_steps: int = 1000
    batch_size: int = 512
    hidden_dim: int = 1024
    features_dim: int = 50
    num_filters: int = 32
    num_layers: int = 4
    encoder_tanh: bool = False
    lr: float = 1e-3  # actor, critic with encoder, SPR's heads (2e-4 for cheetah-run)
    alpha_lr: float = 1e-4
    alpha_beta1: float = 0.5
    init_temperature: float = 0.1
    gamma: float = 0.99
    critic_tau: float = 0.01
    encoder_tau: float = 0.05  # the critic's target encoder (SAC's target, not SPR's)
    actor_update_freq: int = 2
    target_update_freq: int = 2
    spr_steps: int = 5  # K
    # Weight of the mean over steps of 2 − 2 cos: K gives each cosine the paper's weight
    # (λ = 2 on Σ_k −cos; the code's model_spr_weight 5 at K = 5). Scale it with spr_steps.
    spr_weight: float = 5.0
    spr_projection_dim: int = 256
    spr_hidden_dim: int = 256  # the transition MLP
    spr_momentum: float = 0.99  # momentum_tau 0.01
    channels_last: bool | None = None  # as CURL-SAC's

    def __post_init__(self) -> None:
        check_options(self, "SPR-SAC", _SPR_POSITIVE)
        check_ranges("SPR-SAC", (
            (self.batch_size >= 1, f"batch_size {self.batch_size} < 1"),
            (self.initial_steps >= 0, f"initial_steps {self.initial_steps} < 0"),
            (self.pad >= 0, f"pad {self.pad} < 0"),
            (0 <= self.spr_weight <= 1000, f"spr_weight {self.spr_weight} is outside [0, 1000]"),
            (0 <= self.gamma <= 1, f"gamma {self.gamma} is outside [0, 1]"),
            (0 < self.critic_tau <= 1, f"critic_tau {self.critic_tau} is outside (0, 1]"),
            (0 < self.encoder_tau <= 1, f"encoder_tau {self.encoder_tau} is outside (0, 1]"),
            (0 <= self.spr_momentum <= 1, f"spr_momentum {self.spr_momentum} is outside [0, 1]"),
            (0 <= self.alpha_beta1 < 1, f"alpha_beta1 {self.alpha_beta1} is outside [0, 1)"),
        ))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SPR_POSITIVE = ("action_repeat", "image_size", "frame_stack", "buffer_size", "hidden_dim",
                 "features_dim", "num_filters", "num_layers", "lr", "alpha_lr",
                 "init_temperature", "actor_update_freq", "target_update_freq", "spr_steps",
                 "spr_projection_dim", "spr_hidden_dim")  # fmt: skip

SPR_SAC = SPRSACConfig()

#: agent → (its defaults, per-task changes, the name its messages use).
_PRESETS: dict[str, tuple[Any, dict[str, dict[str, Any]], str]] = {
    "curl-sac": (CURL_SAC, {**_CURL_TASKS, SYNTHETIC_TASK: _CURL_SYNTHETIC}, "CURL-SAC"),
    "drq": (DRQ, {}, "DrQ"),
    "drqv2": (DRQ_V2, _DRQV2_TASKS, "DrQ-v2"),
    "atc-sac": (ATC_SAC, _ATC_TASKS, "ATC-SAC"),
    "spr-sac": (SPR_SAC, _CURL_TASKS, "SPR-SAC"),
}


def config_for(agent: str, task: str, **overrides: Any) -> Any:
    """An agent's configuration for a task: its defaults, the task's row of its table, then
    ``overrides`` (``ValueError`` naming the valid options for an unknown one)."""
    if agent not in _PRESETS:
        raise ValueError(f"no presets for agent {agent!r}; valid: {', '.join(_PRESETS)}")
    defaults, tasks, label = _PRESETS[agent]
    valid = type(defaults).__dataclass_fields__
    unknown = set(overrides) - set(valid)
    if unknown:
        raise ValueError(f"unknown {label} options {sorted(unknown)}; valid: {sorted(valid)}")
    return replace(defaults, **{**tasks.get(task, {}), **overrides})


def curl_sac_config(task: str, **overrides: Any) -> CURLSACConfig:
    """The CURL-SAC configuration for a DMC task: defaults, the task's row of Table 3 (learning
    rate; the action repeat is the env's), then ``overrides``; tasks outside the table get the
    defaults (:func:`config_for` with ``"curl-sac"``)."""
    return config_for("curl-sac", task, **overrides)


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
