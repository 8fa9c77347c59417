"""Per-step time of each visual distraction of ``make_dmc`` against the plain env, in one run.

Every env does the same agent steps (``action_repeat`` physics steps and one render each, resets
when an episode ends, so a mode's per-episode work is counted too). Rounds interleave the envs,
in a rotating order, so machine noise hits all of them; the table shows the median per mode and
its ratio to the plain env's (the target is ≤ 1.1×). The video modes render as the plain env
does, plus a segmentation render per frame (which pixels are background).

Usage: ``MUJOCO_GL=egl python experiments/bench_distractions.py [--task cartpole-swingup]
[--image-size 84] [--steps 200] [--rounds 5]``
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
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--steps", type=int, default=200, help="agent steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    modes = (None, *envs.DISTRACTIONS)
    made = {
        m: envs.make_dmc(args.task, image_size=args.image_size, seed=0, distraction=m)
        for m in modes
    }
    shape = made[None].action_space.shape
    acts = np.random.default_rng(0).uniform(-1, 1, (args.steps, *shape)).astype(np.float32)

    def run(env: envs.DMCEnv) -> float:
        env.reset()
        start = time.perf_counter()
        for a in acts:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        return (time.perf_counter() - start) / args.steps

    for env in made.values():  # warm-up: GL contexts, caches
        run(env)
    times: dict[str | None, list[float]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for m in modes[r % len(modes) :] + modes[: r % len(modes)]:
            times[m].append(run(made[m]))

    base = statistics.median(times[None])
    print(
        f"{args.task}, {args.image_size}×{args.image_size} px, action repeat "
        f"{made[None].action_repeat}, {args.steps} steps × {args.rounds} rounds, "
        f"backend {envs.ensure_rendering_backend()}:"
    )
    print(f"  {'mode':<15} {'ms/step':>8} {'ratio':>7}   (median; min–max ms/step)")
    for m in modes:
        t = statistics.median(times[m])
        spread = f"{1e3 * min(times[m]):.1f}–{1e3 * max(times[m]):.1f}"
        print(f"  {m or 'plain':<15} {1e3 * t:8.2f} {t / base:6.3f}×   ({spread})")
    for env in made.values():
        env.close()


if __name__ == "__main__":
    main()
