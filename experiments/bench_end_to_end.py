"""Frames per second of whole training runs: ``rlrep train`` (CURL-SAC, DrQ-v2; in-process env
and ``--overlap``) against the official training loops (MishaLaskin/curl ``train.py``,
facebookresearch/drqv2 ``train.py``), same task, settings and machine, runs alternating.

Every run is a fresh process on DMC cartpole-swingup with the paper's settings except the batch
size: the random phase (CURL 1000 agent steps at action repeat 8; DrQ-v2 4000 frames at 2), then
``--window`` agent steps with updates, then one evaluation of ``--eval-episodes`` episodes (and
rlrep's checkpoint). **frames/s** is measured over the window, from the first update's start to
the last update's end (env steps, replay writes and samples, updates: steady-state training); the
evaluation and the checkpoint are reported beside it, per run. The time split comes from timers
wrapped around each code's own functions (nothing in them is edited):

- env: the training env's ``step``/``reset`` (physics + render + frame stack); with ``--overlap``
  measured in the worker process, where it runs beside the updates;
- replay add / sample: the buffer's ``add`` / its sampling (CURL: ``sample_cpc``, which crops in
  numpy; DrQ-v2: the loader's ``next()``, fed by its 4 worker processes; rlrep: ``sample`` (+
  ``get_sequences``));
- update: the update call minus the sampling inside it;
- eval, checkpoint: the evaluation call; rlrep's checkpoint (the official loops save none by
  default: CURL's ``--save_model`` and DrQ-v2's ``save_snapshot`` are off).

Adaptations the official code needs here, none of which touches what is timed: ``gym`` (old API)
is a stand-in module over gymnasium's ``Box`` (``Wrapper`` forwarding attributes, ``make`` for
the id ``dmc2gym.make`` registers, with gym's ``_max_episode_steps``); ``dmc2gym`` is imported
from a checkout of denisyarats/dmc2gym (not on PyPI), with NumPy's removed alias ``np.int``
restored for it; ``torchvision`` (not importable with this
CPU torch) is an empty stand-in (CURL's ``train.py`` imports ``transforms`` and never uses it;
both loggers use it only for images, never logged here); DrQ-v2 runs with ``device=cpu
use_tb=false save_video=false``, its config composed by hydra's compose API instead of
``@hydra.main``, and its env's action spec declared float32 as the code expects (today's
dm_control ``action_scale`` reports float64, which its replay storage's dtype check refuses), and its loader workers' seed given to
``random.seed`` as a Python int (Python 3.11 refuses NumPy's). Packages the references need:
``pip install scikit-image termcolor hydra-core hydra-submitit-launcher``.

Usage (references outside the repository)::

    git clone https://github.com/MishaLaskin/curl /tmp/curl   # measured at 8416d6e
    git clone https://github.com/facebookresearch/drqv2 /tmp/drqv2   # measured at c0c650b
    git clone https://github.com/denisyarats/dmc2gym /tmp/dmc2gym   # at 06f7e33
    MUJOCO_GL=egl python experiments/bench_end_to_end.py --curl /tmp/curl --drqv2 /tmp/drqv2 \\
        --dmc2gym /tmp/dmc2gym --out experiments/results/end_to_end
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

#: Each entry: (agent, code, overlap).
RUNS = {
    "curl-sac/rlrep": ("curl-sac", "rlrep", False),
    "curl-sac/rlrep --overlap": ("curl-sac", "rlrep", True),
    "curl-sac/official": ("curl-sac", "official", False),
    "drqv2/rlrep": ("drqv2", "rlrep", False),
    "drqv2/rlrep --overlap": ("drqv2", "rlrep", True),
    "drqv2/official": ("drqv2", "official", False),
}
REPEAT = {"curl-sac": 8, "drqv2": 2}
INITIAL = {"curl-sac": 1000, "drqv2": 2000}  # agent steps of the random phase (the papers')
BATCH = {"curl-sac": 512, "drqv2": 256}  # the papers' (CURL's Table 3; DrQ-v2's config)
PARTS = ("env", "replay_add", "replay_sample", "update", "eval", "checkpoint")


class Timers:
    """Seconds per part, from wrapped functions; nothing counts inside an evaluation but the
    evaluation, and the update's own time excludes the sampling inside it."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self.in_eval = False
        self.first_update: tuple[float, int] | None = None  # (time, agent step)
        self.last_update: tuple[float, int] | None = None
        self.window: dict[str, float] | None = None  # seconds at the first update
        self.window_end: dict[str, float] | None = None  # seconds at the last update's end
        #: Updates at this agent step or later fall after the window (the official loops
        #: evaluate at the start of their last step, then update once more).
        self.until_step = 10**12
        self.last_eval = 0.0  # seconds of the last evaluation (the official loops also
        # evaluate at step 0)

    def wrap(self, owner: Any, name: str, part: str, step_of=None) -> None:
        original = getattr(owner, name)
        timers = self

        def timed(*args, **kwargs):
            if timers.in_eval and part != "eval":
                return original(*args, **kwargs)
            start = time.perf_counter()
            step = None if step_of is None else step_of(args, kwargs)
            if step is not None and timers.first_update is None:
                timers.first_update = (start, step)
                timers.window = dict(timers.seconds)
            timers.in_eval = part == "eval"
            try:
                return original(*args, **kwargs)
            finally:
                timers.in_eval = False
                end = time.perf_counter()
                timers.seconds[part] += end - start
                if part == "eval":
                    timers.last_eval = end - start
                if step is not None and step < timers.until_step:
                    timers.last_update = (end, step)
                    timers.window_end = dict(timers.seconds)

        setattr(owner, name, timed)

    def result(self, repeat: int) -> dict[str, Any]:
        (t0, s0), (t1, s1) = self.first_update, self.last_update
        frames = (s1 - s0) * repeat
        parts = ("env", "replay_add", "replay_sample", "update")
        window = {p: self.window_end[p] - self.window[p] for p in parts}
        window["update"] -= window["replay_sample"]
        return {"frames": frames, "seconds": t1 - t0, "fps": frames / (t1 - t0),
                **{f"{p}_s": round(v, 3) for p, v in window.items()},
                "eval_s": round(self.last_eval, 3),
                "checkpoint_s": round(self.seconds["checkpoint"], 3)}  # fmt: skip


# --- the runs (each in its own process) ---------------------------------------------------------
def initial(agent: str, args: argparse.Namespace) -> int:
    return INITIAL[agent] if args.initial_steps is None else args.initial_steps


def batch(agent: str, args: argparse.Namespace) -> int:
    return BATCH[agent] if args.batch_size is None else args.batch_size


def run_rlrep(agent: str, overlap: bool, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from rlrep.agents import CURLSAC, DrQV2
    from rlrep.agents.evaluation import Evaluation
    from rlrep.agents.run_folder import RunFolder
    from rlrep.agents.train import train
    from rlrep.agents.train_run import Progress
    from rlrep.sb3 import FrameStackReplayBuffer

    timers = Timers()
    agent_class = {"curl-sac": CURLSAC, "drqv2": DrQV2}[agent]
    timers.wrap(agent_class, "train", "update", lambda a, k: a[0].num_timesteps)
    timers.wrap(FrameStackReplayBuffer, "add", "replay_add")
    timers.wrap(FrameStackReplayBuffer, "sample", "replay_sample")
    timers.wrap(FrameStackReplayBuffer, "get_sequences", "replay_sample")
    timers.wrap(Evaluation, "evaluate", "eval")
    timers.wrap(RunFolder, "write_checkpoint", "checkpoint")
    on_step = Progress._on_step

    def env_seconds(self):  # RunEnv's seconds (in the worker process when overlapped)
        out = on_step(self)
        timers.seconds["env"] = self.run.seconds["env"]
        return out

    Progress._on_step = env_seconds
    steps = initial(agent, args) + args.window
    frames = steps * REPEAT[agent]
    train("cartpole-swingup", agent=agent, frames=frames, seed=1, out=work / "run",
          eval_every=frames, eval_episodes=args.eval_episodes, progress=False, overlap=overlap,
          device=args.device, batch_size=batch(agent, args),
          initial_steps=initial(agent, args))  # fmt: skip
    return timers.result(REPEAT[agent])


class _Wrapper:
    """Old gym's ``Wrapper``: attributes it lacks come from the wrapped env."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.observation_space, self.action_space = env.observation_space, env.action_space

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)


def gym_stand_in() -> types.ModuleType:
    """The parts of old ``gym`` that dmc2gym and CURL's ``utils.py`` use."""
    import importlib

    import gymnasium

    gym = types.ModuleType("gym")
    gym.core = types.SimpleNamespace(Env=object)
    gym.spaces = types.SimpleNamespace(Box=gymnasium.spaces.Box)
    gym.Wrapper = _Wrapper
    specs: dict[str, dict[str, Any]] = {}

    def register(id: str, entry_point: str, kwargs: dict, max_episode_steps: int) -> None:
        specs[id] = {"entry_point": entry_point, "kwargs": kwargs, "steps": max_episode_steps}

    def make(id: str) -> Any:
        spec = specs[id]
        module, name = spec["entry_point"].split(":")
        env = getattr(importlib.import_module(module), name)(**spec["kwargs"])
        env._max_episode_steps = spec["steps"]  # gym's TimeLimit; DMC ends the episode itself
        return env

    gym.make = make
    gym.envs = types.SimpleNamespace(registry=types.SimpleNamespace(env_specs=specs))
    registration = types.ModuleType("gym.envs.registration")
    registration.register = register
    sys.modules.update({"gym": gym, "gym.envs": gym.envs, "gym.envs.registration": registration})
    return gym


def torchvision_stand_in() -> None:
    tv = types.ModuleType("torchvision")
    tv.transforms, tv.utils = types.ModuleType("transforms"), types.ModuleType("utils")
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms,
                        "torchvision.utils": tv.utils})  # fmt: skip


def run_official_curl(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import numpy as np

    np.int = int  # dmc2gym's np.int, an alias NumPy removed in 1.24
    gym_stand_in()
    torchvision_stand_in()
    sys.path[:0] = [str(args.curl), str(args.dmc2gym)]
    import curl_sac
    import train as curl_train
    import utils

    timers = Timers()
    timers.wrap(curl_sac.CurlSacAgent, "update", "update", lambda a, k: a[3])
    timers.wrap(utils.ReplayBuffer, "add", "replay_add")
    timers.wrap(utils.ReplayBuffer, "sample_cpc", "replay_sample")
    timers.wrap(utils.FrameStack, "step", "env")
    timers.wrap(utils.FrameStack, "reset", "env")
    timers.wrap(curl_train, "evaluate", "eval")
    steps = timers.until_step = initial("curl-sac", args) + args.window
    sys.argv = ["train.py", "--domain_name", "cartpole", "--task_name", "swingup",
                "--action_repeat", "8", "--pre_transform_image_size", "100", "--image_size", "84",
                "--frame_stack", "3", "--init_steps", str(initial("curl-sac", args)),
                "--batch_size", str(batch("curl-sac", args)), "--num_train_steps", str(steps + 1),
                "--eval_freq", str(steps), "--num_eval_episodes", str(args.eval_episodes),
                "--work_dir", str(work), "--seed", "1", "--log_interval", str(10**9)]  # fmt: skip
    curl_train.main()
    return timers.result(REPEAT["curl-sac"])


def run_official_drqv2(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    torchvision_stand_in()
    sys.path.insert(0, str(args.drqv2))
    os.chdir(work)
    import dmc
    import drqv2
    import hydra
    import numpy as np
    import replay_buffer
    import train as drqv2_train

    def worker_init(worker_id: int) -> None:  # the code's, with a Python int for random.seed
        seed = int(np.random.get_state()[1][0]) + worker_id
        np.random.seed(seed)
        random.seed(seed)

    replay_buffer._worker_init_fn = worker_init
    spec = dmc.ExtendedTimeStepWrapper.action_spec  # float64 under today's dm_control
    dmc.ExtendedTimeStepWrapper.action_spec = lambda self: spec(self).replace(dtype=np.float32)
    timers = Timers()
    timers.wrap(drqv2.DrQV2Agent, "update", "update", lambda a, k: a[2])
    timers.wrap(replay_buffer.ReplayBufferStorage, "add", "replay_add")
    timers.wrap(drqv2_train.Workspace, "eval", "eval")
    original = drqv2_train.Workspace.replay_iter

    class TimedIterator:
        def __init__(self, it):
            self.it = it

        def __next__(self):
            start = time.perf_counter()
            try:
                return next(self.it)
            finally:
                timers.seconds["replay_sample"] += time.perf_counter() - start

    drqv2_train.Workspace.replay_iter = property(lambda self: TimedIterator(original.fget(self)))
    setup = drqv2_train.Workspace.setup

    def timed_setup(self):  # the envs exist once setup() ran: time the training env's calls
        setup(self)
        for name in ("step", "reset"):
            inner = getattr(self.train_env, name)

            def call(*a, _inner=inner, **k):
                start = time.perf_counter()
                try:
                    return _inner(*a, **k)
                finally:
                    timers.seconds["env"] += time.perf_counter() - start

            setattr(self.train_env, name, call)

    drqv2_train.Workspace.setup = timed_setup
    steps = timers.until_step = initial("drqv2", args) + args.window
    overrides = ["task@_global_=cartpole_swingup", f"device={args.device}", "use_tb=false",
                 "save_video=false", f"batch_size={batch('drqv2', args)}",
                 f"num_seed_frames={initial('drqv2', args) * 2}", f"num_train_frames={(steps + 1) * 2}",
                 f"eval_every_frames={steps * 2}", f"num_eval_episodes={args.eval_episodes}",
                 "seed=1"]  # fmt: skip
    with hydra.initialize_config_dir(str(Path(args.drqv2, "cfgs").resolve()), version_base=None):
        cfg = hydra.compose("config", overrides=overrides)
    drqv2_train.Workspace(cfg).train()
    return timers.result(REPEAT["drqv2"])


def child(args: argparse.Namespace) -> None:
    import torch

    agent, code, overlap = RUNS[args.child]
    if args.threads:
        torch.set_num_threads(args.threads)
    elif overlap:  # as `rlrep train --overlap` does: one core for the env worker
        torch.set_num_threads(max(1, torch.get_num_threads() - 1))
    with tempfile.TemporaryDirectory() as work:
        if code == "rlrep":
            result = run_rlrep(agent, overlap, args, Path(work))
        elif agent == "curl-sac":
            result = run_official_curl(args, Path(work))
        else:
            result = run_official_drqv2(args, Path(work))
    print("RESULT " + json.dumps(result), flush=True)


# --- the driver ----------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--curl", type=Path, help="checkout of MishaLaskin/curl")
    p.add_argument("--drqv2", type=Path, help="checkout of facebookresearch/drqv2")
    p.add_argument("--dmc2gym", type=Path, help="checkout of denisyarats/dmc2gym")
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--window", type=int, default=100, help="agent steps with updates, timed")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="one batch size for every run (default: the papers', CURL 512, DrQ-v2 256)",
    )
    p.add_argument(
        "--initial-steps",
        type=int,
        default=None,
        help="agent steps of the random phase (default: the papers', 1000 and 2000)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (all runs)")
    p.add_argument("--eval-episodes", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", type=Path, default=None, help="folder for end_to_end.csv")
    p.add_argument("--child", choices=list(RUNS), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    for name in args.runs:
        code, agent = RUNS[name][1], RUNS[name][0]
        needs = {"curl-sac": ("curl", "dmc2gym"), "drqv2": ("drqv2",)}[agent]
        if code == "official" and any(getattr(args, n) is None for n in needs):
            p.error(f"{name} needs --{' and --'.join(needs)} (checkouts of the official code)")
    rows = []
    for round_ in range(args.rounds):
        for name in args.runs:
            cmd = [sys.executable, __file__, "--child", name, "--window", str(args.window),
                   "--eval-episodes", str(args.eval_episodes), "--device", args.device]  # fmt: skip
            for flag in ("batch_size", "initial_steps", "threads"):
                if getattr(args, flag) is not None:
                    cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            for flag in ("curl", "drqv2", "dmc2gym"):
                if getattr(args, flag) is not None:
                    cmd += [f"--{flag}", str(Path(getattr(args, flag)).resolve())]
            started = time.time()
            done = subprocess.run(cmd, capture_output=True, text=True)
            lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                sys.exit(f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            row = {"round": round_, "run": name, **json.loads(lines[-1][7:]),
                   "process_s": round(time.time() - started, 1)}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    report(rows, args)


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    import statistics

    fps = {n: statistics.median(r["fps"] for r in rows if r["run"] == n) for n in args.runs}
    size = "the papers'" if args.batch_size is None else args.batch_size
    print(f"\nmedian frames/s over {args.rounds} rounds (batch {size}, window {args.window} "
          f"agent steps, {args.device}):")  # fmt: skip
    for name, value in fps.items():
        agent = RUNS[name][0]
        base = fps.get(f"{agent}/official")
        ratio = f"  {value / base:.2f}x the official code" if base else ""
        # Wall time of the window over its slower part: the env, or the learner's work (update,
        # sampling, replay writes). 1.0 is perfect overlap; sequential runs pay the sum.
        slower = statistics.median(
            r["seconds"] / max(r["env_s"], r["update_s"] + r["replay_sample_s"] + r["replay_add_s"])
            for r in rows
            if r["run"] == name
        )
        print(f"  {name:26s} {value:7.2f}  wall/slower part {slower:.2f}{ratio}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "end_to_end.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
