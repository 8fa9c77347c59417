"""One epoch of :func:`rlrep.pretrain.pretrain`: optimiser steps over global batches, each rank
taking its slice, and the running loss in the progress bar."""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch

import rlrep.distributed as dist_lib
from rlrep.datasets import Dataset
from rlrep.objective import AuxObjective

__all__ = ["POSTFIX_SECONDS", "train_epoch", "windows"]

#: How often the bar's running loss is refreshed: reading it waits for the device, so not at
#: every step (the losses are otherwise checked once per epoch, without a sync per step).
POSTFIX_SECONDS = 0.5


def train_epoch(
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

    :param trained: ``objective`` or its DistributedDataParallel wrapper.
    :param steps: the step indices, or a tqdm bar over them (it shows the running loss).
    :param schedule: (steps before this epoch, steps in the run), for the targets' momentum.
    """
    local = batch_size // dist_lib.world_size()
    dev = aug_gen.device
    objective.train()
    losses = []
    bar = steps if hasattr(steps, "set_postfix") and not steps.disable else None
    shown = time.monotonic()
    for i in steps:
        start = i * batch_size + rank * local
        index = order[start : start + local]
        if objective.temporal:
            views = [w if w is None else w.to(dev) for w in windows(ds, index, objective)]
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                result = trained(*views, generator=aug_gen)
        else:
            views = objective.views(ds.train[index].to(dev, non_blocking=True), aug_gen)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                result = trained(views=views, index=index.to(dev))  # a memory bank's rows
        optimizer.zero_grad(set_to_none=True)
        result.loss.float().backward()
        optimizer.step()
        objective.update_targets(objective.method.momentum_at(schedule[0] + i, schedule[1]))
        losses.append(result.loss.detach())
        last = bar is not None and len(losses) == len(bar)
        if bar is not None and (last or time.monotonic() - shown >= POSTFIX_SECONDS):
            shown = time.monotonic()
            bar.set_postfix(loss=f"{torch.stack(losses).float().mean().item():.4f}")
    return torch.stack(losses)


def windows(
    ds: Dataset, index: torch.Tensor, objective: AuxObjective
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(windows, actions, valid)`` starting at training images ``index`` (a window of one,
    SAC-AE's, needs no time order)."""
    horizon = objective.method.horizon
    if horizon == 0:
        return ds.train[index][:, None], None, None
    return ds.sequences.windows(ds.train_index[index], horizon)
