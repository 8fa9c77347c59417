"""The loop of one ``rlrep train`` session around SB3's ``learn()``: evaluations and checkpoints
when due, the progress bar (frames, the latest evaluation's return), and the stop on non-finite
losses or parameters (:func:`rlrep.agents.train.train` sets them up)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from rlrep.agents.evaluation import Evaluation
from rlrep.agents.run_folder import RunFolder
from rlrep.agents.run_state import save_run_state

__all__ = ["Progress", "Run", "non_finite"]


def non_finite(model: BaseAlgorithm, parameters: bool = True) -> str | None:
    """The first logged training loss or metric (``train/``; ``aux/``: the auxiliary objective's,
    of the plug-in and the agents alike) or policy parameter that is not finite, or None.

    :param model: the agent, between two steps.
    :param parameters: also read every parameter (tens of ms for the agents' ~10M values on a
        CPU: done before each checkpoint, not after every step, where the losses suffice).
    """
    for key, value in model.logger.name_to_value.items():
        logged = key.startswith(("train/", "aux/")) and isinstance(value, float)
        if logged and not math.isfinite(value):
            return f"{key} = {value}"
    if not parameters:
        return None
    import torch

    params = dict(model.policy.named_parameters())
    finite = torch.stack([torch.isfinite(p).all() for p in params.values()])
    if not bool(finite.all()):
        bad = next(name for name, ok in zip(params, finite.tolist(), strict=True) if not ok)
        return f"parameter {bad} holds non-finite values"
    return None


class Progress(BaseCallback):
    """Between agent steps: evaluate and checkpoint when due, stop on non-finite numbers."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run

    def _on_training_start(self) -> None:
        from tqdm import tqdm

        self.rollout_end: float | None = None
        self.overlapped_update_at_start = getattr(self.model, "update_seconds", 0.0)

        r = self.run
        self.bar = tqdm(
            total=r.frames,
            initial=r.frames_done(self.num_timesteps),
            unit="frame",
            disable=not r.progress,
        )
        if r.history:  # a resumed run: its latest evaluation until the next
            self.show(r.history[-1])

    def show(self, row: dict[str, Any]) -> None:
        """The latest evaluation's return in the bar."""
        self.bar.set_postfix(
            {"eval_return": f"{row['mean_return']:.1f}", "at": f"{row['frames']} frames"}
        )

    def _on_rollout_start(self) -> None:
        # SB3 calls this before the next action is drawn: the previous step's transition is
        # stored and its update done, so the checkpoint is the state between two steps.
        r = self.run
        if getattr(self.model, "overlap", False):  # the updates ran inside the steps
            spent = self.model.update_seconds - self.overlapped_update_at_start
            r.seconds["updates"] = spent
        elif self.rollout_end is not None:  # SB3's loop: train() runs between two rollouts
            r.seconds["updates"] += time.perf_counter() - self.rollout_end
        # The logged losses after every step; every parameter (tens of ms on a CPU) before each
        # checkpoint, so nothing non-finite is ever saved.
        r.check_finite(self.model, parameters=False)
        frames = r.frames_done(self.num_timesteps)
        self.bar.update(frames - self.bar.n)
        if frames >= r.next_eval:
            self.show(r.evaluate_and_checkpoint(self.model))

    def _on_step(self) -> bool:
        self.run.seconds["env"] += sum(i.get("env_seconds", 0.0) for i in self.locals["infos"])
        return True

    def _on_rollout_end(self) -> None:
        self.rollout_end = time.perf_counter()

    def _on_training_end(self) -> None:
        self.bar.update(self.run.frames_done(self.num_timesteps) - self.bar.n)  # the last step
        self.bar.close()


class Run:
    """Evaluation, history and checkpoints of one run."""

    def __init__(self, folder: RunFolder, frames: int, repeat: int, eval_every: int,
                 evaluation: Evaluation, progress: bool):  # fmt: skip
        self.folder, self.frames, self.repeat = folder, frames, repeat
        self.eval_every, self.evaluation, self.progress = eval_every, evaluation, progress
        self.history: list[dict[str, Any]] = []
        self.next_eval = eval_every
        self.wall_time = 0.0
        self.started = time.time()
        self.last_checkpoint: tuple[Path, int] | None = None
        #: Seconds of this session spent stepping the training env (in the worker process when
        #: overlapped, beside the updates), in updates, evaluations and checkpoints.
        self.seconds = dict.fromkeys(("env", "updates", "eval", "checkpoint"), 0.0)

    def time_split(self, overlapped: bool) -> str:
        """Where this session's wall time went, one line.

        :param overlapped: the env stepped in a worker beside the updates (its seconds overlap
            theirs); otherwise the parts add up, the rest being acting, replay writes and logs.
        """
        wall, s = time.time() - self.started, self.seconds
        rest = wall - s["updates"] - s["eval"] - s["checkpoint"] - (0 if overlapped else s["env"])
        where = " (in a worker process, beside the updates)" if overlapped else ""
        return (
            f"wall {wall:.0f} s: env step + render {s['env']:.0f} s{where}, updates "
            f"{s['updates']:.0f} s, evaluation {s['eval']:.0f} s, checkpoints "
            f"{s['checkpoint']:.0f} s, the rest {rest:.0f} s"
        )

    def frames_done(self, agent_steps: int) -> int:
        return agent_steps * self.repeat

    def restore(self, state: dict[str, Any], checkpoint: Path) -> None:
        self.history, self.wall_time = state["history"], state["wall_time"]
        self.next_eval = (state["frames"] // self.eval_every + 1) * self.eval_every
        self.last_checkpoint = (checkpoint, state["frames"])

    def check_finite(self, model: BaseAlgorithm, parameters: bool = True) -> None:
        problem = non_finite(model, parameters)
        if problem is not None:
            raise self.diverged(model, problem)

    def diverged(self, model: BaseAlgorithm, problem: str) -> FloatingPointError:
        """The error that stops a diverged run: the step, the problem, the likely cause and
        the last good checkpoint."""
        last = "none yet"
        if self.last_checkpoint is not None:
            last = f"{self.last_checkpoint[0]} ({self.last_checkpoint[1]} frames)"
        return FloatingPointError(
            f"training diverged at agent step {model.num_timesteps} "
            f"({self.frames_done(model.num_timesteps)} frames): {problem}. Nothing was saved "
            f"after it; the last good checkpoint is {last}. Lower the learning rate or check "
            "the inputs, then start a new run or --resume from that checkpoint"
        )

    def evaluate_and_checkpoint(self, model: BaseAlgorithm) -> dict[str, Any]:
        self.check_finite(model)
        frames = self.frames_done(model.num_timesteps)
        start = time.perf_counter()
        returns = self.evaluation.evaluate(model)
        self.seconds["eval"] += time.perf_counter() - start
        row = {"frames": frames, "agent_steps": model.num_timesteps, **returns,
               "wall_time": round(self.wall_time + time.time() - self.started, 1)}  # fmt: skip
        self.history.append(row)
        model.logger.record("eval/mean_return", row["mean_return"])
        for v in self.evaluation.variants:
            model.logger.record(f"eval/mean_return_{v}", row[f"mean_return_{v}"])
        model.logger.record("eval/frames", frames)
        for part, seconds in self.seconds.items():  # this session's, so far
            model.logger.record(f"time/{part}_s", round(seconds, 2))
        model.logger.dump(model.num_timesteps)
        self.next_eval = (frames // self.eval_every + 1) * self.eval_every
        state = {"frames": frames, "history": self.history, "wall_time": row["wall_time"],
                 "logs": self.folder.log_lengths()}  # fmt: skip
        start = time.perf_counter()
        path = self.folder.write_checkpoint(
            f"{model.num_timesteps:09d}", lambda folder: save_run_state(model, folder), state
        )
        self.seconds["checkpoint"] += time.perf_counter() - start
        self.last_checkpoint = (path, frames)
        self.folder.write_eval_csv(self.history)
        if not self.progress:
            variants = "".join(
                f"  {v} {row[f'mean_return_{v}']:.1f}" for v in self.evaluation.variants
            )
            print(
                f"frames {frames:>8d}  return {row['mean_return']:8.1f} ± {row['std_return']:.1f}"
                + variants,
                flush=True,
            )
        return row
