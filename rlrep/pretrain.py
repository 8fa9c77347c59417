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
  ``pretrain``) first; a folder with another kind's marker, or with ``checkpoint.pt``,
  ``config.json`` or ``logs/`` but no marker, is refused (:func:`rlrep.runs.claim_run_folder`).
- The logs (``logs/progress.csv``, tensorboard events; :mod:`rlrep.pretrain_log`) are written
  and flushed before each checkpoint, which records how far they reached; a resumed run cuts
  them back to it, a new run clears what a run stopped before its first checkpoint logged.
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
import os
import time
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
from rlrep.pretrain_epoch import train_epoch as _train_epoch  # patched by the tests
from rlrep.pretrain_log import PretrainLog
from rlrep.pretrain_setup import (  # default_augmentation, check_takes_local_views: re-exported
    batch_steps,
    check_arguments,
    check_takes_local_views,
    default_augmentation,
    make_augment,
)
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
    "check_takes_local_views",
    "default_augmentation",
    "load_checkpoint",
    "pretrain",
    "probe",
]

#: What a pretraining run writes in its folder besides the lock, the marker and :data:`LOGS`.
RUN_FILES = ("checkpoint.pt", "config.json")
#: The logs' folder: a run stopped before its first checkpoint left nothing else, and a new run
#: clears it (it is no run to resume); a folder without the marker that holds it is refused.
LOGS = "logs"
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
    crop_size: int | None = None,
) -> list[dict[str, float]]:
    """Pretrain ``encoder`` with ``method`` on ``dataset``; return the per-epoch history (the rows
    of ``out/logs/progress.csv``, also logged to tensorboard there: :mod:`rlrep.pretrain_log`).

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
    :param crop_size: the ``size`` of the augmentation's crop (``crop``: the crop's side, at
        most the images'; ``simclr``/``resized_crop``: the side views are resized to;
        ``translate``: the canvas, at least the images'); ``None``: the recipe's (the default
        simclr's is the images' side). Recorded in the config's ``augmentation_kwargs``.
    :raises RunFolderError: ``out`` is busy, holds a run and ``resume`` is False, holds no
        checkpoint to resume, or the requested config differs from the stored one.
    :raises NonFiniteLossError: the training diverged (the last good checkpoint is kept).
    :raises ValueError: bad arguments, datasets (``DatasetError``) or checkpoints.
    """
    from tqdm import tqdm

    check_arguments(epochs, batch_size, lr, seed)
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
    log: PretrainLog | None = None
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
            ours = rank > 0 or claim_run_folder(out, "pretrain", (*RUN_FILES, LOGS))
            resuming = resume_decision(
                has_checkpoint=ours and ckpt_path.exists(),
                holds_run=ours and any((out / name).exists() for name in RUN_FILES),
                resume=resume or resume_if_exists,
                start_if_missing=resume_if_exists,
                out=out,
            )
            log = PretrainLog(out) if rank == 0 else None
            if not resuming and rank == 0:
                write_marker(out, "pretrain")
                log.clear()  # what a run stopped before its first checkpoint logged
            ckpt = load_checkpoint(ckpt_path, map_location=dev) if resuming else None
            ds = load_dataset(dataset, data_dir, image_size=image_size, seed=seed)
            augmentation, augmentation_kwargs, augment, view_shape = make_augment(
                ds, augmentation, augmentation_kwargs, multi_crop, crop_size
            )
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
            steps, batch_size = batch_steps(len(ds.train), batch_size, world, rank)
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
                if log is not None:  # the logs of epochs after the checkpoint are redone
                    log.rewind(ckpt.get("logs", {}))
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
                done = history[-1].get("step", epoch * steps) if history else 0
                row = {"epoch": epoch + 1, "step": done + steps, "loss": step_losses.mean().item(),
                       "lr": optimizer.param_groups[0]["lr"], "seconds": seconds}  # fmt: skip
                step_rows = _step_rows(step_losses, done, row["lr"], objective.method,
                                       (epoch * steps, epochs * steps))  # fmt: skip
                if step_rows[-1]["momentum"] is not None:  # a method with momentum targets
                    row["momentum"] = step_rows[-1]["momentum"]
                row["images_per_s"] = round(steps * batch_size / seconds, 1)
                # The objective's own means over the epoch (this rank): accuracy, feature_std.
                aux = objective.pop_metrics()
                row.update({f"train_{k}": round(v, 6) for k, v in aux.items() if k != "loss"})
                history.append(row)
                if rank > 0:  # rank 0 evaluates and writes the checkpoint
                    continue
                if epoch + 1 == epochs or (eval_every and (epoch + 1) % eval_every == 0):
                    row.update(evaluate(model.encoder, augment, ds, dev))
                lengths = log.write_epoch(history, step_rows)  # logs first, then the checkpoint
                save_checkpoint(ckpt_path, config, model, optimizer, epoch + 1, history, lengths)
                write_json(out / "config.json", config)  # after the checkpoint it describes
                metrics = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k in _PRINTED)
                print(f"epoch {epoch + 1:3d}/{epochs}  {metrics}  ({seconds:.1f} s)", flush=True)
        if started_group:
            torch.distributed.barrier()
    finally:
        if log is not None:
            log.close()
        if started_group:
            torch.distributed.destroy_process_group()
    if rank == 0:
        print(
            f"run folder {out}: checkpoint.pt (epoch {len(history)}), config.json, {LOGS}/ "
            f"(progress.csv; tensorboard --logdir {out / LOGS}); plot: rlrep plot {out}",
            flush=True,
        )
    return history


def _step_rows(
    losses: torch.Tensor, done: int, lr: float, method: method_lib.Method, schedule: tuple[int, int]
) -> list[dict[str, float | None]]:
    """What is logged of each optimiser step of an epoch (read after it, so no sync per step):
    the steps done after it, its loss, the learning rate and the targets' momentum (``None``
    without targets) of its update, from ``schedule`` as :func:`_train_epoch` steps them."""
    return [
        {"step": done + i + 1, "loss": loss, "learning_rate": lr,
         "momentum": method.momentum_at(schedule[0] + i, schedule[1])}
        for i, loss in enumerate(losses.tolist())
    ]  # fmt: skip


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
