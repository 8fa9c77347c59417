"""Does pretraining help? Probes of a pretrained encoder vs the same encoder at random init.

- digits (embedded): SimCLR on 3×32×32 digits; kNN (k = 200) and linear top-1 on the held-out
  split, pretrained vs the same architecture with its random initial weights.
- DMC frames: measured by ``experiments/representation_benchmark.py`` (every method, random
  init, raw pixels and a supervised bound, positions and velocities on held-out episodes).
- throughput: images/s of the training step with augmentation vs the same step on
  pre-augmented views (target on a GPU: ≥ 0.9×), measured in alternating rounds.

Usage: ``python experiments/bench_pretrain.py [--epochs 30]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import rlrep.augment as A
import rlrep.encoders as E
import rlrep.methods as M
from rlrep.pretrain import pretrain
from rlrep.probes import probe


def throughput(device: torch.device, batch_size: int = 256, rounds: int = 5) -> tuple[float, float]:
    """Images/s of a SimCLR step (ResNet-18, 32×32) with on-device augmentation vs without."""
    encoder = E.ResNet18((3, 32, 32)).to(device)
    method = M.make("simclr", encoder).to(device)
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    augment = A.make("simclr", size=32, blur_p=0.0)
    images = torch.randint(0, 256, (batch_size, 3, 32, 32), dtype=torch.uint8, device=device)
    fixed = (augment.random(images), augment.random(images))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(augmented: bool) -> None:
        a, b = (augment.random(images), augment.random(images)) if augmented else fixed
        out = method(a, b)
        opt.zero_grad()
        out.loss.backward()
        opt.step()

    times: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(rounds + 1):
        for augmented in (True, False):
            sync()
            t0 = time.perf_counter()
            for _ in range(3):
                step(augmented)
            sync()
            if round_:
                times[augmented].append(3 * batch_size / (time.perf_counter() - t0))
    return statistics.median(times[True]), statistics.median(times[False])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    data_dir = Path(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("digits, SimCLR", {"method": "simclr", "dataset": "digits"})]
        for label, kwargs in runs:
            out = Path(tmp) / label.split(",")[0].replace(":", "_")
            pretrain(
                epochs=args.epochs,
                out=out,
                data_dir=data_dir,
                progress=False,
                device=str(device),
                **kwargs,
            )
            ckpt = out / "checkpoint.pt"
            before = probe(ckpt, data_dir=data_dir, device=str(device), random_init=True)
            after = probe(ckpt, data_dir=data_dir, device=str(device))
            for metric in after:
                print(
                    f"{label:32s} {metric:12s} random init {before[metric]:.3f}  →  pretrained {after[metric]:.3f}"
                )
    with_aug, without = throughput(device)
    print(
        f"SimCLR step, ResNet-18 32×32, batch 256 on {device}: {with_aug:.0f} images/s with augmentation, {without:.0f} without: {with_aug / without:.2f}× (target on GPU ≥ 0.9×)"
    )


if __name__ == "__main__":
    main()
