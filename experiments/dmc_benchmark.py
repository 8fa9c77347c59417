"""DMControl benchmark (CURL/DrQ protocol): agents × tasks × seeds, evaluated at 100k and 500k frames.

Each (agent, task, seed) is one ``rlrep train`` process, run to the largest budget with evaluations
every ``--eval-every`` frames, so the 100k and 500k scores come from the same run as in the
papers. Runs are resumable: a finished run is skipped, an interrupted one continues from its
checkpoint (``--resume-if-exists``). Runs go to a local process pool by default, or to Slurm through
submitit (``--executor submitit``; ``pip install submitit``). The report (table, IQM with
bootstrap CIs, learning curves) is ``experiments/dmc_report.py``.

Usage::

    python experiments/dmc_benchmark.py --out runs/dmc --agents curl-sac drq drqv2 --seeds 1 2 3
    python experiments/dmc_report.py runs/dmc

``--set KEY=VALUE`` sets a hyperparameter of every agent, ``--set AGENT:KEY=VALUE`` of one
(e.g. ``drqv2:buffer_size=100000``).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rlrep.envs import CURL_TASKS


def run_dir(out: Path, agent: str, task: str, seed: int) -> Path:
    return out / agent / task / f"seed{seed}"


def finished(path: Path, frames: int) -> bool:
    """True if the run's eval.csv reaches ``frames``."""
    eval_csv = path / "eval.csv"
    if not eval_csv.exists():
        return False
    with open(eval_csv) as f:
        rows = list(csv.DictReader(f))
    return bool(rows) and int(rows[-1]["frames"]) >= frames


def command(
    agent: str,
    task: str,
    seed: int,
    frames: int,
    path: Path,
    eval_every: str,
    eval_episodes: int,
    extra: list[str],
    eval_distractions: list[str] | tuple[str, ...] = (),
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "rlrep.cli",
        "train",
        "--env",
        task,
        "--agent",
        agent,
        "--seed",
        str(seed),
    ]
    cmd += [
        "--steps",
        str(frames),
        "--out",
        str(path),
        "--eval-every",
        eval_every,
        "--eval-episodes",
        str(eval_episodes),
        "--no-progress",
        "--resume-if-exists",  # continue an interrupted run, or start it
    ]
    if eval_distractions:
        cmd += ["--eval-distraction", *eval_distractions]
    return cmd + (["--set", *extra] if extra else [])


def settings_for(agent: str, settings: list[str]) -> list[str]:
    """The ``KEY=VALUE`` settings for ``agent``: those without a prefix and those prefixed
    ``agent:``."""
    own = []
    for setting in settings:
        prefix, colon, rest = setting.partition(":")
        if not colon or "=" in prefix:  # KEY=VALUE (a value may hold a colon)
            own.append(setting)
        elif prefix == agent:
            own.append(rest)
    return own


def run_local(cmd: list[str], log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/dmc")
    parser.add_argument("--agents", nargs="+", default=["curl-sac"], metavar="AGENT")
    parser.add_argument("--tasks", nargs="+", default=list(CURL_TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument(
        "--frames",
        default="500000",
        help="the largest budget (100k scores come from the same runs)",
    )
    parser.add_argument("--eval-every", default="10000")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument(
        "--eval-distraction",
        nargs="+",
        default=[],
        metavar="NAME",
        help="distracted variants evaluated next to the clean task (train clean, test each)",
    )
    parser.add_argument("--workers", type=int, default=1, help="local processes at once")
    parser.add_argument("--executor", choices=["local", "submitit"], default="local")
    parser.add_argument("--slurm-partition", default=None)
    parser.add_argument("--slurm-hours", type=float, default=24.0)
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="[AGENT:]KEY=VALUE",
        help="hyperparameters of every agent, or of AGENT",
    )
    args = parser.parse_args()

    from rlrep.agents.train import AGENTS, parse_frames

    unknown = [a for a in args.agents if a not in AGENTS]
    if unknown:
        parser.error(f"unknown agents {unknown}; valid: {', '.join(AGENTS)}")

    frames = parse_frames(args.frames)
    out = Path(args.out)
    jobs = []
    for agent in args.agents:
        extra = settings_for(agent, args.set)
        for task in args.tasks:
            for seed in args.seeds:
                path = run_dir(out, agent, task, seed)
                name = f"{agent} {task} seed {seed}"
                if finished(path, frames):
                    print(f"done     {name}")
                    continue
                cmd = command(agent, task, seed, frames, path, args.eval_every,
                              args.eval_episodes, extra, args.eval_distraction)  # fmt: skip
                jobs.append((name, path, cmd))
    if not jobs:
        print("all runs finished")
        return

    if args.executor == "submitit":
        try:
            import submitit
        except ImportError:
            sys.exit("--executor submitit needs the submitit package: pip install submitit")
        executor = submitit.AutoExecutor(folder=out / "slurm")
        executor.update_parameters(
            timeout_min=int(args.slurm_hours * 60),
            gpus_per_node=1,
            cpus_per_task=4,
            slurm_partition=args.slurm_partition,
        )
        submitted = [executor.submit(subprocess.run, cmd, check=True) for *_, cmd in jobs]
        print(f"submitted {len(submitted)} jobs: {[j.job_id for j in submitted]}")
        return

    printing = threading.Lock()  # print() writes the line and its newline apart: one at a time

    def launch(job) -> tuple[str, int]:
        name, path, cmd = job
        with printing:
            print(f"start    {name}", flush=True)
        return name, run_local(cmd, path / "train.log")

    with ThreadPoolExecutor(max_workers=args.workers) as pool:  # each run is its own process
        failures = 0
        for name, code in pool.map(launch, jobs):
            with printing:
                print(
                    f"{'finished' if code == 0 else 'FAILED  '} {name}"
                    + ("" if code == 0 else f" (exit {code}, see train.log)"),
                    flush=True,
                )
            failures += code != 0
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
