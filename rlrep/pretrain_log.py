"""The logs of an ``rlrep pretrain`` run: ``OUT/logs/progress.csv`` and tensorboard events.

::

    out/logs/
      progress.csv               one row per epoch: the run's history (rlrep.pretrain.pretrain)
      events.out.tfevents.*      tensorboard, one file per session (tensorboard --logdir out/logs)

``progress.csv`` columns: ``epoch``, ``step`` (optimiser steps done), ``loss`` (the epoch's mean),
``lr``, ``momentum`` (methods with momentum targets: the value of the epoch's last update), the
method's metrics as ``train_<name>`` (``train_accuracy``, ``train_feature_std``, ...), the probes
on the epochs they ran (``knn_top1``, ``state_r2``, ...; empty on the others), ``seconds`` and
``images_per_s``.

Tensorboard scalars, all at ``global_step`` = optimiser steps done: per step ``step/loss``,
``step/learning_rate``, ``step/momentum``; per epoch the names the SB3 plug-in and the agents
use, ``aux/loss`` and ``aux/<metric>``, then ``probe/<name>``, ``train/epoch``,
``train/learning_rate``, ``train/momentum``, ``time/seconds``, ``time/images_per_s``.

The logs are written and flushed before each checkpoint, which records how far they reached
(:func:`rlrep.run_logs.log_lengths`); a resumed run cuts them back to it first
(:meth:`PretrainLog.rewind`), so the checkpoint and the logs are always one consistent set.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from rlrep.atomic import atomic_write
from rlrep.run_logs import PROGRESS, clear_logs, log_lengths, rewind_logs

__all__ = ["LEADING_COLUMNS", "PretrainLog", "tensorboard_tag"]

#: progress.csv's first columns; the others follow in the order they first appear.
LEADING_COLUMNS = ("epoch", "step", "loss", "lr", "momentum")
_TAGS = {
    "loss": "aux/loss",
    "epoch": "train/epoch",
    "lr": "train/learning_rate",
    "momentum": "train/momentum",
    "seconds": "time/seconds",
    "images_per_s": "time/images_per_s",
}


def tensorboard_tag(column: str) -> str | None:
    """The tensorboard tag of a progress.csv column (``None``: not a scalar of its own)."""
    if column == "step":  # the x axis
        return None
    if column in _TAGS:
        return _TAGS[column]
    if column.startswith("train_"):  # the method's metrics, named as the plug-in logs them
        return "aux/" + column.removeprefix("train_")
    return "probe/" + column


class PretrainLog:
    """``logs/`` of one pretraining run (written by rank 0, which holds the folder's lock).

    :param out: the run folder.
    """

    def __init__(self, out: str | Path) -> None:
        self.dir = Path(out) / "logs"
        self._writer: Any = None

    def clear(self) -> None:
        """A new run: remove what an earlier run that never wrote a checkpoint logged here."""
        clear_logs(self.dir)

    def rewind(self, lengths: dict[str, int]) -> None:
        """A resumed run: cut the logs back to what its checkpoint recorded of them
        (:func:`~rlrep.run_logs.log_lengths`): progress.csv to the checkpoint's epochs, events
        files to their lengths then; the next epoch's rows follow."""
        rewind_logs(self.dir, lengths)

    def write_epoch(
        self, history: list[dict[str, Any]], steps: list[dict[str, float]]
    ) -> dict[str, int]:
        """Log the last epoch of ``history`` and its optimiser ``steps``, flush, and return how
        far the logs reach (for the checkpoint written next).

        :param history: the run's rows so far; the last is the epoch to log.
        :param steps: one dict per optimiser step of that epoch: ``step`` (steps done after it),
            ``loss``, ``learning_rate`` and, with momentum targets, ``momentum``.
        """
        self._write_csv(history)
        writer = self._tensorboard()
        for row in steps:
            for key, value in row.items():
                if key != "step" and value is not None:
                    writer.add_scalar(f"step/{key}", value, row["step"])
        last = history[-1]
        for column, value in last.items():
            tag = tensorboard_tag(column)
            if tag is not None and value is not None:
                writer.add_scalar(tag, value, last["step"])
        writer.flush()  # whole records on disk before their lengths are measured
        return log_lengths(self.dir)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _tensorboard(self) -> Any:
        if self._writer is None:  # created at the first epoch: a new events file per session
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.dir))
        return self._writer

    def _write_csv(self, history: list[dict[str, Any]]) -> None:
        """progress.csv from ``history``, rewritten whole (atomically): a column that appears
        later (a probe on its first epoch) joins the header."""
        seen = dict.fromkeys(k for row in history for k in row)
        fields = [k for k in LEADING_COLUMNS if k in seen] + [
            k for k in seen if k not in LEADING_COLUMNS
        ]
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.dir / PROGRESS, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(history)
