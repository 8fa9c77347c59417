"""Evaluate a finished ``rlrep train`` run on the clean task and on each visual distraction.

Rebuilds the agent from the run folder's ``config.json``, loads its latest checkpoint (rlrep's
own format: JSON, ``torch.load(weights_only=True)`` and npz, no pickle), and runs the run's own
seeded evaluation episodes (seed + 10,000, as ``rlrep train``) on the clean env and on each
distraction, so the clean column repeats the run's last ``eval.csv`` row (printed beside it as a
check). Writes ``distractions.csv`` into ``--out`` (default: the run folder) and prints a table.

Usage: ``MUJOCO_GL=egl python experiments/eval_distractions.py RUN [RUN ...] [--episodes 5]
[--distractions color_easy ...] [--out DIR]``
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch


def evaluate_run(run: Path, distractions: list[str], episodes: int) -> dict[str, object]:
    from rlrep.agents.evaluation import Evaluation
    from rlrep.agents.run_folder import RunFolder
    from rlrep.agents.run_state import load_run_state
    from rlrep.agents.train import build_agent
    from rlrep.envs import make_env

    folder = RunFolder(run)
    config = folder.read_config()
    checkpoint = folder.latest()
    if checkpoint is None:
        raise SystemExit(f"{run} holds no checkpoint of an rlrep train run")
    task, seed = config["task"], config["seed"]
    model, env_kwargs = build_agent(config["agent"], task, seed, "cpu", config["overrides"])
    state = folder.read_state(checkpoint)
    load_run_state(model, checkpoint, state["run"])
    evaluation = Evaluation(
        lambda d: make_env(task, seed=seed + 10_000, distraction=d, **env_kwargs),
        distractions,
        seed + 10_000,
        episodes,
    )
    row = {"agent": config["agent"], "task": task, "seed": seed, "frames": state["frames"]}
    row |= evaluation.evaluate(model)
    evaluation.close()
    last = state["history"][-1]
    row["run_mean_return"] = last["mean_return"] if last["episodes"] == episodes else ""
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--distractions", nargs="+", default=None, help="default: all")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from rlrep.envs import DISTRACTIONS

    torch.set_num_threads(args.threads)
    distractions = args.distractions or list(DISTRACTIONS)
    rows = [evaluate_run(run, distractions, args.episodes) for run in args.runs]
    out = args.out or args.runs[0]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "distractions.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    names = ["clean", *distractions]
    print(f"mean ± std return over {args.episodes} seeded episodes (trained on the clean task)")
    print("| agent | frames | " + " | ".join(names) + " | run's last eval |")
    print("| --- | --- | " + " | ".join("---" for _ in names) + " | --- |")
    for r in rows:
        cells = [f"{r['mean_return']:.1f} ± {r['std_return']:.1f}"]
        cells += [f"{r[f'mean_return_{d}']:.1f} ± {r[f'std_return_{d}']:.1f}" for d in distractions]
        check = f"{r['run_mean_return']:.1f}" if r["run_mean_return"] != "" else ""
        print(f"| {r['agent']} | {r['frames']:,} | " + " | ".join(cells) + f" | {check} |")
    print(f"wrote {out / 'distractions.csv'}")


if __name__ == "__main__":
    main()
