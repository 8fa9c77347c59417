"""``rlrep train``, the DMC benchmark runner and its report, on tiny budgets on the CPU."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rlrep.agents.train import parse_frames, train
from rlrep.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "num_filters=4",
    "num_layers=2",
    "hidden_dim=16",
    "batch_size=8",
    "buffer_size=500",
    "initial_steps=40",
]
TINY_KW = {
    "num_filters": 4,
    "num_layers": 2,
    "hidden_dim": 16,
    "batch_size": 8,
    "buffer_size": 500,
    "initial_steps": 40,
}


def rlrep(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "rlrep.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


def read_eval(path):
    with open(path / "eval.csv") as f:
        return list(csv.DictReader(f))


def test_help_names_every_agent():
    from rlrep.agents import AGENTS

    help_text = " ".join(rlrep("train", "--help").stdout.split())
    assert all(agent in help_text for agent in AGENTS)


def test_every_flag_of_every_command_is_explained_and_shows_its_default(capsys):
    from rlrep.cli_parser import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"train", "export", "pretrain", "probe", "plot"}
    for name, command in commands.items():
        help_text = "".join(command.format_help().split())  # wrapped lines (and hyphens) joined
        for action in command._actions:
            flag = "/".join(action.option_strings) or action.dest
            assert action.help, f"rlrep {name} {flag} has no help text"
            default = action.default
            if default in (None, False, [], "==SUPPRESS==") or "default" in action.help:
                continue
            shown = "".join(f"{action.help} (default: {default})".split())
            assert shown in help_text, f"rlrep {name} {flag}: default {default!r} not shown"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    printed = " ".join(capsys.readouterr().out.split())
    for text in ("--seed SEED seed of the run", "(default: 1)", "--eval-episodes EVAL_EPISODES",
                 "--device DEVICE auto (CUDA if available)"):  # fmt: skip
        assert text in printed


def test_an_unknown_task_lists_every_valid_name_before_anything_runs(tmp_path):
    from rlrep.envs import DMC_TASKS

    with pytest.raises(ValueError) as err:
        train("cartpole-swing", out=tmp_path / "r")
    message = str(err.value)
    assert message.startswith("unknown task 'cartpole-swing' (did you mean cartpole-swingup")
    assert (
        all(task in message for task in DMC_TASKS) and "or point_mass_pixels (synthetic" in message
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_the_bar_shows_the_latest_return_and_the_run_records_the_random_policy(tmp_path, capsys):
    from rlrep.agents.evaluation import Evaluation
    from rlrep.envs import make_env

    out = tmp_path / "run"
    history = train("point_mass_pixels", frames=60, seed=0, out=out, eval_every=20,
                    eval_episodes=2, **TINY_KW)  # fmt: skip
    captured = capsys.readouterr()
    # After each evaluation during learning (the last comes after it, printed), its return.
    shown = set(re.findall(r"eval_return=(-?\d+\.\d), at=(\d+) frames", captured.err))
    rows = {(f"{h['mean_return']:.1f}", str(h["frames"])) for h in history}
    assert shown <= rows and {"20", "40"} <= {frames for _, frames in shown}
    # The random policy's return on the same seeded evaluation episodes, for plots.
    evaluation = Evaluation(lambda d: make_env("point_mass_pixels", seed=10_000, image_size=100),
                            [], 10_000, 2)  # fmt: skip
    mean, std = evaluation.random_policy(make_env("point_mass_pixels").action_space)
    recorded = json.loads((out / "random_policy.json").read_text())
    assert recorded == {"mean_return": mean, "std_return": std, "episodes": 2, "seed": 10_000}
    summary = captured.out.strip().splitlines()[-1]
    assert summary.startswith(f"run folder {out}: eval.csv (3 evaluations)")
    for name in ("random_policy.json", "config.json", "checkpoints/000000060", "logs/"):
        assert name in summary and (out / name).exists()
    assert f"tensorboard --logdir {out / 'logs'}" in summary and f"rlrep plot {out}" in summary


def test_parse_frames():
    assert (
        parse_frames("100k") == 100_000
        and parse_frames("1.5M") == 1_500_000
        and parse_frames("2000") == 2000
    )
    with pytest.raises(ValueError, match="number of frames"):
        parse_frames("lots")


@pytest.mark.slow
def test_train_evaluates_checkpoints_and_logs(tmp_path):
    out = tmp_path / "run"
    history = train(
        "point_mass_pixels",
        frames=60,
        seed=0,
        out=out,
        eval_every=30,
        eval_episodes=2,
        progress=False,
        **TINY_KW,
    )
    assert [h["frames"] for h in history] == [30, 60]
    for name in ("eval.csv", "config.json", "checkpoints/latest"):
        assert (out / name).exists(), name
    assert not (out / "model.zip").exists()  # one copy of the state: the checkpoint
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no partial files
    assert (
        list((out / "logs").glob("events.out.tfevents.*"))
        and (out / "logs" / "progress.csv").exists()
    )
    from rlrep.agents.curl_sac import CURLSAC
    from rlrep.agents.export import export_sb3

    shared = CURLSAC.load(export_sb3(out))  # SB3's format, for sharing, on request
    assert shared.num_timesteps == 60
    saved = torch.load(  # the zip holds the checkpoint's weights
        out / "checkpoints" / "000000060" / "weights.pt", weights_only=True
    )
    policy = saved["state_dicts"]["policy"]
    exported = {k: v for k, v in shared.policy.state_dict().items() if torch.is_tensor(v)}
    assert exported and all(torch.equal(policy[k], v) for k, v in exported.items())


@pytest.mark.slow
def test_cli_runs_curl_sac_and_reports_errors(tmp_path):
    result = rlrep(
        "train",
        "--env",
        "point_mass_pixels",
        "--steps",
        "40",
        "--eval-every",
        "40",
        "--eval-episodes",
        "1",
        "--out",
        str(tmp_path / "r"),
        "--no-progress",
        "--set",
        *TINY,
    )
    assert "final evaluation after 40 frames" in result.stdout
    bad = rlrep("train", "--env", "cartpole-swing", "--out", str(tmp_path / "b"), check=False)
    assert bad.returncode == 2 and "unknown task 'cartpole-swing'" in bad.stderr
    bad = rlrep(
        "train",
        "--env",
        "point_mass_pixels",
        "--agent",
        "dreamer",
        "--out",
        str(tmp_path / "c"),
        check=False,
    )
    assert bad.returncode == 2 and "unknown agent" in bad.stderr
    bad = rlrep("train", "--env", "point_mass_pixels", "--out", str(tmp_path / "d"), "--set",
                "batch_size", check=False)  # fmt: skip
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    again = rlrep("train", "--env", "point_mass_pixels", "--out", str(tmp_path / "r"),
                  "--resume", "--steps", "40", "--eval-every", "40", "--eval-episodes", "1",
                  "--set", *TINY, "batch_size=9", check=False)  # fmt: skip
    assert again.returncode == 2 and "overrides.batch_size: 8 → 9" in again.stderr


@pytest.mark.slow
def test_benchmark_runner_is_resumable_and_the_report_is_written(tmp_path):
    out = tmp_path / "dmc"
    cmd = [
        sys.executable,
        "experiments/dmc_benchmark.py",
        "--out",
        str(out),
        "--agents",
        "curl-sac",
        "drqv2",
        "--tasks",
        "point_mass_pixels",
        "--seeds",
        "1",
        "2",
        "--frames",
        "40",
        "--eval-every",
        "20",
        "--eval-episodes",
        "1",
        "--workers",
        "2",
        "--set",
        *TINY,
        "drqv2:n_step=2",  # a DrQ-v2 option: CURL-SAC's runs would refuse it
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    for agent in ("curl-sac", "drqv2"):
        for seed in (1, 2):
            run = out / agent / "point_mass_pixels" / f"seed{seed}"
            assert [r["frames"] for r in read_eval(run)] == ["20", "40"]
    assert (
        '"n_step": 2' in (out / "drqv2" / "point_mass_pixels" / "seed1" / "config.json").read_text()
    )
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert "all runs finished" in again.stdout
    report = subprocess.run(
        [sys.executable, "experiments/dmc_report.py", str(out), "--budgets", "40"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert report.returncode == 0, report.stderr
    assert (out / "curves.png").stat().st_size > 1000
    assert "| point_mass_pixels | 40 |" in (out / "results.md").read_text()
    assert {"curl-sac", "drqv2"} <= set((out / "aggregate.md").read_text().split())


def test_report_table_and_iqm_against_numpy(tmp_path):
    rng = np.random.default_rng(0)
    scores = {}
    for agent, task in [
        (a, t) for a in ("curl-sac", "drq") for t in ("cartpole-swingup", "walker-walk")
    ]:
        for seed in (1, 2, 3):
            path = tmp_path / agent / task / f"seed{seed}"
            path.mkdir(parents=True)
            curve = np.sort(rng.uniform(0, 1000, 10))
            scores[(agent, task, seed)] = curve
            with open(path / "eval.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(
                    ["frames", "agent_steps", "mean_return", "std_return", "episodes", "wall_time"]
                )
                for i, v in enumerate(curve):
                    writer.writerow([(i + 1) * 10_000, (i + 1) * 1250, v, 0.0, 10, 1.0])
    result = subprocess.run(
        [sys.executable, "experiments/dmc_report.py", str(tmp_path), "--budgets", "100k", "50k"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "results.csv") as f:
        rows = {(r["agent"], r["task"], int(r["budget"])): r for r in csv.DictReader(f)}
    assert len(rows) == 8  # 2 agents × 2 tasks × 2 budgets
    for agent in ("curl-sac", "drq"):
        at_100k = [scores[(agent, "cartpole-swingup", s)][9] for s in (1, 2, 3)]
        row = rows[(agent, "cartpole-swingup", 100_000)]
        assert float(row["mean"]) == pytest.approx(np.mean(at_100k))
        assert float(row["std"]) == pytest.approx(np.std(at_100k))
        assert float(rows[(agent, "walker-walk", 50_000)]["mean"]) == pytest.approx(
            np.mean([scores[(agent, "walker-walk", s)][4] for s in (1, 2, 3)])
        )
    assert (
        rows[("drq", "cartpole-swingup", 100_000)]["CURL"] == "582"
        and rows[("curl-sac", "walker-walk", 100_000)]["DrQ"] == "612"
    )
    # IQM of each agent's 6 runs: the mean of the middle 50% (scipy's trim_mean at 25%).
    from scipy.stats import trim_mean

    lines = (tmp_path / "aggregate.md").read_text().splitlines()
    for agent in ("curl-sac", "drq"):
        runs = [scores[(agent, t, s)][9] for t in ("cartpole-swingup", "walker-walk")
                for s in (1, 2, 3)]  # fmt: skip
        line = next(ln for ln in lines if ln.startswith(f"| 100,000 | {agent} |"))
        assert float(line.split("|")[3]) == pytest.approx(trim_mean(np.array(runs) / 1000, 0.25),
                                                          abs=5e-4)  # fmt: skip
    table = (tmp_path / "results.md").read_text()
    assert "curl-sac mean ± std (seeds)" in table and "drq mean ± std (seeds)" in table
    assert (tmp_path / "curves.png").exists() and (tmp_path / "iqm.png").exists()


def test_report_generalisation_table_against_numpy(tmp_path):
    """Runs with distracted-variant columns (``--eval-distraction``) give the generalisation
    table: per variant the mean ± std over seeds and the IQM over tasks × seeds."""
    rng = np.random.default_rng(1)
    variants = ("color_hard", "video_easy")
    scores = {}
    for task in ("cartpole-swingup", "walker-walk"):
        for seed in (1, 2, 3):
            path = tmp_path / "drq" / task / f"seed{seed}"
            path.mkdir(parents=True)
            with open(path / "eval.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["frames", "agent_steps", "mean_return", "std_return", "episodes",
                                 "wall_time", *(f"{s}_return_{v}" for v in variants
                                                for s in ("mean", "std"))])  # fmt: skip
                for frames in (50_000, 100_000):
                    values = rng.uniform(0, 1000, 3)  # clean, color_hard, video_easy
                    scores.update({(task, seed, frames, name): x for name, x in
                                   zip(("clean", *variants), values, strict=True)})  # fmt: skip
                    writer.writerow([frames, frames // 8, values[0], 0, 10, 1.0,
                                     values[1], 0, values[2], 0])  # fmt: skip
    result = subprocess.run(
        [sys.executable, "experiments/dmc_report.py", str(tmp_path), "--budgets", "100k"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "generalisation.csv") as f:
        rows = {(r["variant"], r["task"]): r for r in csv.DictReader(f)}
    assert len(rows) == 6  # clean + 2 variants, 2 tasks
    for name in ("clean", *variants):
        at = [scores[("walker-walk", s, 100_000, name)] for s in (1, 2, 3)]
        assert float(rows[(name, "walker-walk")]["mean"]) == pytest.approx(np.mean(at))
        assert float(rows[(name, "walker-walk")]["std"]) == pytest.approx(np.std(at))
    from scipy.stats import trim_mean

    line = next(ln for ln in (tmp_path / "generalisation.md").read_text().splitlines()
                if ln.startswith("| drq | 100,000 |"))  # fmt: skip
    cells = [c.strip() for c in line.split("|")[3:-1]]
    for name, cell in zip(("clean", *variants), cells, strict=True):
        runs = [scores[(t, s, 100_000, name)] / 1000 for t in ("cartpole-swingup", "walker-walk")
                for s in (1, 2, 3)]  # fmt: skip
        assert float(cell.split()[0]) == pytest.approx(trim_mean(runs, 0.25), abs=5e-4)
    assert (tmp_path / "generalisation.png").exists()
