"""Method zoo: every image method of rlrep with the same encoder, budget and seed on digits,
probed against the same encoder at random init.

Digits (embedded, 3×32×32, SimCLR augmentation): kNN (k = 200) and linear top-1 on the held-out
split. Each method runs ``rlrep pretrain`` with its defaults (CURL's encoder, Adam 1e-3, batch
256, seed 0), except SwAV's prototypes, frozen for one epoch as in the paper (its default counts
steps for RL). The temporal methods (ATC, SPR, CPC, time_sup_con, SAC-AE's decoder) need frames
in time order, which digits lacks: they, and every method on real DMC frames, are measured by
``experiments/representation_benchmark.py``. Writes ``zoo.csv`` and ``zoo.png`` to ``--out``
and prints the Markdown table.

Usage: ``python experiments/method_zoo.py [--epochs 60] [--out experiments/results/method_zoo]``
"""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import tempfile
import time
from pathlib import Path

import torch

import rlrep.methods as M
from rlrep.pretrain import pretrain
from rlrep.probes import probe

STEPS_PER_EPOCH = 5  # 1,438 training digits in batches of 256
COLUMNS = ["method", "digits_knn_top1", "digits_linear_top1", "seconds"]
#: The methods that learn from single images (two augmented views): the zoo's rows.
IMAGE_METHODS = [n for n, cls in M.METHODS.items() if not issubclass(cls, M.TemporalMethod)]


def run_method(method: str, epochs: int, data_dir: Path, tmp: Path) -> dict:
    """Pretrain ``method`` on digits; its probe figures and seconds. The checkpoint is left in
    ``tmp/{method}``."""
    method_kwargs = {"freeze_prototypes_steps": STEPS_PER_EPOCH} if method == "swav" else {}
    out = tmp / method
    start = time.perf_counter()
    pretrain(method=method, dataset="digits", epochs=epochs, out=out, data_dir=data_dir,
             progress=False, method_kwargs=method_kwargs, device="cpu")  # fmt: skip
    seconds = time.perf_counter() - start
    figures = probe(out / "checkpoint.pt", data_dir=data_dir, device="cpu")
    return {"method": method, **{f"digits_{k}": v for k, v in figures.items()},
            "seconds": round(seconds, 1)}  # fmt: skip


def random_init(method: str, data_dir: Path, tmp: Path) -> dict:
    """The probes of the encoder's random initial weights (the same for every method: the
    encoder is built first after seeding), read from ``method``'s checkpoint."""
    figures = probe(tmp / method / "checkpoint.pt", data_dir=data_dir, device="cpu",
                    random_init=True)  # fmt: skip
    return {"method": "random init", **{f"digits_{k}": v for k, v in figures.items()},
            "seconds": 0.0}  # fmt: skip


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = COLUMNS[1:-1]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4.2), sharey=True)
    names = [r["method"] for r in rows]
    for ax, metric in zip(axes, metrics, strict=True):
        values = [r[metric] for r in rows]
        colours = ["0.6" if n == "random init" else "C0" for n in names]
        ax.barh(names, values, color=colours)
        ax.axvline(rows[0][metric], color="0.3", lw=0.8, ls="--")
        ax.set_title(metric.replace("_", " "))
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60, help="digits epochs (5 steps each)")
    parser.add_argument("--methods", nargs="+", default=IMAGE_METHODS)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, default=Path("experiments/results/method_zoo"))
    args = parser.parse_args()
    temporal = [m for m in args.methods if m not in IMAGE_METHODS]
    if temporal:
        parser.error(
            f"{', '.join(temporal)}: not an image method of the zoo (choose from "
            f"{', '.join(IMAGE_METHODS)}); the temporal methods learn from frames in time order, "
            "which digits lacks: experiments/representation_benchmark.py measures them on DMC"
        )
    # "-dirty": the figures were measured with uncommitted changes, not at the commit alone.
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_method(m, args.epochs, args.data_dir, Path(tmp)) for m in args.methods]
        rows.insert(0, random_init(args.methods[0], args.data_dir, Path(tmp)))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "zoo.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows({c: r.get(c, math.nan) for c in COLUMNS} for r in rows)
    plot(rows, args.out / "zoo.png")
    total = time.perf_counter() - start
    print(f"commit {commit}, {torch.get_num_threads()} CPU threads, {total / 60:.1f} min in all; "
          f"digits {args.epochs} epochs")  # fmt: skip
    print("| method | digits kNN top-1 | digits linear top-1 | seconds |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['method']} | {r['digits_knn_top1']:.3f} | {r['digits_linear_top1']:.3f} | "
              f"{r['seconds']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
