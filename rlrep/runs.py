"""A run folder's guards, shared by ``rlrep pretrain`` and ``rlrep train``.

- :func:`run_lock`: one writer per folder. An OS lock (``fcntl.flock``) is held on ``out/.lock``
  for the life of the run; the kernel releases it when the process dies, so a lock left by a
  killed run never blocks the next one, while a live second writer is refused.
- :func:`claim_run_folder`: a run folder is rlrep's when it holds the marker
  ``rlrep-run.json`` (kind, version, run id), written before anything else of a new run. Resume
  acts only on a folder with the marker of the same kind; a folder holding files rlrep would
  write but no marker (another program's, or another kind of rlrep run) is refused, so nothing
  rlrep did not write is ever deleted or overwritten.
- :func:`resume_decision`: ``--resume`` needs a checkpoint (unless starting fresh is asked for);
  a folder that holds a run is never overwritten silently.
- :func:`config_changes` / :func:`record_changes`: on resume the stored configuration is compared
  with the requested one; a differing value is refused with the keys named, unless the change is
  explicitly allowed, and then it is recorded in ``config.json`` with the step it took effect.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rlrep.atomic import atomic_write

__all__ = [
    "MARKER",
    "WRITE_FAULTS",
    "RunFolderError",
    "check_changes",
    "claim_run_folder",
    "config_changes",
    "read_json",
    "record_changes",
    "resume_decision",
    "resumed_config",
    "run_lock",
    "write_fault_message",
    "write_json",
    "write_marker",
]

#: The file that identifies a run folder as rlrep's, written first in a new run.
MARKER = "rlrep-run.json"


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (busy, missing checkpoint, differing config)."""


@contextlib.contextmanager
def run_lock(out: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of run folder ``out`` (created if needed) while the block runs.

    A folder this call created and the block left empty (a run refused before it wrote
    anything) is removed again, lock file included.

    :raises RunFolderError: ``out`` is a file, or another live process holds the lock.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out} is a file, not a run folder; choose another --out")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            _lock(fd)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise RunFolderError(
                f"{out} is in use by a running process (pid {holder}); wait for it to finish, "
                "stop it, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        if created and [p.name for p in out.iterdir()] == [".lock"]:
            path.unlink()  # still locked: a process that opens it now gets a new file
            out.rmdir()
        os.close(fd)  # closing the descriptor releases the lock


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def claim_run_folder(out: str | Path, kind: str, names: Iterable[str]) -> bool:
    """Whether ``out`` holds a run of ``kind`` that rlrep wrote (True), or nothing of one (False).

    :param kind: ``"train"`` or ``"pretrain"``: what the caller writes there.
    :param names: the files and folders such a run writes (``config.json``, ``checkpoints``, ...).
    :raises RunFolderError: the marker names another kind; the marker is unreadable; or ``out``
        has no marker but holds one of ``names`` (not written by rlrep, or by a version before
        run markers): resuming, clearing or starting there could destroy it.
    """
    out = Path(out)
    marker = out / MARKER
    if marker.exists():
        found = read_json(marker)
        if found.get("kind") != kind:
            raise RunFolderError(
                f"{out} is an rlrep {found.get('kind')!r} run folder ({MARKER}), not a {kind} "
                f"run; `rlrep {kind}` does not touch it. Choose another --out"
            )
        return True
    clashes = sorted(name for name in names if (out / name).exists())
    if clashes:
        raise RunFolderError(
            f"{out} holds {', '.join(clashes)} but no {MARKER}: it is not a folder `rlrep {kind}` "
            "wrote, and nothing in it is resumed, replaced or deleted. Choose another --out (or "
            "move those files away)"
        )
    return False


def write_marker(out: str | Path, kind: str) -> dict[str, str]:
    """Mark ``out`` as a new rlrep run of ``kind`` (before anything else of the run is written);
    returns the marker: ``{"kind", "version", "run_id"}``."""
    from rlrep import __version__

    marker = {"kind": kind, "version": __version__, "run_id": uuid.uuid4().hex}
    write_json(Path(out) / MARKER, marker)
    return marker


def resume_decision(
    has_checkpoint: bool, holds_run: bool, resume: bool, start_if_missing: bool, out: Path
) -> bool:
    """Whether to continue from the checkpoint (True) or start a new run (False).

    :param has_checkpoint: ``out`` holds a complete checkpoint.
    :param holds_run: ``out`` holds any trace of a run (a config, logs, a checkpoint).
    :param start_if_missing: with ``resume``, start fresh when there is no checkpoint (also over
        the files of a run that was stopped before its first checkpoint; the caller clears them).
    :raises RunFolderError: resume without a checkpoint, or a new run over an existing one.
    """
    if resume and has_checkpoint:
        return True
    if resume and not start_if_missing:
        raise RunFolderError(
            f"--resume: {out} holds no checkpoint to continue; drop --resume to start a new run "
            "there, or pass --resume-if-exists to start fresh when there is none"
        )
    if holds_run and not resume:
        raise RunFolderError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    if holds_run and not has_checkpoint and not start_if_missing:
        raise RunFolderError(
            f"{out} holds files of a run that never wrote a checkpoint; delete the folder or "
            "choose another --out"
        )
    return False


def config_changes(stored: dict[str, Any], requested: dict[str, Any]) -> dict[str, list[Any]]:
    """``{key: [stored, requested]}`` for every key whose value differs (JSON-normalised, so a
    tuple equals a list); keys only one side has count as changes too."""
    stored, requested = _normalise(stored), _normalise(requested)
    keys = sorted(set(stored) | set(requested))
    return {k: [stored.get(k), requested.get(k)] for k in keys if stored.get(k) != requested.get(k)}


def check_changes(changes: dict[str, list[Any]], allow: bool, flag: str) -> None:
    """Refuse ``changes`` unless ``allow``; the message names every key and the flag."""
    if changes and not allow:
        listed = ", ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in changes.items())
        raise RunFolderError(
            f"--resume with a configuration that differs from the stored run ({listed}); resume "
            f"with the same values, or pass {flag} to apply the change from this point on (it "
            "is recorded in config.json)"
        )


def record_changes(config: dict[str, Any], changes: dict[str, list[Any]], at: dict[str, int]):
    """A copy of ``config`` with ``changes`` appended to its ``"changes"`` list, each stamped
    with ``at`` (e.g. ``{"epoch": 3}`` or ``{"agent_steps": 500}``)."""
    log = list(config.get("changes", []))
    log += [{**at, "key": k, "old": old, "new": new} for k, (old, new) in changes.items()]
    return {**config, "changes": log}


def _normalise(config: dict[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in config.items() if k != "changes"}
    return json.loads(json.dumps(cleaned))


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object from ``path``; ``RunFolderError`` naming the file if it is unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise RunFolderError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{path} does not hold a JSON object")
    return data


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_write(path) as f:
        json.dump(data, f, indent=1)


def resumed_config(
    stored: dict[str, Any],
    requested: dict[str, Any],
    allow_change: bool,
    start_epoch: int,
    ckpt_path: Path,
    changeable: tuple[str, ...],
    free: tuple[str, ...],
) -> dict[str, Any]:
    """The config a resumed pretraining run continues with: ``requested``, with the stored run's change log
    and every difference from ``stored`` appended to it (stamped with ``start_epoch``).

    :raises RunFolderError: an identity key differs (always), or a ``changeable`` key
        differs without ``allow_change``.
    """
    changes = config_changes(stored, requested)
    fixed = {k: v for k, v in changes.items() if k not in changeable + free}
    if fixed:
        listed = ", ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in fixed.items())
        raise RunFolderError(
            f"--resume cannot change what {ckpt_path} was trained as ({listed}); these keys "
            "define the run, even with --allow-config-change. Resume with the stored values, or "
            "start a new run in another --out"
        )
    changeable = {k: v for k, v in changes.items() if k in changeable}
    check_changes(changeable, allow_change, "--allow-config-change")
    return record_changes(
        {**requested, "changes": stored.get("changes", [])}, changes, {"epoch": start_epoch}
    )


#: Disk full, quota, read-only file system, permissions: faults of the folder, not of the run.
WRITE_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def write_fault_message(kind: str, out: str | Path, err: OSError) -> str:
    """What a failed write of a ``train``/``pretrain`` run left and how to continue. Checkpoints
    are written atomically, so the last complete one is intact, and resuming from it is exact."""
    out = Path(out)
    what = f"could not write to {err.filename or out} ({err.strerror})"
    checkpoint = out / "checkpoints" / "latest" if kind == "train" else out / "checkpoint.pt"
    fix = "free space" if err.errno in (errno.ENOSPC, errno.EDQUOT) else f"make {out} writable"
    if not checkpoint.exists():
        return f"{what}; no checkpoint had been written yet. {fix.capitalize()}, then rerun"
    return (
        f"{what}. Nothing was lost: {out}'s last complete checkpoint is intact. {fix.capitalize()}"
        f", then rerun with --resume: the run continues exactly as if uninterrupted"
    )
