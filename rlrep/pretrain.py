"""Self-supervised pretraining of an rlrep encoder on an image dataset; checkpoints and probes.

Under ``torchrun --nproc_per_node N`` the same call runs data-parallel: every rank takes its
slice of each global batch, DDP averages gradients, embeddings are gathered across ranks with
their gradients (:mod:`rlrep.distributed`), BatchNorm is synchronised on CUDA, and rank 0
evaluates and writes the checkpoint.

``pretrain(method="simclr", dataset="digits", epochs=50, out="runs/digits")`` trains
augment → encoder → method → loss with Adam, evaluates a probe after every epoch (kNN top-1 for
labelled data, linear state R² for ``dmc:`` frames) and writes ``checkpoint.pt`` atomically each
epoch. Data order and augmentations are drawn from generators seeded by (seed, epoch), so a run
resumed from its checkpoint continues exactly as the uninterrupted run would have.

The checkpoint holds the encoder's config and weights, which ``rlrep.sb3.policy_kwargs(
pretrained=...)`` and ``rlrep probe`` rebuild.

Guards (errors are ``ValueError`` subclasses, which the CLI prints and exits 2 on):

- Checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain containers
  only, so a crafted file is refused without running anything. Everything saved is of that kind
  (the config is JSON-normalised).
- One writer per ``out`` (:func:`rlrep.runs.run_lock`, rank 0); ``resume`` needs a checkpoint
  unless ``start_if_missing``; a new run never overwrites a folder that holds one.
- On resume the stored config is compared with the requested one. The run's identity — method,
  dataset, encoder, augmentation, their kwargs, image and view shape, seed — cannot change.
  :data:`CHANGEABLE_KEYS` (lr, batch size, world size) change only with
  ``allow_config_change`` and are then applied (the optimizer takes the new lr) and recorded in
  the config's ``"changes"``. :data:`FREE_KEYS` (``epochs``, where the run ends) may always
  change, and are recorded too.
- Divergence is loud: the per-step losses of an epoch are checked at its end (one device sync
  per epoch instead of one per step; under ``torchrun`` after they are averaged over ranks, so
  every rank stops together), and so are the weights and optimizer state, before anything is
  evaluated or written. A NaN/inf raises :class:`NonFiniteLossError` naming the value, the epoch,
  the first bad step and the last good checkpoint, which is left untouched. ``config.json`` is
  written with each checkpoint, so it always describes ``checkpoint.pt`` and a run that fails
  before its first checkpoint leaves a folder that a plain rerun accepts.
- Bad arguments (epochs < 1, batch size < 2, lr not positive) and malformed datasets fail before
  any training.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

import rlrep.augment as augment_lib
import rlrep.distributed as dist_lib
import rlrep.encoders as encoder_lib
import rlrep.methods as method_lib
from rlrep.datasets import Dataset, DatasetError, load_dataset
from rlrep.probes import encode, knn_accuracy, linear_accuracy, state_r2
from rlrep.runs import (
    RunFolderError,
    check_changes,
    config_changes,
    record_changes,
    resume_decision,
    run_lock,
    write_json,
)

__all__ = [
    "CHANGEABLE_KEYS",
    "CHECKPOINT_FORMAT",
    "FREE_KEYS",
    "NonFiniteLossError",
    "build_encoder",
    "load_checkpoint",
    "pretrain",
    "probe",
]

CHECKPOINT_FORMAT = "rlrep-pretrain/1"
#: Config keys a resumed run may change only with ``allow_config_change`` (recorded).
CHANGEABLE_KEYS = ("lr", "batch_size", "world_size")
#: Config keys a resumed run may always change (recorded): ``epochs`` is the end point.
FREE_KEYS = ("epochs",)
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


class NonFiniteLossError(ValueError, FloatingPointError):
    """Pretraining diverged (a NaN/inf loss, weight or optimizer state); the last good checkpoint
    was kept. A ``ValueError`` (the CLI exits 2) and a ``FloatingPointError``."""


def default_augmentation(ds: Dataset) -> tuple[str, dict[str, Any]]:
    """The SimCLR recipe for images (no blur below 64 px, as SimCLR on CIFAR), CURL's crop for
    DMC observations (84% of the side, like 100 → 84; frame stacks keep one crop per sample)."""
    side = ds.image_shape[1]
    if ds.name.startswith("dmc:"):
        return "crop", {"size": round(0.84 * side)}
    return "simclr", {"size": side, "blur_p": 0.5 if side >= 64 else 0.0}


def build_encoder(config: dict[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(deterministic-view augmentation, encoder) from a checkpoint's ``config``."""
    augment = augment_lib.make(config["augmentation"], **config["augmentation_kwargs"]).eval()
    encoder = encoder_lib.make(
        config["encoder"], tuple(config["view_shape"]), **config["encoder_kwargs"]
    )
    return augment, encoder


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


def _load_state(module: torch.nn.Module, state: dict[str, Any], what: str) -> None:
    """``module.load_state_dict(state)``; ``ValueError`` naming ``what`` if it does not fit."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        detail = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(
            f"{what} ({detail[:300]}); the file mixes two runs or was edited — {_EXPECTED}"
        ) from None


def _save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: temporary file, fsync, rename."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def evaluate(encoder, augment, ds: Dataset, device) -> dict[str, float]:
    """kNN (labels) and/or linear R² (states) of the deterministic view's features."""
    view = augment.deterministic
    f_train = encode(encoder, view(ds.train), device=device)
    f_test = encode(encoder, view(ds.test), device=device)
    out: dict[str, float] = {}
    if ds.train_labels is not None:
        keep = ds.train_labels >= 0  # STL-10's unlabelled images carry -1
        out["knn_top1"] = knn_accuracy(f_train[keep], ds.train_labels[keep], f_test, ds.test_labels)
    if ds.train_states is not None:
        out["state_r2"] = state_r2(f_train, ds.train_states, f_test, ds.test_states)
    return out


def pretrain(
    method: str = "simclr",
    dataset: str = "digits",
    encoder: str = "curl",
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 1e-3,
    out: str | Path = "runs/pretrain",
    data_dir: str | Path = "data",
    augmentation: str | None = None,
    augmentation_kwargs: dict[str, Any] | None = None,
    encoder_kwargs: dict[str, Any] | None = None,
    method_kwargs: dict[str, Any] | None = None,
    image_size: int = 64,
    seed: int = 0,
    resume: bool = False,
    device: str = "auto",
    amp: bool | None = None,
    progress: bool = True,
    start_if_missing: bool = False,
    allow_config_change: bool = False,
) -> list[dict[str, float]]:
    """Pretrain ``encoder`` with ``method`` on ``dataset``; return the per-epoch history.

    :param epochs: the epoch the run ends at (a resumed run may extend it).
    :param batch_size: the global batch, at least 2 (every method learns from comparisons within
        a batch: in-batch negatives, BatchNorm or batch statistics); one larger than the
        training set is clamped to it.
    :param augmentation: an :func:`rlrep.augment.make` spec; ``None`` = :func:`default_augmentation`.
    :param amp: bfloat16 autocast (default: on CUDA only).
    :param resume: continue the run saved in ``out``.
    :param start_if_missing: with ``resume``, start fresh when ``out`` holds no checkpoint.
    :param allow_config_change: on resume, apply a different lr, batch size or world size (recorded
        in the config's ``"changes"``); the run's identity can never change.
    :raises RunFolderError: ``out`` is busy, holds a run and ``resume`` is False, holds no
        checkpoint to resume, or the requested config differs from the stored one.
    :raises NonFiniteLossError: the training diverged (the last good checkpoint is kept).
    :raises ValueError: bad arguments, datasets (``DatasetError``) or checkpoints.
    """
    from tqdm import tqdm

    _check_arguments(epochs, batch_size, lr)
    dev = _device(device)
    started_group = _init_distributed(dev)
    try:
        rank, world = dist_lib.rank(), dist_lib.world_size()
        if world > 1 and dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(dev)
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} must divide evenly over {world} processes")
        amp = dev.type == "cuda" if amp is None else amp
        out = Path(out)
        ckpt_path = out / "checkpoint.pt"
        with run_lock(out) if rank == 0 else contextlib.nullcontext():  # other ranks don't write
            resuming = resume_decision(
                has_checkpoint=ckpt_path.exists(),
                holds_run=ckpt_path.exists() or (out / "config.json").exists(),
                resume=resume,
                start_if_missing=start_if_missing,
                out=out,
            )
            ckpt = load_checkpoint(ckpt_path, map_location=dev) if resuming else None
            ds = load_dataset(dataset, data_dir, image_size=image_size, seed=seed)
            if augmentation is None:
                augmentation, default_kwargs = default_augmentation(ds)
                augmentation_kwargs = {**default_kwargs, **(augmentation_kwargs or {})}
            augmentation_kwargs = augmentation_kwargs or {}
            augment = augment_lib.make(augmentation, **augmentation_kwargs)
            view_shape = tuple(augment.deterministic(ds.train[:1]).shape[1:])
            config = _plain({
                "method": method,
                "dataset": dataset,
                "encoder": encoder,
                "encoder_kwargs": encoder_kwargs or {},
                "method_kwargs": method_kwargs or {},
                "augmentation": augmentation,
                "augmentation_kwargs": augmentation_kwargs,
                "image_shape": list(ds.image_shape),
                "view_shape": list(view_shape),
                "batch_size": batch_size,
                "lr": lr,
                "seed": seed,
                "world_size": world,
                "epochs": epochs,
            })  # fmt: skip
            start_epoch, history = 0, []
            if ckpt is not None:
                start_epoch, history = ckpt["epoch"], ckpt["history"]
                config = _resumed_config(
                    ckpt["config"], config, allow_config_change, start_epoch, ckpt_path
                )
                if epochs < start_epoch:
                    raise ValueError(
                        f"{ckpt_path} is at epoch {start_epoch}, past --epochs {epochs}; pass "
                        f"--epochs {start_epoch} or more to continue it"
                    )
            steps, batch_size = _steps(len(ds.train), batch_size, world, rank)
            torch.manual_seed(seed)  # the same initial weights on every rank
            net = encoder_lib.make(encoder, view_shape, **config["encoder_kwargs"])
            model = method_lib.make(method, net, **config["method_kwargs"]).to(dev)
            trained = model
            if world > 1:
                if dev.type == "cuda":
                    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
                trained = torch.nn.parallel.DistributedDataParallel(
                    model, device_ids=[dev.index] if dev.type == "cuda" else None
                )
            optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            if ckpt is not None:
                what = f"{ckpt_path} does not fit the {method} model its config describes"
                _load_state(model, ckpt["method"], what)
                _load_state(optimizer, ckpt["optimizer"], what)
                for group in optimizer.param_groups:  # a changed lr (allowed above) takes effect
                    group["lr"] = lr
            n = len(ds.train)
            for epoch in range(start_epoch, epochs):
                t0 = time.time()
                gen = torch.Generator().manual_seed(seed * 100_003 + epoch)  # same on all ranks
                aug_seed = (seed * 100_003 + epoch) * 1009 + rank
                aug_gen = torch.Generator(device=dev).manual_seed(aug_seed)
                order = torch.randperm(n, generator=gen)
                label = f"epoch {epoch + 1}/{epochs}"
                bar = tqdm(range(steps), desc=label, disable=not progress or rank > 0, leave=False)
                step_losses = _train_epoch(
                    trained, model, optimizer, augment, ds.train, order, bar,
                    batch_size, rank, amp, aug_gen,
                )  # fmt: skip
                if world > 1:  # the mean over ranks of every step
                    torch.distributed.all_reduce(step_losses)
                    step_losses /= world
                where = (ckpt_path, epoch, epochs, lr)
                _check_finite_losses(step_losses, *where)
                _check_finite_state(model, optimizer, *where)
                seconds = round(time.time() - t0, 2)
                row = {"epoch": epoch + 1, "loss": step_losses.mean().item(), "seconds": seconds}
                row["images_per_s"] = round(steps * batch_size / seconds, 1)
                history.append(row)
                if rank > 0:  # rank 0 evaluates and writes the checkpoint
                    continue
                row.update(evaluate(model.encoder, augment, ds, dev))
                _save(ckpt_path, {
                    "format": CHECKPOINT_FORMAT,
                    "config": config,
                    "encoder": model.encoder.state_dict(),
                    "method": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "history": history,
                })  # fmt: skip
                write_json(out / "config.json", config)  # after the checkpoint it describes
                metrics = "  ".join(
                    f"{k} {v:.4f}" for k, v in row.items() if k in ("loss", "knn_top1", "state_r2")
                )
                print(
                    f"epoch {epoch + 1:3d}/{epochs}  {metrics}  ({row['seconds']:.1f} s)",
                    flush=True,
                )
        if started_group:
            torch.distributed.barrier()
    finally:
        if started_group:
            torch.distributed.destroy_process_group()
    return history


def _train_epoch(
    trained: torch.nn.Module,
    model: method_lib.Method,
    optimizer: torch.optim.Optimizer,
    augment: torch.nn.Module,
    images: torch.Tensor,
    order: torch.Tensor,
    steps: Iterable[int],
    batch_size: int,
    rank: int,
    amp: bool,
    aug_gen: torch.Generator,
) -> torch.Tensor:
    """One epoch of optimizer steps over global batches of ``images`` in ``order``, this rank
    taking its slice of each; the per-step losses, on the device (not checked here: no sync)."""
    local = batch_size // dist_lib.world_size()
    dev = aug_gen.device
    model.train()
    losses = []
    for i in steps:
        start = i * batch_size + rank * local
        batch = images[order[start : start + local]].to(dev, non_blocking=True)
        view_a, view_b = augment.random(batch, aug_gen), augment.random(batch, aug_gen)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            result = trained(view_a, view_b)
        optimizer.zero_grad(set_to_none=True)
        result.loss.float().backward()
        optimizer.step()
        model.update_targets()
        losses.append(result.loss.detach())
    return torch.stack(losses)


def _check_arguments(epochs: int, batch_size: int, lr: float) -> None:
    """``ValueError`` for settings that cannot train, before anything is loaded."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer of at least 1, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(
            f"batch_size must be an integer of at least 2, got {batch_size!r}: every method "
            "learns from comparisons within a batch (in-batch negatives for simclr/curl, "
            "BatchNorm or batch statistics for the others); a batch larger than the training "
            "set is clamped to it"
        )
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")


def _device(device: str) -> torch.device:
    """``"auto"`` → CUDA if available, else the CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as JSON types (tuples become lists), as config.json holds it and
    ``torch.load(weights_only=True)`` reads it back."""
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"the pretraining config must hold JSON values (str, int, float, bool, None, lists, "
            f"dicts): {err}"
        ) from None


def _resumed_config(
    stored: dict[str, Any],
    requested: dict[str, Any],
    allow_change: bool,
    start_epoch: int,
    ckpt_path: Path,
) -> dict[str, Any]:
    """The config a resumed run continues with: ``requested``, with the stored run's change log
    and every difference from ``stored`` appended to it (stamped with ``start_epoch``).

    :raises RunFolderError: an identity key differs (always), or a :data:`CHANGEABLE_KEYS` key
        differs without ``allow_change``.
    """
    changes = config_changes(stored, requested)
    fixed = {k: v for k, v in changes.items() if k not in CHANGEABLE_KEYS + FREE_KEYS}
    if fixed:
        listed = ", ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in fixed.items())
        raise RunFolderError(
            f"--resume cannot change what {ckpt_path} was trained as ({listed}); these keys "
            "define the run, even with --allow-config-change. Resume with the stored values, or "
            "start a new run in another --out"
        )
    changeable = {k: v for k, v in changes.items() if k in CHANGEABLE_KEYS}
    check_changes(changeable, allow_change, "--allow-config-change")
    return record_changes(
        {**requested, "changes": stored.get("changes", [])}, changes, {"epoch": start_epoch}
    )


def _steps(n: int, batch_size: int, world: int, rank: int) -> tuple[int, int]:
    """(steps per epoch, global batch): a batch larger than the ``n`` training images is clamped
    to them (to a multiple of ``world``); the last partial batch is dropped."""
    clamped = min(batch_size, n - n % world)
    if clamped < 2 or clamped < world:
        raise DatasetError(
            f"the training split has {n} images; pretraining needs at least 2 (and one per "
            f"process) for a batch of {batch_size}. Use a larger dataset"
        )
    if clamped < batch_size and rank == 0:
        print(f"batch_size {batch_size} > {n} training images: using {clamped}", flush=True)
    return n // clamped, clamped


def _last_good(ckpt_path: Path, epoch: int) -> str:
    """What the message of a divergence in 0-based ``epoch`` says about the checkpoint."""
    if epoch == 0:
        return f"no checkpoint had been written yet (nothing at {ckpt_path})"
    return f"the last good checkpoint, {ckpt_path} (epoch {epoch}), was not overwritten"


def _check_finite_losses(
    losses: torch.Tensor, ckpt_path: Path, epoch: int, epochs: int, lr: float
) -> None:
    """:class:`NonFiniteLossError` naming the first non-finite step of ``losses`` (one epoch's,
    one per step), its value, the epoch and the last good checkpoint."""
    bad = (~torch.isfinite(losses)).nonzero()  # one device sync per epoch
    if len(bad) == 0:
        return
    step = int(bad[0])
    raise NonFiniteLossError(
        f"pretraining diverged: loss {losses[step].item()} at epoch {epoch + 1}/{epochs}, step "
        f"{step + 1}/{len(losses)} (the first non-finite step); training stopped and "
        f"{_last_good(ckpt_path, epoch)}. Lower --lr (now {lr}) or check the data"
    )


def _check_finite_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    ckpt_path: Path,
    epoch: int,
    epochs: int,
    lr: float,
) -> None:
    """:class:`NonFiniteLossError` if a weight, buffer or optimizer state overflowed although
    every loss was finite (the last update of the epoch), so none is ever checkpointed."""
    tensors = {f"model {k}": t for k, t in model.state_dict().items()}
    for i, state in enumerate(optimizer.state.values()):
        tensors.update({f"optimizer state {i}.{k}": t for k, t in state.items()})
    tensors = {k: t for k, t in tensors.items() if torch.is_tensor(t) and t.is_floating_point()}
    device = next(model.parameters()).device
    finite = torch.stack([torch.isfinite(t).all().to(device) for t in tensors.values()])
    if bool(finite.all()):  # one device sync per epoch
        return
    bad = [name for name, ok in zip(tensors, finite.tolist(), strict=True) if not ok]
    raise NonFiniteLossError(
        f"pretraining diverged: {', '.join(bad[:3])}{' …' if len(bad) > 3 else ''} became "
        f"non-finite in epoch {epoch + 1}/{epochs} although its losses were finite; training "
        f"stopped and {_last_good(ckpt_path, epoch)}. Lower --lr (now {lr})"
    )


def _init_distributed(device: torch.device) -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1); True if started here."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or torch.distributed.is_initialized():
        return False
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def probe(
    checkpoint: str | Path,
    dataset: str | None = None,
    data_dir: str | Path = "data",
    linear: bool = True,
    device: str = "auto",
) -> dict[str, float]:
    """Probe a checkpoint's encoder on ``dataset`` (default: the one it was trained on): kNN and
    linear top-1 for labelled sets, linear state R² for ``dmc:`` frames.

    :raises ValueError: an unreadable checkpoint, weights that do not fit the encoder its config
        describes, or a dataset whose image shape differs from the one it was trained on.
    """
    dev = _device(device)
    ckpt = load_checkpoint(checkpoint)
    config = ckpt["config"]
    try:
        augment, encoder = build_encoder(config)
    except (TypeError, KeyError) as err:
        raise ValueError(
            f"{checkpoint}: cannot rebuild its encoder from the config ({err}); {_EXPECTED}"
        ) from None
    what = f"{checkpoint}: its encoder weights do not fit the {config['encoder']} encoder its config describes"
    _load_state(encoder, ckpt["encoder"], what)
    encoder.to(dev)
    name = dataset or config["dataset"]
    ds = load_dataset(name, data_dir, image_size=config["image_shape"][1], seed=config["seed"])
    if tuple(ds.image_shape) != tuple(config["image_shape"]):
        raise ValueError(
            f"{checkpoint} was trained on {config['dataset']} images of shape "
            f"{tuple(config['image_shape'])}, but {name} has {tuple(ds.image_shape)}; probe it "
            "on a dataset of that shape (without --dataset, its own)"
        )
    result = evaluate(encoder, augment, ds, dev)
    if linear and ds.train_labels is not None:
        keep = ds.train_labels >= 0
        f_train = encode(encoder, augment.deterministic(ds.train[keep]), device=dev)
        f_test = encode(encoder, augment.deterministic(ds.test), device=dev)
        result["linear_top1"] = linear_accuracy(
            f_train, ds.train_labels[keep], f_test, ds.test_labels
        )
    return result
