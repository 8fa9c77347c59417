"""Sequence datasets: windows against a naive reference (episode ends, test frames masked, the
dataset's end), npz/dmc layout checks, and pretraining a temporal method from windows."""

import numpy as np
import pytest
import torch

import rlrep.methods as M
from rlrep.datasets import DatasetError, load_dataset
from rlrep.pretrain import pretrain
from rlrep.sequences import Sequences


def naive_window(seq, start, length):
    """obs_t … obs_{t+L} one step at a time: an observation counts while the episode lasts and
    it is usable; otherwise the last counted one repeats; actions past the episode are 0."""
    n = len(seq.frames)
    obs, actions, valid = [seq.frames[start]], [], [True]
    in_episode = True
    for j in range(1, length + 1):
        i = start + j
        in_episode = in_episode and i < n and bool(seq.episodes[i] == seq.episodes[start])
        ok = in_episode and bool(seq.usable[i])
        obs.append(seq.frames[i] if ok else obs[-1])
        actions.append(seq.actions[start + j - 1] if in_episode else torch.zeros(seq.action_dim))
        valid.append(ok)
    return torch.stack(obs), torch.stack(actions), torch.tensor(valid)


def toy_sequences(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, 3, 4, 4), generator=g, dtype=torch.uint8)
    actions = torch.randn(n, 2, generator=g)
    episodes = torch.tensor([0] * 7 + [1] * 12 + [2] * 3 + [3] * (n - 22))
    usable = torch.rand(n, generator=g) > 0.25
    return Sequences(frames, actions, episodes, usable)


@pytest.mark.parametrize("length", [1, 3, 6])
def test_windows_equal_the_naive_reference(length):
    seq = toy_sequences()
    starts = torch.nonzero(seq.usable).flatten()  # every usable start, the last frames included
    obs, actions, valid = seq.windows(starts, length)
    assert obs.shape == (len(starts), length + 1, 3, 4, 4) and actions.shape[1] == length
    for b, start in enumerate(starts.tolist()):
        want_obs, want_actions, want_valid = naive_window(seq, start, length)
        torch.testing.assert_close(valid[b], want_valid)
        torch.testing.assert_close(obs[b], want_obs)
        torch.testing.assert_close(actions[b], want_actions)
    assert not valid.all() and valid[:, 0].all()


def test_sequences_check_their_layout():
    seq = toy_sequences()
    with pytest.raises(ValueError, match="non-decreasing"):
        Sequences(seq.frames, seq.actions, seq.episodes.flip(0), seq.usable)
    with pytest.raises(ValueError, match="one per frame"):
        Sequences(seq.frames, seq.actions[:-1], seq.episodes, seq.usable)


def test_an_npz_with_actions_and_episodes_is_a_sequence_dataset(sequence_npz, tmp_path):
    ds = load_dataset(f"npz:{sequence_npz}")
    seq = ds.sequences
    assert seq is not None and seq.action_dim == 2
    # The training split is exactly the usable frames, in the dataset's own images.
    torch.testing.assert_close(seq.frames[ds.train_index], ds.train)
    assert seq.usable.sum() == len(ds.train) and not seq.usable[~seq.usable].any()
    data = dict(np.load(sequence_npz))
    del data["episodes"]
    np.savez(tmp_path / "half.npz", **data)
    with pytest.raises(DatasetError, match="only one of 'actions'"):
        load_dataset(f"npz:{tmp_path / 'half.npz'}")


def test_a_temporal_method_needs_a_sequence_dataset(tmp_path):
    with pytest.raises(DatasetError, match=r"learns from windows of time.*sequence dataset"):
        pretrain(method="atc", dataset="digits", epochs=1, out=tmp_path, progress=False)


def test_pretraining_reads_windows_that_start_at_training_frames(sequence_npz, tmp_path,
                                                                monkeypatch):  # fmt: skip
    """SPR in ``rlrep pretrain``: each epoch draws every training image once as a window start
    (its index among all frames), windows span the method's horizon, and the actions and masks
    the method gets are the windows' (test frames masked: see the reference test above)."""
    ds = load_dataset(f"npz:{sequence_npz}")
    starts, given, got = [], [], []
    real_windows, real_forward = Sequences.windows, M.SPR.forward

    def windows(self, first, length):
        starts.append((first.clone(), length))
        given.append(real_windows(self, first, length))
        return given[-1]

    def forward(self, views, actions=None, valid=None, features_a=None):
        got.append((actions.clone(), valid.clone()))
        return real_forward(self, views, actions, valid, features_a)

    monkeypatch.setattr(Sequences, "windows", windows)
    monkeypatch.setattr(M.SPR, "forward", forward)
    pretrain(method="spr", dataset=f"npz:{sequence_npz}", epochs=1, batch_size=64, out=tmp_path,
             progress=False, augmentation="shift",
             encoder_kwargs={"num_filters": 4, "num_layers": 2, "features_dim": 8},
             method_kwargs={"steps": 2, "projection_dim": 8, "hidden_dim": 8})  # fmt: skip
    first = torch.cat([s for s, _ in starts])
    assert {length for _, length in starts} == {2}
    assert len(first) == len(set(first.tolist())) == (len(ds.train) // 64) * 64
    assert set(first.tolist()) <= set(ds.train_index.tolist())
    for (_, actions, valid), (seen_actions, seen_valid) in zip(given, got, strict=True):
        torch.testing.assert_close(seen_actions, actions)
        torch.testing.assert_close(seen_valid, valid)
    assert not torch.cat([v for _, v in got]).all()  # some windows masked
