"""The ``rlrep`` command's arguments: every flag has a help text, and ``--help`` shows its
default (:class:`HelpFormatter`). :mod:`rlrep.cli` runs the subcommands."""

from __future__ import annotations

import argparse

__all__ = ["HelpFormatter", "build_parser"]

_THREADS = "torch CPU threads (default: torch's); results on the CPU depend on it"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's ``(default: ...)`` after each flag's help, except where the help already says
    it, and for flags whose default is "off" (``None``, ``False``, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default is None or default is False or default == []:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``rlrep train | export | pretrain | probe | plot``."""
    from rlrep.methods import METHODS  # torch only; names for --help

    parser = argparse.ArgumentParser(
        prog="rlrep",
        description="Self-supervised representations for pixel-based RL.",
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        # The list of commands %-formats its help texts; the description is printed as is.
        return sub.add_parser(
            name,
            help=text.replace("%", "%%"),
            description=text,
            formatter_class=HelpFormatter,
        )

    _train_arguments(command("train", "train an agent on a DMC task from pixels"))
    e = command(
        "export",
        "write SB3's model.zip of a train run from its latest checkpoint (for CURLSAC.load / "
        "PPO.load and sharing; a run keeps one copy of its state, the checkpoint)",
    )
    e.add_argument("run", help="the --out folder of an rlrep train run")
    e.add_argument("--to", default=None, help="where to write it (default: RUN/model.zip)")
    e.add_argument("--device", default="auto", help="where the model is loaded: auto, cpu, cuda")
    _pretrain_arguments(
        command("pretrain", "self-supervised pretraining of an encoder on images"), METHODS
    )
    _probe_arguments(command("probe", "kNN / linear / state-R² probes of a pretrained encoder"))
    g = command(
        "plot",
        "learning curves of rlrep train runs (mean over seeds, 95% bootstrap CI, the random "
        "policy dashed) and pretraining curves of rlrep pretrain runs (loss, probes per epoch)",
    )
    g.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_OR_FOLDER",
        help="--out folders of rlrep train / pretrain runs, or folders searched for them",
    )
    g.add_argument("--out", default="curves.png", help="the figure: .png, .svg or .pdf")
    g.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling")
    g.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    return parser


def _train_arguments(t: argparse.ArgumentParser) -> None:
    t.add_argument(
        "--env", required=True, help="task: a DMC task, e.g. cartpole-swingup, or point_mass_pixels"
    )
    t.add_argument(
        "--agent",
        default="curl-sac",
        help="curl-sac | drq | drqv2 | atc-sac | spr-sac | ppo-aux (rlrep.agents.AGENTS)",
    )
    t.add_argument(
        "--steps", default="100k", help="environment frames, action repeat included (100k, 500k)"
    )
    t.add_argument("--seed", type=int, default=1, help="seed of the run (weights, data, envs)")
    t.add_argument("--out", required=True, help="run folder (checkpoints, eval.csv, logs)")
    t.add_argument(
        "--eval-every", default="10k", help="frames between evaluations (and checkpoints)"
    )
    t.add_argument(
        "--eval-episodes",
        type=int,
        default=10,
        help="episodes per evaluation (the same seeded episodes each time)",
    )
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
    t.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    t.add_argument("--threads", type=int, default=None, help=_THREADS)
    t.add_argument(
        "--overlap",
        action="store_true",
        help="step and render the env in a worker process while the learner updates (the "
        "official CURL/DrQ-v2 order: act, update, store; same updates per step, deterministic "
        "for a seed); off-policy agents. Without --threads the learner gets one thread less than "
        "torch's default, leaving a core to the worker",
    )
    t.add_argument(
        "--no-progress",
        action="store_true",
        help="print each evaluation instead of a progress bar (frames, latest return)",
    )
    t.add_argument(
        "--set",
        nargs="*",
        metavar="KEY=VALUE",
        help="agent hyperparameters (rlrep.agents.presets), e.g. batch_size=128",
    )


def _pretrain_arguments(p: argparse.ArgumentParser, methods: dict) -> None:
    p.add_argument(
        "--method",
        default="simclr",
        help=" | ".join(methods) + " (the temporal ones need a sequence dataset: dmc:TASK, npz)",
    )
    p.add_argument(
        "--dataset",
        default="digits",
        help="digits | cifar10 | cifar100 | stl10 | folder:PATH | npz:PATH | dmc:TASK",
    )
    p.add_argument(
        "--encoder", default="curl", help="curl | nature | impala | resnet18 (rlrep.encoders)"
    )
    p.add_argument("--epochs", type=int, default=50, help="the epoch the run ends at")
    p.add_argument(
        "--batch-size", type=int, default=256, help="global batch (clamped to the training set)"
    )
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument(
        "--out", required=True, help="run folder: checkpoint.pt, config.json, logs/ (progress.csv, "
        "tensorboard events)",
    )  # fmt: skip
    p.add_argument(
        "--data-dir", default="data", help="where dataset files are (nothing is downloaded)"
    )
    p.add_argument(
        "--augmentation",
        default=None,
        help="augment spec, names joined by '+' (rlrep.augment.AUGMENTATIONS; default: simclr for "
        "images, shift for dmc:)",
    )
    p.add_argument(
        "--crop-size",
        type=int,
        default=None,
        metavar="N",
        help="side of the augmentation's crop: crop (CURL's random crop, at most the images' "
        "side, e.g. 20 for 24-px images), simclr / resized_crop (the side views are resized to), "
        "translate (the canvas, at least the images' side); default: the recipe's own (simclr: "
        "the images' side)",
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
    p.add_argument("--seed", type=int, default=0, help="seed of weights, data order, augmentations")
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
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
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
    p.add_argument("--threads", type=int, default=None, help=_THREADS)
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (the per-epoch lines stay)"
    )
    p.add_argument(
        "--set",
        nargs="*",
        metavar="KEY=VALUE",
        help="options of the method (its constructor's, e.g. delta_t=3 for atc, queue_size=1024 "
        "for moco); recorded in config.json",
    )


def _probe_arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("checkpoint", help="a checkpoint.pt written by rlrep pretrain")
    q.add_argument(
        "--dataset", default=None, help="dataset to probe on (default: the checkpoint's)"
    )
    q.add_argument("--data-dir", default="data", help="where dataset files are")
    q.add_argument("--no-linear", action="store_true", help="skip the linear probe")
    q.add_argument(
        "--random-init",
        action="store_true",
        help="probe the run's initial (untrained) weights: the baseline pretraining is judged by",
    )
    q.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
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
