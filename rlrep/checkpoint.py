"""The pretraining checkpoint (``checkpoint.pt``, format :data:`CHECKPOINT_FORMAT`): reading it
without running code, validating it, writing it atomically and rebuilding its encoder.

A checkpoint is a dict of tensors and plain containers — ``format``, ``config`` (JSON values,
see :func:`plain_config`), ``encoder`` and ``method`` state dicts, ``optimizer`` state,
``epoch``, ``history`` and ``logs`` (how far ``logs/`` reached) — written by
:func:`rlrep.pretrain.pretrain` and read by ``rlrep probe`` (:func:`rlrep.probes.probe`) and
``rlrep.sb3.policy_kwargs(pretrained=...)``.

Guards (errors are ``ValueError``, which the CLI prints and exits 2 on):

- :func:`load_checkpoint` reads with ``torch.load(weights_only=True)``: a file holding any other
  Python object is refused without running anything; a folder, a missing, empty, truncated or
  corrupt file, or a torch file that is not an rlrep pretraining checkpoint gets a message
  saying which.
- :func:`load_state` (and :func:`load_encoder`, :func:`restore_training_state`, built on it)
  turns weights or optimizer state that do not fit their module into a ``ValueError``.
- :func:`save_checkpoint` writes a temporary file, fsyncs it and renames it over the old one,
  so an interrupted write never leaves a half-written ``checkpoint.pt``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import rlrep.augment as augment_lib
import rlrep.encoders as encoder_lib
from rlrep.atomic import atomic_write

if TYPE_CHECKING:
    from rlrep.methods import Method

__all__ = [
    "CHECKPOINT_FORMAT",
    "build_encoder",
    "load_checkpoint",
    "load_encoder",
    "load_state",
    "plain_config",
    "read_pretrained",
    "restore_training_state",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "rlrep-pretrain/1"
_CHECKPOINT_KEYS = ("config", "encoder", "method", "optimizer", "epoch", "history")
_CONFIG_KEYS = (
    "dataset",
    "encoder",
    "encoder_kwargs",
    "augmentation",
    "augmentation_kwargs",
    "image_shape",
    "view_shape",
    "seed",
)
_EXPECTED = "expected the checkpoint.pt written by `rlrep pretrain`"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a pretraining checkpoint with ``torch.load(weights_only=True)`` (tensors and plain
    containers only: a crafted file cannot run code).

    :raises ValueError: no such file, a folder, an empty, truncated or corrupt file, a file that
        holds other Python objects, or one that is not an rlrep pretraining checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; {_EXPECTED} (e.g. {path / 'checkpoint.pt'})")
    if not path.exists():
        raise ValueError(f"no checkpoint at {path}; {_EXPECTED}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (an interrupted copy?); {_EXPECTED}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several kinds; its text suggests weights_only=False
        raise ValueError(_load_error(path, err)) from None
    _check_checkpoint(path, ckpt)
    return ckpt


def save_checkpoint(
    path: Path,
    config: dict[str, Any],
    model: Method,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    history: list[dict[str, float]],
    logs: dict[str, int] | None = None,
) -> None:
    """Write the checkpoint of a run after ``epoch`` epochs to ``path`` atomically (temporary
    file, fsync, rename): :data:`CHECKPOINT_FORMAT`, the JSON ``config`` (see
    :func:`plain_config`), the encoder's and the whole method's weights, the optimizer state,
    the per-epoch ``history`` and how far the run's ``logs/`` reached
    (:func:`rlrep.run_logs.log_lengths`; a resumed run cuts them back to it)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": config,
        "encoder": model.encoder.state_dict(),
        "method": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "history": history,
        "logs": dict(logs or {}),
    }
    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def restore_training_state(
    ckpt: dict[str, Any], model: Method, optimizer: torch.optim.Optimizer, source: str | Path
) -> None:
    """Load a checkpoint's method weights and optimizer state into ``model`` and ``optimizer``.

    :param source: where ``ckpt`` was read from, for the message.
    :raises ValueError: they do not fit (the file mixes two runs or was edited).
    """
    what = f"{source} does not fit the {ckpt['config']['method']} model its config describes"
    load_state(model, ckpt["method"], what)
    load_state(optimizer, ckpt["optimizer"], what)


def plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as JSON types (tuples become lists), as config.json holds it and
    ``torch.load(weights_only=True)`` reads it back.

    :raises ValueError: a value JSON cannot hold.
    """
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"the pretraining config must hold JSON values (str, int, float, bool, None, lists, "
            f"dicts): {err}"
        ) from None


def build_encoder(config: dict[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(deterministic-view augmentation, encoder) from a checkpoint's ``config``."""
    if config.get("multi_crop"):  # its deterministic view is the global crop's
        spec, recipe = config["multi_crop"], config["augmentation"]
        augment = augment_lib.multi_crop(spec, recipe, **config["augmentation_kwargs"])
    else:
        augment = augment_lib.make(config["augmentation"], **config["augmentation_kwargs"])
    augment.eval()
    encoder = encoder_lib.make(
        config["encoder"], tuple(config["view_shape"]), **config["encoder_kwargs"]
    )
    return augment, encoder


def load_encoder(
    ckpt: dict[str, Any], source: str | Path
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """:func:`build_encoder` from a loaded checkpoint's config, with its encoder weights loaded.

    :param source: where ``ckpt`` was read from, for the messages.
    :raises ValueError: the config cannot rebuild an encoder, or the weights do not fit it.
    """
    config = ckpt["config"]
    try:
        augment, encoder = build_encoder(config)
    except (TypeError, KeyError) as err:
        raise ValueError(
            f"{source}: cannot rebuild its encoder from the config ({err}); {_EXPECTED}"
        ) from None
    what = f"{source}: its encoder weights do not fit the {config['encoder']} encoder its config describes"
    load_state(encoder, ckpt["encoder"], what)
    return augment, encoder


def load_state(
    module: torch.nn.Module | torch.optim.Optimizer, state: dict[str, Any], what: str
) -> None:
    """``module.load_state_dict(state)``; ``ValueError`` naming ``what`` if it does not fit."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        detail = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(
            f"{what} ({detail[:300]}); the file mixes two runs or was edited — {_EXPECTED}"
        ) from None


def _load_error(path: Path, err: Exception) -> str:
    """The message for a file ``torch.load(weights_only=True)`` could not read."""
    text = str(err)
    blocked = re.search(r"GLOBAL ([\w.]+)", text)
    if blocked:
        return (
            f"refusing to load {path}: it holds a Python object ({blocked.group(1)}) besides "
            "tensors and plain containers, which an rlrep checkpoint never does and which could "
            f"run code when unpickled; {_EXPECTED}, from a source you trust"
        )
    noise = ("Weights only load failed", "Please file an issue", "Check the documentation")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if not line.startswith(noise)), "")[:200]
    return (
        f"{path} is not a readable checkpoint ({type(err).__name__}: {detail or 'no detail'}); "
        f"it is truncated (an interrupted write or copy), corrupt or not a torch file; {_EXPECTED}"
    )


def _check_checkpoint(path: Path, ckpt: Any) -> None:
    """``ValueError`` unless ``ckpt`` has the format and the entries ``rlrep pretrain`` writes."""
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not an rlrep pretraining checkpoint (format {CHECKPOINT_FORMAT}); "
            f"{_EXPECTED}"
        )
    missing = [k for k in _CHECKPOINT_KEYS if k not in ckpt]
    config, weights = ckpt.get("config"), ckpt.get("encoder")
    if not isinstance(config, dict) or not isinstance(weights, dict):
        missing += ["config or encoder (not dicts)"]
    else:
        missing += [f"config[{k!r}]" for k in _CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}; {_EXPECTED}")


def read_pretrained(pretrained: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """``{"config": ..., "encoder": weights or None}`` of a ``pretrained=`` value: a checkpoint
    path; ``{"path", "config"}`` as :func:`rlrep.sb3.policy_kwargs` keeps it (weights read from
    the file; a file gone, e.g. on another machine, gives the architecture only, with a warning:
    a saved SB3 model brings its own trained weights); or ``{"config", "encoder"}`` in memory."""
    if isinstance(pretrained, (str, os.PathLike)):
        checkpoint = load_checkpoint(pretrained)
        return {"config": checkpoint["config"], "encoder": checkpoint["encoder"]}
    if "encoder" in pretrained:
        return {"config": pretrained["config"], "encoder": pretrained["encoder"]}
    if Path(pretrained["path"]).exists():
        return read_pretrained(pretrained["path"])
    warnings.warn(
        f"pretrained checkpoint {pretrained['path']} not found: the encoder is built from its "
        "recorded config with fresh weights (a model loaded with SB3's load() then gets its "
        "trained weights from the saved parameters)",
        stacklevel=3,
    )
    return {"config": pretrained["config"], "encoder": None}
