"""Dataset readers on small files fabricated in the real formats; clear errors otherwise."""

import io
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from rlrep.datasets import DatasetError, load_dataset


def test_digits_is_embedded():
    ds = load_dataset("digits")
    assert ds.train.shape[1:] == (3, 32, 32) and ds.train.dtype == torch.uint8
    assert len(ds.train) + len(ds.test) == 1797 and set(ds.train_labels.tolist()) == set(range(10))


def write_cifar(root, files, label_key, n=6, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    expected = {}
    for name in files:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, label_key: labels, b"batch_label": b"x"}, f)
        expected[name] = (data.reshape(n, 3, 32, 32), labels)
    return expected


def test_cifar10_and_cifar100_pickles(tmp_path):
    exp = write_cifar(
        tmp_path / "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
        b"labels",
    )
    ds = load_dataset("cifar10", tmp_path)
    assert ds.train.shape == (30, 3, 32, 32) and ds.test.shape == (6, 3, 32, 32)
    assert np.array_equal(ds.train[6:12].numpy(), exp["data_batch_2"][0])
    assert ds.test_labels.tolist() == exp["test_batch"][1]
    exp = write_cifar(tmp_path / "cifar-100-python", ["train", "test"], b"fine_labels")
    ds = load_dataset("cifar100", tmp_path)
    assert (
        np.array_equal(ds.train.numpy(), exp["train"][0])
        and ds.train_labels.tolist() == exp["train"][1]
    )


def test_cifar_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"cifar-10-batches-py/data_batch_1"):
        load_dataset("cifar10", tmp_path)
    write_cifar(tmp_path / "cifar-100-python", ["train", "test"], b"fine_labels")
    (tmp_path / "cifar-100-python" / "test").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="not a readable CIFAR"):
        load_dataset("cifar100", tmp_path)


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 ``str`` (BINSTRING), as the CIFAR batches were written."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        n = len(data)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING
        self.write(head + (b"" if n < 256 else struct.pack("<i", n)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def py2_pickle(obj) -> bytes:
    """``obj`` as Python 2's cPickle protocol 2 wrote CIFAR: py2 strings, ``numpy.core`` names."""
    f = io.BytesIO()
    Py2Pickler(f, protocol=2).dump(obj)
    return f.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


@pytest.mark.parametrize("protocol", ["python2", 2, 4, 5])
def test_cifar_batches_of_every_pickle_protocol_load(tmp_path, protocol):
    exp = write_cifar(
        tmp_path / "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
        b"labels",
    )
    root = tmp_path / "cifar-10-batches-py"
    for name, (data, labels) in exp.items():
        batch = {b"data": data.reshape(len(data), -1), b"labels": labels, b"batch_label": b"x"}
        batch[b"filenames"] = [b"img_%d.png" % i for i in range(len(labels))]
        blob = py2_pickle(batch) if protocol == "python2" else pickle.dumps(batch, protocol)
        (root / name).write_bytes(blob)
    if protocol == "python2":
        assert b"cnumpy.core.multiarray\n_reconstruct" in (root / "test_batch").read_bytes()
    ds = load_dataset("cifar10", tmp_path)
    assert np.array_equal(ds.train[6:12].numpy(), exp["data_batch_2"][0])
    assert ds.test_labels.tolist() == exp["test_batch"][1]


class RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_crafted_cifar_pickle_is_refused_and_runs_nothing(tmp_path, protocol):
    write_cifar(
        tmp_path / "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
        b"labels",
    )
    marker = tmp_path / "pwned"
    crafted = {b"data": RunsShell(marker), b"labels": [0]}
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps(crafted, protocol))
    with pytest.raises(DatasetError, match=r"data_batch_1 refers to posix\.system.*refusing"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()


def test_label_counts_that_differ_from_image_counts_fail_at_load(tmp_path):
    exp = write_cifar(tmp_path / "cifar-100-python", ["train", "test"], b"fine_labels")
    data, labels = exp["test"]
    with open(tmp_path / "cifar-100-python" / "test", "wb") as f:
        pickle.dump({b"data": data.reshape(len(data), -1), b"fine_labels": labels[:-1]}, f)
    with pytest.raises(DatasetError, match=r"cifar-100-python/test has 6 images but 5 labels"):
        load_dataset("cifar100", tmp_path)
    images = np.zeros((10, 3, 8, 8), np.uint8)
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(9) % 2)
    with pytest.raises(DatasetError, match=r"10 images but 'labels' of shape \(9,\)"):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")
    np.savez(tmp_path / "s.npz", images=images, states=np.zeros((11, 2), np.float32))
    with pytest.raises(DatasetError, match=r"10 images but 'states' of shape \(11, 2\)"):
        load_dataset(f"npz:{tmp_path / 's.npz'}")


def test_stl10_binary_is_column_major(tmp_path):
    root = tmp_path / "stl10_binary"
    root.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 3, 96, 96), dtype=np.uint8)  # (N, C, H, W)
    images.transpose(0, 1, 3, 2).tofile(root / "train_X.bin")  # STL-10 stores (N, C, W, H)
    np.array([1, 10, 5], np.uint8).tofile(root / "train_y.bin")
    images[:2].transpose(0, 1, 3, 2).tofile(root / "test_X.bin")
    np.array([2, 3], np.uint8).tofile(root / "test_y.bin")
    ds = load_dataset("stl10", tmp_path)
    assert np.array_equal(ds.train.numpy(), images) and ds.train_labels.tolist() == [0, 9, 4]
    (root / "test_X.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(DatasetError, match="not a whole number"):
        load_dataset("stl10", tmp_path)


def test_folder_of_class_subfolders(tmp_path):
    from PIL import Image

    for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.new("RGB", (20, 12), colour).save(tmp_path / cls / f"{i}.png")
    ds = load_dataset(f"folder:{tmp_path}", image_size=16)
    images = torch.cat([ds.train, ds.test])
    labels = torch.cat([ds.train_labels, ds.test_labels])
    assert images.shape == (10, 3, 16, 16)
    assert (images[labels == 0][:, 0] == 255).all() and (images[labels == 1][:, 2] == 255).all()
    with pytest.raises(DatasetError, match="no class sub-folders"):
        load_dataset(f"folder:{tmp_path / 'cat'}")


def test_npz_channels_last_labels_and_states(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    np.savez(
        tmp_path / "d.npz",
        images=images,
        labels=np.arange(10) % 2,
        states=np.arange(20, dtype=np.float32).reshape(10, 2),
    )
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert ds.train.shape[1:] == (3, 8, 8) and ds.train_states.shape[1] == 2
    np.savez(tmp_path / "bad.npz", pixels=images)
    with pytest.raises(DatasetError, match="expected 'images'"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")
    with pytest.raises(DatasetError, match=r"expected .*missing\.npz"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")


def test_dmc_frames_are_rendered_once_and_cached(tmp_path):
    kw = {"image_size": 16, "dmc_frames": 50, "dmc_episode_steps": 9}
    ds = load_dataset("dmc:cartpole-swingup", tmp_path, **kw)
    assert ds.train.shape[1:] == (9, 16, 16) and ds.train_states.shape[1] == 5  # 3 stacked frames
    assert len(ds.train) + len(ds.test) == 50
    assert ds.state_keys == ("position",) * 3 + ("velocity",) * 2  # cart x, cos, sin; 2 speeds
    # Five episodes of 10 observations (the first and 9 steps); one is held out whole.
    episodes = ds.sequences.episodes
    assert episodes.tolist() == [e for e in range(5) for _ in range(10)]
    test = torch.ones(50, dtype=torch.bool)
    test[ds.train_index] = False
    assert test.sum() == 10 and episodes[test].unique().numel() == 1
    assert not set(episodes[test].tolist()) & set(episodes[~test].tolist())
    assert torch.equal(ds.sequences.usable, ~test)
    cache = next(tmp_path.glob("dmc-cartpole-swingup-*.npz"))
    mtime = cache.stat().st_mtime
    again = load_dataset("dmc:cartpole-swingup", tmp_path, **kw)
    assert cache.stat().st_mtime == mtime and torch.equal(again.train, ds.train)


def test_a_sequence_dataset_of_one_episode_is_refused(tmp_path):
    images = np.zeros((6, 3, 8, 8), np.uint8)
    np.savez(tmp_path / "one.npz", images=images, actions=np.zeros((6, 1), np.float32),
             episodes=np.zeros(6, np.int64))  # fmt: skip
    with pytest.raises(DatasetError, match="at least two episodes"):
        load_dataset(f"npz:{tmp_path / 'one.npz'}")


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="valid: digits, cifar10"):
        load_dataset("imagenet")
