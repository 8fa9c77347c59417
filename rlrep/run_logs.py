"""A run folder's ``logs/``, kept one consistent set with the run's checkpoint.

Shared by ``rlrep train`` (SB3's logger, :mod:`rlrep.agents.run_folder`) and ``rlrep pretrain``
(:mod:`rlrep.pretrain_log`): both write ``logs/progress.csv`` and tensorboard event files, flush
them before a checkpoint is written, and record in the checkpoint how far they reached
(:func:`log_lengths`). A run resumed from that checkpoint first cuts the logs back to it
(:func:`rewind_logs`), so the steps redone after a kill are logged once.
"""

from __future__ import annotations

from pathlib import Path

from rlrep.atomic import atomic_write

__all__ = ["EVENTS", "PROGRESS", "clear_logs", "log_lengths", "rewind_logs"]

#: The tensorboard event files a writer creates (one per session) in ``logs/``.
EVENTS = "events.out.tfevents.*"
#: The CSV log in ``logs/``: a header and one row per dump (train) or epoch (pretrain).
PROGRESS = "progress.csv"


def log_lengths(logs: str | Path) -> dict[str, int]:
    """How far ``logs`` reaches now: the data rows of ``progress.csv`` and the bytes of each
    tensorboard events file. Call it after the writers flushed, so that these are whole rows
    and whole records.

    :param logs: the ``logs/`` folder of a run (it may not exist yet: no entries).
    """
    logs = Path(logs)
    lengths = {}
    if (logs / PROGRESS).exists():
        with open(logs / PROGRESS) as f:
            lengths[PROGRESS] = max(sum(1 for _ in f) - 1, 0)  # less the header
    for events in sorted(logs.glob(EVENTS)):
        lengths[events.name] = events.stat().st_size
    return lengths


def rewind_logs(logs: str | Path, lengths: dict[str, int]) -> None:
    """Cut ``logs`` back to a checkpoint's :func:`log_lengths`: ``progress.csv`` keeps its header
    and first rows, events files keep their first bytes, and an events file the checkpoint does
    not know (a session that died before its first checkpoint) is removed. Other files are left
    alone.

    :param logs: the ``logs/`` folder of a run.
    :param lengths: what :func:`log_lengths` returned when the checkpoint was written.
    """
    logs = Path(logs)
    progress = logs / PROGRESS
    if progress.exists():
        with open(progress) as f:
            lines = f.readlines()
        keep = lines[: 1 + lengths.get(PROGRESS, 0)] if lines else []
        if len(keep) < len(lines):
            with atomic_write(progress) as f:
                f.writelines(keep)
    for events in logs.glob(EVENTS):
        if events.name not in lengths:
            events.unlink()
        elif events.stat().st_size > lengths[events.name]:
            with open(events, "r+b") as f:
                f.truncate(lengths[events.name])


def clear_logs(logs: str | Path) -> None:
    """Remove what a run writes in ``logs`` (``progress.csv``, events files), for a new run in a
    folder whose earlier run stopped before its first checkpoint. Other files are left alone."""
    logs = Path(logs)
    (logs / PROGRESS).unlink(missing_ok=True)
    for events in logs.glob(EVENTS):
        events.unlink()
