"""Pretraining and probing refuse unsafe or malformed input loudly: code-running checkpoints,
unreadable files, bad arguments, divergence, config drift on resume, two writers on one folder."""

import errno
import hashlib
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import rlrep.pretrain as pretrain_lib
from rlrep.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from rlrep.cli import main
from rlrep.methods.symmetric import SimCLR
from rlrep.pretrain import NonFiniteLossError, pretrain
from rlrep.probes import probe
from rlrep.runs import RunFolderError, read_json, run_lock

TINY = {
    "encoder_kwargs": {"num_filters": 8, "num_layers": 2, "features_dim": 16},
    "batch_size": 256,
    "progress": False,
}
EXPECTED = "expected the checkpoint.pt written by `rlrep pretrain`"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run folder holding one tiny epoch of SimCLR on digits (copy it before changing it)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    pretrain(epochs=1, out=out, **TINY)
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A private copy of the trained run folder."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class WritesMarker:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# --- checkpoints are loaded without running code, and unreadable ones are named -------------


@pytest.mark.parametrize("container", ["torch.save", "pickle"])
def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, container):
    marker, path = tmp_path / "pwned", tmp_path / "checkpoint.pt"
    payload = {"format": CHECKPOINT_FORMAT, "config": WritesMarker(marker)}
    if container == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))  # torch's legacy format
    with pytest.raises(ValueError, match=r"refusing to load .*posix\.system"):
        load_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(ValueError, match="refusing to load"):
        probe(path)
    assert not marker.exists()


def test_unreadable_checkpoints_are_named(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "weights": torch.zeros(1000)}, good)
    cases = {
        "truncated.pt": good.read_bytes()[: good.stat().st_size // 2],
        "random.pt": np.random.default_rng(0).bytes(4096),
        "empty.pt": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=rf"{name}.*{EXPECTED}") as err:
            load_checkpoint(tmp_path / name)
        assert "weights_only=False" not in str(err.value)  # never advise the unsafe load
    with pytest.raises(ValueError, match=r"truncated"):
        load_checkpoint(tmp_path / "truncated.pt")
    with pytest.raises(ValueError, match=r"is empty"):
        load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match=r"folder is a folder; .*folder/checkpoint\.pt"):
        load_checkpoint(tmp_path / "folder")
    with pytest.raises(ValueError, match=r"good\.pt lacks config, encoder"):
        load_checkpoint(good)


def test_probe_refuses_weights_of_another_encoder_and_other_image_shapes(run, tmp_path):
    ckpt = load_checkpoint(run / "checkpoint.pt")
    ckpt["config"]["encoder_kwargs"]["num_filters"] = 16  # the weights are of an 8-filter net
    torch.save(ckpt, tmp_path / "mixed.pt")
    with pytest.raises(ValueError, match=r"mixed\.pt: its encoder weights do not fit the curl"):
        probe(tmp_path / "mixed.pt", linear=False)
    images = np.zeros((20, 3, 16, 16), np.uint8)
    np.savez(tmp_path / "small.npz", images=images, labels=np.arange(20) % 2)
    with pytest.raises(ValueError, match=r"shape \(3, 32, 32\), but npz:.*\(3, 16, 16\)"):
        probe(run / "checkpoint.pt", dataset=f"npz:{tmp_path / 'small.npz'}", linear=False)


def test_checkpoint_holds_only_what_weights_only_loads(run):
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["config"] == read_json(run / "config.json")
    assert ckpt["config"]["epochs"] == 1 and ckpt["epoch"] == 1


# --- bad arguments fail before anything is loaded or written ----------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an integer of at least 2, got 0"),
        ({"batch_size": -8}, "batch_size must be an integer of at least 2, got -8"),
        ({"batch_size": 1}, "at least 2, got 1: every method learns from comparisons"),
        ({"epochs": 0}, "epochs must be an integer of at least 1, got 0"),
        ({"lr": float("nan")}, "lr must be a positive finite number"),
        ({"lr": 0.0}, "lr must be a positive finite number"),
    ],
)
def test_bad_arguments_fail_before_any_work(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pretrain(out=tmp_path / "r", **{**TINY, **kwargs})
    assert not (tmp_path / "r").exists()


def test_batch_larger_than_the_dataset_is_clamped_and_too_small_a_dataset_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", images=rng.integers(0, 256, (12, 3, 16, 16), dtype=np.uint8))
    history = pretrain(dataset=f"npz:{tmp_path / 'd.npz'}", epochs=1, out=tmp_path / "r", **TINY)
    assert len(history) == 1 and "batch_size 256 > 10 training images: using 10" in (
        capsys.readouterr().out
    )
    np.savez(tmp_path / "two.npz", images=rng.integers(0, 256, (2, 3, 16, 16), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"training split has 1 images; .*at least 2"):
        pretrain(dataset=f"npz:{tmp_path / 'two.npz'}", epochs=1, out=tmp_path / "s", **TINY)


# --- divergence stops at once and never overwrites the checkpoint -----------------------------


def test_huge_lr_diverges_loudly_and_writes_nothing(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(NonFiniteLossError, match=r"epoch 1/2, step \d+/5") as err:
        pretrain(epochs=2, lr=1e9, out=out, **TINY)
    assert "no checkpoint had been written yet" in str(err.value)
    assert "Lower --lr (now 1000000000.0)" in str(err.value)
    assert not (out / "checkpoint.pt").exists() and not (out / "config.json").exists()
    pretrain(epochs=1, out=out, **TINY)  # the folder holds no run: a plain rerun is accepted


def test_divergence_on_resume_keeps_the_last_good_checkpoint(run):
    ckpt_path = run / "checkpoint.pt"
    before = digest(ckpt_path)
    with pytest.raises(NonFiniteLossError) as err:
        pretrain(epochs=2, lr=1e9, out=run, resume=True, allow_config_change=True, **TINY)
    message = str(err.value)
    assert "epoch 2/2" in message
    assert f"the last good checkpoint, {ckpt_path} (epoch 1), was not overwritten" in message
    assert digest(ckpt_path) == before
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in ckpt["method"].values() if t.is_floating_point())


def test_the_first_non_finite_step_is_named(run, monkeypatch):
    calls = []
    forward = SimCLR.forward

    def nan_from_third_step(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        calls.append(1)
        if len(calls) >= 3:
            return out._replace(loss=out.loss * float("nan"))
        return out

    monkeypatch.setattr(SimCLR, "forward", nan_from_third_step)
    before = digest(run / "checkpoint.pt")
    with pytest.raises(NonFiniteLossError, match=r"loss nan at epoch 2/2, step 3/5 \(the first"):
        pretrain(epochs=2, out=run, resume=True, **TINY)
    assert digest(run / "checkpoint.pt") == before


def test_weights_that_overflow_with_finite_losses_are_not_checkpointed(run, monkeypatch):
    train_epoch = pretrain_lib._train_epoch

    def overflow_last_update(trained, model, *args, **kwargs):
        losses = train_epoch(trained, model, *args, **kwargs)
        with torch.no_grad():
            next(model.parameters()).fill_(float("inf"))
        return losses

    monkeypatch.setattr(pretrain_lib, "_train_epoch", overflow_last_update)
    before = digest(run / "checkpoint.pt")
    with pytest.raises(NonFiniteLossError, match=r"model encoder\.\S+ .*became non-finite"):
        pretrain(epochs=2, out=run, resume=True, **TINY)
    assert digest(run / "checkpoint.pt") == before


# --- resume: a checkpoint is needed, the run's identity is kept, changes are explicit ---------


def test_resume_with_another_lr_needs_the_flag_and_is_then_applied_and_recorded(run):
    before = digest(run / "checkpoint.pt")
    with pytest.raises(RunFolderError, match=r"lr: 0\.001 → 0\.1.*--allow-config-change"):
        pretrain(epochs=2, lr=0.1, out=run, resume=True, **TINY)
    assert digest(run / "checkpoint.pt") == before
    pretrain(epochs=2, lr=0.1, out=run, resume=True, allow_config_change=True, **TINY)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["epoch"] == 2 and ckpt["config"]["lr"] == 0.1
    assert [g["lr"] for g in ckpt["optimizer"]["param_groups"]] == [0.1]
    assert read_json(run / "config.json") == ckpt["config"]
    assert ckpt["config"]["changes"] == [
        {"epoch": 1, "key": "epochs", "old": 1, "new": 2},
        {"epoch": 1, "key": "lr", "old": 0.001, "new": 0.1},
    ]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"method": "byol"}, "method"),
        ({"seed": 1}, "seed"),
        ({"encoder_kwargs": {**TINY["encoder_kwargs"], "num_filters": 16}}, "encoder_kwargs"),
        ({"augmentation": "crop", "augmentation_kwargs": {"size": 28}}, "augmentation"),
    ],
)
def test_resume_never_changes_the_runs_identity(run, change, key):
    with pytest.raises(RunFolderError, match=rf"cannot change what .*\({key}: .*even with"):
        pretrain(epochs=2, out=run, resume=True, allow_config_change=True, **{**TINY, **change})


def test_resume_past_the_end_is_refused(run):
    assert len(pretrain(epochs=1, out=run, resume=True, **TINY)) == 1  # complete: nothing to do
    ckpt = load_checkpoint(run / "checkpoint.pt")
    torch.save({**ckpt, "epoch": 3}, run / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"at epoch 3, past --epochs 2; pass --epochs 3 or more"):
        pretrain(epochs=2, out=run, resume=True, **TINY)


def test_resume_without_a_checkpoint_is_an_error_unless_asked_to_start(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(RunFolderError, match=r"holds no checkpoint.*--resume-if-exists"):
        pretrain(epochs=1, out=out, resume=True, **TINY)
    assert not out.exists()  # the refused run removed the folder it had created for its lock
    out.mkdir()
    (out / ".lock").write_text("999999")  # left by a killed run: it holds no lock
    pretrain(epochs=1, out=out, resume_if_exists=True, **TINY)  # alone: start, as none exists
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    assert len(pretrain(epochs=2, out=out, resume_if_exists=True, **TINY)) == 2  # now: continue
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2


@pytest.mark.slow
def test_a_training_run_is_not_resumed_or_overwritten_by_pretraining(tmp_path):
    from rlrep.agents.train import train

    out = tmp_path / "train"
    tiny = {"num_filters": 4, "num_layers": 2, "hidden_dim": 16, "batch_size": 8,
            "initial_steps": 20, "image_size": 40, "crop_size": 32}  # fmt: skip
    train("point_mass_pixels", out=out, frames=40, eval_every=40, eval_episodes=1,
          progress=False, **tiny)  # fmt: skip
    config = (out / "config.json").read_bytes()
    for flag in ("resume", "resume_if_exists"):
        with pytest.raises(RunFolderError, match="'train' run folder"):
            pretrain(epochs=1, out=out, **{flag: True}, **TINY)
    assert (out / "config.json").read_bytes() == config
    assert not (out / "checkpoint.pt").exists()
    # The run still resumes (here: to the same end point).
    assert train("point_mass_pixels", out=out, frames=40, eval_every=40, eval_episodes=1,
                 progress=False, resume=True, **tiny)[-1]["frames"] == 40  # fmt: skip


def test_a_folder_without_the_marker_is_refused_and_kept(tmp_path):
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "config.json").write_text('{"not": "rlrep"}')
    with pytest.raises(RunFolderError, match=r"holds config\.json but no rlrep-run\.json"):
        pretrain(epochs=1, out=out, resume_if_exists=True, **TINY)
    assert (out / "config.json").read_text() == '{"not": "rlrep"}'
    assert sorted(p.name for p in out.iterdir()) == [".lock", "config.json"]


def test_a_busy_run_folder_is_refused(tmp_path):
    out = tmp_path / "r"
    with run_lock(out), pytest.raises(RunFolderError, match="in use by a running process"):
        pretrain(epochs=1, out=out, **TINY)
    assert not (out / "checkpoint.pt").exists()


# --- the CLI prints one line and exits 2 ------------------------------------------------------


def test_cli_prints_the_error_and_exits_2(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["pretrain", "--out", out, "--batch-size", "0", "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("rlrep pretrain: batch_size must be")
    assert main(["pretrain", "--out", out, "--resume", "--no-progress"]) == 2
    assert "--resume-if-exists" in capsys.readouterr().err
    assert main(["probe", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"rlrep probe: {tmp_path} is a folder")
    (tmp_path / "x.pt").write_bytes(b"\x80\x02junk")
    assert main(["probe", str(tmp_path / "x.pt")]) == 2
    assert EXPECTED in capsys.readouterr().err


def test_a_full_disk_is_reported_and_resume_continues_exactly(tmp_path, capsys, monkeypatch):
    argv = ["pretrain", "--epochs", "2", "--batch-size", "256", "--eval-every", "0",
            "--no-progress", "--threads", "1"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0
    real_save, calls = pretrain_lib.save_checkpoint, []

    def disk_full_at_the_second(path, *args):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path) + ".tmp")
        real_save(path, *args)

    with monkeypatch.context() as patch:
        patch.setattr(pretrain_lib, "save_checkpoint", disk_full_at_the_second)
        assert main([*argv, "--out", str(tmp_path / "part")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rlrep pretrain: could not write to") and "No space left" in err
    assert "Nothing was lost" in err and "Free space, then rerun with --resume" in err
    assert main([*argv, "--out", str(tmp_path / "part"), "--resume"]) == 0
    full, part = (load_checkpoint(tmp_path / r / "checkpoint.pt") for r in ("full", "part"))
    assert all(torch.equal(full["method"][k], part["method"][k]) for k in full["method"])


def test_a_read_only_folder_before_any_checkpoint_says_so(tmp_path, capsys, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "r" / "rlrep-run.json"))

    monkeypatch.setattr(pretrain_lib, "write_marker", read_only)
    assert main(["pretrain", "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "(Read-only file system); no checkpoint had been written yet" in err
    assert f"Make {tmp_path / 'r'} writable, then rerun" in err


def test_cli_sets_method_options_and_refuses_unknown_ones_first(tmp_path, capsys):
    argv = [
        "pretrain",
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--eval-every",
        "0",
        "--no-progress",
    ]
    assert main([*argv, "--out", str(tmp_path / "a"), "--set", "foo=1"]) == 2
    err = capsys.readouterr().err
    assert (
        "method 'simclr' has no option 'foo'; its options: hidden_dim, out_dim, temperature" in err
    )
    assert not (tmp_path / "a").exists()
    assert main([*argv, "--out", str(tmp_path / "b"), "--set", "temperature=0.2"]) == 0
    assert read_json(tmp_path / "b" / "config.json")["method_kwargs"] == {"temperature": 0.2}
