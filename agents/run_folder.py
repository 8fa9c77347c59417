"""The folder of one ``rlrep train`` run: checkpoints as consistent sets, eval.csv, logs.

::

    out/
      .lock                    held while a process writes here (rlrep.runs.run_lock)
      rlrep-run.json           the marker: kind "train", version, run id (written first)
      config.json              what the run was started with, and every change made on resume
      eval.csv                 one row per evaluation (rewritten from the latest checkpoint)
      random_policy.json       a uniform random policy's return on the same evaluation episodes
                               (written when a session ends; the reference line of a plot)
      logs/                    SB3's progress.csv (appended across resumes) and tensorboard events,
                               cut back on resume to what the checkpoint had logged
      checkpoints/<steps>/     state.json, weights.pt, arrays.npz, replay.npz (agent/run_state.py)
      checkpoints/latest       the name of the newest complete checkpoint
      model.zip                SB3's format (cloudpickle), only if `rlrep export` wrote it here

A checkpoint is written into ``checkpoints/<steps>.tmp``, flushed, renamed, and only then does
``latest`` (one small file, replaced atomically) point at it; older sets are deleted after that.
A kill at any moment leaves ``latest`` naming a complete set.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import CSVOutputFormat, Logger, make_output_format

from rlrep.atomic import atomic_write, fsync_path
from rlrep.run_logs import log_lengths, rewind_logs
from rlrep.runs import MARKER, read_json, write_json

__all__ = ["CHECKPOINT_FORMAT", "EVAL_FIELDS", "RANDOM_POLICY", "RunFolder"]

CHECKPOINT_FORMAT = "rlrep-train/1"
#: A uniform random policy's return on the run's evaluation episodes (``rlrep plot`` reads it).
RANDOM_POLICY = "random_policy.json"
EVAL_FIELDS = ["frames", "agent_steps", "mean_return", "std_return", "episodes", "wall_time"]


class RunFolder:
    """Paths and writes of one run folder (the caller holds its lock)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.checkpoints = self.out / "checkpoints"
        self.config_path = self.out / "config.json"

    #: What a run writes here besides the lock and the marker.
    NAMES = ("config.json", "checkpoints", "eval.csv", "logs", "model.zip", RANDOM_POLICY)

    def holds_run(self) -> bool:
        return any((self.out / name).exists() for name in self.NAMES)

    def clear(self) -> None:
        """Remove the files of an rlrep train run that has no checkpoint (nothing of it can be
        resumed); a folder without its marker is never cleared."""
        if not (self.out / MARKER).exists():
            raise ValueError(f"{self.out} has no {MARKER}; only a run rlrep wrote is cleared")
        if self.latest() is not None:
            raise ValueError(f"{self.out} holds a checkpoint; it is never cleared")
        for name in ("config.json", "eval.csv", "model.zip", RANDOM_POLICY):
            (self.out / name).unlink(missing_ok=True)
        for name in ("logs", "checkpoints"):
            shutil.rmtree(self.out / name, ignore_errors=True)

    def latest(self) -> Path | None:
        """The newest complete checkpoint set, or None."""
        pointer = self.checkpoints / "latest"
        if not pointer.exists():
            return None
        name = pointer.read_text().strip()
        if not name.isdigit():  # a set is named by its agent steps; never a path elsewhere
            raise ValueError(
                f"{pointer} names {name!r}, not a checkpoint of this folder (its sets are "
                "named by their agent steps, e.g. 000000120); the run folder was changed by hand"
            )
        folder = self.checkpoints / name
        if not (folder / "state.json").exists():
            raise ValueError(
                f"{pointer} names {folder.name}, which is incomplete or missing; the run folder "
                "was changed by hand"
            )
        return folder

    def read_state(self, folder: Path) -> dict[str, Any]:
        state = read_json(folder / "state.json")
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{folder} is not an rlrep train checkpoint ({CHECKPOINT_FORMAT})")
        return state

    def write_checkpoint(self, name: str, write_files, state: dict[str, Any]) -> Path:
        """``write_files(folder)`` writes the set's files; then ``state.json``; then the switch."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoints / f"{name}.tmp"
        final = self.checkpoints / name
        if (self.checkpoints / "latest").exists() and self.latest() == final:
            raise ValueError(f"checkpoint {name} exists already; it is never overwritten")
        for stale in (tmp, final):  # left by a run killed mid-write, never pointed at
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        run_tree = write_files(tmp)
        write_json(tmp / "state.json", {"format": CHECKPOINT_FORMAT, **state, "run": run_tree})
        for path in tmp.iterdir():
            fsync_path(path)
        os.replace(tmp, final)
        with atomic_write(self.checkpoints / "latest") as pointer:
            pointer.write(name)
        for other in self.checkpoints.iterdir():
            if other.is_dir() and other.name != name:
                shutil.rmtree(other, ignore_errors=True)
        return final

    def write_eval_csv(self, history: list[dict[str, Any]]) -> None:
        """``eval.csv``: :data:`EVAL_FIELDS`, then the columns of distracted variants in the order
        they first appear (empty in rows evaluated before a variant was added on resume)."""
        extra = [k for row in history for k in row if k not in EVAL_FIELDS]
        fields = EVAL_FIELDS + list(dict.fromkeys(extra))
        with atomic_write(self.out / "eval.csv", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(history)

    def write_random_policy(self, mean: float, std: float, episodes: int, seed: int) -> None:
        """:data:`RANDOM_POLICY`: uniform random actions' mean and std return over ``episodes``
        evaluation episodes of seed ``seed`` (those every evaluation of the run replays)."""
        record = {"mean_return": mean, "std_return": std, "episodes": episodes, "seed": seed}
        write_json(self.out / RANDOM_POLICY, record)

    def read_config(self) -> dict[str, Any]:
        return read_json(self.config_path)

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.config_path, config)

    def log_lengths(self) -> dict[str, int]:
        """How far ``logs/`` reaches now, recorded in each checkpoint (:func:`rlrep.run_logs.
        log_lengths`; SB3's logger flushes both at every dump, so these are whole rows and
        whole records)."""
        return log_lengths(self.out / "logs")

    def rewind_logs(self, lengths: dict[str, int]) -> None:
        """Cut ``logs/`` back to a checkpoint's :meth:`log_lengths`, so that the steps redone
        after a resume are logged once (:func:`rlrep.run_logs.rewind_logs`)."""
        rewind_logs(self.out / "logs", lengths)

    def logger(self) -> Logger:
        """SB3's logger writing ``logs/progress.csv`` (appended to, never truncated) and
        tensorboard events (a new event file per session; tensorboard reads them as one run)."""
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        formats = [AppendingCSVOutputFormat(str(logs / "progress.csv"))]
        formats.append(make_output_format("tensorboard", str(logs)))
        return Logger(folder=str(logs), output_formats=formats)


class AppendingCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV writer, continuing an existing file (its header's columns) instead of
    truncating it; new columns are added to the header as SB3's writer does."""

    def __init__(self, filename: str) -> None:
        if not os.path.exists(filename) or os.path.getsize(filename) == 0:
            super().__init__(filename)
            return
        self.file = open(filename, "r+")  # noqa: SIM115 (kept open for the logger's lifetime)
        header = self.file.readline().rstrip("\n")
        self.keys = header.split(",") if header else []
        self.separator, self.quotechar = ",", '"'
        self.file.seek(0, os.SEEK_END)
