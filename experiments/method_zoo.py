"""Method zoo: every rlrep method with the same encoder, budget and seed, probed against the
same encoder at random init.

- digits (embedded, 3×32×32, SimCLR augmentation): kNN (k = 200) and linear top-1 on the
  held-out split;
- DMC frames (``dmc:cartpole-swingup``: 5,000 random-policy observations, 3 stacked 64×64
  frames, CURL's crop to 54): linear state R² (proprioceptive state from features).

Each method runs ``rlrep pretrain`` with its defaults (CURL's encoder, Adam 1e-3, batch 256,
seed 0), except SwAV's prototypes, frozen for one epoch as in the paper (its default counts
steps for RL). Writes ``zoo.csv`` and ``zoo.png`` to ``--out`` and prints the Markdown table.

Usage: ``python experiments/method_zoo.py [--digits-epochs 20] [--dmc-epochs 5]
[--out experiments/results/method_zoo]`` (the DMC frames are rendered on first use and cached
in ``--data-dir``).
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

DATASETS = {  # steps per epoch: 1,438 digits and 4,000 DMC training images in batches of 256
    "digits": {"dataset": "digits", "steps_per_epoch": 5},
    "dmc": {"dataset": "dmc:cartpole-swingup", "image_size": 64, "steps_per_epoch": 15},
}
COLUMNS = ["method", "digits_knn_top1", "digits_linear_top1", "dmc_state_r2", "seconds"]


def run_method(method: str, epochs: dict[str, int], data_dir: Path, tmp: Path) -> dict:
    """Pretrain ``method`` on both datasets; its probe figures and seconds. Checkpoints are left
    in ``tmp/{method}-{dataset}``."""
    row: dict = {"method": method}
    seconds = 0.0
    for key, spec in DATASETS.items():
        kwargs = {k: v for k, v in spec.items() if k != "steps_per_epoch"}
        method_kwargs = (
            {"freeze_prototypes_steps": spec["steps_per_epoch"]} if method == "swav" else {}
        )
        out = tmp / f"{method}-{key}"
        start = time.perf_counter()
        pretrain(method=method, epochs=epochs[key], out=out, data_dir=data_dir, progress=False,
                 method_kwargs=method_kwargs, device="cpu", **kwargs)  # fmt: skip
        seconds += time.perf_counter() - start
        figures = probe(out / "checkpoint.pt", data_dir=data_dir, device="cpu")
        row.update({f"{key}_{k}": v for k, v in figures.items()})
    row["seconds"] = round(seconds, 1)
    return row


def random_init(method: str, data_dir: Path, tmp: Path) -> dict:
    """The probes of the encoder's random initial weights (the same for every method: the
    encoder is built first after seeding), read from ``method``'s checkpoints."""
    row: dict = {"method": "random init", "seconds": 0.0}
    for key in DATASETS:
        checkpoint = tmp / f"{method}-{key}" / "checkpoint.pt"
        figures = probe(checkpoint, data_dir=data_dir, device="cpu", random_init=True)
        row.update({f"{key}_{k}": v for k, v in figures.items()})
    return row


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
    parser.add_argument("--digits-epochs", type=int, default=20)
    parser.add_argument("--dmc-epochs", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=list(M.METHODS))
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, default=Path("experiments/results/method_zoo"))
    args = parser.parse_args()
    epochs = {"digits": args.digits_epochs, "dmc": args.dmc_epochs}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_method(m, epochs, args.data_dir, Path(tmp)) for m in args.methods]
        rows.insert(0, random_init(args.methods[0], args.data_dir, Path(tmp)))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "zoo.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows({c: r.get(c, math.nan) for c in COLUMNS} for r in rows)
    plot(rows, args.out / "zoo.png")
    total = time.perf_counter() - start
    print(f"commit {commit}, {torch.get_num_threads()} CPU threads, {total / 60:.1f} min in all; "
          f"digits {args.digits_epochs} epochs, DMC {args.dmc_epochs} epochs")  # fmt: skip
    print("| method | digits kNN top-1 | digits linear top-1 | DMC state R² | seconds |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['method']} | {r['digits_knn_top1']:.3f} | {r['digits_linear_top1']:.3f} | "
              f"{r['dmc_state_r2']:.3f} | {r['seconds']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
