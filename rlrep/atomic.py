"""Atomic file writes: a reader (or a run resumed after a kill) finds the old file or the new
one, never a partial write."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "fsync_path"]


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Write through ``path.tmp``; on success flush, fsync and rename it over ``path`` (one
    ``os.replace``); on an exception remove the temporary file and leave ``path`` as it was.

    ``with atomic_write(path, "wb") as f: torch.save(state, f)``

    :param path: the file to write.
    :param mode: ``"w"`` (text) or ``"wb"`` (binary).
    :param open_kwargs: passed to :func:`open` (e.g. ``newline=""`` for csv).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def fsync_path(path: str | Path) -> None:
    """Flush a file already written (or a directory entry) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
