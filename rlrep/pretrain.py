"""Self-supervised pretraining of an rlrep encoder on an image dataset: the training loop, its
argument checks, resuming and ``torchrun`` data parallelism.

``pretrain(method="simclr", dataset="digits", epochs=50, out="runs/digits")`` trains
augment → encoder → method → loss with Adam, evaluates a probe after every epoch
(:func:`rlrep.probes.evaluate`) and writes ``checkpoint.pt`` atomically each epoch
(:mod:`rlrep.checkpoint`, which also reads it without running code). Data order and
augmentations are drawn from generators seeded by (seed, epoch), so a run resumed from its
checkpoint continues exactly as the uninterrupted run would have. Under ``torchrun
--nproc_per_node N`` the same call runs data-parallel: every rank takes its slice of each global
batch, DDP averages gradients, embeddings are gathered across ranks with their gradients
(:mod:`rlrep.distributed`), BatchNorm is synchronised on CUDA, and rank 0 evaluates and writes
the checkpoint. ``rlrep probe`` is :func:`rlrep.probes.probe` (re-exported here).

Guards (errors are ``ValueError`` subclasses, which the CLI prints and exits 2 on; divergence
exits 1):

- One writer per ``out`` (:func:`rlrep.runs.run_lock`, rank 0); ``resume`` needs a checkpoint,
  ``resume_if_exists`` continues one if there is one and starts otherwise; a new run never
  overwrites a folder that holds one. A new run writes the marker ``rlrep-run.json`` (kind
  ``pretrain``) first; a folder with another kind's marker, or with ``checkpoint.pt`` or
  ``config.json`` but no marker, is refused (:func:`rlrep.runs.claim_run_folder`).
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
import inspect
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

import rlrep.augment as augment_lib
import rlrep.distributed as dist_lib
import rlrep.encoders as encoder_lib
import rlrep.methods as method_lib
from rlrep.checkpoint import (  # CHECKPOINT_FORMAT, build_encoder: re-exported
    CHECKPOINT_FORMAT,
    build_encoder,
    load_checkpoint,
    plain_config,
    restore_training_state,
    save_checkpoint,
)
from rlrep.datasets import Dataset, DatasetError, load_dataset
from rlrep.divergence import NonFiniteLossError, check_finite  # NonFiniteLossError: re-exported
from rlrep.objective import AuxObjective
from rlrep.probes import evaluate, probe, resolve_device  # probe: re-exported
from rlrep.runs import (
    claim_run_folder,
    resume_decision,
    resumed_config,
    run_lock,
    write_json,
    write_marker,
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

#: What a pretraining run writes in its folder besides the lock and the marker.
RUN_FILES = ("checkpoint.pt", "config.json")
#: Config keys a resumed run may change only with ``allow_config_change`` (recorded).
CHANGEABLE_KEYS = ("lr", "batch_size", "world_size")
#: Config keys a resumed run may always change (recorded): ``epochs`` is the end point.
FREE_KEYS = ("epochs",)
_PRINTED = (  # the history entries printed after each epoch
    "loss",
    "train_alignment",
    "train_uniformity",
    "train_mi_bound",
    "knn_top1",
    "state_r2",
    "state_r2_position",
    "state_r2_velocity",
)


def default_augmentation(ds: Dataset) -> tuple[str, dict[str, Any]]:
    """The SimCLR recipe for images (no blur below 64 px, as SimCLR on CIFAR); for DMC
    observations DrQ's random shift, scaled to the side (±4 px at 84, ±3 at 64; one shift per
    frame stack), whose deterministic view is the whole frame.

    Not CURL's crop (100 → 84, i.e. 84% of the side): at 64 px it drops the frame's border,
    where the cart of cartpole spends a fifth of a random episode, and its ±5 px jitter of
    absolute position costs the state probes (``experiments/representation_benchmark.py``)."""
    side = ds.image_shape[1]
    if ds.name.startswith("dmc:"):
        return "shift", {"pad": max(1, round(4 * side / 84))}
    return "simclr", {"size": side, "blur_p": 0.5 if side >= 64 else 0.0}


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
    multi_crop: str | None = None,
    encoder_kwargs: dict[str, Any] | None = None,
    method_kwargs: dict[str, Any] | None = None,
    image_size: int = 64,
    seed: int = 0,
    resume: bool = False,
    device: str = "auto",
    amp: bool | None = None,
    progress: bool = True,
    resume_if_exists: bool = False,
    allow_config_change: bool = False,
    eval_every: int = 1,
) -> list[dict[str, float]]:
    """Pretrain ``encoder`` with ``method`` on ``dataset``; return the per-epoch history.

    :param epochs: the epoch the run ends at (a resumed run may extend it).
    :param batch_size: the global batch, at least 2 (every method learns from comparisons within
        a batch: in-batch negatives, BatchNorm or batch statistics); one larger than the
        training set is clamped to it.
    :param augmentation: an :func:`rlrep.augment.make` spec; ``None`` = :func:`default_augmentation`.
    :param multi_crop: ``"2x32,4x16"``: 2 global views of side 32 and 4 local views of side 16
        per image, each from ``augmentation`` (:func:`rlrep.augment.multi_crop`; SwAV's crop
        scales), for the methods in :data:`rlrep.methods.MULTI_VIEW`; ``None``: two views. Local
        views of another side need an encoder that takes any size (``resnet18``).
    :param amp: bfloat16 autocast (default: on CUDA only).
    :param resume: continue the run saved in ``out``; an error if it holds no checkpoint.
    :param resume_if_exists: continue the run saved in ``out`` if it holds a checkpoint, else
        start a new one there (implies ``resume``).
    :param allow_config_change: on resume, apply a different lr, batch size or world size (recorded
        in the config's ``"changes"``); the run's identity can never change.
    :param eval_every: probe the encoder (:func:`rlrep.probes.evaluate`) after every
        ``eval_every``-th epoch and after the last; 0: after the last only.
    :raises RunFolderError: ``out`` is busy, holds a run and ``resume`` is False, holds no
        checkpoint to resume, or the requested config differs from the stored one.
    :raises NonFiniteLossError: the training diverged (the last good checkpoint is kept).
    :raises ValueError: bad arguments, datasets (``DatasetError``) or checkpoints.
    """
    from tqdm import tqdm

    _check_arguments(epochs, batch_size, lr, seed)
    method_lib.check_options(method, method_kwargs or {})
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
        raise ValueError(f"eval_every must be an integer >= 0, got {eval_every!r}")
    dev = resolve_device(device)
    if dataset.startswith(("dmc:", "folder:")):  # rendered or resized to image_size: check first
        try:
            encoder_lib.make(encoder, (3, image_size, image_size), **(encoder_kwargs or {}))
        except ValueError as err:
            raise ValueError(
                f"image_size {image_size} is too small for encoder {encoder!r}: {err}; pass a "
                "larger --image-size or another --encoder"
            ) from None
    started_group = dist_lib.init_from_environment(dev)
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
            # Refuses a folder another program or another kind of rlrep run wrote (no marker).
            ours = rank > 0 or claim_run_folder(out, "pretrain", RUN_FILES)
            resuming = resume_decision(
                has_checkpoint=ours and ckpt_path.exists(),
                holds_run=ours and any((out / name).exists() for name in RUN_FILES),
                resume=resume or resume_if_exists,
                start_if_missing=resume_if_exists,
                out=out,
            )
            if not resuming and rank == 0:
                write_marker(out, "pretrain")
            ckpt = load_checkpoint(ckpt_path, map_location=dev) if resuming else None
            ds = load_dataset(dataset, data_dir, image_size=image_size, seed=seed)
            if augmentation is None:
                augmentation, default_kwargs = default_augmentation(ds)
                if multi_crop is not None:  # the multi-crop spec sets the sizes
                    default_kwargs.pop("size", None)
                augmentation_kwargs = {**default_kwargs, **(augmentation_kwargs or {})}
            augmentation_kwargs = augmentation_kwargs or {}
            if multi_crop is None:
                augment = augment_lib.make(augmentation, **augmentation_kwargs)
            else:
                augment = augment_lib.multi_crop(multi_crop, augmentation, **augmentation_kwargs)
            view_shape = tuple(augment.deterministic(ds.train[:1]).shape[1:])
            config = plain_config({
                "method": method,
                "dataset": dataset,
                "encoder": encoder,
                "encoder_kwargs": encoder_kwargs or {},
                "method_kwargs": method_kwargs or {},
                "augmentation": augmentation,
                "augmentation_kwargs": augmentation_kwargs,
                "multi_crop": multi_crop,
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
                config = resumed_config(
                    ckpt["config"], config, allow_config_change, start_epoch, ckpt_path,
                    CHANGEABLE_KEYS, FREE_KEYS,
                )  # fmt: skip
                if epochs < start_epoch:
                    raise ValueError(
                        f"{ckpt_path} is at epoch {start_epoch}, past --epochs {epochs}; pass "
                        f"--epochs {start_epoch} or more to continue it"
                    )
            steps, batch_size = _steps(len(ds.train), batch_size, world, rank)
            torch.manual_seed(seed)  # the same initial weights on every rank
            net = encoder_lib.make(encoder, view_shape, **config["encoder_kwargs"])
            if isinstance(augment, augment_lib.MultiCrop):
                check_takes_local_views(net, augment, ds.train[:2], encoder)
            method_kwargs = _dataset_kwargs(method, ds, config["method_kwargs"])
            model = method_lib.make(method, net, **method_kwargs).to(dev)
            model.gather_distributed = world > 1  # negatives and batch statistics are global
            if world > 1 and dev.type == "cuda":
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            objective = trained = AuxObjective(augment, model)
            if world > 1:
                trained = torch.nn.parallel.DistributedDataParallel(
                    objective, device_ids=[dev.index] if dev.type == "cuda" else None
                )
            optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            if ckpt is not None:
                restore_training_state(ckpt, model, optimizer, ckpt_path)
                for group in optimizer.param_groups:  # a changed lr (allowed above) takes effect
                    group["lr"] = lr
            n = len(ds.train)
            for epoch in range(start_epoch, epochs):
                t0 = time.time()
                gen = torch.Generator().manual_seed(seed * 100_003 + epoch)  # same on all ranks
                aug_seed = (seed * 100_003 + epoch) * 1009 + rank
                aug_gen = torch.Generator(device=dev).manual_seed(aug_seed)
                # The methods' own draws (the memory bank's negatives, SAC-AE's dequantisation
                # noise) use the global generator: seeded per epoch, so a resumed run is exact.
                torch.manual_seed(aug_seed + 1_000_000_007)
                order = torch.randperm(n, generator=gen)
                label = f"epoch {epoch + 1}/{epochs}"
                bar = tqdm(range(steps), desc=label, disable=not progress or rank > 0, leave=False)
                step_losses = _train_epoch(
                    trained, objective, optimizer, ds, order, bar,
                    batch_size, rank, amp, aug_gen, (epoch * steps, epochs * steps),
                )  # fmt: skip
                if world > 1:  # the mean over ranks of every step
                    torch.distributed.all_reduce(step_losses)
                    step_losses /= world
                check_finite(step_losses, model, optimizer, ckpt_path, epoch, epochs, lr)
                seconds = round(time.time() - t0, 2)
                row = {"epoch": epoch + 1, "loss": step_losses.mean().item(), "seconds": seconds}
                row["images_per_s"] = round(steps * batch_size / seconds, 1)
                # The objective's own means over the epoch (this rank): accuracy, feature_std.
                aux = objective.pop_metrics()
                row.update({f"train_{k}": round(v, 6) for k, v in aux.items() if k != "loss"})
                history.append(row)
                if rank > 0:  # rank 0 evaluates and writes the checkpoint
                    continue
                if epoch + 1 == epochs or (eval_every and (epoch + 1) % eval_every == 0):
                    row.update(evaluate(model.encoder, augment, ds, dev))
                save_checkpoint(ckpt_path, config, model, optimizer, epoch + 1, history)
                write_json(out / "config.json", config)  # after the checkpoint it describes
                metrics = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k in _PRINTED)
                print(f"epoch {epoch + 1:3d}/{epochs}  {metrics}  ({seconds:.1f} s)", flush=True)
        if started_group:
            torch.distributed.barrier()
    finally:
        if started_group:
            torch.distributed.destroy_process_group()
    return history


def _train_epoch(
    trained: torch.nn.Module,
    objective: AuxObjective,
    optimizer: torch.optim.Optimizer,
    ds: Dataset,
    order: torch.Tensor,
    steps: Iterable[int],
    batch_size: int,
    rank: int,
    amp: bool,
    aug_gen: torch.Generator,
    schedule: tuple[int, int],
) -> torch.Tensor:
    """One epoch of optimizer steps over global batches of ``ds.train`` in ``order``, this rank
    taking its slice of each (for a temporal method, the windows that start at those images);
    the per-step losses, on the device (not checked here: no sync).
    ``trained`` is ``objective`` or its DistributedDataParallel wrapper. ``schedule``: (steps
    before this epoch, steps in the run), for the targets' momentum."""
    local = batch_size // dist_lib.world_size()
    dev = aug_gen.device
    objective.train()
    losses = []
    for i in steps:
        start = i * batch_size + rank * local
        index = order[start : start + local]
        if objective.temporal:
            windows = [w if w is None else w.to(dev) for w in _windows(ds, index, objective)]
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                result = trained(*windows, generator=aug_gen)
        else:
            views = objective.views(ds.train[index].to(dev, non_blocking=True), aug_gen)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                result = trained(views=views, index=index.to(dev))  # a memory bank's rows
        optimizer.zero_grad(set_to_none=True)
        result.loss.float().backward()
        optimizer.step()
        objective.update_targets(objective.method.momentum_at(schedule[0] + i, schedule[1]))
        losses.append(result.loss.detach())
    return torch.stack(losses)


def _windows(
    ds: Dataset, index: torch.Tensor, objective: AuxObjective
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(windows, actions, valid)`` starting at training images ``index`` (a window of one,
    SAC-AE's, needs no time order)."""
    horizon = objective.method.horizon
    if horizon == 0:
        return ds.train[index][:, None], None, None
    return ds.sequences.windows(ds.train_index[index], horizon)


#: The options that count negatives kept from earlier batches, capped by default at a quarter of
#: the training images: a store as large as the dataset holds each image's own earlier keys
#: among its negatives. On digits (1,438 images, 60 epochs) MoCo's default 4,096-key queue held
#: every image about three times and ended at kNN 0.666; with 256 keys 0.838, with this cap's
#: 359 keys 0.788 (the random encoder: 0.852; experiments/results/method_zoo/).
STORE_OPTIONS = {"moco": "queue_size", "memory_bank": "num_negatives"}


def _dataset_kwargs(method: str, ds: Dataset, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The method's options with what the dataset tells: a memory bank's rows (one per image),
    a store of negatives no larger than a quarter of the images (:data:`STORE_OPTIONS`, unless
    given), the action size of an action-conditioned method; ``DatasetError`` for a temporal
    method on a dataset without time order."""
    kwargs, cls = dict(kwargs), method_lib.METHODS.get(method)
    if getattr(cls, "needs_index", False):
        kwargs.setdefault("num_instances", len(ds.train))
    store = STORE_OPTIONS.get(method)
    if store is not None and store not in kwargs:
        default = inspect.signature(cls).parameters[store].default
        kwargs[store] = max(1, min(default, len(ds.train) // 4))
    if cls is None or not issubclass(cls, method_lib.TemporalMethod):
        return kwargs
    if ds.sequences is None and cls is not method_lib.SACAE:
        raise DatasetError(
            f"method {method!r} learns from windows of time, but {ds.name} holds no episodes: "
            "use a sequence dataset (dmc:TASK, or npz:PATH with 'actions' (N, A) and "
            "'episodes' (N,) arrays; a dmc: cache written before they were recorded is "
            "re-rendered once deleted)"
        )
    if cls.needs_actions:
        kwargs.setdefault("action_dim", ds.sequences.action_dim)
    return kwargs


def check_takes_local_views(
    encoder: torch.nn.Module, augment: augment_lib.MultiCrop, images: torch.Tensor, name: str
) -> None:
    """``ValueError`` naming the fix if ``encoder`` (``fixed_size``: a linear layer on flattened
    conv maps) cannot encode the multi-crop's local views, which have another size."""
    local = augment.local_augment.deterministic(images).shape[1:]
    size = augment.deterministic(images).shape[1:]
    if augment.num_local and local != size and getattr(encoder, "fixed_size", False):
        raise ValueError(
            f"encoder {name!r} takes {tuple(size)} views only, but the multi-crop's local views "
            f"are {tuple(local)}; use --encoder resnet18 (global pooling takes any size) or "
            f"local crops of the global side, e.g. '2x{size[-1]},4x{size[-1]}'"
        )


def _check_arguments(epochs: int, batch_size: int, lr: float, seed: int) -> None:
    """``ValueError`` for settings that cannot train, before anything is loaded."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an integer in [0, 2**31), got {seed!r}")
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
