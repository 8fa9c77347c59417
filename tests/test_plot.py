"""``rlrep plot`` on fabricated run folders: the curves it draws are the mean over seeds with a
95% bootstrap interval (checked against an exact enumeration of the bootstrap), the random
policy's return is the dashed line, and the figure's artists hold those numbers."""

import csv
import itertools
import json
import sys

import numpy as np
import pytest

from rlrep.cli import main
from rlrep.plotting import bootstrap_ci, collect_curves, plot_runs

FRAMES = [1000, 2000, 3000]
#: Five seeds' returns at FRAMES: skewed, so that their median is not their mean.
RETURNS = {1: [0, 10, 100], 2: [5, 20, 200], 3: [1, 90, 900], 4: [2, 15, 120], 5: [3, 30, 160]}


def write_run(folder, kind, config, files):
    folder.mkdir(parents=True)
    (folder / "rlrep-run.json").write_text(
        json.dumps({"kind": kind, "version": "0", "run_id": "x"})
    )
    (folder / "config.json").write_text(json.dumps(config))
    for name, rows in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".json"):
            path.write_text(json.dumps(rows))
            continue
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def train_run(root, agent, task, seed, frames, returns, random=None):
    rows = [{"frames": f, "agent_steps": f // 8, "mean_return": r, "std_return": 1.0,
             "episodes": 10, "wall_time": 1.0} for f, r in zip(frames, returns, strict=True)]  # fmt: skip
    files = {"eval.csv": rows}
    if random is not None:
        files["random_policy.json"] = {"mean_return": random, "std_return": 1.0, "episodes": 10}
    folder = root / agent / task / f"seed{seed}"
    write_run(folder, "train", {"task": task, "agent": agent, "seed": seed}, files)
    return folder


def pretrain_run(root, seed, losses, knn):
    rows = [{"epoch": e + 1, "step": 10 * (e + 1), "loss": loss, "lr": 1e-3, "knn_top1": k}
            for e, (loss, k) in enumerate(zip(losses, knn, strict=True))]  # fmt: skip
    config = {"method": "simclr", "dataset": "digits", "encoder": "curl", "seed": seed}
    write_run(root / f"pre{seed}", "pretrain", config, {"logs/progress.csv": rows})


def exact_bootstrap_interval(values):
    """The 2.5% and 97.5% quantiles of the mean of n runs drawn with replacement from n, over
    all n^n equally likely draws (the bootstrap's limit), at each point."""
    n = len(values)
    means = np.array([values[list(draw)].mean(axis=0)
                      for draw in itertools.product(range(n), repeat=n)])  # fmt: skip
    return np.percentile(means, [2.5, 97.5], axis=0)


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, returns in RETURNS.items():
        train_run(root, "curl-sac", "cartpole-swingup", seed, FRAMES, returns, random=5.0 + seed)
    # Two seeds of another agent; the first has one evaluation more, which is not drawn.
    train_run(root, "drq", "cartpole-swingup", 1, [*FRAMES, 4000], [4, 8, 16, 50])
    train_run(root, "drq", "cartpole-swingup", 2, FRAMES, [6, 12, 30])
    pretrain_run(root, 0, [4.0, 3.0, 2.5], ["", 0.5, 0.7])
    pretrain_run(root, 1, [4.2, 3.4, 2.1], ["", 0.6, 0.9])
    return root


def test_learning_curves_are_the_mean_and_bootstrap_interval_over_seeds(runs, tmp_path):
    result = plot_runs([runs], tmp_path / "curves.png", resamples=20_000)
    assert (tmp_path / "curves.png").stat().st_size > 0
    curves = {c.label: c for c in result.curves}
    curl = curves["curl-sac (5 seeds)"]
    values = np.array(list(RETURNS.values()), dtype=float)
    np.testing.assert_array_equal(curl.x, FRAMES)
    np.testing.assert_allclose(curl.mean, values.mean(axis=0), rtol=1e-12)
    low, high = exact_bootstrap_interval(values)
    span = values.max(axis=0) - values.min(axis=0)
    np.testing.assert_allclose(curl.ci_low, low, atol=0.02 * span.max())
    np.testing.assert_allclose(curl.ci_high, high, atol=0.02 * span.max())
    assert np.all(curl.ci_low > values.min(axis=0)) and np.all(curl.ci_high < values.max(axis=0))
    assert curl.random_return == pytest.approx(np.mean([5.0 + s for s in RETURNS]))
    assert curl.panel == "cartpole-swingup: evaluation return"
    # Two seeds: a resample is one seed twice with probability 1/2, so the interval's ends are
    # the two seeds' values; the point only one seed reached is cut and said so.
    drq = curves["drq (2 seeds)"]
    np.testing.assert_array_equal(drq.x, FRAMES)
    np.testing.assert_allclose(drq.mean, [5, 10, 23])
    np.testing.assert_allclose(drq.ci_low, [4, 8, 16])
    np.testing.assert_allclose(drq.ci_high, [6, 12, 30])
    assert drq.random_return is None
    assert any("1 point(s) not reached by every seed" in note for note in result.notes)
    # The figure's artists hold these numbers.
    ax = next(a for a in result.figure.axes if a.get_title() == curl.panel)
    lines = {line.get_label(): line for line in ax.get_lines()}
    for curve in (curl, drq):
        np.testing.assert_array_equal(lines[curve.label].get_xdata(), curve.x)
        np.testing.assert_allclose(lines[curve.label].get_ydata(), curve.mean)
    random = lines[f"random policy ({curl.label})"]
    assert random.get_linestyle() == "--"
    np.testing.assert_allclose(random.get_ydata(), [curl.random_return] * 2)
    assert random.get_color() == lines[curl.label].get_color()
    band = ax.collections[0].get_paths()[0].vertices  # the curl-sac band, drawn first
    for x, lo, hi in zip(curl.x, curl.ci_low, curl.ci_high, strict=True):
        assert np.isclose(band, [x, lo]).all(axis=1).any()
        assert np.isclose(band, [x, hi]).all(axis=1).any()


def test_pretraining_curves_are_the_loss_and_probes_per_epoch(runs, tmp_path):
    curves = {c.panel: c for c in collect_curves([runs / "pre0", runs / "pre1"])[0]}
    assert set(curves) == {"digits: pretraining loss", "digits: probe knn_top1"}
    loss, knn = curves["digits: pretraining loss"], curves["digits: probe knn_top1"]
    np.testing.assert_array_equal(loss.x, [1, 2, 3])
    np.testing.assert_allclose(loss.mean, [4.1, 3.2, 2.3])
    np.testing.assert_array_equal(knn.x, [2, 3])  # the epochs the probe ran
    np.testing.assert_allclose(knn.mean, [0.55, 0.8])
    np.testing.assert_allclose(knn.ci_low, [0.5, 0.7])
    np.testing.assert_allclose(knn.ci_high, [0.6, 0.9])
    assert loss.label == "simclr, curl encoder (2 seeds)"
    fig = plot_runs([runs / "pre0", runs / "pre1"], tmp_path / "p.svg").figure
    assert {a.get_title() for a in fig.axes if a.get_visible()} == set(curves)


def test_the_bootstrap_is_seeded_and_one_run_is_its_own_interval():
    values = np.random.default_rng(0).normal(size=(4, 6))
    a, b = bootstrap_ci(values, seed=3), bootstrap_ci(values, seed=3)
    np.testing.assert_array_equal(a, b)
    low, high = bootstrap_ci(values[:1])
    np.testing.assert_array_equal(low, values[0])
    np.testing.assert_array_equal(high, values[0])


def test_cli_prints_what_it_plotted_and_where(runs, tmp_path, capsys):
    out = tmp_path / "fig" / "curves.png"
    assert main(["plot", str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cartpole-swingup: evaluation return | curl-sac (5 seeds): 3 points" in printed
    assert "random policy 8" in printed and "digits: probe knn_top1 | simclr" in printed
    assert printed.strip().endswith(f"wrote {out}") and out.exists()


def test_bad_input_is_named(runs, tmp_path, capsys, monkeypatch):
    with pytest.raises(ValueError, match="does not exist"):
        plot_runs([tmp_path / "nowhere"], tmp_path / "a.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds none \(rlrep-run\.json marks"):
        plot_runs([tmp_path / "empty"], tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"must end in \.png, \.svg, \.pdf"):
        plot_runs([runs], tmp_path / "a.jpg")
    fresh = train_run(tmp_path / "fresh", "drq", "walker-walk", 1, [1], [1])
    (fresh / "eval.csv").unlink()  # started, no evaluation yet
    with pytest.raises(ValueError, match=r"nothing to plot: skipped .* no evaluation yet"):
        plot_runs([fresh], tmp_path / "a.png")
    (fresh / "eval.csv").write_text("frames,mean_return\n1000,lots\n")
    with pytest.raises(ValueError, match="no numeric column 'mean_return'"):
        plot_runs([fresh], tmp_path / "a.png")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_runs([runs], tmp_path / "a.png")
    assert main(["plot", str(runs), "--out", str(tmp_path / "a.png")]) == 2
    assert "rlrep plot: rlrep plot draws with matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists()


def test_runs_that_differ_in_more_than_the_seed_are_separate_curves(tmp_path):
    root = tmp_path / "runs"
    for seed, batch in ((1, 128), (2, 128), (1, 256)):
        folder = train_run(root / str(batch), "curl-sac", "walker-walk", seed, FRAMES, [seed] * 3)
        config = json.loads((folder / "config.json").read_text())
        config |= {"frames": 3000 * seed, "overrides": {"batch_size": batch}}  # ends may differ
        (folder / "config.json").write_text(json.dumps(config))
    curves = {c.label: c for c in collect_curves([root])[0]}
    assert set(curves) == {
        "curl-sac [batch_size=128] (2 seeds)",
        "curl-sac [batch_size=256] (1 seed)",
    }
    np.testing.assert_allclose(curves["curl-sac [batch_size=128] (2 seeds)"].mean, [1.5] * 3)


def test_a_pretrain_run_without_progress_csv_is_read_from_its_checkpoint(tmp_path):
    import torch

    from rlrep.checkpoint import CHECKPOINT_FORMAT

    config = {"method": "byol", "dataset": "digits", "encoder": "curl", "seed": 0,
              "encoder_kwargs": {}, "augmentation": "simclr", "augmentation_kwargs": {},
              "image_shape": [3, 32, 32], "view_shape": [3, 32, 32]}  # fmt: skip
    folder = tmp_path / "old"
    write_run(folder, "pretrain", config, {})
    history = [{"epoch": 1, "loss": 3.0, "knn_top1": 0.5}, {"epoch": 2, "loss": 2.0}]
    torch.save({"format": CHECKPOINT_FORMAT, "config": config, "encoder": {}, "method": {},
                "optimizer": {}, "epoch": 2, "history": history}, folder / "checkpoint.pt")  # fmt: skip
    curves = {c.ylabel: c for c in collect_curves([folder])[0]}
    np.testing.assert_allclose(curves["loss"].mean, [3.0, 2.0])
    np.testing.assert_array_equal(curves["knn_top1"].x, [1])
