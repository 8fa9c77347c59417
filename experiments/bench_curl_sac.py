"""CURL-SAC update time vs plain SB3 SAC update time, same batch, in one run.

Both learn from the same kind of replay data (random 9×100×100 stacks, 125-step episodes):
``rlrep.agents.CURLSAC`` with the paper's networks (crops 100 → 84, CURL loss, CURL's schedule) and
SB3's ``SAC("CnnPolicy")`` (NatureCNN on the 100×100 frames, no augmentation, no auxiliary
loss). ``model.train(gradient_steps, batch_size)`` is timed in alternating rounds; the script
prints the medians and their ratio.

Usage: ``python experiments/bench_curl_sac.py [--batch-size 128] [--device auto]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stable_baselines3 import SAC

from rlrep.agents import CURLSAC, curl_sac_config

sys.path.insert(0, str(Path(__file__).parent))
from bench_aux_update import FramesEnv, median_update_times, resolve_device  # same data and timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--gradient-steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device, name = resolve_device(args.device)

    cfg = curl_sac_config(
        "walker-walk", batch_size=args.batch_size, initial_steps=10**9, buffer_size=2000
    )
    curl = CURLSAC(FramesEnv(), cfg, device=device, seed=0)
    plain = SAC(
        "CnnPolicy",
        FramesEnv(),
        buffer_size=2000,
        learning_starts=10**9,
        batch_size=args.batch_size,
        device=device,
        seed=0,
    )
    for model in (curl, plain):
        model.learn(1000)  # random actions fill the buffers
    models = {"CURL-SAC": curl, "SB3 SAC": plain}
    t = median_update_times(models, args.rounds, args.gradient_steps, args.batch_size, device)
    c, p = t["CURL-SAC"], t["SB3 SAC"]
    print(f"update time, batch {args.batch_size}, on {name}:")
    print(f"  SB3 SAC (CnnPolicy, NatureCNN on 100×100)  {p * 1e3:8.1f} ms")
    print(f"  CURL-SAC (crops 84, CURL loss + schedule)   {c * 1e3:8.1f} ms")
    print(f"  ratio CURL-SAC / SB3 SAC = {c / p:.2f}×")


if __name__ == "__main__":
    main()
