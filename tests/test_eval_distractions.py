"""``rlrep train --eval-distraction``: a policy trained on the clean task is evaluated on
distracted variants at every evaluation, on the same seeded episodes, without changing the run."""

import csv

import pytest

from rlrep.agents.train import train
from rlrep.runs import RunFolderError

TINY = {"num_filters": 4, "num_layers": 2, "hidden_dim": 16, "batch_size": 8, "buffer_size": 100,
        "initial_steps": 4, "image_size": 40, "crop_size": 32}  # fmt: skip
#: cartpole-swingup at action repeat 8: 8 agent steps, evaluations after 4 and 8.
RUN = {"frames": 64, "eval_every": 32, "eval_episodes": 1, "seed": 0, "progress": False}


def read_eval(out):
    with open(out / "eval.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_variants_are_evaluated_beside_the_clean_env_and_leave_the_run_unchanged(tmp_path):
    plain = train("cartpole-swingup", out=tmp_path / "plain", **RUN, **TINY)
    variants = ["color_hard", "video_easy"]
    both = train("cartpole-swingup", out=tmp_path / "both", eval_distractions=variants, **RUN,
                 **TINY)  # fmt: skip
    # Evaluating variants draws nothing from the training's random state: the same run.
    assert [r["mean_return"] for r in both] == [r["mean_return"] for r in plain]
    rows = read_eval(tmp_path / "both")
    assert list(rows[0])[-4:] == [
        "mean_return_color_hard", "std_return_color_hard",
        "mean_return_video_easy", "std_return_video_easy",
    ]  # fmt: skip
    for row, history in zip(rows, both, strict=True):
        for v in variants:
            assert float(row[f"mean_return_{v}"]) == pytest.approx(history[f"mean_return_{v}"])
    # The same policy on other pixels: returns differ from the clean env's.
    assert any(r["mean_return_color_hard"] != r["mean_return"] for r in both)
    # Resuming with the variants keeps them; dropping them is a config change.
    with pytest.raises(RunFolderError, match="eval_distractions"):
        train("cartpole-swingup", out=tmp_path / "both", resume=True,
              **{**RUN, "frames": 96}, **TINY)  # fmt: skip


def test_bad_distractions_are_refused_before_anything_runs(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(
        ValueError, match=r"unknown distractions \['colour_hard'\]; valid: color_easy"
    ):
        train("cartpole-swingup", out=out, eval_distractions=["colour_hard"], **RUN, **TINY)
    with pytest.raises(ValueError, match="repeats a name"):
        train("cartpole-swingup", out=out, eval_distractions=["color_easy"] * 2, **RUN, **TINY)
    with pytest.raises(ValueError, match="point_mass_pixels has no distracted variants"):
        train("point_mass_pixels", out=out, eval_distractions=["color_easy"], **RUN, **TINY)
    with pytest.raises(ValueError, match="a list of names"):
        train("cartpole-swingup", out=out, eval_distractions="color_easy", **RUN, **TINY)
    assert not out.exists()
