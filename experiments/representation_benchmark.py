"""Representation benchmark on real DMC frames: does each objective learn the physics state?

Per task, ``rlrep pretrain --dataset dmc:TASK`` renders 5,000 observations (3 stacked 64×64
frames) along episodes of 100 agent steps under a uniform random policy at the task's action
repeat, and holds a fifth of the episodes out whole. Every method of
:data:`rlrep.methods.METHODS` is then pretrained on the training episodes with the same encoder
(CURL's), budget (``--epochs`` × ``--batch-size``), learning rate and seed — the temporal methods
on the windows of the same frames — and ``rlrep probe`` fits a linear (ridge) probe of the state
on the training frames' features and scores R² on the held-out episodes, for positions
(every non-velocity entry of the task's observation) and velocities apart. Baselines on the same
frames: **random init** (the same encoder's initial weights), **raw pixels** (PCA of the frames
to the feature dimension, then the same probe) and a **supervised** upper bound (the same
encoder, augmentation and budget, trained to regress the standardised state).

Jobs run as separate processes, ``--workers`` at a time, one torch thread each. Writes
``representation.csv`` and ``representation.png`` to ``--out`` and prints the Markdown table.

Usage::

    python experiments/representation_benchmark.py --tasks cartpole-swingup walker-walk \\
        --out experiments/results/representation
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

import rlrep.methods as M

COLUMNS = ["task", "row", "state_r2_position", "state_r2_velocity", "state_r2", "train_loss",
           "train_uniformity", "seconds"]  # fmt: skip
BASELINES = ("random init", "raw pixels (PCA)", "supervised")
PRETRAIN = ["--image-size", "64", "--seed", "0", "--threads", "1", "--no-progress"]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rlrep.cli", *args]


def pretrain_command(method: str, task: str, out: Path, args: argparse.Namespace) -> list[str]:
    """The ``rlrep pretrain`` command of one row (printed in the results README)."""
    return cli(
        "pretrain", "--method", method, "--dataset", f"dmc:{task}", "--out", str(out),
        "--data-dir", str(args.data_dir), "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--amp", args.amp, "--eval-every", "0", *PRETRAIN,
    )  # fmt: skip


def run(cmd: list[str], log: Path) -> str:
    """Run ``cmd`` (one torch thread); its stdout. Raises with the log's tail on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


def probe_json(checkpoint: Path, args: argparse.Namespace, log: Path, *extra: str) -> dict:
    out = run(cli("probe", str(checkpoint), "--data-dir", str(args.data_dir), *extra), log)
    return json.loads(out[out.index("{") :])


def last_epoch(log: str) -> dict[str, float]:
    """The loss and uniformity of the last epoch ``rlrep pretrain`` printed: a uniformity near
    0 (all embeddings alike) is a collapse, a diagnosis for a row below the baselines."""
    line = [x for x in log.splitlines() if x.startswith("epoch")][-1]
    pairs = dict(re.findall(r"(\w+) (-?\d+\.\d+)", line))
    return {"train_loss": float(pairs["loss"]),
            "train_uniformity": float(pairs.get("train_uniformity", "nan"))}  # fmt: skip


def method_row(method: str, task: str, work: Path, args: argparse.Namespace) -> dict:
    out = work / task / method
    start = time.perf_counter()
    log = run(pretrain_command(method, task, out, args), work / f"{task}-{method}.log")
    seconds = time.perf_counter() - start
    figures = probe_json(out / "checkpoint.pt", args, work / f"{task}-{method}-probe.log")
    return {"task": task, "row": method, **figures, **last_epoch(log), "seconds": seconds}


def random_init_row(task: str, work: Path, args: argparse.Namespace) -> dict:
    """The encoder's initial weights (built first after seeding, the same for every method)."""
    checkpoint = work / task / args.methods[0] / "checkpoint.pt"
    log = work / f"{task}-random-probe.log"
    return {
        "task": task,
        "row": "random init",
        **probe_json(checkpoint, args, log, "--random-init"),
    }


def baseline_job(kind: str, task: str, work: Path, args: argparse.Namespace) -> dict:
    """Rendering, raw-pixel PCA or the supervised encoder, in a process of its own (one
    thread)."""
    cmd = [sys.executable, __file__, "--job", kind, "--tasks", task, "--data-dir",
           str(args.data_dir), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--amp", args.amp, "--keep", str(work)]  # fmt: skip
    out = run(cmd, work / f"{task}-{kind}.log")
    return json.loads(out[out.index("{") :])


# --- the baselines that are not an rlrep method (run inside a --job process) -----------------


def load_frames(task: str, data_dir: Path):
    from rlrep.datasets import load_dataset
    from rlrep.pretrain import default_augmentation

    ds = load_dataset(f"dmc:{task}", data_dir, image_size=64, seed=0)
    name, kwargs = default_augmentation(ds)
    import rlrep.augment as augment_lib

    return ds, augment_lib.make(name, **kwargs)


def pca_row(task: str, args: argparse.Namespace) -> dict:
    """PCA of the (deterministic view of the) frames to the encoder's feature size, fitted on
    the training frames, then the same ridge probe."""
    from sklearn.decomposition import PCA

    from rlrep.probes import state_r2_report

    ds, augment = load_frames(task, args.data_dir)
    start = time.perf_counter()
    flat = [
        augment.deterministic(x).flatten(1).float().div(255).numpy() for x in (ds.train, ds.test)
    ]
    pca = PCA(args.features_dim, random_state=0).fit(flat[0])
    f_train, f_test = (torch.from_numpy(pca.transform(x)).float() for x in flat)
    report = state_r2_report(f_train, ds.train_states, f_test, ds.test_states, ds.state_keys)
    return {"task": task, "row": "raw pixels (PCA)", **report,
            "seconds": time.perf_counter() - start}  # fmt: skip


def supervised_row(task: str, args: argparse.Namespace) -> dict:
    """The same encoder trained to regress the standardised state through a linear head: the
    same augmentation (one random view per frame), budget, Adam learning rate, seed and
    autocast as the methods; probed like them."""
    import rlrep.encoders as encoder_lib
    from rlrep.probes import encode, state_r2_report

    ds, augment = load_frames(task, args.data_dir)
    torch.manual_seed(0)
    encoder = encoder_lib.make("curl", tuple(augment.deterministic(ds.train[:1]).shape[1:]))
    start = time.perf_counter()
    train_supervised(encoder, ds, augment, args.epochs, args.batch_size, args.amp == "on")
    seconds = time.perf_counter() - start
    f_train, f_test = (encode(encoder, augment.deterministic(x)) for x in (ds.train, ds.test))
    report = state_r2_report(f_train, ds.train_states, f_test, ds.test_states, ds.state_keys)
    save_supervised(encoder, ds, args, args.keep / task / "supervised" / "checkpoint.pt")
    return {"task": task, "row": "supervised", **report, "seconds": seconds}


def train_supervised(encoder, ds, augment, epochs: int, batch_size: int, amp: bool) -> None:
    """Train ``encoder`` in place to regress the standardised physics state through a Linear
    head: one random view per frame, Adam 1e-3, data order and views seeded by epoch."""
    head = torch.nn.Linear(encoder.features_dim, ds.train_states.shape[1])
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    mean, std = ds.train_states.mean(0), ds.train_states.std(0).clamp_min(1e-6)
    targets = (ds.train_states - mean) / std
    n, batch = len(ds.train), min(batch_size, len(ds.train))
    for epoch in range(epochs):
        generator = torch.Generator().manual_seed(epoch)
        order = torch.randperm(n, generator=generator)
        for i in range(n // batch):
            index = order[i * batch : (i + 1) * batch]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                predicted = head(encoder(augment.random(ds.train[index], generator)))
            loss = (predicted.float() - targets[index]).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def save_supervised(encoder, ds, args: argparse.Namespace, path: Path) -> None:
    """The supervised encoder as a pretraining checkpoint (the entries ``rlrep pretrain``
    writes, method "supervised", no method or optimiser state), so that ``rlrep probe`` and
    ``control_from_features.py --pretrained supervised=PATH`` read it as any other."""
    from rlrep.atomic import atomic_write
    from rlrep.checkpoint import CHECKPOINT_FORMAT, plain_config
    from rlrep.pretrain import default_augmentation

    name, kwargs = default_augmentation(ds)
    view = [ds.image_shape[0], *ds.image_shape[1:]]  # the shift keeps the size
    config = plain_config({
        "method": "supervised", "dataset": ds.name, "encoder": "curl", "encoder_kwargs": {},
        "method_kwargs": {}, "augmentation": name, "augmentation_kwargs": kwargs,
        "multi_crop": None, "image_shape": list(ds.image_shape), "view_shape": view,
        "batch_size": args.batch_size, "lr": 1e-3, "seed": 0, "world_size": 1,
        "epochs": args.epochs,
    })  # fmt: skip
    state = {"format": CHECKPOINT_FORMAT, "config": config, "encoder": encoder.state_dict(),
             "method": {}, "optimizer": {}, "epoch": args.epochs, "history": []}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def render_frames(task: str, args: argparse.Namespace) -> dict:
    """Render (or find cached) the task's frames, once, before the rows that read them."""
    start = time.perf_counter()
    ds, _ = load_frames(task, args.data_dir)
    return {"task": task, "frames": len(ds.train) + len(ds.test),
            "seconds": time.perf_counter() - start}  # fmt: skip


JOBS = {"render": render_frames, "pca": pca_row, "supervised": supervised_row}


# --- the table -------------------------------------------------------------------------------


def plot(rows: list[dict], tasks: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("state_r2_position", "state_r2_velocity")
    fig, axes = plt.subplots(
        len(tasks), 2, figsize=(10, 0.28 * len(rows) / len(tasks) * len(tasks) + 1.5),
        squeeze=False, sharex=True,
    )  # fmt: skip
    for r, task in enumerate(tasks):
        mine = [row for row in rows if row["task"] == task]
        names = [row["row"] for row in mine]
        for c, metric in enumerate(metrics):
            ax = axes[r][c]
            colours = ["0.6" if n in BASELINES else "C0" for n in names]
            ax.barh(names, [max(row[metric], -0.1) for row in mine], color=colours)
            for name, style in (("random init", ":"), ("raw pixels (PCA)", "--")):
                ax.axvline(next(x[metric] for x in mine if x["row"] == name), color="0.3",
                           lw=0.8, ls=style)  # fmt: skip
            kind = {"state_r2_position": "positions", "state_r2_velocity": "velocities"}[metric]
            ax.set_title(f"{task}: held-out R², {kind}", fontsize=9)
            ax.invert_yaxis()
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(rows: list[dict], tasks: list[str]) -> str:
    lines = ["| row | " + " | ".join(f"{t} pos. | {t} vel." for t in tasks) + " |",
             "| --- |" + " --- | --- |" * len(tasks)]  # fmt: skip
    for name in dict.fromkeys(row["row"] for row in rows):
        cells = []
        for task in tasks:
            row = next(r for r in rows if r["task"] == task and r["row"] == name)
            cells += [f"{row['state_r2_position']:.3f}", f"{row['state_r2_velocity']:.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["cartpole-swingup", "walker-walk"])
    parser.add_argument("--methods", nargs="+", default=list(M.METHODS))
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--amp", choices=["on", "off"], default="off",
                        help="bfloat16 autocast (on: 2× faster on CPUs with AVX512-BF16, slower "
                        "on CPUs without, which emulate it)")  # fmt: skip
    parser.add_argument("--features-dim", type=int, default=50, help="the encoder's (PCA's)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, default=Path("experiments/results/representation"))
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep every row's checkpoint (the supervised encoder's too) and log "
                        "under this folder (default: a temporary one)")  # fmt: skip
    parser.add_argument("--job", choices=list(JOBS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:  # a baseline, in its own process
        torch.set_num_threads(1)
        print(json.dumps(JOBS[args.job](args.tasks[0], args)))
        return
    # "-dirty": the figures were measured with uncommitted changes, not at the commit alone.
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.workers) as pool:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        # The frames first (one rendering per task, in parallel), then every row.
        list(pool.map(lambda t: baseline_job("render", t, work, args), args.tasks))
        jobs = [pool.submit(method_row, m, t, work, args) for t in args.tasks for m in args.methods]
        jobs += [pool.submit(baseline_job, kind, t, work, args)
                 for t in args.tasks for kind in ("supervised", "pca")]  # fmt: skip
        rows = [job.result() for job in jobs]
        rows += [random_init_row(t, work, args) for t in args.tasks]
    order = {name: i for i, name in enumerate([*BASELINES, *args.methods])}
    rows.sort(key=lambda r: (args.tasks.index(r["task"]), order[r["row"]]))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "representation.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _rounded(row.get(c, math.nan)) for c in COLUMNS})
    plot(rows, args.tasks, args.out / "representation.png")
    total = time.perf_counter() - start
    print(f"commit {commit}, {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"cores, {args.workers} workers × 1 thread, {total / 60:.1f} min in all; "
          f"{args.epochs} epochs × batch {args.batch_size}, amp {args.amp}")  # fmt: skip
    print(table(rows, args.tasks))


def _rounded(value):
    return round(value, 4) if isinstance(value, float) else value


if __name__ == "__main__":
    main()
