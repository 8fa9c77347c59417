"""``policy_kwargs(...)``: the one call that plugs rlrep into a stock SB3 algorithm."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

import rlrep.augment as augment_lib
import rlrep.encoders as encoder_lib
import rlrep.methods as method_lib
from rlrep.sb3.checks import check_aux_weight
from rlrep.sb3.extractor import RepresentationExtractor

__all__ = ["policy_kwargs"]


def policy_kwargs(
    method: str | None = None,
    augmentation: str | torch.nn.Module | None = "crop",
    aux_weight: float | None = None,
    encoder: str = "curl",
    image_size: int | None = None,
    rl_view: str = "augmented",
    encoder_kwargs: dict[str, Any] | None = None,
    method_kwargs: dict[str, Any] | None = None,
    augmentation_kwargs: dict[str, Any] | None = None,
    pretrained: str | os.PathLike | None = None,
    freeze: bool = False,
    rank_every: int = 100,
    frame_channels: int | None = None,
    decoupled: bool = False,
    aux_on_actor: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """``policy_kwargs`` for SB3's SAC, TD3, DQN, PPO, A2C and sb3-contrib's TQC, QR-DQN
    (``"CnnPolicy"``) that train an rlrep encoder on augmented pixels with RL loss +
    ``aux_weight ×`` the method's loss.

    ``SAC("CnnPolicy", env, policy_kwargs=policy_kwargs(method="curl", augmentation="crop"))``

    :param method: a name in :data:`rlrep.methods.METHODS` (``curl``, ``simclr``, ``byol``, …),
        or ``None`` for augmentation only (RAD / DrQ style). The methods that learn from time
        (:data:`rlrep.methods.TEMPORAL`: ``atc``, ``cpc``, ``spr``, ``time_sup_con``) read
        windows of the replay buffer: SAC, TD3 or DQN with
        ``replay_buffer_class=rlrep.sb3.FrameStackReplayBuffer``.
    :param augmentation: an :func:`rlrep.augment.make` spec, e.g. ``"crop"``, ``"shift"``,
        ``"crop+color_jitter"``; ``None`` for none; or a kornia augmentation module, applied per
        stacked frame (``augmentation_kwargs={"eval_view": "center_crop"}`` for crops).
    :param aux_weight: weight of the auxiliary loss (0 = augmentation only); default: the
        method's ``default_aux_weight``, which starts every method's weighted loss within 10× of
        SAC's critic loss (CURL 0.1, the InfoNCE family 0.25, BYOL 1, Barlow Twins 0.002;
        the table in docs/benchmarks.md).
    :param encoder: ``curl`` (default), ``nature``, ``impala`` or ``resnet18``.
    :param image_size: side the encoder sees (default: 84% of the frame for ``crop``, 100 → 84).
    :param rl_view: ``"augmented"`` (RAD/DrQ/CURL) or ``"deterministic"`` input for the RL loss;
        the latter keeps PPO's importance ratios exact (DrAC, Raileanu et al. 2021).
    :param pretrained: path of a ``rlrep pretrain`` checkpoint whose encoder is loaded (checked
        now; the kwargs keep its path and config, the weights are read when the policy is built
        and saved with the model, which then loads without the file).
    :param freeze: keep that encoder fixed (``True``) or fine-tune it (``False``). Frozen, with
        the checkpoint's deterministic view for the RL losses (``rl_view="deterministic"``, or
        ``augmentation=None`` where that view is the identity, as for ``dmc:`` checkpoints), the
        fast path is feature replay: ``SAC("MlpPolicy", rlrep.sb3.FrozenEncoderFeatures(env,
        pretrained=path))`` encodes each observation once and stores its features, the same
        ones (:class:`~rlrep.sb3.FrozenEncoderFeatures`). With the default
        ``rl_view="augmented"`` every update encodes fresh random views of the sampled pixels
        instead, which stored features cannot give.
    :param rank_every: the effective rank of the features is logged every ``rank_every``
        auxiliary steps (``0``: never). The auxiliary loss, contrastive accuracy and feature std
        are logged on every step: SB3's logger shows their means under ``aux/`` (``aux/loss``, or
        ``aux/critic.loss`` and ``aux/actor.loss`` with ``aux_on_actor=True``) with no callback.
    :param frame_channels: channels per stacked frame: 3 (RGB) or 1 (grayscale, e.g. Atari);
        default: 3 when the observation's C is a multiple of 3, else 1 (SB3's Atari stacks of 4
        frames: 1). Colour augmentations refuse grayscale frames; a value the env contradicts
        (its ``VecFrameStack``) is refused at the first update, naming this option.
    :param decoupled: the RL losses do not train the encoder's convolutional trunk: they read
        its output detached and train the encoder's head (``curl``: fc + LayerNorm;
        ``nature``, ``impala``: the last Linear; ``resnet18``: none) and the RL heads, while
        the auxiliary method trains the convs (and the head), as ATC (Stooke et al. 2021) and
        the ``atc-sac`` agent; with :class:`~rlrep.sb3.SharedEncoderSACPolicy`, actor and
        critic share that encoder.
    :param aux_on_actor: where the actor has an encoder of its own (SB3's SAC and TD3
        ``"CnnPolicy"``; PPO/A2C with ``share_features_extractor=False``), give it an auxiliary
        loss of its own as well. Default ``False``: the auxiliary loss trains the critic's encoder
        only, once per gradient step, as in CURL (whose actor reads the critic's encoder; here
        the actor's encoder learns from the actor loss, as in stock SB3; with ``decoupled=True``
        each encoder keeps its aux loss, the only loss that trains its convs);
        :class:`~rlrep.sb3.SharedEncoderSACPolicy` gives CURL's sharing itself.
    :param extra: other SB3 policy kwargs (``net_arch``, ``share_features_extractor``, …).
    :raises ValueError: unknown method, augmentation or encoder, ``aux_weight`` not finite or
        negative, ``normalize_images=False`` (the extractor needs SB3's [0, 1] scaling); image
        checks happen when SB3 builds the policy and sees the observation space.
    """
    aux_weight = check_aux_weight(aux_weight)
    if not extra.get("normalize_images", True):
        raise ValueError(
            f"normalize_images={extra['normalize_images']!r}: rlrep's extractor needs SB3 to "
            "scale uint8 images to [0, 1] (without it SB3 passes raw 0–255 floats); drop "
            "normalize_images from the policy kwargs (SB3's default is True)"
        )
    if method is not None and method not in method_lib.METHODS:
        raise ValueError(
            f"unknown method {method!r}; valid: {', '.join(method_lib.METHODS)} or None"
        )
    if decoupled and method is None:
        raise ValueError(
            "decoupled=True leaves the encoder's convs to the auxiliary loss (the RL losses "
            "read them detached and train the head only): pass a method (e.g. method='atc')"
        )
    if encoder not in encoder_lib.ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; valid: {', '.join(encoder_lib.ENCODERS)}")
    if frame_channels is not None:
        frame_channels = augment_lib.check_frame_channels(frame_channels)
    # Fails early on an unknown name, or a colour step on grayscale frames.
    augment_lib.make(augmentation, frame_channels=frame_channels or 3)
    if pretrained is not None:
        from rlrep.checkpoint import load_checkpoint

        # Checked now; the kwargs keep the path and the (small) config, not the weights: they are
        # read when the policy is built and saved with the model as its parameters, so kwargs
        # printed or saved by tools (rl-zoo3's config.yml, SB3's model data) stay small.
        ckpt = load_checkpoint(pretrained)
        pretrained = {"path": str(Path(pretrained).resolve()), "config": ckpt["config"]}
    return {
        "features_extractor_class": RepresentationExtractor,
        "features_extractor_kwargs": {
            "encoder": encoder,
            "augmentation": augmentation,
            "image_size": image_size,
            "method": method,
            "aux_weight": aux_weight,
            "rl_view": rl_view,
            "encoder_kwargs": encoder_kwargs,
            "method_kwargs": method_kwargs,
            "augmentation_kwargs": augmentation_kwargs,
            "pretrained": pretrained,
            "freeze": freeze,
            "rank_every": rank_every,
            "frame_channels": frame_channels,
            "decoupled": decoupled,
            "aux_on_actor": aux_on_actor,
        },
        **extra,
    }
