"""Results of a DMC benchmark folder: per-task table, aggregate IQM with bootstrap CIs, curves,
for one or several agents side by side.

Reads ``<out>/<agent>/<task>/seed<N>/eval.csv`` (written by ``rlrep train``), takes each run's
evaluation at (or just before) each budget, and writes next to ``<out>``:

- ``results.csv`` and ``results.md`` — mean ± std over seeds per agent, task and budget, with the
  CURL paper's and DrQ's reported means side by side;
- ``aggregate.md`` and ``iqm.png`` — IQM of returns/1000 over all runs of each agent with 95%
  stratified-bootstrap CIs (rliable, Agarwal et al. 2021);
- ``curves.png`` — learning curves (mean ± std over seeds) per task, one line per agent.

Usage: ``python experiments/dmc_report.py runs/dmc [--budgets 100k 500k] [--agents curl-sac drq]``
(default: every agent folder under ``runs/dmc``).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

# Reported means (CURL: Laskin et al. 2020, Table 1, 10 seeds; DrQ: Kostrikov et al. 2020).
REFERENCE = {
    "CURL": {
        100_000: {
            "finger-spin": 767,
            "cartpole-swingup": 582,
            "reacher-easy": 538,
            "cheetah-run": 299,
            "walker-walk": 403,
            "ball_in_cup-catch": 769,
        },
        500_000: {
            "finger-spin": 926,
            "cartpole-swingup": 841,
            "reacher-easy": 929,
            "cheetah-run": 518,
            "walker-walk": 902,
            "ball_in_cup-catch": 959,
        },
    },
    "DrQ": {
        100_000: {
            "finger-spin": 901,
            "cartpole-swingup": 759,
            "reacher-easy": 601,
            "cheetah-run": 344,
            "walker-walk": 612,
            "ball_in_cup-catch": 913,
        },
        500_000: {
            "finger-spin": 938,
            "cartpole-swingup": 868,
            "reacher-easy": 942,
            "cheetah-run": 660,
            "walker-walk": 921,
            "ball_in_cup-catch": 963,
        },
    },
}
REFERENCE_MEANS = {"CURL": {100_000: 560, 500_000: 846}, "DrQ": {100_000: 688, 500_000: 882}}


def load_runs(root: Path, agent: str) -> dict[str, dict[int, np.ndarray]]:
    """task → seed → array of (frames, mean_return) rows."""
    runs: dict[str, dict[int, np.ndarray]] = {}
    for eval_csv in sorted((root / agent).glob("*/seed*/eval.csv")):
        with open(eval_csv) as f:
            rows = [(int(r["frames"]), float(r["mean_return"])) for r in csv.DictReader(f)]
        if rows:
            runs.setdefault(eval_csv.parent.parent.name, {})[int(eval_csv.parent.name[4:])] = (
                np.array(rows)
            )
    return runs


def agents_in(root: Path) -> list[str]:
    """The agent folders under ``root`` that hold at least one run's eval.csv."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*/seed*/eval.csv")))


def score_at(curve: np.ndarray, budget: int) -> float | None:
    """The last evaluation at or before ``budget`` frames, if the run got within 10% of it."""
    before = curve[curve[:, 0] <= budget]
    if len(before) == 0 or before[-1, 0] < 0.9 * budget:
        return None
    return float(before[-1, 1])


def table(results: dict[str, dict], budgets) -> list[dict[str, object]]:
    """One row per agent, task and budget with runs there: mean and std over seeds."""
    rows = []
    for agent, runs in results.items():
        for task in sorted(runs):
            for budget in budgets:
                scores = [
                    s for curve in runs[task].values() if (s := score_at(curve, budget)) is not None
                ]
                if not scores:
                    continue
                rows.append({
                    "agent": agent,
                    "task": task,
                    "budget": budget,
                    "seeds": len(scores),
                    "mean": float(np.mean(scores)),
                    "std": float(np.std(scores)),
                    "CURL": REFERENCE["CURL"].get(budget, {}).get(task, ""),
                    "DrQ": REFERENCE["DrQ"].get(budget, {}).get(task, ""),
                })  # fmt: skip
    return rows


def aggregate(runs, budget: int, reps: int = 2000) -> tuple[float, float, float, int] | None:
    """IQM of returns / 1000 over tasks × seeds with a 95% stratified-bootstrap CI (rliable)."""
    from rliable import library as rly
    from rliable import metrics

    per_task = {
        t: [s for c in seeds.values() if (s := score_at(c, budget)) is not None]
        for t, seeds in runs.items()
    }
    per_task = {t: s for t, s in per_task.items() if s}
    if not per_task:
        return None
    n = min(len(s) for s in per_task.values())  # rliable needs runs × tasks
    scores = np.array([s[:n] for s in per_task.values()]).T / 1000.0
    point, interval = rly.get_interval_estimates(
        {"agent": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps
    )
    return (
        float(point["agent"][0]),
        float(interval["agent"][0, 0]),
        float(interval["agent"][1, 0]),
        n,
    )


def plot_curves(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({task for runs in results.values() for task in runs})
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        top = 0.0
        for agent, runs in results.items():
            if task not in runs:
                continue
            curves = list(runs[task].values())
            frames = np.unique(np.concatenate([c[:, 0] for c in curves]))
            ys = np.array([np.interp(frames, c[:, 0], c[:, 1], right=np.nan) for c in curves])
            mean, std = np.nanmean(ys, axis=0), np.nanstd(ys, axis=0)
            ax.plot(frames, mean, label=f"{agent} ({len(curves)} seeds)")
            ax.fill_between(frames, mean - std, mean + std, alpha=0.2)
            top = max(top, frames.max())
        for name, marker in (("CURL", "o"), ("DrQ", "s")):
            pts = [
                (b, v[task]) for b, v in REFERENCE[name].items() if task in v and b <= top * 1.05
            ]
            if pts:
                ax.scatter(
                    *zip(*pts, strict=True), marker=marker, label=f"{name} (paper)", zorder=3
                )
        ax.set_title(task)
        ax.set_xlabel("environment frames")
        ax.set_ylabel("return")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_iqm(iqms: dict[tuple[str, int], tuple[float, float, float, int]], path: Path) -> None:
    """IQM with its 95% CI per agent, one panel per budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = sorted({b for _, b in iqms})
    agents = sorted({a for a, _ in iqms})
    fig, axes = plt.subplots(1, len(budgets), figsize=(3.5 * len(budgets), 0.5 + 0.45 * len(agents)),
                             squeeze=False)  # fmt: skip
    for ax, budget in zip(axes[0], budgets, strict=True):
        for y, agent in enumerate(agents):
            if (agent, budget) in iqms:
                iqm, lo, hi, _ = iqms[(agent, budget)]
                ax.errorbar(iqm, y, xerr=[[iqm - lo], [hi - iqm]], fmt="o", capsize=4)
        ax.set_yticks(range(len(agents)), agents)
        ax.set_xlabel("IQM of return / 1000")
        ax.set_title(f"{budget:,} frames")
        ax.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--agents", nargs="+", default=None, help="default: every agent folder")
    parser.add_argument("--budgets", nargs="+", default=["100k", "500k"])
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the report (default: root)"
    )
    args = parser.parse_args()
    from rlrep.agents.train import parse_frames

    budgets = [parse_frames(b) for b in args.budgets]
    out = args.out or args.root
    out.mkdir(parents=True, exist_ok=True)
    agents = args.agents or agents_in(args.root)
    results = {agent: runs for agent in agents if (runs := load_runs(args.root, agent))}
    if not results:
        raise SystemExit(f"no runs with eval.csv under {args.root} for agents {agents}")
    rows = table(results, budgets)
    with open(out / "results.csv", "w", newline="") as f:
        fields = ["agent", "task", "budget", "seeds", "mean", "std", "CURL", "DrQ"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    names = list(results)
    lines = [
        "| task | frames | "
        + " | ".join(f"{a} mean ± std (seeds)" for a in names)
        + " | CURL (paper) | DrQ (paper) |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " | --- | --- |",
    ]
    cells = {(r["agent"], r["task"], r["budget"]): r for r in rows}
    for task, budget in sorted({(r["task"], r["budget"]) for r in rows}):
        row = [cells.get((a, task, budget)) for a in names]
        scores = [f"{r['mean']:.0f} ± {r['std']:.0f} ({r['seeds']})" if r else "" for r in row]
        any_row = next(r for r in row if r)
        lines.append(f"| {task} | {budget:,} | " + " | ".join(scores)
                     + f" | {any_row['CURL']} | {any_row['DrQ']} |")  # fmt: skip
    (out / "results.md").write_text("\n".join(lines) + "\n")
    agg = [
        "| frames | agent | IQM (return/1000) | 95% CI | runs per task | CURL mean | DrQ mean |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    iqms = {}
    for budget in budgets:
        for agent, runs in results.items():
            result = aggregate(runs, budget)
            if result:
                iqm, lo, hi, n = iqms[(agent, budget)] = result
                agg.append(
                    f"| {budget:,} | {agent} | {iqm:.3f} | [{lo:.3f}, {hi:.3f}] | {n} | "
                    f"{REFERENCE_MEANS['CURL'].get(budget, '')} | {REFERENCE_MEANS['DrQ'].get(budget, '')} |"
                )
    (out / "aggregate.md").write_text("\n".join(agg) + "\n")
    plot_curves(results, out / "curves.png")
    if iqms:
        plot_iqm(iqms, out / "iqm.png")
    print((out / "results.md").read_text())
    print((out / "aggregate.md").read_text())
    print(f"wrote {out / 'results.csv'}, {out / 'aggregate.md'}, {out / 'curves.png'}"
          + (f", {out / 'iqm.png'}" if iqms else ""))  # fmt: skip


if __name__ == "__main__":
    main()
