"""Results of a DMC benchmark folder: per-task table, aggregate IQM with bootstrap CIs, curves,
for one or several agents side by side.

Reads ``<out>/<agent>/<task>/seed<N>/eval.csv`` (written by ``rlrep train``), takes each run's
evaluation at (or just before) each budget, and writes next to ``<out>``:

- ``results.csv`` and ``results.md`` — mean ± std over seeds per agent, task and budget, with the
  CURL paper's and DrQ's reported means side by side;
- ``aggregate.md`` and ``iqm.png`` — IQM of returns/1000 over all runs of each agent with 95%
  stratified-bootstrap CIs (rliable, Agarwal et al. 2021);
- ``curves.png`` — learning curves (mean ± std over seeds) per task, one line per agent;
- when runs evaluated distracted variants (``rlrep train --eval-distraction``):
  ``generalisation.md`` / ``.csv`` (trained clean, evaluated on each variant: mean ± std over
  seeds per task, IQM with 95% CIs per agent and variant) and ``generalisation.png``.

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


def load_runs(
    root: Path, agent: str, column: str = "mean_return"
) -> dict[str, dict[int, np.ndarray]]:
    """task → seed → array of (frames, ``column``) rows (rows where it is empty left out:
    evaluations made before a distracted variant was added)."""
    runs: dict[str, dict[int, np.ndarray]] = {}
    for eval_csv in sorted((root / agent).glob("*/seed*/eval.csv")):
        with open(eval_csv) as f:
            rows = [(int(r["frames"]), float(r[column])) for r in csv.DictReader(f)
                    if r.get(column)]  # fmt: skip
        if rows:
            runs.setdefault(eval_csv.parent.parent.name, {})[int(eval_csv.parent.name[4:])] = (
                np.array(rows)
            )
    return runs


def variants_in(root: Path, agent: str) -> list[str]:
    """The distracted variants evaluated in any of ``agent``'s runs (``mean_return_<variant>``
    columns of ``rlrep train --eval-distraction``), in the order first seen."""
    names: dict[str, None] = {}
    for eval_csv in sorted((root / agent).glob("*/seed*/eval.csv")):
        with open(eval_csv) as f:
            header = next(csv.reader(f), [])
        names.update(
            (c[len("mean_return_") :], None) for c in header if c.startswith("mean_return_")
        )
    return list(names)


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


def generalisation(root: Path, agents: list[str], budgets: list[int], out: Path) -> bool:
    """Train clean, test each distracted variant: ``generalisation.md`` / ``.csv`` (mean ± std
    over seeds per agent, task, budget and variant; IQM with 95% CIs per agent and variant) and
    ``generalisation.png``. False (nothing written) when no run evaluated a variant."""
    results = {}  # (agent, variant) → runs; variant "clean" is the training env
    for agent in agents:
        found = variants_in(root, agent)
        if found:
            results[(agent, "clean")] = load_runs(root, agent)
        for variant in found:
            results[(agent, variant)] = load_runs(root, agent, f"mean_return_{variant}")
    if not results:
        return False
    variants = list(dict.fromkeys(v for _, v in results))
    rows = []
    for (agent, variant), runs in results.items():
        for row in table({agent: runs}, budgets):
            rows.append({"variant": variant, **{k: row[k] for k in
                         ("agent", "task", "budget", "seeds", "mean", "std")}})  # fmt: skip
    with open(out / "generalisation.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["agent", "variant", "task", "budget", "seeds",
                                               "mean", "std"])  # fmt: skip
        writer.writeheader()
        writer.writerows(rows)
    cells = {(r["agent"], r["variant"], r["task"], r["budget"]): r for r in rows}
    lines = ["| agent | task | frames | " + " | ".join(variants) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in variants) + " |"]  # fmt: skip
    for agent, task, budget in sorted({(r["agent"], r["task"], r["budget"]) for r in rows}):
        scores = [cells.get((agent, v, task, budget)) for v in variants]
        lines.append(f"| {agent} | {task} | {budget:,} | " + " | ".join(
            f"{c['mean']:.0f} ± {c['std']:.0f} ({c['seeds']})" if c else "" for c in scores) + " |")  # fmt: skip
    iqms = {}
    lines += ["", "| agent | frames | " + " | ".join(f"{v} IQM [95% CI]" for v in variants) + " |",
              "| --- | --- | " + " | ".join("---" for _ in variants) + " |"]  # fmt: skip
    for agent in dict.fromkeys(a for a, _ in results):
        for budget in budgets:
            cells_ = []
            for v in variants:
                result = aggregate(results[(agent, v)], budget) if (agent, v) in results else None
                if result:
                    iqms[(agent, v, budget)] = result
                cells_.append(
                    f"{result[0]:.3f} [{result[1]:.3f}, {result[2]:.3f}]" if result else ""
                )
            lines.append(f"| {agent} | {budget:,} | " + " | ".join(cells_) + " |")
    (out / "generalisation.md").write_text("\n".join(lines) + "\n")
    if iqms:
        plot_generalisation(iqms, variants, out / "generalisation.png")
    return True


def plot_generalisation(iqms: dict, variants: list[str], path: Path) -> None:
    """IQM with its 95% CI per agent (rows) and variant (markers), one panel per budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = sorted({b for *_, b in iqms})
    agents = list(dict.fromkeys(a for a, *_ in iqms))
    fig, axes = plt.subplots(1, len(budgets), figsize=(4.5 * len(budgets), 0.8 + 0.6 * len(agents)),
                             squeeze=False)  # fmt: skip
    for ax, budget in zip(axes[0], budgets, strict=True):
        for j, variant in enumerate(variants):
            offset = (j - (len(variants) - 1) / 2) * 0.8 / max(len(variants), 1)
            points = [(y + offset, iqms[(a, variant, budget)]) for y, a in enumerate(agents)
                      if (a, variant, budget) in iqms]  # fmt: skip
            if points:
                ys, vals = zip(*points, strict=True)
                x = np.array([v[0] for v in vals])
                err = np.array([[v[0] - v[1] for v in vals], [v[2] - v[0] for v in vals]])
                ax.errorbar(x, ys, xerr=err, fmt="o", capsize=3, label=variant)
        ax.set_yticks(range(len(agents)), agents)
        ax.set_xlabel("IQM of return / 1000")
        ax.set_title(f"{budget:,} frames: trained clean, evaluated on each variant", fontsize=9)
        ax.set_xlim(0, 1)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
    if generalisation(args.root, list(results), budgets, out):
        print((out / "generalisation.md").read_text())
        print(f"wrote {out / 'generalisation.csv'}, {out / 'generalisation.md'}, "
              f"{out / 'generalisation.png'} (trained clean, evaluated on each variant)")  # fmt: skip


if __name__ == "__main__":
    main()
