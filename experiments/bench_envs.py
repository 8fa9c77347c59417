"""Agent steps per second of ``rlrep.envs.make_dmc`` vs a bare dm_control loop, in one run.

Both do the same work per agent step: ``action_repeat`` physics control steps and one 100×100
render (the limit for any pixel wrapper); ``make_dmc`` adds the frame stack, the action
mapping and the info dict. Rounds alternate between the two so machine noise hits both.

Usage: ``python experiments/bench_envs.py [--task cartpole-swingup] [--steps 200] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rlrep import envs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="cartpole-swingup")
    parser.add_argument("--action-repeat", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200, help="agent steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    env = envs.make_dmc(
        args.task, image_size=args.image_size, action_repeat=args.action_repeat, seed=0
    )
    from dm_control import suite  # after make_dmc chose the rendering backend

    domain, task = args.task.split("-", 1)
    bare = suite.load(domain, task, task_kwargs={"random": 0})
    size, camera = args.image_size, env.camera_id
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (args.steps, *env.action_space.shape)).astype(np.float32)

    def run_wrapper() -> float:
        env.reset()
        start = time.perf_counter()
        for a in acts:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        return args.steps / (time.perf_counter() - start)

    def run_bare() -> float:
        bare.reset()
        start = time.perf_counter()
        for a in acts:
            for _ in range(args.action_repeat):
                ts = bare.step(a)
            bare.physics.render(size, size, camera_id=camera)
            if ts.last():
                bare.reset()
        return args.steps / (time.perf_counter() - start)

    run_wrapper(), run_bare()  # warm-up: contexts, caches
    wrapper, base = [], []
    for _ in range(args.rounds):
        wrapper.append(run_wrapper())
        base.append(run_bare())
    w, b = statistics.median(wrapper), statistics.median(base)
    print(
        f"{args.task}, action repeat {args.action_repeat}, {size}×{size} pixels, backend {envs.ensure_rendering_backend()}:"
    )
    print(f"  bare dm_control loop   {b:7.1f} agent steps/s")
    print(f"  make_dmc               {w:7.1f} agent steps/s")
    print(f"  ratio make_dmc / bare = {w / b:.3f}×  (target ≥ 0.95×)")
    env.close()


if __name__ == "__main__":
    main()
