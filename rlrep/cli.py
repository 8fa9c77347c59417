"""The ``rlrep`` command (arguments: :mod:`rlrep.cli_parser`). Subcommands import what they need
lazily (the core never imports ``agents`` or ``envs`` at module level)."""

from __future__ import annotations

import argparse
import sys


def _train(args: argparse.Namespace) -> int:
    from rlrep.agents.train import AGENTS, train

    if args.agent not in AGENTS:
        print(
            f"rlrep train: unknown agent {args.agent!r}; valid: {', '.join(AGENTS)}",
            file=sys.stderr,
        )
        return 2
    threads = args.threads
    if args.overlap and threads is None:  # one core for the env worker, the rest to learn
        import torch

        threads = max(1, torch.get_num_threads() - 1)
    _set_threads(threads)
    overrides = _pairs(args.set, "batch_size=128")
    train(
        args.env,
        agent=args.agent,
        frames=args.steps,
        seed=args.seed,
        out=args.out,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        eval_distractions=args.eval_distraction,
        resume=args.resume,
        resume_if_exists=args.resume_if_exists,
        allow_config_change=args.allow_config_change,
        device=args.device,
        progress=not args.no_progress,
        overlap=args.overlap,
        **overrides,
    )
    return 0


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def _pretrain(args: argparse.Namespace) -> int:
    from rlrep.pretrain import pretrain

    _set_threads(args.threads)
    pretrain(
        method=args.method,
        dataset=args.dataset,
        encoder=args.encoder,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        out=args.out,
        data_dir=args.data_dir,
        augmentation=args.augmentation,
        multi_crop=args.multi_crop,
        image_size=args.image_size,
        seed=args.seed,
        resume=args.resume,
        device=args.device,
        amp=None if args.amp == "auto" else args.amp == "on",
        progress=not args.no_progress,
        resume_if_exists=args.resume_if_exists,
        allow_config_change=args.allow_config_change,
        eval_every=args.eval_every,
        crop_size=args.crop_size,
        method_kwargs=_pairs(args.set, "delta_t=3"),
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from rlrep.agents.export import export_sb3

    print(export_sb3(args.run, args.to, device=args.device))
    return 0


def _probe(args: argparse.Namespace) -> int:
    if args.invariance:
        return _probe_invariance(args)
    import json

    from rlrep.probes import probe

    print(
        json.dumps(
            probe(
                args.checkpoint,
                args.dataset,
                args.data_dir,
                linear=not args.no_linear,
                device=args.device,
                random_init=args.random_init,
            ),
            indent=1,
        )
    )
    return 0


def _probe_invariance(args: argparse.Namespace) -> int:
    from rlrep import envs
    from rlrep.probes import invariance, load_probe_encoder, resolve_device

    unknown = [name for name in args.invariance if name not in envs.DISTRACTIONS]
    if unknown:
        raise ValueError(
            f"--invariance: unknown distraction {', '.join(unknown)}; valid: "
            f"{', '.join(envs.DISTRACTIONS)}"
        )
    device = resolve_device(args.device)
    config, augment, encoder = load_probe_encoder(
        args.checkpoint, random_init=args.random_init, device=device
    )
    channels, size, width = config["image_shape"]
    if channels % 3 or size != width:
        raise ValueError(
            f"{args.checkpoint} was trained on images of shape {(channels, size, width)}; "
            "--invariance renders square RGB frame stacks (3·k, H, H) of a DMC task"
        )
    weights = "initial (untrained) weights" if args.random_init else "trained weights"
    print(
        f"invariance of {args.checkpoint} ({weights}) on {args.task}: {args.steps} pairs of "
        f"{size}px renders, {channels // 3} stacked frames, seed {args.seed}"
    )
    columns = ["state_r2", "state_r2_distracted", "alignment", "alignment_shuffled", "invariance"]
    print("| distraction | " + " | ".join(columns) + " |")
    print("| --- | " + " | ".join("---" for _ in columns) + " |")
    for name in args.invariance:
        pairs = envs.paired_observations(
            args.task,
            name,
            steps=args.steps,
            seed=args.seed,
            image_size=size,
            frame_stack=channels // 3,
        )
        result = invariance(
            encoder,
            augment.deterministic,
            pairs["clean"],
            pairs["distracted"],
            pairs["states"],
            seed=args.seed,
            device=device,
        )
        print(f"| {name} | " + " | ".join(f"{result[c]:.4f}" for c in columns) + " |", flush=True)
    return 0


def _pairs(items: list[str] | None, example: str) -> dict:
    """``--set KEY=VALUE ...`` as a dict of :func:`_literal` values."""
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE pairs, e.g. {example}; got {item!r}")
        pairs[key] = _literal(value)
    return pairs


def _literal(text: str):
    """``"128"`` → 128, ``"1e-3"`` → 0.001, ``"true"`` → True, anything else stays a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text


def _plot(args: argparse.Namespace) -> int:
    from rlrep.plotting import plot_runs

    try:
        result = plot_runs(args.runs, args.out, seed=args.seed, resamples=args.resamples)
    except ImportError as err:  # matplotlib is an optional dependency
        print(f"rlrep plot: {err}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {note}")
    for c in result.curves:
        last = f"{c.mean[-1]:.4g} [{c.ci_low[-1]:.4g}, {c.ci_high[-1]:.4g}]"
        random = "" if c.random_return is None else f"; random policy {c.random_return:.4g}"
        points = f"{len(c.x)} point{'s' if len(c.x) > 1 else ''}"
        print(f"{c.panel} | {c.label}: {points} to {c.xlabel} {c.x[-1]:g}, "
              f"last {c.ylabel} {last} (mean [95% CI]){random}")  # fmt: skip
    print(f"wrote {result.out}")
    return 0


COMMANDS = {
    "train": _train,
    "export": _export,
    "pretrain": _pretrain,
    "probe": _probe,
    "plot": _plot,
}


def main(argv: list[str] | None = None) -> int:
    """Run ``rlrep`` with ``argv`` (default: the process's); the exit status: 0, 1 (a diverged
    run, a full disk), 2 (bad input, with a one-line message).

    :param argv: the arguments after ``rlrep``.
    """
    from rlrep.cli_parser import build_parser

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except FloatingPointError as err:  # training diverged; the last good checkpoint is named
        print(f"rlrep {args.command}: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileExistsError) as err:  # DatasetError, RunFolderError are ValueErrors
        print(f"rlrep {args.command}: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        from rlrep.runs import WRITE_FAULTS, write_fault_message

        if err.errno not in WRITE_FAULTS or args.command not in ("train", "pretrain"):
            raise
        print(f"rlrep {args.command}: {write_fault_message(args.command, args.out, err)}",
              file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
