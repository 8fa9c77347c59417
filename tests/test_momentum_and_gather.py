"""Methods declare their momentum pairs; one EMA step and one schedule move them; gathering
across ranks happens only when asked."""

import math

import pytest
import torch

import rlrep.encoders as E
import rlrep.methods as M
from rlrep import distributed
from rlrep.pretrain import pretrain


def small_encoder():
    torch.manual_seed(0)
    return E.PixelEncoder((3, 16, 16), features_dim=8, num_layers=2, num_filters=4)


SMALL = {"hidden_dim": 16, "out_dim": 8}
KWARGS = {"curl": {}, "moco": {**SMALL, "queue_size": 16}, "byol": SMALL, "simclr": SMALL,
          "simsiam": SMALL, "barlow_twins": SMALL, "vicreg": SMALL,
          "swav": {**SMALL, "num_prototypes": 8}, "nnclr": {**SMALL, "support_size": 16},
          "moco_v3": SMALL, "memory_bank": {"out_dim": 8, "num_instances": 16},
          "atc": {"latent_dim": 8, "hidden_dim": 8}, "spr": {"action_dim": 2, "hidden_dim": 8},
          "cpc": {"context_dim": 8}, "sac_ae": {"num_filters": 4},
          "time_sup_con": SMALL}  # fmt: skip


def cosine(t, total, base, final=1.0):  # BYOL §3.2, written out independently
    return final - (final - base) * (math.cos(math.pi * t / total) + 1) / 2


def test_each_method_declares_its_momentum_pairs():
    pairs = {
        name: M.make(name, small_encoder(), **kw).momentum_pairs() for name, kw in KWARGS.items()
    }
    assert {name: len(p) for name, p in pairs.items()} == {
        "curl": 1, "moco": 2, "byol": 2, "simclr": 0, "simsiam": 0, "barlow_twins": 0, "vicreg": 0,
        "swav": 0, "nnclr": 0, "moco_v3": 2, "memory_bank": 0, "atc": 2, "spr": 2, "cpc": 0,
        "sac_ae": 0, "time_sup_con": 0,
    }  # fmt: skip
    assert set(KWARGS) == set(M.METHODS)
    external = M.CURL(small_encoder(), target_encoder=small_encoder())  # CURL-SAC's key encoder
    assert external.momentum_pairs() == []


@pytest.mark.parametrize("name", ["curl", "moco", "byol", "moco_v3", "atc", "spr"])
def test_update_targets_moves_every_pair_by_the_given_momentum(name):
    method = M.make(name, small_encoder(), **KWARGS[name])
    for online, _ in method.momentum_pairs():
        with torch.no_grad():
            for p in online.parameters():
                p.add_(1.0)
    before = [[p.clone() for p in t.parameters()] for _, t in method.momentum_pairs()]
    method.update_targets(0.75)
    for (online, target), old in zip(method.momentum_pairs(), before, strict=True):
        for o, t, b in zip(online.parameters(), target.parameters(), old, strict=True):
            torch.testing.assert_close(t, 0.75 * b + 0.25 * o)


def test_momentum_schedules():
    byol = M.make("byol", small_encoder(), **SMALL)
    assert [byol.momentum_at(t, 8) for t in (0, 4, 8)] == pytest.approx(
        [cosine(t, 8, 0.996) for t in (0, 4, 8)]
    )
    assert byol.momentum_at(8, 8) == pytest.approx(1.0)
    moco = M.make("moco", small_encoder(), **KWARGS["moco"])
    assert moco.momentum_at(3, 8) == pytest.approx(cosine(3, 8, 0.99))
    constant = M.make("moco", small_encoder(), final_momentum=None, **KWARGS["moco"])
    assert constant.momentum_at(3, 8) == pytest.approx(0.99)
    assert M.make("curl", small_encoder()).momentum_at(5, 8) == pytest.approx(0.95)  # paper: τ
    assert M.make("simclr", small_encoder(), **SMALL).momentum_at(5, 8) is None


@pytest.mark.parametrize("name", ["byol", "moco"])
def test_pretraining_steps_the_targets_along_the_cosine(name, tmp_path, monkeypatch):
    seen = []
    real = M.Method.update_targets
    monkeypatch.setattr(
        M.Method, "update_targets", lambda self, m=None: (seen.append(m), real(self, m))
    )
    pretrain(method=name, epochs=2, batch_size=512, out=tmp_path, progress=False,
             encoder_kwargs={"num_filters": 4, "num_layers": 2, "features_dim": 8})  # fmt: skip
    steps = len(seen)  # 2 epochs of the digits train split in batches of 512
    assert steps >= 4
    base = 0.996 if name == "byol" else 0.99
    assert seen == pytest.approx([cosine(t, steps, base) for t in range(steps)])


@pytest.mark.parametrize(
    "name", ["curl", "moco", "simclr", "barlow_twins", "vicreg", "swav", "nnclr", "moco_v3",
             "memory_bank"]
)  # fmt: skip
def test_gathering_across_ranks_is_opt_in(name, monkeypatch):
    calls = []
    monkeypatch.setattr(distributed, "gather", lambda x: calls.append(tuple(x.shape)) or x)
    views = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    index = {"index": torch.arange(4)} if name == "memory_bank" else {}
    M.make(name, small_encoder(), **KWARGS[name])(*views, **index)
    assert calls == []  # the RL plug-in's default: a process group does not change the loss
    M.make(name, small_encoder(), gather_distributed=True, **KWARGS[name])(*views, **index)
    assert calls and all(shape[0] == 4 for shape in calls)
