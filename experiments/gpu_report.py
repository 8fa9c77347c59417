"""The report of ``experiments/gpu_benchmarks.sh``: the DMC runs' table and plot, and one summary.

Reads OUT/runs/*/ (``rlrep train`` run folders, possibly cut by the script's deadline) and
OUT/end_to_end.csv; writes OUT/dmc_runs.csv, OUT/dmc.png and OUT/summary.md.

Per run: the frames reached at its last evaluation, the wall time there (``eval.csv``'s
``wall_time``, evaluations included), frames/s, and the minutes a 100k-frame run takes at that
rate. Targets of the throughput issue: a 100k-frame cartpole-swingup CURL-SAC run in ≤ 10 min on
one H100; ≥ 2 × 96 frames/s (DrQ-v2's reported V100 rate).

Usage: ``python experiments/gpu_report.py OUT [--device cuda]``
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

DRQV2_REPORTED_FPS = 96.0  # facebookresearch/drqv2#10, V100


def dmc_rows(out: Path) -> list[dict]:
    rows = []
    for run in sorted((out / "runs").glob("*/")):
        if not (run / "eval.csv").is_file():
            rows.append({"run": run.name, "frames": 0, "note": "no evaluation reached"})
            continue
        config = json.loads((run / "config.json").read_text())
        with open(run / "eval.csv") as f:
            evals = list(csv.DictReader(f))
        last = evals[-1]
        frames, wall = int(last["frames"]), float(last["wall_time"])
        fps = frames / wall if wall > 0 else float("nan")
        rows.append({
            "run": run.name, "agent": config["agent"], "seed": config["seed"],
            "overlap": config.get("overlap", False), "frames": frames, "wall_s": round(wall, 1),
            "fps": round(fps, 1), "minutes_per_100k": round(100_000 / fps / 60, 2),
            "return": round(float(last["mean_return"]), 1), "note": "",
        })  # fmt: skip
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def end_to_end_lines(out: Path) -> list[str]:
    path = out / "end_to_end.csv"
    if not path.is_file():
        return ["(no end_to_end.csv: the end-to-end step did not finish)"]
    with open(path) as f:
        rows = list(csv.DictReader(f))
    lines = ["| run | frames/s | env s | update s | sample s | eval s | checkpoint s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for name in dict.fromkeys(r["run"] for r in rows):
        mine = [r for r in rows if r["run"] == name]
        med = {k: statistics.median(float(r[k]) for r in mine)
               for k in ("fps", "env_s", "update_s", "replay_sample_s", "eval_s", "checkpoint_s")}  # fmt: skip
        lines.append(
            f"| {name} | {med['fps']:.1f} | {med['env_s']:.1f} | {med['update_s']:.1f} | "
            f"{med['replay_sample_s']:.1f} | {med['eval_s']:.1f} | {med['checkpoint_s']:.1f} |"
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    out = args.out
    rows = dmc_rows(out)
    lines = [f"# GPU benchmarks ({args.device})", ""]
    for name in ("commit.txt", "versions.txt"):
        if (out / "logs" / name).is_file():
            lines += ["    " + x for x in (out / "logs" / name).read_text().splitlines()] + [""]
    lines += ["## Steps", "", *(out / "steps.md").read_text().splitlines(), ""]
    lines += ["## End to end (bench_end_to_end.py)", "", *end_to_end_lines(out), ""]
    lines += ["## DMC runs (cartpole-swingup)", ""]
    if rows:
        write_csv(out / "dmc_runs.csv", rows)
        lines += ["| run | frames | wall s | frames/s | min per 100k | return |",
                  "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for r in rows:
            if r["frames"]:
                lines.append(f"| {r['run']} | {r['frames']} | {r['wall_s']} | {r['fps']} | "
                             f"{r['minutes_per_100k']} | {r['return']} |")  # fmt: skip
            else:
                lines.append(f"| {r['run']} | 0 | | | | {r['note']} |")
        curl = [r for r in rows if r.get("agent") == "curl-sac" and r["frames"]]
        if curl:
            minutes = statistics.median(r["minutes_per_100k"] for r in curl)
            fps = statistics.median(r["fps"] for r in curl)
            lines += ["", f"CURL-SAC: {minutes:.1f} min per 100k frames (target ≤ 10 on one "
                      f"H100); {fps:.0f} frames/s = {fps / DRQV2_REPORTED_FPS:.2f}× DrQ-v2's "
                      "reported 96 (target ≥ 2×), with the runs sharing the machine."]  # fmt: skip
        try:
            from rlrep.plotting import plot_runs

            plot_runs([out / "runs"], out / "dmc.png")
        except Exception as err:  # the table stands without the figure
            lines += ["", f"(no dmc.png: {type(err).__name__}: {err})"]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
