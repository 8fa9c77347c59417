"""The ``rlrep`` command. Subcommands import what they need lazily (the core never imports
``agents`` or ``envs`` at module level)."""

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
    _set_threads(args.threads)
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


def main(argv: list[str] | None = None) -> int:
    from rlrep.methods import METHODS  # torch only; names for --help

    parser = argparse.ArgumentParser(
        prog="rlrep", description="Self-supervised representations for pixel-based RL."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an agent on a DMC task from pixels")
    t.add_argument(
        "--env", required=True, help="DMC task, e.g. cartpole-swingup (or point_mass_pixels)"
    )
    t.add_argument(
        "--agent",
        default="curl-sac",
        help="curl-sac | drq | drqv2 | atc-sac | spr-sac | ppo-aux (rlrep.agents.AGENTS)",
    )
    t.add_argument(
        "--steps", default="100k", help="environment frames, action repeat included (100k, 500k)"
    )
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--out", required=True, help="run folder (checkpoints, eval.csv, logs)")
    t.add_argument(
        "--eval-every", default="10k", help="frames between evaluations (and checkpoints)"
    )
    t.add_argument("--eval-episodes", type=int, default=10)
    t.add_argument(
        "--eval-distraction",
        nargs="+",
        default=[],
        metavar="NAME",
        help="also evaluate on these distracted variants of the task (rlrep.envs.DISTRACTIONS, "
        "e.g. color_hard video_easy): eval.csv columns mean_return_NAME, std_return_NAME",
    )
    t.add_argument(
        "--resume", action="store_true", help="continue the run in --out (it must have one)"
    )
    t.add_argument(
        "--resume-if-exists",
        action="store_true",
        help="continue the run in --out if it has a checkpoint, else start it there",
    )
    t.add_argument(
        "--allow-config-change",
        action="store_true",
        help="on resume, apply --set / evaluation values that differ from the stored run "
        "(recorded in config.json with the step they took effect)",
    )
    t.add_argument("--device", default="auto")
    t.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's); results on the CPU depend on it",
    )
    t.add_argument("--no-progress", action="store_true", help="print evaluations instead of a bar")
    t.add_argument(
        "--set", nargs="*", metavar="KEY=VALUE", help="agent hyperparameters, e.g. batch_size=128"
    )
    t.set_defaults(func=_train)

    e = sub.add_parser(
        "export",
        help="write SB3's model.zip of a train run from its latest checkpoint (for "
        "CURLSAC.load / PPO.load and sharing; a run keeps one copy of its state, the checkpoint)",
    )
    e.add_argument("run", help="the --out folder of an rlrep train run")
    e.add_argument("--to", default=None, help="where to write it (default: RUN/model.zip)")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=_export)

    p = sub.add_parser("pretrain", help="self-supervised pretraining of an encoder on images")
    p.add_argument(
        "--method",
        default="simclr",
        help=" | ".join(METHODS) + " (the temporal ones need a sequence dataset: dmc:TASK, npz)",
    )
    p.add_argument(
        "--dataset",
        default="digits",
        help="digits | cifar10 | cifar100 | stl10 | folder:PATH | npz:PATH | dmc:TASK",
    )
    p.add_argument("--encoder", default="curl", help="curl | nature | impala | resnet18")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out", required=True, help="folder for checkpoint.pt and config.json")
    p.add_argument(
        "--data-dir", default="data", help="where dataset files are (nothing is downloaded)"
    )
    p.add_argument(
        "--augmentation",
        default=None,
        help="augment spec (default: simclr for images, crop for dmc)",
    )
    p.add_argument(
        "--multi-crop",
        default=None,
        metavar="GxS,LxT",
        help="multi-crop views, e.g. 2x32,4x16: 2 global crops of side 32 and 4 local ones of "
        "side 16 (Caron et al. 2020), for swav, simclr, byol, simsiam",
    )
    p.add_argument(
        "--image-size", type=int, default=64, help="side for folder: images and dmc: renders"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument(
        "--resume-if-exists",
        action="store_true",
        help="continue the run in --out if it has a checkpoint, else start a new one",
    )
    p.add_argument(
        "--allow-config-change",
        action="store_true",
        help="on --resume, apply a different --lr/--batch-size/process count (recorded in "
        "config.json); method, dataset, encoder, augmentation, image size and seed never change",
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--amp",
        choices=["auto", "on", "off"],
        default="auto",
        help="bfloat16 autocast (auto: on CUDA)",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=1,
        metavar="N",
        help="probe the encoder every N epochs and after the last (0: after the last only)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's); results on the CPU depend on it",
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--set",
        nargs="*",
        metavar="KEY=VALUE",
        help="options of the method (its constructor's, e.g. delta_t=3 for atc, queue_size=1024 "
        "for moco); recorded in config.json",
    )
    p.set_defaults(func=_pretrain)

    q = sub.add_parser("probe", help="kNN / linear / state-R² probes of a pretrained encoder")
    q.add_argument("checkpoint")
    q.add_argument("--dataset", default=None, help="default: the checkpoint's")
    q.add_argument("--data-dir", default="data")
    q.add_argument("--no-linear", action="store_true", help="skip the linear probe")
    q.add_argument(
        "--random-init",
        action="store_true",
        help="probe the run's initial (untrained) weights: the baseline pretraining is judged by",
    )
    q.add_argument("--device", default="auto")
    q.add_argument(
        "--invariance",
        nargs="+",
        default=[],
        metavar="NAME",
        help="instead of the dataset probes, compare the encoder's features of clean and "
        "distracted renders of the same states of --task, one row per distraction "
        "(rlrep.envs.DISTRACTIONS, e.g. color_hard video_easy): state R² of a probe fitted on "
        "clean features, scored on clean and on distracted ones; alignment of the pairs, of "
        "shuffled pairs, and invariance = 1 - alignment / alignment_shuffled",
    )
    q.add_argument("--task", default="cartpole-swingup", help="DMC task rendered for --invariance")
    q.add_argument("--steps", type=int, default=1000, help="pairs of renders (random-policy steps)")
    q.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the --invariance envs, random actions and probe split (seed S replays "
        "the episodes of dmc: frames rendered with seed S; another seed gives unseen ones)",
    )
    q.set_defaults(func=_probe)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
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
