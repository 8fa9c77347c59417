"""The ``rlrep`` command. Subcommands import what they need lazily (the core never imports
``agents`` or ``envs`` at module level)."""

from __future__ import annotations

import argparse
import sys


def _train(args: argparse.Namespace) -> int:
    from agents.train import AGENTS, train

    if args.agent not in AGENTS:
        print(
            f"rlrep train: unknown agent {args.agent!r}; valid: {', '.join(AGENTS)}",
            file=sys.stderr,
        )
        return 2
    overrides = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        overrides[key] = _literal(value)
    train(
        args.env,
        agent=args.agent,
        frames=args.steps,
        seed=args.seed,
        out=args.out,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        resume=args.resume,
        device=args.device,
        progress=not args.no_progress,
        **overrides,
    )
    return 0


def _literal(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rlrep", description="Self-supervised representations for pixel-based RL."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an agent on a DMC task from pixels")
    t.add_argument(
        "--env", required=True, help="DMC task, e.g. cartpole-swingup (or point_mass_pixels)"
    )
    t.add_argument("--agent", default="curl-sac", help="curl-sac | ppo-aux")
    t.add_argument(
        "--steps", default="100k", help="environment frames, action repeat included (100k, 500k)"
    )
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--out", required=True, help="run folder (checkpoints, eval.csv, logs)")
    t.add_argument(
        "--eval-every", default="10k", help="frames between evaluations (and checkpoints)"
    )
    t.add_argument("--eval-episodes", type=int, default=10)
    t.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    t.add_argument("--device", default="auto")
    t.add_argument("--no-progress", action="store_true", help="print evaluations instead of a bar")
    t.add_argument(
        "--set", nargs="*", metavar="KEY=VALUE", help="agent hyperparameters, e.g. batch_size=128"
    )
    t.set_defaults(func=_train)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileExistsError) as err:
        print(f"rlrep {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
