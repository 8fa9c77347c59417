"""Does pretraining help? Probes of a pretrained encoder vs the same encoder at random init.

- digits (embedded): SimCLR on 3×32×32 digits; kNN (k = 200) and linear top-1 on the held-out
  split, pretrained vs the same architecture with its random initial weights.
- DMC frames: measured by ``experiments/representation_benchmark.py`` (every method, random
  init, raw pixels and a supervised bound, positions and velocities on held-out episodes).
- throughput: images/s of the training step with augmentation vs the same step on
  pre-augmented views (target on a GPU: ≥ 0.9×), and with batches drawn from host memory as
  ``rlrep pretrain`` draws them (what overlapping the loading could gain), in alternating rounds.

Usage: ``python experiments/bench_pretrain.py [--epochs 30] [--throughput-only]``
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


def throughput(device: torch.device, batch_size: int = 256, rounds: int = 5) -> dict[str, float]:
    """Images/s of a SimCLR step (ResNet-18, 32×32): ``loaded``, the batch drawn from a uint8
    dataset in host memory as ``rlrep pretrain`` draws it (index, copy to the device) and
    augmented on the device; ``augmented``, the same from a batch already on the device;
    ``fixed``, on views augmented once (the step alone)."""
    encoder = E.ResNet18((3, 32, 32)).to(device)
    method = M.make("simclr", encoder).to(device)
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    augment = A.make("simclr", size=32, blur_p=0.0)
    images = torch.randint(0, 256, (batch_size, 3, 32, 32), dtype=torch.uint8, device=device)
    fixed = (augment.random(images), augment.random(images))
    dataset = torch.randint(0, 256, (16 * batch_size, 3, 32, 32), dtype=torch.uint8)  # host
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(mode: str) -> None:
        batch = images
        if mode == "loaded":  # as rlrep.pretrain_epoch.train_epoch
            index = torch.randint(0, len(dataset), (batch_size,))
            batch = dataset[index].to(device, non_blocking=True)
        a, b = (augment.random(batch), augment.random(batch)) if mode != "fixed" else fixed
        out = method(a, b)
        opt.zero_grad()
        out.loss.backward()
        opt.step()

    times: dict[str, list[float]] = {"loaded": [], "augmented": [], "fixed": []}
    for round_ in range(rounds + 1):
        for mode in times:
            sync()
            t0 = time.perf_counter()
            for _ in range(3):
                step(mode)
            sync()
            if round_:
                times[mode].append(3 * batch_size / (time.perf_counter() - t0))
    return {mode: statistics.median(t) for mode, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--throughput-only", action="store_true", help="skip the probes")
    args = parser.parse_args()
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    data_dir = Path(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        runs = (
            []
            if args.throughput_only
            else [("digits, SimCLR", {"method": "simclr", "dataset": "digits"})]
        )
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
    ips = throughput(device)
    print(
        f"SimCLR step, ResNet-18 32×32, batch 256 on {device}: {ips['augmented']:.0f} images/s "
        f"with augmentation, {ips['fixed']:.0f} without: {ips['augmented'] / ips['fixed']:.2f}× "
        "(target on GPU ≥ 0.9×)"
    )
    print(
        f"  batches drawn from host memory (index, copy): {ips['loaded']:.0f} images/s, "
        f"{ips['loaded'] / ips['augmented']:.2f}× the on-device batch's"
    )


if __name__ == "__main__":
    main()
