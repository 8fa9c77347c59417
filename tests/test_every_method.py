"""Every registered method trains as an SB3 auxiliary loss (SAC on the synthetic task, tiny
budget) and in ``rlrep pretrain``, and logs its metrics in both."""

import csv
import math

import pytest
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure

import rlrep.methods as M
from rlrep import envs
from rlrep.pretrain import pretrain
from rlrep.sb3 import FrameStackReplayBuffer, policy_kwargs

#: Small heads, and SwAV's prototypes learning from the first step.
HEADS = {"hidden_dim": 32, "out_dim": 16}
OPTIONS = {
    "curl": {},
    "moco": {**HEADS, "queue_size": 64},
    "swav": {**HEADS, "num_prototypes": 16, "freeze_prototypes_steps": 0},
    "nnclr": {**HEADS, "support_size": 64},
    "memory_bank": {"out_dim": 16, "num_negatives": 64},
    "atc": {"latent_dim": 16, "hidden_dim": 32},
    "spr": {"projection_dim": 16, "hidden_dim": 32, "steps": 3},
    "cpc": {"context_dim": 16, "context_steps": 2, "prediction_steps": 2},
    "sac_ae": {"num_filters": 8},
    "time_sup_con": {**HEADS, "window": 2},
}


#: SAC-AE compares no two views: it reports its reconstruction instead.
PAIR_METRICS = {"sac_ae": ("reconstruction_mse", "latent_norm")}


def options(name):
    return OPTIONS.get(name, HEADS)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(M.METHODS))
def test_every_method_is_an_sb3_aux_loss_with_its_metrics_logged(name, tmp_path):
    model = SAC(
        "CnnPolicy",
        envs.PointMassPixels(image_size=24, frame_stack=3),
        buffer_size=200,
        learning_starts=32,
        batch_size=16,
        seed=0,
        replay_buffer_class=FrameStackReplayBuffer,
        policy_kwargs=policy_kwargs(
            method=name,
            method_kwargs={
                **options(name),
                **({"num_instances": 200} if name == "memory_bank" else {}),
            },
            encoder_kwargs={"num_filters": 8, "num_layers": 2},
            net_arch=[32, 32],
        ),
    )
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(64, log_interval=1)
    with open(tmp_path / "progress.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("aux/loss")]
    assert rows, "no aux/* row was logged"
    last = rows[-1]
    for key in ("loss", "feature_std", *PAIR_METRICS.get(name, ("alignment", "uniformity"))):
        assert math.isfinite(float(last[f"aux/{key}"])), key
    if name != "sac_ae":
        assert 0 <= float(last["aux/alignment"]) <= 4  # ‖x − y‖² of unit vectors
        assert float(last["aux/uniformity"]) <= 0


@pytest.mark.slow
@pytest.mark.parametrize("name", list(M.METHODS))
def test_every_method_pretrains_with_its_metrics_in_the_history(name, tmp_path, sequence_npz):
    temporal = name in M.TEMPORAL and name != "sac_ae"  # SAC-AE reads single images
    history = pretrain(
        method=name,
        dataset=f"npz:{sequence_npz}" if temporal else "digits",
        epochs=1,
        batch_size=128,
        out=tmp_path / name,
        encoder_kwargs={"num_filters": 8, "num_layers": 2, "features_dim": 16},
        method_kwargs=options(name),
        progress=False,
    )
    row = history[0]
    probe = row["state_r2"] if temporal else row["knn_top1"]
    assert math.isfinite(row["loss"]) and math.isfinite(probe)
    pair = PAIR_METRICS.get(name, ("alignment", "uniformity"))
    assert {"train_feature_std", *(f"train_{k}" for k in pair)} <= set(row)
    # InfoNCE's bound is at most log N, N the candidates of each query (batch of 128).
    candidates = {"curl": 128, "simclr": 255, "moco": 65, "nnclr": 128, "moco_v3": 128,
                  "memory_bank": 4097, "atc": 128, "cpc": 128}  # fmt: skip
    if name in candidates:
        assert row["train_mi_bound"] <= math.log(candidates[name]) + 1e-6
    else:
        assert "train_mi_bound" not in row


def test_pretraining_passes_each_images_dataset_index_to_a_memory_bank(tmp_path, monkeypatch):
    seen = []
    real = M.MemoryBank.forward

    def spy(self, *views, index=None, **kwargs):
        seen.append(index.clone())
        return real(self, *views, index=index, **kwargs)

    monkeypatch.setattr(M.MemoryBank, "forward", spy)
    pretrain(method="memory_bank", epochs=1, batch_size=256, out=tmp_path, progress=False,
             encoder_kwargs={"num_filters": 4, "num_layers": 2, "features_dim": 8})  # fmt: skip
    index = torch.cat(seen)
    assert len(index) == len(seen) * 256 and len(seen) >= 4
    assert len(set(index.tolist())) == len(index)  # each image once per epoch, its own row
