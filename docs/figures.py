"""The documentation's figures, drawn from committed files.

Drawn at every build by the pages' code cells (myst-nb executes them; nothing is written into the
source tree):

- :func:`draw_augmentations`: every augmentation of :data:`rlrep.augment.AUGMENTATIONS` applied
  (seed 0) to real DMC frames kept in ``docs/data/dmc_frames.npz``;
- :func:`draw_learning_curves`: evaluation returns of every run under ``experiments/results/``
  that has an ``eval.csv`` (written by ``rlrep train``).

``python docs/figures.py --render-frames`` re-renders the frames (needs MuJoCo); the build only
reads them.

Committed figures, drawn on demand (they render MuJoCo scenes): ``--distractions`` writes
``docs/distractions.png`` (:func:`draw_distractions`), ``--curves PATH`` the learning curves of
the committed runs to ``PATH``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parent
FRAMES = DOCS / "data" / "dmc_frames.npz"
RESULTS = DOCS.parent / "experiments" / "results"
TASKS = ("cartpole-swingup", "walker-walk", "cheetah-run", "finger-spin")


def render_frames(steps: int = 20) -> None:
    """One 100×100 frame of each task after ``steps`` random actions (seed 0)."""
    from rlrep import envs

    frames = {}
    for task in TASKS:
        env = envs.make_dmc(task, image_size=100, frame_stack=1, seed=0)
        obs, _ = env.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(steps):
            obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        frames[task] = obs  # (3, 100, 100) uint8
    np.savez_compressed(FRAMES, **frames)


def draw_augmentations(path: Path | None = None):
    """The figure; saved to ``path`` (and closed) when given."""
    import matplotlib.pyplot as plt
    import torch

    import rlrep.augment as A

    frames = np.load(FRAMES)
    batch = torch.as_tensor(np.stack([frames[t] for t in TASKS]))  # (4, 3, 100, 100) uint8
    sizes = {"crop": {"size": 84}, "resized_crop": {"size": 84}, "translate": {"size": 108}}
    names = ["original", *A.AUGMENTATIONS]
    fig, axes = plt.subplots(len(TASKS), len(names), figsize=(1.2 * len(names), 1.3 * len(TASKS)))
    for j, name in enumerate(names):
        views = batch if name == "original" else A.make(name, seed=0, **sizes.get(name, {}))(batch)
        for i in range(len(TASKS)):
            ax = axes[i, j]
            ax.imshow(views[i].permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=7)
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def draw_learning_curves(path: Path | None = None):
    """The figure; saved to ``path`` (and closed) when given."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for eval_csv in sorted(RESULTS.glob("*/eval.csv")):
        with open(eval_csv) as f:
            rows = list(csv.DictReader(f))
        frames = [int(r["frames"]) for r in rows]
        mean = np.array([float(r["mean_return"]) for r in rows])
        std = np.array([float(r["std_return"]) for r in rows])
        ax.plot(frames, mean, marker="o", label=eval_csv.parent.name)
        ax.fill_between(frames, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("environment frames")
    ax.set_ylabel("evaluation return")
    ax.legend(fontsize=7)
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def draw_distractions(
    path: Path, tasks=("cartpole-swingup", "walker-walk"), steps: int = 20
) -> None:
    """Each task, clean and under each distraction of :data:`rlrep.envs.DISTRACTIONS`: the same
    seed (0) and the same 20 random actions, so the physical state is the same in a row."""
    import matplotlib.pyplot as plt

    from rlrep import envs

    modes = (None, *envs.DISTRACTIONS)
    fig, axes = plt.subplots(len(tasks), len(modes), figsize=(1.4 * len(modes), 1.5 * len(tasks)))
    for i, task in enumerate(tasks):
        for j, mode in enumerate(modes):
            env = envs.make_dmc(task, image_size=84, frame_stack=1, seed=0, distraction=mode)
            obs, _ = env.reset(seed=0)
            rng = np.random.default_rng(0)
            for _ in range(steps):
                obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
            env.close()
            ax = axes[i, j]
            ax.imshow(obs.transpose(1, 2, 0))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(mode or "clean", fontsize=8)
            if j == 0:
                ax.set_ylabel(task, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render-frames", action="store_true")
    parser.add_argument("--distractions", action="store_true", help="draw docs/distractions.png")
    parser.add_argument("--curves", type=Path, default=None, help="draw the learning curves here")
    args = parser.parse_args()
    if args.render_frames:
        render_frames()
    if args.distractions or args.curves:
        import matplotlib

        matplotlib.use("Agg")
        if args.distractions:
            draw_distractions(DOCS / "distractions.png")
        if args.curves:
            draw_learning_curves(args.curves)
    elif not args.render_frames:
        parser.error("nothing to do: give --render-frames, --distractions or --curves PATH")
