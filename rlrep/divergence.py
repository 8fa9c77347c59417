"""Loud divergence: a NaN/inf loss, weight or optimiser state stops a run before anything is
evaluated or written, naming what went wrong and the checkpoint that was kept."""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["NonFiniteLossError", "check_finite"]


class NonFiniteLossError(ValueError, FloatingPointError):
    """Pretraining diverged (a NaN/inf loss, weight or optimizer state); the last good checkpoint
    was kept. A ``FloatingPointError`` (the CLI exits 1, as for ``rlrep train``) and a
    ``ValueError``."""


def _last_good(ckpt_path: Path, epoch: int) -> str:
    """What the message of a divergence in 0-based ``epoch`` says about the checkpoint."""
    if epoch == 0:
        return f"no checkpoint had been written yet (nothing at {ckpt_path})"
    return f"the last good checkpoint, {ckpt_path} (epoch {epoch}), was not overwritten"


def check_finite(
    losses: torch.Tensor,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    ckpt_path: Path,
    epoch: int,
    epochs: int,
    lr: float,
) -> None:
    """:class:`NonFiniteLossError` naming the first non-finite step of ``losses`` (one epoch's,
    one per step), its value, the epoch and the last good checkpoint; or, every loss being
    finite, naming a weight, buffer or optimizer state that overflowed (the last update of the
    epoch), so none is ever checkpointed. One device sync for each check."""
    bad_steps = (~torch.isfinite(losses)).nonzero()
    if len(bad_steps):
        step = int(bad_steps[0])
        raise NonFiniteLossError(
            f"pretraining diverged: loss {losses[step].item()} at epoch {epoch + 1}/{epochs}, step "
            f"{step + 1}/{len(losses)} (the first non-finite step); training stopped and "
            f"{_last_good(ckpt_path, epoch)}. Lower --lr (now {lr}) or check the data"
        )
    tensors = {f"model {k}": t for k, t in model.state_dict().items()}
    for i, state in enumerate(optimizer.state.values()):
        tensors.update({f"optimizer state {i}.{k}": t for k, t in state.items()})
    tensors = {k: t for k, t in tensors.items() if torch.is_tensor(t) and t.is_floating_point()}
    device = next(model.parameters()).device
    finite = torch.stack([torch.isfinite(t).all().to(device) for t in tensors.values()])
    if bool(finite.all()):
        return
    bad = [name for name, ok in zip(tensors, finite.tolist(), strict=True) if not ok]
    raise NonFiniteLossError(
        f"pretraining diverged: {', '.join(bad[:3])}{' …' if len(bad) > 3 else ''} became "
        f"non-finite in epoch {epoch + 1}/{epochs} although its losses were finite; training "
        f"stopped and {_last_good(ckpt_path, epoch)}. Lower --lr (now {lr})"
    )
