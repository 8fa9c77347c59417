"""Pretraining: resume equals an uninterrupted run, checkpoints, CLI, pretrained encoders in SAC."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC

import rlrep.pretrain as pretrain_module
from rlrep import envs
from rlrep.checkpoint import load_checkpoint
from rlrep.methods import METHODS, TEMPORAL
from rlrep.pretrain import pretrain
from rlrep.runs import RunFolderError
from rlrep.sb3 import policy_kwargs
from tests.test_every_method import options

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "encoder_kwargs": {"num_filters": 8, "num_layers": 2, "features_dim": 16},
    "batch_size": 128,
    "progress": False,
}


class KilledError(Exception):
    """Stands for a kill right after a checkpoint was written."""


def same_checkpoints(a_dir, b_dir):
    a, b = load_checkpoint(a_dir / "checkpoint.pt"), load_checkpoint(b_dir / "checkpoint.pt")
    assert a["method"].keys() == b["method"].keys()
    return all(torch.equal(a["method"][k], b["method"][k]) for k in a["method"])


@pytest.mark.parametrize("method", list(METHODS))
def test_resume_equals_uninterrupted_run(method, tmp_path, monkeypatch, sequence_npz):
    temporal = method in TEMPORAL and method != "sac_ae"  # SAC-AE reads single images
    run = {**TINY, "method_kwargs": options(method), "eval_every": 0,
           "dataset": f"npz:{sequence_npz}" if temporal else "digits"}  # fmt: skip
    full = pretrain(method=method, epochs=2, out=tmp_path / "full", **run)
    real_save = pretrain_module.save_checkpoint

    def save_then_stop(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KilledError

    with monkeypatch.context() as patch:
        patch.setattr(pretrain_module, "save_checkpoint", save_then_stop)
        with pytest.raises(KilledError):
            pretrain(method=method, epochs=2, out=tmp_path / "part", **run)
    resumed = pretrain(method=method, epochs=2, out=tmp_path / "part", resume=True, **run)
    assert same_checkpoints(tmp_path / "full", tmp_path / "part")
    assert [r["loss"] for r in full] == [r["loss"] for r in resumed]
    assert not list((tmp_path / "part").glob("*.tmp"))


def test_extending_a_finished_run(tmp_path):
    # Without a momentum schedule, 1 epoch extended to 2 is the 2-epoch run; BYOL's cosine spans
    # the --epochs of each session, so extending it stretches the rest of its schedule.
    for method, same in (("simclr", True), ("byol", False)):
        pretrain(method=method, epochs=2, out=tmp_path / f"{method}-full", **TINY)
        pretrain(method=method, epochs=1, out=tmp_path / method, **TINY)
        pretrain(method=method, epochs=2, out=tmp_path / method, resume=True, **TINY)
        assert same_checkpoints(tmp_path / f"{method}-full", tmp_path / method) == same, method


def test_eval_every_probes_on_those_epochs_and_the_last(tmp_path):
    history = pretrain(epochs=3, eval_every=2, out=tmp_path / "a", **TINY)
    assert ["knn_top1" in row for row in history] == [False, True, True]
    history = pretrain(epochs=2, eval_every=0, out=tmp_path / "b", **TINY)
    assert ["knn_top1" in row for row in history] == [False, True]
    with pytest.raises(ValueError, match="eval_every must be an integer >= 0"):
        pretrain(epochs=1, eval_every=-1, out=tmp_path / "c", **TINY)


def test_checkpoint_contents_and_refusal_to_overwrite(tmp_path):
    history = pretrain(epochs=1, out=tmp_path / "r", **TINY)
    assert 0.0 <= history[0]["knn_top1"] <= 1.0 and history[0]["images_per_s"] > 0
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoint.pt")
    assert ckpt["config"]["view_shape"] == [3, 32, 32] and ckpt["epoch"] == 1
    with pytest.raises(RunFolderError, match="--resume"):
        pretrain(epochs=1, out=tmp_path / "r", **TINY)
    with pytest.raises(ValueError, match="not an rlrep pretraining checkpoint"):
        torch.save({"weights": 1}, tmp_path / "x.pt")
        load_checkpoint(tmp_path / "x.pt")


@pytest.mark.slow
def test_cli_pretrain_and_probe(tmp_path):
    run = [sys.executable, "-m", "rlrep.cli"]
    result = subprocess.run(
        [
            *run,
            "pretrain",
            "--epochs",
            "1",
            "--batch-size",
            "128",
            "--out",
            str(tmp_path / "p"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [*run, "probe", str(tmp_path / "p" / "checkpoint.pt")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert (
        result.returncode == 0
        and '"linear_top1"' in result.stdout
        and '"knn_top1"' in result.stdout
    )
    missing = subprocess.run(
        [
            *run,
            "pretrain",
            "--dataset",
            "cifar10",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert missing.returncode == 2 and "cifar-10-batches-py/data_batch_1" in missing.stderr


def env_frames(tmp_path, n=200):
    env = envs.PointMassPixels(image_size=24, frame_stack=3, random_target=True)
    frames, states = [], []
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(n):
        frames.append(obs)
        states.append(info["state"])
        obs, _, _, truncated, info = env.step(rng.uniform(-1, 1, 2))
        if truncated:
            obs, info = env.reset()
    path = tmp_path / "frames.npz"
    np.savez(path, images=np.stack(frames), states=np.stack(states))
    return path


def test_pretrained_encoder_into_sac_frozen_or_fine_tuned(tmp_path):
    data = env_frames(tmp_path)
    pretrain(
        method="curl",
        dataset=f"npz:{data}",
        augmentation="crop",
        augmentation_kwargs={"size": 20},
        epochs=1,
        out=tmp_path / "p",
        **{**TINY, "batch_size": 32},
    )
    ckpt_path = tmp_path / "p" / "checkpoint.pt"
    weights = load_checkpoint(ckpt_path)["encoder"]

    def model(freeze):
        env = envs.PointMassPixels(image_size=24, frame_stack=3)
        return SAC(
            "CnnPolicy",
            env,
            buffer_size=200,
            learning_starts=20,
            batch_size=8,
            seed=0,
            policy_kwargs=policy_kwargs(pretrained=ckpt_path, freeze=freeze, net_arch=[16]),
        )

    frozen = model(freeze=True)
    for net in (frozen.actor, frozen.critic, frozen.critic_target):
        enc = net.features_extractor.encoder.state_dict()
        assert all(torch.equal(enc[k], weights[k]) for k in weights)
    heads_before = [p.clone() for p in frozen.critic.q_networks[0].parameters()]
    frozen.learn(40)
    enc = frozen.critic.features_extractor.encoder.state_dict()
    assert all(torch.equal(enc[k], weights[k]) for k in weights)  # frozen
    assert any(
        not torch.equal(a, b)
        for a, b in zip(heads_before, frozen.critic.q_networks[0].parameters(), strict=True)
    )
    tuned = model(freeze=False)
    tuned.learn(40)
    enc = tuned.critic.features_extractor.encoder.state_dict()
    assert any(not torch.equal(enc[k], weights[k]) for k in weights)  # fine-tuned
    # The kwargs hold the path and config, not the weights (tools print and save them) ...
    kwargs = policy_kwargs(pretrained=ckpt_path)["features_extractor_kwargs"]["pretrained"]
    assert kwargs == {
        "path": str(ckpt_path.resolve()),
        "config": load_checkpoint(ckpt_path)["config"],
    }
    # ... and the saved model carries the encoder: it loads without the checkpoint file.
    frozen.save(tmp_path / "sac.zip")
    ckpt_path.unlink()
    with pytest.warns(UserWarning, match="not found: the encoder is built from its recorded"):
        loaded = SAC.load(tmp_path / "sac.zip")
    assert torch.equal(
        loaded.critic.features_extractor.encoder.head.fc.weight,
        frozen.critic.features_extractor.encoder.head.fc.weight,
    )


def test_pretrained_errors(tmp_path):
    data = env_frames(tmp_path, n=60)
    pretrain(
        method="curl",
        dataset=f"npz:{data}",
        augmentation="crop",
        augmentation_kwargs={"size": 16},
        epochs=1,
        out=tmp_path / "p",
        **{**TINY, "batch_size": 16},
    )
    env = envs.PointMassPixels(image_size=24, frame_stack=3)
    with pytest.raises(ValueError, match=r"trained on views of shape \(9, 16, 16\)"):
        SAC(
            "CnnPolicy",
            env,
            policy_kwargs=policy_kwargs(pretrained=tmp_path / "p" / "checkpoint.pt"),
        )
    with pytest.raises(ValueError, match="freeze=True needs pretrained"):
        SAC("CnnPolicy", env, policy_kwargs=policy_kwargs(freeze=True))
    with pytest.raises(ValueError, match="no checkpoint at"):
        policy_kwargs(pretrained=tmp_path / "nope.pt")


@pytest.mark.slow
def test_torchrun_two_processes_pretrain(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "rlrep.cli",
    ]
    cmd += [
        "pretrain",
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--out",
        str(tmp_path / "ddp"),
        "--no-progress",
    ]
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert ckpt["config"]["world_size"] == 2 and ckpt["epoch"] == 1
    assert result.stdout.count("epoch   1/1") == 1  # rank 0 alone reports


def test_the_old_imports_still_work():
    import rlrep.checkpoint
    import rlrep.probes
    from rlrep.pretrain import CHECKPOINT_FORMAT, build_encoder, load_checkpoint, pretrain, probe

    assert CHECKPOINT_FORMAT == rlrep.checkpoint.CHECKPOINT_FORMAT == "rlrep-pretrain/1"
    assert build_encoder is rlrep.checkpoint.build_encoder
    assert load_checkpoint is rlrep.checkpoint.load_checkpoint
    assert probe is rlrep.probes.probe
    assert callable(pretrain)


def test_probe_of_the_random_init_is_the_runs_untrained_encoder(tmp_path):
    import rlrep.augment as augment_lib
    import rlrep.encoders as encoder_lib
    from rlrep.datasets import load_dataset
    from rlrep.probes import evaluate, probe

    pretrain(epochs=1, out=tmp_path / "r", **TINY)
    path = tmp_path / "r" / "checkpoint.pt"
    cfg = load_checkpoint(path)["config"]
    torch.manual_seed(cfg["seed"])  # as pretrain builds it: the encoder first after seeding
    encoder = encoder_lib.make(cfg["encoder"], tuple(cfg["view_shape"]), **cfg["encoder_kwargs"])
    augment = augment_lib.make(cfg["augmentation"], **cfg["augmentation_kwargs"]).eval()
    ds = load_dataset(cfg["dataset"], "data", image_size=cfg["image_shape"][1], seed=cfg["seed"])
    untrained = probe(path, linear=False, random_init=True)
    assert untrained == evaluate(encoder, augment, ds, "cpu")
    assert untrained != probe(path, linear=False)


def test_a_store_of_negatives_is_capped_at_a_quarter_of_the_images_unless_given(tmp_path):
    """A queue as long as the dataset holds each image's own keys among its negatives: by
    default it keeps at most len(train) // 4 keys (digits: 1,438 training images → 359)."""
    for kwargs, rows in (({}, 1438 // 4), ({"queue_size": 100}, 100)):
        out = tmp_path / str(rows)
        pretrain(method="moco", dataset="digits", epochs=1, out=out, method_kwargs=kwargs, **TINY)
        assert load_checkpoint(out / "checkpoint.pt")["method"]["queue"].shape[0] == rows
    stated = pretrain_module._dataset_kwargs("memory_bank", _Images(1438), {})
    assert stated["num_negatives"] == 359 and stated["num_instances"] == 1438


class _Images:
    """Stands for a dataset of ``n`` training images without time order."""

    def __init__(self, n: int) -> None:
        self.train, self.sequences, self.name = range(n), None, "images"
