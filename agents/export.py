"""``rlrep export``: SB3's ``model.zip`` of a run, derived from its latest checkpoint on request.

A run folder keeps one copy of the state, its checkpoint set (``weights.pt`` etc., read without
running code). SB3's zip holds the same weights and optimiser states again (a CURL-SAC run at the
paper's sizes: 131 MB beside the checkpoint's 136 MB), so it is written only when asked for, for
``CURLSAC.load(...)`` / ``PPO.load(...)`` and sharing.
"""

from __future__ import annotations

from pathlib import Path

from rlrep.atomic import atomic_write
from rlrep.runs import RunFolderError, claim_run_folder, run_lock

__all__ = ["export_sb3"]


def export_sb3(out: str | Path, to: str | Path | None = None, device: str = "auto") -> Path:
    """Write SB3's ``model.zip`` of the ``rlrep train`` run in ``out`` at its latest checkpoint.

    :param out: the run folder.
    :param to: where to write it (default: ``out/model.zip``).
    :param device: where the model is built to be saved (the zip loads on any device).
    :return: the path written.
    :raises RunFolderError: ``out`` is not an ``rlrep train`` run or holds no checkpoint.
    """
    from rlrep.agents.run_folder import RunFolder
    from rlrep.agents.run_state import load_run_state
    from rlrep.agents.train import build_agent

    folder = RunFolder(out)
    if not folder.out.is_dir():
        raise RunFolderError(f"{folder.out} is not a folder; pass the --out of an rlrep train run")
    path = Path(to) if to is not None else folder.out / "model.zip"
    with run_lock(folder.out):  # not while a run writes its next checkpoint there
        claim_run_folder(folder.out, "train", RunFolder.NAMES)
        checkpoint = folder.latest()
        if checkpoint is None:
            raise RunFolderError(f"{folder.out} holds no checkpoint yet; nothing to export")
        config = folder.read_config()
        model, _ = build_agent(config["agent"], config["task"], config["seed"], device,
                               config["overrides"])  # fmt: skip
        load_run_state(model, checkpoint, folder.read_state(checkpoint)["run"])
        with atomic_write(path, "wb") as f:
            model.save(f)
    return path
