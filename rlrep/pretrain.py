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
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

import rlrep.augment as augment_lib
import rlrep.distributed as dist_lib
import rlrep.encoders as encoder_lib
import rlrep.methods as method_lib
from rlrep.datasets import Dataset, load_dataset
from rlrep.probes import encode, knn_accuracy, linear_accuracy, state_r2

__all__ = ["CHECKPOINT_FORMAT", "build_encoder", "load_checkpoint", "pretrain", "probe"]

CHECKPOINT_FORMAT = "rlrep-pretrain/1"


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
    """Read a pretraining checkpoint; ``ValueError`` if it is not one."""
    path = Path(path)
    if not path.exists():
        raise ValueError(
            f"no checkpoint at {path}; expected the checkpoint.pt written by `rlrep pretrain`"
        )
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not an rlrep pretraining checkpoint (format {CHECKPOINT_FORMAT})"
        )
    return ckpt


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
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
) -> list[dict[str, float]]:
    """Pretrain ``encoder`` with ``method`` on ``dataset``; return the per-epoch history.

    :param augmentation: an :func:`rlrep.augment.make` spec; ``None`` = :func:`default_augmentation`.
    :param amp: bfloat16 autocast (default: on CUDA only).
    :raises FileExistsError: ``out`` holds a checkpoint and ``resume`` is False.
    """
    from tqdm import tqdm

    dev = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else ("cpu" if device == "auto" else device)
    )
    started_group = _init_distributed(dev)
    rank, world = dist_lib.rank(), dist_lib.world_size()
    if world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} must divide evenly over {world} processes")
    amp = dev.type == "cuda" if amp is None else amp
    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists() and not resume:
        raise FileExistsError(
            f"{ckpt_path} exists; pass --resume to continue it or choose another --out"
        )
    ds = load_dataset(dataset, data_dir, image_size=image_size, seed=seed)
    if augmentation is None:
        augmentation, default_kwargs = default_augmentation(ds)
        augmentation_kwargs = {**default_kwargs, **(augmentation_kwargs or {})}
    augmentation_kwargs = augmentation_kwargs or {}
    augment = augment_lib.make(augmentation, **augmentation_kwargs)
    view_shape = tuple(augment.deterministic(ds.train[:1]).shape[1:])
    config = {
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
    }
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
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, map_location=dev)
        model.load_state_dict(ckpt["method"])
        optimizer.load_state_dict(ckpt["optimizer"])
        history, start_epoch = ckpt["history"], ckpt["epoch"]
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config, indent=1))
    n = len(ds.train)
    batch_size = min(batch_size, n - n % world)
    steps = n // batch_size  # the last partial batch is dropped
    local = batch_size // world  # each rank takes its slice of every global batch
    for epoch in range(start_epoch, epochs):
        t0 = time.time()
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)  # same order on all ranks
        aug_seed = (seed * 100_003 + epoch) * 1009 + rank
        aug_gen = torch.Generator(device=dev).manual_seed(aug_seed)
        order = torch.randperm(n, generator=gen)
        model.train()
        losses = []
        label = f"epoch {epoch + 1}/{epochs}"
        bar = tqdm(range(steps), desc=label, disable=not progress or rank > 0, leave=False)
        for i in bar:
            start = i * batch_size + rank * local
            batch = ds.train[order[start : start + local]].to(dev, non_blocking=True)
            view_a, view_b = augment.random(batch, aug_gen), augment.random(batch, aug_gen)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                result = trained(view_a, view_b)
            optimizer.zero_grad(set_to_none=True)
            result.loss.float().backward()
            optimizer.step()
            model.update_targets()
            losses.append(result.loss.detach())
        epoch_loss = torch.stack(losses).mean()
        if world > 1:  # report the mean over ranks
            torch.distributed.all_reduce(epoch_loss)
            epoch_loss /= world
        seconds = round(time.time() - t0, 2)
        row = {"epoch": epoch + 1, "loss": epoch_loss.item(), "seconds": seconds}
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
        metrics = "  ".join(
            f"{k} {v:.4f}" for k, v in row.items() if k in ("loss", "knn_top1", "state_r2")
        )
        print(f"epoch {epoch + 1:3d}/{epochs}  {metrics}  ({row['seconds']:.1f} s)", flush=True)
    if started_group:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return history


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
    linear top-1 for labelled sets, linear state R² for ``dmc:`` frames."""
    dev = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else ("cpu" if device == "auto" else device)
    )
    ckpt = load_checkpoint(checkpoint)
    config = ckpt["config"]
    augment, encoder = build_encoder(config)
    encoder.load_state_dict(ckpt["encoder"])
    encoder.to(dev)
    ds = load_dataset(
        dataset or config["dataset"],
        data_dir,
        image_size=config["image_shape"][1],
        seed=config["seed"],
    )
    if tuple(ds.image_shape) != tuple(config["image_shape"]):
        raise ValueError(
            f"the checkpoint was trained on {tuple(config['image_shape'])} images, {ds.name} has {ds.image_shape}"
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
