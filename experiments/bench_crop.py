"""Random crop 100 → 84 of a 512×9×100×100 uint8 batch: rlrep vs CURL's numpy crop, one run.

CURL's reference code crops on the host with ``view_as_windows`` fancy indexing (here numpy's
``sliding_window_view``, the same strided view), then copies the batch to the device. The
script times, interleaved and repeated, in the same process:

- CPU: rlrep ``RandomCrop`` on a CPU tensor vs the numpy crop (target: ratio ≤ 1.0);
  kornia's ``RandomCrop`` (default slice mode) for reference.
- CUDA (when present): rlrep on a batch already on the GPU vs numpy crop + host-to-device copy
  of the crops (target: ≥ 10× faster); kornia on the GPU for reference.

Usage: ``python experiments/bench_crop.py [--repeats 30] [--csv results.csv]``
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from rlrep.augment import RandomCrop

B, C, H, W, SIZE = 512, 9, 100, 100, 84


def numpy_crop(imgs: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """CURL's ``random_crop`` (utils.py), with numpy's sliding_window_view as view_as_windows."""
    n, crop_max = imgs.shape[0], imgs.shape[-1] - size
    imgs = np.transpose(imgs, (0, 2, 3, 1))
    w1, h1 = rng.integers(0, crop_max, n), rng.integers(0, crop_max, n)
    windows = np.lib.stride_tricks.sliding_window_view(imgs, (size, size), axis=(1, 2))
    return windows[np.arange(n), w1, h1]  # (n, C, size, size)


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, sync: Callable[[], None]):
    """Median seconds per call of each function, the functions taking turns each round."""
    for fn in fns.values():  # warm-up
        fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--csv", default=None, help="append the measured rows to this CSV file")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    host = torch.randint(0, 256, (B, C, H, W), dtype=torch.uint8)
    host_np = host.numpy()
    crop = RandomCrop(SIZE)
    rows = []

    import kornia.augmentation as K

    kornia_crop = K.RandomCrop((SIZE, SIZE))
    cpu = time_interleaved(
        {"numpy (CURL)": lambda: numpy_crop(host_np, SIZE, rng), "rlrep": lambda: crop(host)},
        args.repeats,
        sync=lambda: None,
    )
    # kornia is timed apart: its OpenMP workers keep spinning for a while after each call and
    # would take the second core from whatever runs next in an interleaved round.
    cpu |= time_interleaved(
        {"kornia RandomCrop": lambda: kornia_crop(host.float())}, 5, sync=lambda: None
    )
    print(f"CPU ({torch.get_num_threads()} threads), batch {B}×{C}×{H}×{W} uint8 → {SIZE}:")
    for name, t in cpu.items():
        print(f"  {name:22s} {t * 1e3:8.2f} ms")
    ratio = cpu["rlrep"] / cpu["numpy (CURL)"]
    print(f"  rlrep / numpy time = {ratio:.2f}×  (target ≤ 1.0×)")
    rows += [("cpu", name, t) for name, t in cpu.items()]

    if torch.cuda.is_available():
        dev = torch.device("cuda")
        on_gpu = host.to(dev)
        sync = torch.cuda.synchronize
        gpu = time_interleaved(
            {
                "numpy + copy to GPU": lambda: torch.from_numpy(numpy_crop(host_np, SIZE, rng)).to(
                    dev
                ),
                "rlrep on GPU": lambda: crop(on_gpu),
                "kornia on GPU": lambda: kornia_crop(on_gpu.float()),
            },
            args.repeats,
            sync=sync,
        )
        print(f"CUDA ({torch.cuda.get_device_name()}):")
        for name, t in gpu.items():
            print(f"  {name:22s} {t * 1e3:8.3f} ms")
        speedup = gpu["numpy + copy to GPU"] / gpu["rlrep on GPU"]
        print(f"  speed-up of rlrep on GPU over numpy + copy = {speedup:.1f}×  (target ≥ 10×)")
        rows += [("cuda", name, t) for name, t in gpu.items()]

    if args.csv:
        gpu_name = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
        with open(args.csv, "a", newline="") as f:
            writer = csv.writer(f)
            if f.tell() == 0:
                writer.writerow(["where", "method", "median_ms", "batch", "device", "torch"])
            for where, name, t in rows:
                device = (
                    gpu_name
                    if where == "cuda"
                    else f"cpu x{torch.get_num_threads()} {platform.machine()}"
                )
                batch = f"{B}x{C}x{H}x{W}->{SIZE}"
                writer.writerow([where, name, f"{t * 1e3:.4f}", batch, device, torch.__version__])


if __name__ == "__main__":
    main()
