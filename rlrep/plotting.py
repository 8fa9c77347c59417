"""``rlrep plot``: learning curves of ``rlrep train`` runs and pretraining curves of ``rlrep
pretrain`` runs, from the files their run folders hold.

- A train run (marker kind ``"train"``) gives its ``eval.csv`` (``frames``, ``mean_return``) and,
  once a session ended, ``random_policy.json`` (a uniform random policy's return on the same
  evaluation episodes). Runs whose ``config.json`` differ in the seed only (and where they end)
  are one curve: the mean over seeds at each evaluation all of them reached, a 95%
  percentile-bootstrap confidence interval of that mean (seeds resampled with replacement, whole
  curves at once; numpy, seeded), and the random policy's mean return as a dashed line. One
  panel per task; curves of one agent with other settings are named by the entries that differ.
- A pretrain run (kind ``"pretrain"``) gives ``logs/progress.csv`` (``epoch``, ``loss``, the
  probes ``knn_top1`` / ``state_r2`` on the epochs they ran; older runs: the checkpoint's
  history): grouped over seeds the same way, in a loss panel and a panel per probe for each
  dataset.

matplotlib is imported only to draw (the figure is built without pyplot, so no display is
needed); :func:`collect_curves` alone needs numpy.
"""

from __future__ import annotations

import csv
import json
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlrep.runs import MARKER, read_json

__all__ = [
    "FORMATS",
    "Curve",
    "Plot",
    "bootstrap_ci",
    "collect_curves",
    "find_runs",
    "plot_runs",
]

#: The figure formats ``--out`` may end in.
FORMATS = (".png", ".svg", ".pdf")
#: The probe columns of progress.csv that get a panel each.
PROBES = ("knn_top1", "state_r2")
#: Config entries in which the runs of one curve may differ: the seeds, and where runs end.
_NOT_GROUPED = ("seed", "frames", "epochs", "changes")
#: Config entries that follow from others (not named in a curve's label).
_DERIVED = ("image_shape", "view_shape", "world_size")


@dataclass
class Curve:
    """One drawn curve: a group of runs (the seeds of one configuration) and its statistics.

    ``x`` are the evaluation points every run of the group reached; ``mean``, ``ci_low``,
    ``ci_high`` the mean over the runs and its 95% bootstrap interval there.
    """

    panel: str
    label: str
    x: np.ndarray
    mean: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    runs: list[Path]
    xlabel: str
    ylabel: str
    random_return: float | None = None


@dataclass
class Plot:
    """What :func:`plot_runs` drew: the curves, the matplotlib figure, the file, and notes on
    what was skipped or cut."""

    curves: list[Curve]
    figure: Any
    out: Path
    notes: list[str] = field(default_factory=list)


def find_runs(paths: list[str | Path]) -> list[tuple[Path, str]]:
    """``(run folder, kind)`` of each path that is a run folder (it holds ``rlrep-run.json``) and
    of every run folder below each other folder, in order, each once.

    :param paths: run folders, or folders searched for them.
    :raises ValueError: a path does not exist, or neither is nor holds a run folder.
    """
    runs: dict[Path, str] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise ValueError(f"{path} does not exist; pass the --out folder of an rlrep run")
        markers = [path / MARKER] if (path / MARKER).exists() else sorted(path.rglob(MARKER))
        if not markers:
            raise ValueError(
                f"{path} is not an rlrep run folder and holds none ({MARKER} marks the --out "
                "folders of `rlrep train` and `rlrep pretrain`); pass such a folder or one "
                "above several"
            )
        for marker in markers:
            runs.setdefault(marker.parent, str(read_json(marker).get("kind")))
    return list(runs.items())


def bootstrap_ci(
    values: np.ndarray, seed: int = 0, resamples: int = 2000, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap interval of the mean over runs, at every point.

    :param values: ``(runs, points)``; whole runs are resampled, so the points stay paired.
    :param seed: seed of the resampling generator.
    :param resamples: bootstrap resamples.
    :param level: the interval's coverage.
    :return: ``(low, high)``, each ``(points,)``; one run gives its values.
    """
    n = values.shape[0]
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(resamples, n))].mean(axis=1)  # (resamples, points)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    return low, high


def collect_curves(
    paths: list[str | Path], seed: int = 0, resamples: int = 2000
) -> tuple[list[Curve], list[str]]:
    """The curves of the runs in ``paths`` (:func:`find_runs`), grouped over seeds, and notes on
    runs skipped (nothing logged yet) or points cut (not reached by every seed).

    :param paths: run folders, or folders searched for them.
    :param seed: seed of the bootstrap.
    :param resamples: bootstrap resamples.
    :raises ValueError: no run folder, or unreadable files (named).
    """
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    notes: list[str] = []
    for run, kind in find_runs(paths):
        if not (run / "config.json").exists():
            notes.append(f"skipped {run}: no config.json yet (no checkpoint written)")
            continue
        config = read_json(run / "config.json")
        if kind == "train":
            series = _train_series(run, config, notes)
        elif kind == "pretrain":
            series = _pretrain_series(run, config, notes)
        else:
            notes.append(f"skipped {run}: a run of kind {kind!r}, not train or pretrain")
            continue
        # A group is the runs whose configuration differs in the seed (and the end point) only.
        setting = _flat({k: v for k, v in config.items() if k not in _NOT_GROUPED})
        for measure, spec, x, y, random in series:
            key = (kind, measure, json.dumps(setting, sort_keys=True))
            group = groups.setdefault(key, {**spec, "setting": setting, "runs": [], "seeds": [],
                                            "xs": [], "ys": [], "random": []})  # fmt: skip
            group["runs"].append(run)
            group["seeds"].append(config.get("seed"))
            group["xs"].append(x)
            group["ys"].append(y)
            if random is not None:
                group["random"].append(random)
    _name_settings(list(groups.values()))
    curves = [_curve(g, seed, resamples, notes) for g in groups.values()]
    return [c for c in curves if c is not None], notes


def plot_runs(
    paths: list[str | Path], out: str | Path, seed: int = 0, resamples: int = 2000
) -> Plot:
    """Draw the curves of :func:`collect_curves` (one panel per task, dataset and measure) and
    write the figure to ``out``.

    :param paths: run folders, or folders searched for them.
    :param out: the figure file; its suffix (:data:`FORMATS`) sets the format.
    :param seed: seed of the bootstrap.
    :param resamples: bootstrap resamples.
    :raises ValueError: a bad ``out`` suffix, no run folder, or nothing to plot.
    :raises ImportError: matplotlib is not installed (the message says how to install it).
    """
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"--out {out}: the figure must end in {', '.join(FORMATS)}")
    curves, notes = collect_curves(paths, seed=seed, resamples=resamples)
    if not curves:
        raise ValueError("nothing to plot: " + "; ".join(notes or ["no runs"]))
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "rlrep plot draws with matplotlib, which is not installed: pip install matplotlib"
        ) from None
    panels = list(dict.fromkeys(c.panel for c in curves))
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    figure = Figure(figsize=(5 * cols, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        for curve in (c for c in curves if c.panel == panel):
            (line,) = ax.plot(curve.x, curve.mean, marker=".", label=curve.label)
            ax.fill_between(curve.x, curve.ci_low, curve.ci_high, color=line.get_color(), alpha=0.2)
            if curve.random_return is not None:
                ax.axhline(curve.random_return, color=line.get_color(), linestyle="--",
                           label=f"random policy ({curve.label})")  # fmt: skip
            ax.set(title=panel, xlabel=curve.xlabel, ylabel=curve.ylabel)
        handles, labels = ax.get_legend_handles_labels()  # long labels wrapped
        ax.legend(handles, [textwrap.fill(t, 45) for t in labels], fontsize="small")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    return Plot(curves, figure, out, notes)


def _train_series(run: Path, config: dict[str, Any], notes: list[str]) -> list[tuple]:
    """``[(group key, curve spec, x, y, random return)]`` of a train run (none before its first
    evaluation)."""
    rows = _read_csv(run / "eval.csv")
    if not rows:
        notes.append(f"skipped {run}: no evaluation yet (eval.csv)")
        return []
    task, agent = config.get("task"), config.get("agent")
    x = _column(rows, "frames", run / "eval.csv")
    y = _column(rows, "mean_return", run / "eval.csv")
    random = None
    if (run / "random_policy.json").exists():
        random = float(read_json(run / "random_policy.json")["mean_return"])
    spec = {"panel": f"{task}: evaluation return", "name": agent, "xlabel": "environment frames",
            "ylabel": "mean return"}  # fmt: skip
    return [("return", spec, x, y, random)]


def _pretrain_series(run: Path, config: dict[str, Any], notes: list[str]) -> list[tuple]:
    """One series per measure (loss, each probe logged) of a pretrain run."""
    path = run / "logs" / "progress.csv"
    rows = _read_csv(path) if path.exists() else _checkpoint_history(run)
    if not rows:
        notes.append(f"skipped {run}: no epoch finished yet ({path})")
        return []
    dataset, method = config.get("dataset"), config.get("method")
    name = f"{method}, {config.get('encoder')} encoder"
    series = []
    for column in ("loss", *PROBES):
        done = [r for r in rows if r.get(column) not in (None, "")]
        if not done:
            continue
        x, y = _column(done, "epoch", path), _column(done, column, path)
        measure = "pretraining loss" if column == "loss" else f"probe {column}"
        spec = {"panel": f"{dataset}: {measure}", "name": name, "xlabel": "epoch",
                "ylabel": column}  # fmt: skip
        series.append((column, spec, x, y, None))
    return series


def _name_settings(groups: list[dict[str, Any]]) -> None:
    """Where two curves of a panel have one name (e.g. one agent with other hyperparameters),
    add the config entries in which they differ to their names."""
    for group in groups:
        same = [g for g in groups if (g["panel"], g["name"]) == (group["panel"], group["name"])]
        if len(same) > 1:
            keys = sorted({k for g in same for k in g["setting"]})
            differ = [k for k in keys if k not in _DERIVED
                      and len({json.dumps(g["setting"].get(k)) for g in same}) > 1]  # fmt: skip
            group["label_extra"] = ", ".join(
                f"{k.rpartition('.')[2]}={group['setting'][k]}"
                for k in differ
                if k in group["setting"]  # an entry only other curves have is theirs to name
            )


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """``{"augmentation_kwargs": {"size": 20}}`` → ``{"augmentation_kwargs.size": 20}``."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in _flat(value).items()})
        else:
            flat[key] = value
    return flat


def _curve(group: dict[str, Any], seed: int, resamples: int, notes: list[str]) -> Curve | None:
    """The mean and bootstrap interval over the runs of ``group`` at the points all reached."""
    common = sorted(set.intersection(*(set(x.tolist()) for x in group["xs"])))
    n = len(group["runs"])
    what = "seed" if len(set(map(str, group["seeds"]))) == n else "run"  # a seed run twice
    extra = f" [{group['label_extra']}]" if group.get("label_extra") else ""
    label = f"{group['name']}{extra} ({n} {what}{'s' if n > 1 else ''})"
    if not common:
        notes.append(f"skipped {group['panel']} / {label}: its runs share no evaluation point")
        return None
    values = np.stack([_at(x, y, common) for x, y in zip(group["xs"], group["ys"], strict=True)])
    cut = max(len(x) for x in group["xs"]) - len(common)
    if cut:
        notes.append(
            f"{group['panel']} / {label}: {cut} point(s) not reached by every seed not drawn"
        )
    low, high = bootstrap_ci(values, seed=seed, resamples=resamples)
    random = float(np.mean(group["random"])) if group["random"] else None
    return Curve(
        panel=group["panel"],
        label=label,
        x=np.asarray(common, dtype=float),
        mean=values.mean(axis=0),
        ci_low=low,
        ci_high=high,
        runs=list(group["runs"]),
        xlabel=group["xlabel"],
        ylabel=group["ylabel"],
        random_return=random,
    )


def _at(x: np.ndarray, y: np.ndarray, points: list[float]) -> np.ndarray:
    """``y`` at ``points`` (each in ``x``; a point logged twice: its last value)."""
    last = dict(zip(x.tolist(), y.tolist(), strict=True))
    return np.array([last[p] for p in points], dtype=float)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {path}: {err}") from None


def _column(rows: list[dict[str, str]], name: str, path: Path) -> np.ndarray:
    try:
        return np.array([float(r[name]) for r in rows], dtype=float)
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{path} has no numeric column {name!r} in every row; expected the file rlrep wrote"
        ) from None


def _checkpoint_history(run: Path) -> list[dict[str, Any]]:
    """The per-epoch history of a pretrain run written before ``logs/progress.csv`` existed."""
    if not (run / "checkpoint.pt").exists():
        return []
    from rlrep.checkpoint import load_checkpoint

    return [
        {k: str(v) for k, v in row.items()}
        for row in load_checkpoint(run / "checkpoint.pt")["history"]
    ]
