"""``rlrep pretrain``'s logs (``OUT/logs/progress.csv``, tensorboard events): what each epoch and
step writes, one consistent set with the checkpoint across kills and resumes, the running loss
in the bar, ``--crop-size`` for small images and the closing summary."""

import csv
import math
import re

import pytest

import rlrep.pretrain as pretrain_module
from rlrep.checkpoint import load_checkpoint
from rlrep.cli import main
from rlrep.plotting import collect_curves
from rlrep.pretrain import pretrain

TINY = {
    "encoder_kwargs": {"num_filters": 8, "num_layers": 2, "features_dim": 16},
    "batch_size": 128,  # digits: 1,438 training images → 11 steps per epoch
    "progress": False,
}
STEPS = 1438 // 128
#: Columns that measure time, which a resumed run cannot reproduce.
TIMED = {"seconds", "images_per_s"}


class KilledError(Exception):
    """Stands for a kill at a chosen point."""


def read_progress(out):
    with open(out / "logs" / "progress.csv") as f:
        return list(csv.DictReader(f))


def read_events(out):
    """Every scalar of the run's tensorboard files, in the order written: (step, tag, value)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    scalars = []
    for path in sorted((out / "logs").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                number = (
                    value.tensor.float_val[0] if value.HasField("tensor") else value.simple_value
                )
                scalars.append((event.step, value.tag, number))
    return scalars


def tagged(scalars, tag):
    return [(step, value) for step, t, value in scalars if t == tag]


def test_each_epoch_and_step_is_logged_to_csv_and_tensorboard(tmp_path):
    out = tmp_path / "byol"
    history = pretrain(method="byol", epochs=2, out=out, **TINY)
    rows = read_progress(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [int(r["step"]) for r in rows] == [STEPS, 2 * STEPS]
    assert [float(r["loss"]) for r in rows] == [h["loss"] for h in history]
    assert [float(r["lr"]) for r in rows] == [1e-3, 1e-3]
    # BYOL's target momentum at each epoch's last update: 0.996 → 1 along the paper's cosine.
    for epoch, row in enumerate(rows):
        t = (epoch + 1) * STEPS - 1
        expected = 1 - (1 - 0.996) * (math.cos(math.pi * t / (2 * STEPS)) + 1) / 2
        assert float(row["momentum"]) == pytest.approx(expected, rel=1e-12)
    assert all(r["train_feature_std"] and r["knn_top1"] for r in rows)  # metrics and probe
    scalars = read_events(out)
    steps = tagged(scalars, "step/loss")
    assert [s for s, _ in steps] == list(range(1, 2 * STEPS + 1))
    for epoch, row in enumerate(rows):  # the epoch's loss is the mean of its steps'
        losses = [v for _, v in steps[epoch * STEPS : (epoch + 1) * STEPS]]
        assert sum(losses) / STEPS == pytest.approx(float(row["loss"]), rel=1e-5)
    for tag, column in (("aux/loss", "loss"), ("train/momentum", "momentum"),
                        ("aux/feature_std", "train_feature_std"), ("probe/knn_top1", "knn_top1"),
                        ("train/learning_rate", "lr")):  # fmt: skip
        logged = tagged(scalars, tag)
        assert [s for s, _ in logged] == [STEPS, 2 * STEPS], tag
        assert [v for _, v in logged] == pytest.approx([float(r[column]) for r in rows], rel=1e-6)
    assert len(tagged(scalars, "step/momentum")) == 2 * STEPS
    # Without momentum targets there is no momentum column.
    pretrain(method="simclr", epochs=1, out=tmp_path / "simclr", **TINY)
    assert "momentum" not in read_progress(tmp_path / "simclr")[0]
    assert not tagged(read_events(tmp_path / "simclr"), "train/momentum")


def test_resume_cuts_the_logs_back_to_the_checkpoint(tmp_path, monkeypatch):
    run = {**TINY, "eval_every": 0}
    pretrain(epochs=2, out=tmp_path / "full", **run)
    real_save, calls = pretrain_module.save_checkpoint, []

    def killed_before_the_second_checkpoint(*args):
        calls.append(1)
        if len(calls) == 2:  # epoch 2 is logged, its checkpoint never written
            raise KilledError
        real_save(*args)

    part = tmp_path / "part"
    with monkeypatch.context() as patch:
        patch.setattr(pretrain_module, "save_checkpoint", killed_before_the_second_checkpoint)
        with pytest.raises(KilledError):
            pretrain(epochs=2, out=part, **run)
    assert [r["epoch"] for r in read_progress(part)] == ["1", "2"]  # the logs ran ahead

    def killed_in_the_first_epoch(*args, **kwargs):
        raise KilledError

    with monkeypatch.context() as patch:  # a resumed session that dies before its first epoch
        patch.setattr(pretrain_module, "_train_epoch", killed_in_the_first_epoch)
        with pytest.raises(KilledError):
            pretrain(epochs=2, out=part, resume=True, **run)
    assert load_checkpoint(part / "checkpoint.pt")["epoch"] == 1
    assert [r["epoch"] for r in read_progress(part)] == ["1"]  # cut back to the checkpoint
    assert [s for s, _ in tagged(read_events(part), "step/loss")] == list(range(1, STEPS + 1))
    pretrain(epochs=2, out=part, resume=True, **run)

    def untimed(rows):
        return [{k: v for k, v in r.items() if k not in TIMED} for r in rows]

    assert untimed(read_progress(part)) == untimed(read_progress(tmp_path / "full"))
    events = [e for e in read_events(part) if not e[1].startswith("time/")]
    assert events == [e for e in read_events(tmp_path / "full") if not e[1].startswith("time/")]


def test_a_new_run_clears_what_a_run_without_a_checkpoint_logged(tmp_path, monkeypatch):
    out = tmp_path / "r"

    def killed(*args):
        raise KilledError

    with monkeypatch.context() as patch:
        patch.setattr(pretrain_module, "save_checkpoint", killed)
        with pytest.raises(KilledError):
            pretrain(epochs=1, out=out, **TINY)
    assert read_progress(out) and read_events(out)  # logged, never checkpointed
    pretrain(epochs=1, out=out, **TINY)  # a plain rerun is accepted and starts clean
    assert len(list((out / "logs").glob("events.out.tfevents.*"))) == 1
    assert [s for s, _ in tagged(read_events(out), "step/loss")] == list(range(1, STEPS + 1))


def test_the_bar_shows_the_running_loss_and_the_run_ends_with_a_summary(tmp_path, capsys):
    out = tmp_path / "r"
    history = pretrain(epochs=1, out=out, **{**TINY, "progress": True})
    captured = capsys.readouterr()
    shown = re.findall(r"loss=(\d+\.\d{4})", captured.err)
    assert shown and float(shown[-1]) == pytest.approx(history[0]["loss"], abs=1e-4)
    summary = captured.out.strip().splitlines()[-1]
    assert summary.startswith(f"run folder {out}: checkpoint.pt (epoch 1)")
    for name in ("config.json", "logs/", "logs/progress.csv"):
        assert name in summary.replace("logs/ (progress.csv", "logs/progress.csv")
        assert (out / name).exists()
    assert f"tensorboard --logdir {out / 'logs'}" in summary and f"rlrep plot {out}" in summary
    # rlrep plot reads what was logged.
    (loss,) = [c for c in collect_curves([out])[0] if c.ylabel == "loss"]
    assert loss.mean.tolist() == [row["loss"] for row in history]


def test_crop_size_fits_the_augmentation_to_small_images(tmp_path, sequence_npz, capsys):
    run = {**TINY, "batch_size": 32, "epochs": 1, "eval_every": 0, "dataset": f"npz:{sequence_npz}"}
    with pytest.raises(ValueError, match=r"24×24 images.*--crop-size N .*e\.g\. --crop-size 20"):
        pretrain(augmentation="crop", out=tmp_path / "a", **run)  # CURL's 84-px crop
    with pytest.raises(ValueError, match=r"crop size 30×30 is larger.*--crop-size"):
        pretrain(augmentation="crop", crop_size=30, out=tmp_path / "b", **run)
    with pytest.raises(ValueError, match=r"--crop-size: augmentation 'shift' takes no size"):
        pretrain(augmentation="shift", crop_size=20, out=tmp_path / "c", **run)
    with pytest.raises(ValueError, match=r"--crop-size must be an integer >= 1"):
        pretrain(augmentation="crop", crop_size=0, out=tmp_path / "d", **run)
    pretrain(crop_size=16, out=tmp_path / "simclr", **run)  # the default recipe, resized to 16
    config = load_checkpoint(tmp_path / "simclr" / "checkpoint.pt")["config"]
    assert config["view_shape"][1:] == [16, 16] and config["augmentation_kwargs"]["size"] == 16
    out = tmp_path / "cli"
    argv = ["pretrain", "--dataset", f"npz:{sequence_npz}", "--augmentation", "crop",
            "--crop-size", "20", "--epochs", "1", "--batch-size", "32", "--eval-every", "0",
            "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    config = load_checkpoint(out / "checkpoint.pt")["config"]
    assert config["augmentation"] == "crop" and config["view_shape"][1:] == [20, 20]
    assert main([*argv[:5], "--out", str(tmp_path / "e"), "--no-progress"]) == 2
    assert "--crop-size" in capsys.readouterr().err
