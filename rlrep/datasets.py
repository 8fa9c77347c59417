"""Image datasets for pretraining and probes, as uint8 ``(N, C, H, W)`` tensors in memory.

``load_dataset(spec, data_dir)`` with ``spec`` one of:

- ``digits`` — scikit-learn's 8×8 digits (embedded), upscaled ×4 to 3×32×32; labels 0–9.
- ``cifar10`` / ``cifar100`` — the python pickle batches (``cifar-10-batches-py/data_batch_1..5``,
  ``test_batch``; ``cifar-100-python/train``, ``test``) under ``data_dir``, unpickled by a
  restricted unpickler that builds only dicts, lists, bytes and numpy arrays (a crafted file in
  their place is refused, and runs nothing).
- ``stl10`` — the binary files (``stl10_binary/train_X.bin``, ``train_y.bin``, ``test_X.bin``,
  ``test_y.bin``, ``unlabeled_X.bin``) under ``data_dir``; 3×96×96.
- ``folder:PATH`` — one sub-folder per class of image files (PNG/JPEG), resized to ``image_size``.
- ``npz:PATH`` — arrays ``images`` (N, C, H, W) or (N, H, W, C) uint8, optional ``labels``/``states``
  (and ``state_keys`` (S,) strings naming each state entry, e.g. ``"position"``, ``"velocity"``);
  with ``actions`` (N, A) and ``episodes`` (N,) too, a sequence dataset (frames in time order,
  :class:`rlrep.sequences.Sequences`) for the temporal methods (ATC, CPC, SPR), split by episode:
  a seeded fifth of the episodes is held out whole, so no test frame has a training neighbour.
- ``dmc:TASK`` — observations rendered from ``rlrep.envs.make_dmc`` (3 stacked frames, as the RL
  envs give them) along episodes of ``dmc_episode_steps`` agent steps, under a uniform random
  policy at the task's action repeat (an action drawn per agent step and held for the repeat),
  with their physics states (the task's observation entries, named by ``state_keys``) as
  regression targets and the actions between them; cached to ``data_dir/dmc-TASK-….npz``.

Nothing is downloaded: a missing or corrupt file raises :class:`DatasetError` naming the file
expected and where, as does a label or state count that differs from the image count (caught at
load, before any training).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rlrep.sequences import Sequences

__all__ = ["Dataset", "DatasetError", "load_dataset"]


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or malformed."""


@dataclass
class Dataset:
    """``train``/``test`` images ``(N, C, H, W)`` uint8; ``*_labels`` ``(N,)`` int64 or None;
    ``*_states`` ``(N, S)`` float32 regression targets or None; ``sequences``: every image in
    time order with the actions between them (sequence datasets), else None."""

    name: str
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    train_states: torch.Tensor | None = None
    test_states: torch.Tensor | None = None
    sequences: Sequences | None = None
    #: ``(N_train,)`` index of each training image among all images (their time order).
    train_index: torch.Tensor | None = None
    #: The name of each state entry (a DMC observation key: ``"position"``, ``"velocity"``, ...).
    state_keys: tuple[str, ...] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])


def _split(images, labels=None, states=None, test_fraction=0.2, seed=0, name="", episodes=None):
    """A seeded ``test_fraction`` of the images held out; with ``episodes`` ``(N,)``, that
    fraction of the episodes (at least one), whole, so test frames have no training neighbours."""
    n = len(images)
    generator = torch.Generator().manual_seed(seed)
    if episodes is None:
        perm = torch.randperm(n, generator=generator)
        n_test = max(1, int(n * test_fraction))
        te, tr = perm[:n_test], perm[n_test:]
    else:
        ids = episodes.unique()
        held_out = ids[torch.randperm(len(ids), generator=generator)]
        held_out = held_out[: max(1, int(len(ids) * test_fraction))]
        in_test = torch.isin(episodes, held_out)
        te, tr = in_test.nonzero().squeeze(1), (~in_test).nonzero().squeeze(1)
        if len(tr) == 0:
            raise DatasetError(
                f"{name}: all frames are in one episode; a sequence dataset needs at least two "
                "episodes (one is held out whole for the probes)"
            )

    def pick(x, idx):
        return None if x is None else x[idx]

    return Dataset(
        name,
        images[tr],
        images[te],
        pick(labels, tr),
        pick(labels, te),
        pick(states, tr),
        pick(states, te),
        train_index=tr,
    )


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(
            f"{what}: expected {path} (nothing is downloaded; put the file there or pass --data-dir)"
        )
    return path


def _array_reconstructors() -> dict[tuple[str, str], object]:
    """The globals a CIFAR batch may name, resolved in this numpy: the array reconstructors under
    both numpy module names (``numpy.core`` before numpy 2, ``numpy._core`` since), without
    importing the deprecated ``numpy.core`` shim."""
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy's _reconstruct (protocol ≤ 4 pickles)
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # numpy's _frombuffer (protocol 5 pickles)
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,  # bytes in a protocol-2 pickle written by Python 3
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, and nothing else."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what a CIFAR batch holds: dicts, lists, bytes, ints and
    numpy uint8 arrays. Any other global (``os.system``, ``builtins.eval``, a class…) is refused
    before it is imported, so a crafted file runs nothing."""

    def __init__(self, file, path: Path, what: str) -> None:
        super().__init__(file, encoding="bytes")  # the batches were pickled by Python 2
        self.path, self.what = path, what
        self.allowed = _array_reconstructors()

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.allowed:
            raise DatasetError(
                f"{self.what}: {self.path} refers to {module}.{name}, which a CIFAR python batch "
                "never holds; refusing to unpickle it (a pickle can run code). Replace the file "
                "with the original from https://www.cs.toronto.edu/~kriz/cifar.html"
            )
        return self.allowed[(module, name)]


def _unpickle(path: Path, what: str) -> dict:
    """A CIFAR python batch, read with :class:`_CifarUnpickler`; DatasetError naming the file."""
    try:
        with open(_need(path, what), "rb") as f:
            batch = _CifarUnpickler(f, path, what).load()
    except DatasetError:
        raise
    except Exception as err:
        raise DatasetError(f"{what}: {path} is not a readable CIFAR python pickle ({err})") from err
    if not isinstance(batch, dict):
        raise DatasetError(
            f"{what}: {path} holds a {type(batch).__name__}, expected the dict of a CIFAR python "
            "batch"
        )
    return batch


def _cifar_batches(
    paths: list[Path], label_key: bytes, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for p in paths:
        batch = _unpickle(p, what)
        if b"data" not in batch or label_key not in batch:
            raise DatasetError(
                f"{what}: {p} lacks b'data' or {label_key!r}; is it a CIFAR python batch?"
            )
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise DatasetError(f"{what}: {p} data has shape {data.shape}, expected (N, 3072)")
        batch_labels = np.asarray(batch[label_key], dtype=np.int64)
        if batch_labels.shape != (len(data),):
            raise DatasetError(
                f"{what}: {p} has {len(data)} images but {batch_labels.size} labels "
                f"({label_key!r} of shape {batch_labels.shape}); each image needs one label — "
                "replace the file with the original batch"
            )
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(batch_labels)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def _cifar(data_dir: Path, classes: int) -> Dataset:
    if classes == 10:
        root, what = data_dir / "cifar-10-batches-py", "cifar10"
        train = [root / f"data_batch_{i}" for i in range(1, 6)]
        test, key = [root / "test_batch"], b"labels"
    else:
        root, what = data_dir / "cifar-100-python", "cifar100"
        train, test, key = [root / "train"], [root / "test"], b"fine_labels"
    x, y = _cifar_batches(train, key, what)
    xt, yt = _cifar_batches(test, key, what)
    return Dataset(what, x, xt, y, yt)


def _stl10_images(path: Path) -> torch.Tensor:
    raw = np.fromfile(_need(path, "stl10"), dtype=np.uint8)
    if raw.size % (3 * 96 * 96):
        raise DatasetError(
            f"stl10: {path} has {raw.size} bytes, not a whole number of 3×96×96 images"
        )
    # STL-10 stores each image column-major: (N, C, W, H) → (N, C, H, W).
    return torch.from_numpy(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2).copy())


def _stl10(data_dir: Path) -> Dataset:
    root = data_dir / "stl10_binary"
    x, xt = _stl10_images(root / "train_X.bin"), _stl10_images(root / "test_X.bin")
    y = torch.from_numpy(
        np.fromfile(_need(root / "train_y.bin", "stl10"), dtype=np.uint8).astype(np.int64) - 1
    )
    yt = torch.from_numpy(
        np.fromfile(_need(root / "test_y.bin", "stl10"), dtype=np.uint8).astype(np.int64) - 1
    )
    if len(y) != len(x) or len(yt) != len(xt):
        raise DatasetError(
            f"stl10: {len(x)} train images but {len(y)} labels, {len(xt)} test images but {len(yt)} labels"
        )
    unlabeled = root / "unlabeled_X.bin"
    if unlabeled.exists():  # pretraining uses it; probes use the labelled splits
        x = torch.cat([x, _stl10_images(unlabeled)])
        y = torch.cat([y, torch.full((len(x) - len(y),), -1)])
    return Dataset("stl10", x, xt, y, yt)


def _folder(path: Path, image_size: int) -> Dataset:
    from PIL import Image

    root = _need(path, "folder")
    classes = sorted(d for d in root.iterdir() if d.is_dir())
    if not classes:
        raise DatasetError(
            f"folder: {root} has no class sub-folders (expected {root}/<class>/<image>.png)"
        )
    images, labels = [], []
    for label, d in enumerate(classes):
        for f in sorted(d.iterdir()):
            if f.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
                continue
            try:
                img = Image.open(f).convert("RGB").resize((image_size, image_size), Image.BILINEAR)
            except Exception as err:
                raise DatasetError(f"folder: cannot read image {f} ({err})") from err
            images.append(np.asarray(img).transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise DatasetError(f"folder: no .png/.jpg images under {root}/<class>/")
    return _split(torch.from_numpy(np.stack(images)), torch.tensor(labels), name=f"folder:{root}")


def _npz(path: Path) -> Dataset:
    try:
        data = np.load(_need(path, "npz"))
    except DatasetError:
        raise
    except Exception as err:
        raise DatasetError(f"npz: {path} is not a readable .npz file ({err})") from err
    if "images" not in data:
        raise DatasetError(
            f"npz: {path} has arrays {list(data.keys())}; expected 'images' (N, C, H, W) uint8"
        )
    images = np.asarray(data["images"])
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DatasetError(
            f"npz: 'images' must be uint8 (N, C, H, W), got {images.dtype} {images.shape}"
        )
    if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)  # channels-last → channel-first
    labels = _per_image(data, "labels", np.int64, 1, len(images), path)
    states = _per_image(data, "states", np.float32, 2, len(images), path)
    actions = _per_image(data, "actions", np.float32, 2, len(images), path)
    episodes = _per_image(data, "episodes", np.int64, 1, len(images), path)
    frames = torch.from_numpy(np.ascontiguousarray(images))
    if (actions is None) != (episodes is None):
        raise DatasetError(
            f"npz: {path} has only one of 'actions' (N, A) and 'episodes' (N,); a sequence "
            "dataset needs both (or neither, for plain images)"
        )
    ds = _split(frames, labels, states, name=f"npz:{path}", episodes=episodes)
    ds.state_keys = _state_keys(data, states, path)
    if actions is not None:
        usable = torch.zeros(len(frames), dtype=torch.bool)
        usable[ds.train_index] = True
        try:
            ds.sequences = Sequences(frames, actions, episodes, usable)
        except ValueError as error:
            raise DatasetError(f"npz: {path}: {error}") from None
    return ds


def _state_keys(data, states: torch.Tensor | None, path: Path) -> tuple[str, ...] | None:
    """The npz's ``state_keys`` (one string per state entry), checked against ``states``."""
    if "state_keys" not in data:
        return None
    keys = np.asarray(data["state_keys"])
    if states is None or keys.dtype.kind != "U" or keys.shape != (states.shape[1],):
        raise DatasetError(
            f"npz: {path} 'state_keys' is {keys.dtype} {keys.shape}; expected one string per "
            f"state entry, (S,) with 'states' (N, S)"
            + ("" if states is None else f" = {tuple(states.shape)}")
        )
    return tuple(str(k) for k in keys)


def _per_image(data, key: str, dtype: type, ndim: int, n: int, path: Path) -> torch.Tensor | None:
    """Array ``key`` of an npz (None if absent), checked to hold one row per image, so a
    mismatch fails at load rather than after an epoch of training."""
    if key not in data:
        return None
    try:
        array = np.asarray(data[key], dtype=dtype)
    except (TypeError, ValueError) as err:
        raise DatasetError(
            f"npz: {path} '{key}' cannot be read as {np.dtype(dtype)} ({err})"
        ) from err
    shape = "(N,)" if ndim == 1 else "(N, S)"
    if array.ndim != ndim or len(array) != n:
        raise DatasetError(
            f"npz: {path} has {n} images but '{key}' of shape {array.shape}; expected {shape} "
            f"with N = {n}, one row per image"
        )
    return torch.from_numpy(array)


def _dmc(
    task: str,
    data_dir: Path,
    image_size: int,
    frames: int,
    seed: int,
    episode_steps: int,
    frame_stack: int = 3,
) -> Dataset:
    name = f"dmc-{task}-{image_size}px-stack{frame_stack}-{frames}-ep{episode_steps}-seed{seed}"
    cache = data_dir / f"{name}.npz"
    if not cache.exists():
        from rlrep import envs  # lazily: rlrep's core does not depend on envs

        env = envs.make_dmc(task, image_size=image_size, frame_stack=frame_stack, seed=seed)
        rng = np.random.default_rng(seed)
        images, states, actions, episodes = [], [], [], []
        obs, info = env.reset(seed=seed)
        episode, step, ended = 0, 0, False
        while len(images) < frames:
            images.append(obs)
            states.append(info["state"])
            episodes.append(episode)
            # actions[i] is taken at images[i] (at an episode's last image: drawn, not taken).
            actions.append(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            if ended or step == episode_steps:
                obs, info = env.reset()
                episode, step, ended = episode + 1, 0, False
            else:
                obs, _, terminated, truncated, info = env.step(actions[-1])
                step, ended = step + 1, terminated or truncated
        env.close()
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            images=np.stack(images),
            states=np.stack(states).astype(np.float32),
            actions=np.stack(actions),
            episodes=np.array(episodes, dtype=np.int64),
            state_keys=np.array(env.state_keys),
        )
        tmp.replace(cache)
    ds = _npz(cache)
    ds.name = f"dmc:{task}"
    return ds


def load_dataset(
    spec: str,
    data_dir: str | Path = "data",
    image_size: int = 64,
    dmc_frames: int = 5000,
    seed: int = 0,
    dmc_episode_steps: int = 100,
) -> Dataset:
    """Load the dataset named by ``spec`` (see the module docstring).

    :param data_dir: where dataset files are looked for (and DMC frames cached).
    :param image_size: side for ``folder:`` images and ``dmc:`` renders.
    :param dmc_frames: observations a ``dmc:`` dataset collects.
    :param seed: seed of a ``dmc:`` dataset's random policy and initial states.
    :param dmc_episode_steps: agent steps per ``dmc:`` episode (fewer where the task ends
        first): many short episodes give varied initial states and a held-out fifth of them
        (100: a cartpole episode at action repeat 8 is 125).
    :raises DatasetError: missing or malformed files, or an unknown name.
    """
    data_dir = Path(data_dir)
    kind, _, arg = spec.partition(":")
    if spec == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.from_numpy(d.images).float().mul(255.0 / 16.0).round().to(torch.uint8)
        x = (
            x.repeat_interleave(4, dim=1)
            .repeat_interleave(4, dim=2)
            .unsqueeze(1)
            .repeat(1, 3, 1, 1)
        )
        return _split(x.contiguous(), torch.from_numpy(d.target), name="digits")
    if spec in ("cifar10", "cifar100"):
        return _cifar(data_dir, int(spec[5:]))
    if spec == "stl10":
        return _stl10(data_dir)
    if kind == "folder" and arg:
        return _folder(Path(arg), image_size)
    if kind == "npz" and arg:
        return _npz(Path(arg))
    if kind == "dmc" and arg:
        return _dmc(arg, data_dir, image_size, dmc_frames, seed, dmc_episode_steps)
    raise DatasetError(
        f"unknown dataset {spec!r}; valid: digits, cifar10, cifar100, stl10, folder:PATH, npz:PATH, dmc:TASK"
    )
