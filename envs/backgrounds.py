"""Background clips for the video distractions (:mod:`rlrep.envs.distractions`): seeded
procedural clips that need no data, and a user's folder of clips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["LAYOUT", "FolderVideos", "ProceduralVideos"]

_IMAGES = (".png", ".jpg", ".jpeg")
#: The layout of a ``background_dir`` (named in every error about one).
LAYOUT = (
    "background_dir must hold one clip per entry, in sorted order: a sub-folder of image frames "
    "(*.png, *.jpg, read in sorted order) or a .npy file of shape (T, H, W, 3), dtype uint8"
)


class ProceduralVideos:
    """Seeded synthetic clips, no data files: smooth colour noise scrolling under moving discs and
    squares, each clip a loop; clip ``i`` depends only on ``(seed, i)``.

    :param num_clips: number of clips.
    :param size: frame side in pixels.
    :param seed: seed of the whole set (the env's seed picks clips, not this).
    :param length: frames per loop.
    """

    def __init__(self, num_clips: int, size: int, seed: int = 0, length: int = 100) -> None:
        self.lengths, self.size, self.seed = [length] * num_clips, size, seed

    def load(self, clip: int) -> np.ndarray:
        """Clip ``clip`` as ``(length, size, size, 3)`` uint8."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, clip]))
        size, length = self.size, self.lengths[clip]
        y, x = np.arange(size)[:, None] / size, np.arange(size)[None, :] / size
        tile = rng.uniform(0.2, 0.8, 3) + np.zeros((size, size, 3))
        for _ in range(4):  # integer frequencies: the tile wraps, so it can scroll forever
            fy, fx, phase = *rng.integers(-3, 4, 2), rng.uniform(0, 2 * np.pi)
            wave = np.sin(2 * np.pi * (fy * y + fx * x) + phase)
            tile += rng.uniform(-0.25, 0.25, 3) * wave[..., None]
        tile = np.round(np.clip(tile, 0, 1) * 255).astype(np.uint8)
        scroll = rng.integers(-2, 3, 2)  # whole tile sides per loop
        shapes = [  # colour, square?, radius, centre, amplitude, cycles per loop, phase
            (rng.integers(0, 256, 3), rng.integers(2), rng.uniform(0.05, 0.2),
             rng.uniform(0.2, 0.8, 2), rng.uniform(0.1, 0.4, 2), rng.integers(1, 3, 2),
             rng.uniform(0, 2 * np.pi, 2))
            for _ in range(int(rng.integers(2, 6)))
        ]  # fmt: skip
        frames = np.empty((length, size, size, 3), np.uint8)
        for t in range(length):
            shift = scroll * size * t // length
            frames[t] = np.roll(tile, (int(shift[0]), int(shift[1])), axis=(0, 1))
            for color, square, radius, center, amplitude, cycles, phase in shapes:
                cy, cx = center + amplitude * np.sin(2 * np.pi * cycles * t / length + phase)
                dy, dx = np.abs(y - cy), np.abs(x - cx)
                inside = np.maximum(dy, dx) < radius if square else dy**2 + dx**2 < radius**2
                frames[t][inside] = color
        return frames


class FolderVideos:
    """A user's clips: one per entry of ``folder`` in sorted order (see ``background_dir`` of
    :func:`rlrep.envs.make_dmc`), resized to ``size`` (nearest pixel) when a clip is first used.

    :param folder: the clips' folder.
    :param size: frame side in pixels.
    :param max_clips: keep the first ``max_clips`` clips (``None``: all).
    :raises ValueError: no clips, a sub-folder without frames, a malformed ``.npy``.
    """

    def __init__(self, folder: str | os.PathLike, size: int, max_clips: int | None = None) -> None:
        root = Path(folder)
        self.size, self._clips, self.lengths = size, [], []
        for entry in sorted(root.iterdir()) if root.is_dir() else []:
            if entry.name.startswith("."):  # other files (a README) are skipped too
                continue
            if entry.is_dir():
                frames = sorted(f for f in entry.iterdir() if f.suffix.lower() in _IMAGES)
                if not frames:
                    raise ValueError(f"clip folder {str(entry)!r} holds no frames; {LAYOUT}")
                self._clips.append(frames)
                self.lengths.append(len(frames))
            elif entry.suffix == ".npy":
                try:
                    array = np.load(entry, mmap_mode="r", allow_pickle=False)
                except (ValueError, OSError) as err:
                    raise ValueError(f"cannot read {str(entry)!r} ({err}); {LAYOUT}") from None
                shape, dtype = array.shape, array.dtype
                if len(shape) != 4 or shape[-1] != 3 or dtype != np.uint8 or not array.size:
                    raise ValueError(f"{str(entry)!r}: shape {shape}, {dtype}; {LAYOUT}")
                self._clips.append(entry)
                self.lengths.append(len(array))
        if not self._clips:
            raise ValueError(f"background_dir {str(root)!r} holds no clips; {LAYOUT}")
        self._clips, self.lengths = self._clips[:max_clips], self.lengths[:max_clips]

    def load(self, clip: int) -> np.ndarray:
        """Clip ``clip`` as ``(T, size, size, 3)`` uint8."""
        source = self._clips[clip]
        if isinstance(source, Path):
            frames = [np.load(source, allow_pickle=False)]
        else:
            from PIL import Image

            frames = [np.asarray(Image.open(f).convert("RGB"))[None] for f in source]
        rows_cols = [[np.arange(self.size) * n // self.size for n in f.shape[1:3]] for f in frames]
        return np.concatenate(
            [f[:, r][:, :, c] for f, (r, c) in zip(frames, rows_cols, strict=True)]
        )
