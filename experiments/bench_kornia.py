"""rlrep's own augmentation kernels vs their kornia equivalents, on the CPU (and CUDA if present).

Each pair runs on the same 128×9×100×100 uint8 batch (3 stacked RGB frames, DMC-sized); the
kornia module goes through :class:`rlrep.augment.KorniaAugmentation` (per stacked frame, shared
parameters, uint8 in and out), so both sides do the same job. Pairs are timed in alternating
rounds in one process (round 0 warms up) and the ratio of medians printed: kornia / rlrep,
above 1 when rlrep's own kernel is faster. Crops use kornia's batched ``cropping_mode="resample"``
(its default ``"slice"`` crops sample by sample in a Python loop) and are timed in both modes.

Usage: ``python experiments/bench_kornia.py [--rounds 7] [--batch-size 128] [--device cpu]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import kornia.augmentation as K
import torch

import rlrep.augment as A

# name: (rlrep spec and kwargs, kornia module factory, eval_view) — same distribution where
# kornia has one; ``cutout`` (RandomErasing) and ``solarize`` (a threshold range) are near ones.
PAIRS = {
    "crop 100→84 (resample)": (
        ("crop", {"size": 84}),
        lambda: K.RandomCrop((84, 84), cropping_mode="resample"),
        "center_crop",
    ),
    "crop 100→84 (slice)": (
        ("crop", {"size": 84}),
        lambda: K.RandomCrop((84, 84), cropping_mode="slice"),
        "center_crop",
    ),
    "shift pad 4": (
        ("shift", {"pad": 4}),
        lambda: K.RandomCrop(
            (100, 100), padding=4, padding_mode="replicate", cropping_mode="resample"
        ),
        None,
    ),
    "color_jitter": (
        ("color_jitter", {}),
        lambda: K.ColorJiggle(0.4, 0.4, 0.4, 0.5, p=1.0),
        None,
    ),
    "grayscale p=0.3": (("grayscale", {}), lambda: K.RandomGrayscale(p=0.3), None),
    "flip p=0.2": (("flip", {}), lambda: K.RandomHorizontalFlip(p=0.2), None),
    "rotate 90° p=0.3": (
        ("rotate", {}),
        lambda: K.RandomRotation90(times=(1, 3), p=0.3),
        None,
    ),
    "cutout ≈ RandomErasing": (("cutout", {}), lambda: K.RandomErasing(p=1.0), None),
    "blur k=9": (
        ("blur", {"kernel_size": 9, "p": 1.0}),
        lambda: K.RandomGaussianBlur((9, 9), (0.1, 2.0), p=1.0),
        None,
    ),
    "solarize": (("solarize", {}), lambda: K.RandomSolarize(p=0.2), None),
    "resized_crop →84": (
        ("resized_crop", {"size": 84}),
        lambda: K.RandomResizedCrop((84, 84), cropping_mode="resample"),
        "resize",
    ),
}


def timed(fn, x: torch.Tensor, sync) -> float:
    sync()
    start = time.perf_counter()
    fn(x)
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(
        f"{args.batch_size}×9×100×100 uint8, {name}, {torch.get_num_threads()} threads, "
        f"medians of {args.rounds} alternating rounds; ratio = kornia / rlrep"
    )
    x = torch.randint(0, 256, (args.batch_size, 9, 100, 100), dtype=torch.uint8, device=device)
    for label, ((spec, kwargs), factory, eval_view) in PAIRS.items():
        ours = A.make(spec, **kwargs).to(device)
        theirs = A.make(factory(), eval_view=eval_view).to(device)
        times: dict[str, list[float]] = {"rlrep": [], "kornia": []}
        with torch.no_grad():
            for round_ in range(args.rounds + 1):
                for key, aug in (("rlrep", ours), ("kornia", theirs)):
                    t = timed(aug, x, sync)
                    if round_ > 0:
                        times[key].append(t)
        r, k = statistics.median(times["rlrep"]), statistics.median(times["kornia"])
        print(f"  {label:24s} rlrep {r * 1e3:8.1f} ms   kornia {k * 1e3:8.1f} ms   {k / r:6.2f}×")


if __name__ == "__main__":
    main()
