"""Control from a frozen pretrained encoder on real DMC: SAC on stored features (issue 24, 3).

Rows per task: **state SAC** (``make_dmc(task, from_pixels=False)``, the upper bound), **state
SAC, positions only** (the state without its velocity entries: what a representation that
carries positions but no velocities leaves to the policy), a **random frozen** encoder (the
first pretrained checkpoint's architecture with its initial weights, as ``rlrep probe
--random-init``) and each **pretrained** checkpoint given as
``--pretrained NAME=PATH``, frozen. Pixel rows run SB3's SAC (``MlpPolicy``) on
:class:`rlrep.sb3.FrozenEncoderFeatures`: each 64-px observation is rendered and encoded once,
the replay buffer holds 50 floats per observation (exact for a frozen encoder with a
deterministic view; see its docstring). A checkpoint pretrained on ``dmc:TASK`` serves that
task only (its frames are rendered as the pretraining frames were); one on other data serves
every task. Frames = agent steps × the task's action repeat (CURL's: cartpole 8, reacher 4).
The second task is reacher-easy: 25,000 agent steps per 100k frames as ball_in_cup-catch, but
a 64-px frame renders in ~13 ms on this CPU against ~37 ms for ball_in_cup (and ~17 for
cartpole); walker-walk (action repeat 2) needs 50,000.

Jobs run in ``--workers`` processes, one torch thread each; every finished run is appended to
``runs.csv`` in ``--out`` (final evaluation return, learning curve, seconds split into env
stepping + rendering, encoding, SAC updates, evaluation and the rest), and runs already there are
not redone. Then ``control.png`` (IQM with 95% stratified-bootstrap CIs, rliable) and the printed
Markdown table: per task, IQM [CI] per row and its ratio to state SAC.

Usage::

    python experiments/control_from_features.py --tasks cartpole-swingup reacher-easy \\
        --pretrained simclr=runs/pre/cartpole-swingup/simclr/checkpoint.pt \\
        simclr=runs/pre/reacher-easy/simclr/checkpoint.pt --seeds 0 1 2 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import gymnasium as gym
import numpy as np

STATE, POSITIONS, RANDOM = "state SAC", "state SAC, positions only", "random frozen"
FLOW = " + flow"  # a pixel row's name with FrozenEncoderFeatures(flow=True)
COLUMNS = ["task", "row", "seed", "frames", "action_repeat", "final_return", "seconds", "env_s",
           "encode_s", "update_s", "eval_s", "other_s", "eval_env_s", "curve", "checkpoint"]  # fmt: skip


@dataclass(frozen=True)
class SACConfig:
    """SB3 SAC's settings, the same for every row. From SAC-AE / CURL on DMC (lr 1e-3, critic
    τ 0.01, initial temperature 0.1, 1000 random steps first, one update per agent step, γ 0.99),
    with smaller nets and batch than their 1024-wide MLPs and batch 512 (which cost 90–140 ms per
    update on one loaded CPU thread: 17–27 minutes of updates per cartpole run; [256, 256] × 128:
    ~10 ms)."""

    learning_rate: float = 1e-3
    batch_size: int = 128
    net_arch: tuple[int, ...] = (256, 256)
    tau: float = 0.01
    gamma: float = 0.99
    learning_starts: int = 1000  # agent steps
    ent_coef: str = "auto_0.1"
    train_freq: int = 1
    gradient_steps: int = 1


class Clock(gym.Wrapper):
    """Seconds spent inside the wrapped env's ``reset`` and ``step``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.seconds = 0.0

    def step(self, action):
        start = time.perf_counter()
        out = self.env.step(action)
        self.seconds += time.perf_counter() - start
        return out

    def reset(self, **kwargs):
        start = time.perf_counter()
        out = self.env.reset(**kwargs)
        self.seconds += time.perf_counter() - start
        return out


class Positions(gym.ObservationWrapper):
    """The state's position entries only (no velocities): what a policy can do from features
    that carry positions but not velocities."""

    def __init__(self, env: gym.Env) -> None:
        from rlrep.probes import state_groups

        super().__init__(env)
        self.keep = state_groups(env.unwrapped.state_keys)["position"].numpy()
        low, high = env.observation_space.low[self.keep], env.observation_space.high[self.keep]
        self.observation_space = gym.spaces.Box(low, high, dtype=env.observation_space.dtype)

    def observation(self, observation):
        return observation[self.keep]


def make_env(
    task: str, seed: int, checkpoint: str | None, random_init: bool, clocks: dict, row: str,
    flow: bool = False,
):  # fmt: skip
    """The env of a row: the state (or its positions), or features of the pixels rendered as
    the checkpoint's frames were; ``clocks`` gets the wrappers that time the env and env +
    encoding."""
    from rlrep.envs import make_dmc
    from rlrep.sb3 import FrozenEncoderFeatures

    if checkpoint is None:
        env = clocks["env"] = Clock(make_dmc(task, seed=seed, from_pixels=False))
        return Positions(env) if row == POSITIONS else env
    from rlrep.checkpoint import load_checkpoint

    c, size, _ = load_checkpoint(checkpoint)["config"]["image_shape"]
    pixels = clocks["env"] = Clock(make_dmc(task, image_size=size, frame_stack=c // 3, seed=seed))
    env = FrozenEncoderFeatures(pixels, pretrained=checkpoint, random_init=random_init, flow=flow)
    clocks["features"] = Clock(env)
    return clocks["features"]


def run_job(job: dict) -> dict:
    """One task × row × seed; the CSV row."""
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    config, seed, task = SACConfig(**job["sac"]), job["seed"], job["task"]
    train_clocks, eval_clocks = {}, {}
    row = (job["checkpoint"], job["random_init"], job["row"], job.get("flow", False))
    env = make_env(task, seed, *row[:2], train_clocks, *row[2:])
    eval_env = make_env(task, seed + 1000, *row[:2], eval_clocks, *row[2:])
    repeat = env.unwrapped.action_repeat
    steps, eval_steps = job["frames"] // repeat, max(1, job["eval_every"] // repeat)
    model = SAC(
        "MlpPolicy", env, buffer_size=steps, seed=seed, verbose=0,
        **{k: v for k, v in asdict(config).items() if k != "net_arch"},
        policy_kwargs={"net_arch": list(config.net_arch)},
    )  # fmt: skip
    update_s, train = [0.0], model.train

    def timed_train(*args, **kwargs):
        start = time.perf_counter()
        train(*args, **kwargs)
        update_s[0] += time.perf_counter() - start

    model.train = timed_train  # SB3 calls self.train(gradient_steps, batch_size)
    curve, eval_s = [], [0.0]
    eval_env.reset(seed=seed + 1000)

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            n = self.num_timesteps
            if n % eval_steps == 0 or n == steps:
                start = time.perf_counter()
                k = job["final_episodes"] if n == steps else job["eval_episodes"]
                curve.append((n * repeat, evaluate(model, eval_env, k)))
                eval_s[0] += time.perf_counter() - start
            return True

    start = time.perf_counter()
    model.learn(steps, callback=Evaluate())
    seconds = time.perf_counter() - start
    env_s = train_clocks["env"].seconds
    encode_s = train_clocks["features"].seconds - env_s if "features" in train_clocks else 0.0
    return {
        "task": task, "row": job["row"], "seed": seed, "frames": steps * repeat,
        "action_repeat": repeat, "final_return": curve[-1][1], "seconds": seconds,
        "env_s": env_s, "encode_s": encode_s, "update_s": update_s[0], "eval_s": eval_s[0],
        "other_s": seconds - env_s - encode_s - update_s[0] - eval_s[0],
        "eval_env_s": eval_clocks["env"].seconds,
        "curve": ";".join(f"{f}:{r:.1f}" for f, r in curve), "checkpoint": job["checkpoint"] or "",
    }  # fmt: skip


def evaluate(model, env, episodes: int) -> float:
    """Mean return of ``episodes`` episodes of the deterministic policy."""
    returns = []
    for _ in range(episodes):
        obs, _ = env.reset()
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + reward, terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def checkpoints_by_task(specs: list[str], tasks: list[str]) -> dict[str, dict[str, str]]:
    """``NAME=PATH`` → {task: {name: path}}: a checkpoint pretrained on ``dmc:TASK`` serves that
    task, one on other data every task."""
    from rlrep.checkpoint import load_checkpoint

    out: dict[str, dict[str, str]] = {t: {} for t in tasks}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path or name in (STATE, POSITIONS, RANDOM):
            raise SystemExit(f"--pretrained takes NAME=PATH (a new row name), got {spec!r}")
        dataset = load_checkpoint(path)["config"]["dataset"]
        served = (
            [t for t in tasks if dataset == f"dmc:{t}"] if dataset.startswith("dmc:") else tasks
        )
        if not served:
            print(f"note: {path} was pretrained on {dataset}, none of --tasks: not used")
        for task in served:
            if name in out[task]:
                raise SystemExit(f"two checkpoints named {name!r} for {task}")
            out[task][name] = str(Path(path).resolve())
    return out


def jobs_of(args: argparse.Namespace) -> list[dict]:
    by_task = checkpoints_by_task(args.pretrained, args.tasks)
    base = {"frames": args.frames, "eval_every": args.eval_every, "sac": asdict(SACConfig()),
            "eval_episodes": args.eval_episodes, "final_episodes": args.final_episodes}  # fmt: skip
    jobs = []
    for task in args.tasks:
        rows = {STATE: (None, False), POSITIONS: (None, False)}
        if by_task[task]:
            rows[RANDOM] = (next(iter(by_task[task].values())), True)
        rows.update({name: (path, False) for name, path in by_task[task].items()})
        if args.flow:  # each pixel row again with Flare's latent flow
            rows.update({f"{name}{FLOW}": spec for name, spec in rows.items() if spec[0]})
        for row, (checkpoint, random_init) in rows.items():
            if args.rows and row not in args.rows:
                continue
            for seed in args.seeds:
                jobs.append({**base, "task": task, "row": row, "seed": seed,
                             "checkpoint": checkpoint, "random_init": random_init,
                             "flow": row.endswith(FLOW)})  # fmt: skip
    return jobs


def row_order(names) -> list[str]:
    """State SAC, its positions only, random frozen, then the pretrained rows as they come."""
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda n: (n != STATE, n != POSITIONS, n != RANDOM, n.endswith(FLOW),
                                        names.index(n)))  # fmt: skip


def iqm_table(rows: list[dict], tasks: list[str]) -> tuple[str, dict]:
    """Markdown table of the IQM [95% CI] of the final returns per task and row, and the
    estimates ``{(task, row): (iqm, low, high, n)}``."""
    from rliable import library as rly
    from rliable import metrics

    estimates = {}
    for task in tasks:
        for name in row_order(r["row"] for r in rows if r["task"] == task):
            scores = np.array([[float(r["final_return"])] for r in rows
                               if r["task"] == task and r["row"] == name])  # fmt: skip
            with warnings.catch_warnings():  # arch's notice about rliable's random_state
                warnings.simplefilter("ignore", FutureWarning)
                point, interval = rly.get_interval_estimates(
                    {name: scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=2000,
                    random_state=np.random.RandomState(0),
                )  # fmt: skip
            low, high = interval[name][:, 0]
            estimates[(task, name)] = (float(point[name][0]), float(low), float(high), len(scores))
    lines = ["| task | row | seeds | IQM [95% CI] | × state SAC | CI above random frozen |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for (task, name), (iqm, low, high, n) in estimates.items():
        state = estimates.get((task, STATE))
        random = estimates.get((task, RANDOM))
        ratio = f"{iqm / state[0]:.2f}" if state and state[0] > 0 else ""
        # A flow row is compared with the random encoder's flow row.
        random = estimates.get((task, RANDOM + FLOW)) if name.endswith(FLOW) else random
        above = "" if name in (STATE, POSITIONS, RANDOM, RANDOM + FLOW) or random is None else (
            "yes" if low > random[2] else "no")  # fmt: skip
        lines.append(f"| {task} | {name} | {n} | {iqm:.0f} [{low:.0f}, {high:.0f}] | {ratio} "
                     f"| {above} |")  # fmt: skip
    return "\n".join(lines), estimates


def plot(estimates: dict, tasks: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 2.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        names = [n for t, n in estimates if t == task]
        iqm, low, high = (np.array([estimates[(task, n)][i] for n in names]) for i in range(3))
        ax.errorbar(iqm, names, xerr=[iqm - low, high - iqm], fmt="o", capsize=3)
        ax.set_xlim(0, 1000)
        ax.invert_yaxis()
        ax.set_title(f"{task}: final return, IQM (95% CI)", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def describe(row: dict) -> str:
    """One line per finished run: its return and where its seconds went."""
    step_ms = row["env_s"] * 1e3 * row["action_repeat"] / row["frames"]
    return (
        f"{row['task']} {row['row']} seed {row['seed']}: return {row['final_return']:.0f} in "
        f"{row['seconds'] / 60:.1f} min (env+render {row['env_s']:.0f} s = {step_ms:.1f} ms/step, "
        f"encode {row['encode_s']:.0f} s, SAC updates {row['update_s']:.0f} s, eval "
        f"{row['eval_s']:.0f} s, other {row['other_s']:.0f} s)"
    )


def time_summary(rows: list[dict]) -> str:
    """Mean seconds per run by task and row, split by where they go."""
    lines = ["| task | row | runs | minutes | env+render | encode | SAC updates | eval | other |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for task, name in ((t, n) for t in dict.fromkeys(r["task"] for r in rows)
                       for n in row_order(r["row"] for r in rows if r["task"] == t)):  # fmt: skip
        mine = [r for r in rows if r["task"] == task and r["row"] == name]
        mean = {k: np.mean([float(r[k]) for r in mine]) for k in
                ("seconds", "env_s", "encode_s", "update_s", "eval_s", "other_s")}  # fmt: skip
        lines.append(f"| {task} | {name} | {len(mine)} | {mean['seconds'] / 60:.1f} | " + " | ".join(
            f"{mean[k]:.0f} s" for k in ("env_s", "encode_s", "update_s", "eval_s", "other_s")) + " |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["cartpole-swingup", "reacher-easy"])
    parser.add_argument("--pretrained", nargs="*", default=[], metavar="NAME=PATH")
    parser.add_argument("--rows", nargs="*", help=f"only these rows (e.g. {STATE!r})")
    parser.add_argument("--flow", action="store_true",
                        help=f"each pixel row also with Flare's latent flow (row NAME{FLOW!r})")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=20_000, help="frames")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--final-episodes", type=int, default=10, help="the last evaluation's")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("experiments/results/control"))
    parser.add_argument("--report", action="store_true",
                        help="run nothing: the table, time split and plot of every run of "
                        "--tasks in OUT/runs.csv")  # fmt: skip
    args = parser.parse_args()
    # One intra-op thread per process (set before a worker imports torch), headless rendering.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ.setdefault("MUJOCO_GL", "egl")
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "runs.csv"
    done = []
    if csv_path.exists():
        with open(csv_path, newline="") as f:
            done = list(csv.DictReader(f))
    key = lambda r: (r["task"], r["row"], int(r["seed"]), int(r["frames"]))  # noqa: E731
    if args.report:
        report([r for r in done if r["task"] in args.tasks], args)
        return
    have = {key(r) for r in done}
    jobs = jobs_of(args)
    todo = [j for j in jobs if (j["task"], j["row"], j["seed"], j["frames"]) not in have]
    print(json.dumps({"sac": asdict(SACConfig()), "frames": args.frames, "eval_every":
                      args.eval_every, "eval_episodes": args.eval_episodes, "final_episodes":
                      args.final_episodes}, indent=None))  # fmt: skip
    print(f"{len(jobs)} runs, {len(jobs) - len(todo)} already in {csv_path}")
    todo.sort(key=lambda j: j["checkpoint"] is None)  # pixel runs (the long ones) first
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        for future in as_completed([pool.submit(run_job, job) for job in todo]):
            row = future.result()
            new = not csv_path.exists()
            with open(csv_path, "a", newline="") as f:
                writer = csv.DictWriter(f, COLUMNS)
                if new:
                    writer.writeheader()
                writer.writerow({k: round(v, 2) if isinstance(v, float) else v
                                 for k, v in row.items()})  # fmt: skip
            done.append({k: str(v) for k, v in row.items()})
            print(describe(row), flush=True)
    wanted = {(j["task"], j["row"], j["seed"], j["frames"]) for j in jobs}
    rows = [r for r in done if key(r) in wanted]
    print(f"{(time.perf_counter() - start) / 60:.1f} min, {args.workers} workers × 1 thread")
    report(rows, args)


def report(rows: list[dict], args: argparse.Namespace) -> None:
    """The time split, the IQM table (printed) and ``control.png`` of ``rows``."""
    if not rows:
        raise SystemExit(f"no runs of {', '.join(args.tasks)} in {args.out / 'runs.csv'}")
    print(time_summary(rows))
    tasks = [t for t in args.tasks if any(r["task"] == t for r in rows)]
    table, estimates = iqm_table(rows, tasks)
    plot(estimates, tasks, args.out / "control.png")
    print(table)


if __name__ == "__main__":
    main()
