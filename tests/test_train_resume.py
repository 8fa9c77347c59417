"""``rlrep train`` run folders: one consistent checkpoint set, exact resume after a kill at any
point, config checks, the lock, loud numerics, safe loading, sizes that follow the data."""

import csv
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from rlrep.agents.run_state import ResumeError
from rlrep.agents.train import train
from rlrep.runs import RunFolderError, read_json, run_lock, write_json, write_marker

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "num_filters": 4,
    "num_layers": 2,
    "hidden_dim": 16,
    "batch_size": 8,
    "buffer_size": 500,
    "initial_steps": 40,
    "image_size": 40,
    "crop_size": 32,
}
PPO_TINY = {"n_steps": 16, "batch_size": 16, "n_envs": 2, "image_size": 36}
#: DrQ, DrQ-v2, ATC-SAC and SPR-SAC see the whole frame (no crop_size).
SHIFT_TINY = {k: v for k, v in TINY.items() if k != "crop_size"}
ATC_TINY = {**SHIFT_TINY, "atc_batch_size": 8, "atc_latent_dim": 8, "atc_hidden_dim": 16}
SPR_TINY = {**SHIFT_TINY, "spr_steps": 2, "spr_projection_dim": 8, "spr_hidden_dim": 16}
#: Logged columns that measure time (SB3's fps and elapsed seconds, the run's time split), which
#: a resumed run cannot reproduce.
TIMED = ("time/",)
RUN = {"frames": 120, "seed": 0, "eval_every": 40, "eval_episodes": 2, "progress": False}


def returns(history):
    return [(h["frames"], h["mean_return"]) for h in history]


def read_logs(out):
    """progress.csv's rows without the columns that measure time."""
    with open(out / "logs" / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if not k.startswith(TIMED)} for r in rows]


def read_events(out):
    """Every scalar of the tensorboard event files, in the order written."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    scalars = []
    for path in sorted((out / "logs").glob("events.out.tfevents.*"), key=os.path.getmtime):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if not value.tag.startswith(TIMED):
                    scalars.append((event.step, value.tag, value.tensor.float_val[:]))
    return scalars


def read_eval(out):
    with open(out / "eval.csv") as f:
        return [(int(r["frames"]), float(r["mean_return"])) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted CURL-SAC run every resumed run must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "run"
    return out, returns(train("point_mass_pixels", out=out, **RUN, **TINY))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("agent", "kw"),
    [("curl-sac", TINY), ("ppo-aux", PPO_TINY), ("drq", SHIFT_TINY), ("drqv2", SHIFT_TINY),
     ("atc-sac", ATC_TINY), ("spr-sac", SPR_TINY)],
)  # fmt: skip
def test_resume_after_a_kill_in_a_checkpoint_write_is_the_uninterrupted_run(tmp_path, agent, kw):
    full = train("point_mass_pixels", agent=agent, out=tmp_path / "a", **RUN, **kw)
    # Killed while writing its second checkpoint (80 frames): the set is written, not yet named.
    code = KILLER.replace("{json}", repr({**RUN, **kw, "agent": agent}))
    out = tmp_path / "b"
    killed = subprocess.run(
        [sys.executable, "-c", code, "replace", "8", str(out)], cwd=ROOT, capture_output=True
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert read_eval(out) == returns(full)[:1]  # the first checkpoint's row only
    resumed = train("point_mass_pixels", agent=agent, out=out, resume=True, **RUN, **kw)
    assert returns(resumed) == returns(full)
    assert read_eval(out) == returns(full)
    assert read_logs(out) == read_logs(tmp_path / "a")  # logged once, as uninterrupted
    assert read_events(out) == read_events(tmp_path / "a")


def test_a_finished_run_extended_on_resume_is_the_longer_run(tmp_path, reference):
    train("point_mass_pixels", out=tmp_path / "b", **{**RUN, "frames": 80}, **TINY)
    resumed = train("point_mass_pixels", out=tmp_path / "b", resume=True, **RUN, **TINY)
    assert returns(resumed) == reference[1]  # the same seed gives the same run
    assert read_eval(tmp_path / "b") == reference[1]
    # Logs are appended across sessions: the first session's rows are still there.
    assert read_logs(tmp_path / "b") == read_logs(reference[0])


# Kills the process (SIGKILL: no cleanup runs) at a chosen point of a checkpoint or of learning.
KILLER = textwrap.dedent(
    """
    import importlib, os, signal, sys
    t = importlib.import_module("rlrep.agents.train")
    point, n = sys.argv[1], int(sys.argv[2])
    calls = [0]
    if point == "replace":  # before the n-th atomic rename of the run
        real = os.replace
        def replace(src, dst):
            calls[0] += 1
            if calls[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)
        os.replace = replace
    else:  # between two agent steps, after step n
        real_start = t._Progress._on_rollout_start
        def on_rollout_start(self):
            if self.num_timesteps == n:
                os.kill(os.getpid(), signal.SIGKILL)
            real_start(self)
        t._Progress._on_rollout_start = on_rollout_start
    t.train("point_mass_pixels", out=sys.argv[3], **{json})
    """
)


# os.replace calls: the marker (1), config.json (2); per checkpoint: state.json, the set's folder,
# the latest pointer, eval.csv. The second checkpoint (80 frames) is calls 7-10.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "n"),
    [
        ("replace", 8),  # set written, its folder not yet renamed
        ("replace", 9),  # folder renamed, the pointer still names the first checkpoint
        ("replace", 10),  # pointer switched, eval.csv not yet rewritten
        ("step", 100),  # during learning, between checkpoints
    ],
)
def test_resume_after_a_kill_gives_the_uninterrupted_returns(tmp_path, point, n, reference):
    out = tmp_path / "run"
    code = KILLER.replace("{json}", repr({**RUN, **TINY}))
    killed = subprocess.run(
        [sys.executable, "-c", code, point, str(n), str(out)], cwd=ROOT, capture_output=True
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    resumed = train("point_mass_pixels", out=out, resume=True, **RUN, **TINY)
    assert returns(resumed) == reference[1]
    assert read_eval(out) == reference[1]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["000000120", "latest"]
    # The logs are part of the set: the steps redone after the kill are logged once.
    assert read_logs(out) == read_logs(reference[0])
    assert read_events(out) == read_events(reference[0])


@pytest.mark.slow
def test_run_folder_holds_the_filled_part_only(reference):
    out, _ = reference
    checkpoint = out / "checkpoints" / (out / "checkpoints" / "latest").read_text()
    names = {p.name for p in checkpoint.iterdir()}
    assert names == {"state.json", "weights.pt", "arrays.npz", "replay.npz"}
    with np.load(checkpoint / "replay.npz", allow_pickle=False) as replay:
        assert replay["frame_ids"].shape[0] == 120  # transitions stored, not buffer_size (500)
        # one 3×40×40 frame per transition plus each episode's first frame
        assert 120 <= replay["frames"].shape[0] <= 120 + 3 * 3
    # The replay file follows the data: 120 frames of 4.8 kB, not 500 × 2 stacks.
    assert (checkpoint / "replay.npz").stat().st_size < 130 * 3 * 40 * 40 + 20_000
    assert not list(out.rglob("*.pkl")) and not list(out.rglob("*.tmp"))
    assert not (out / "model.zip").exists()  # one copy of the state (rlrep export derives it)


@pytest.mark.slow
def test_resume_checks_the_config_and_records_allowed_changes(tmp_path):
    out = tmp_path / "run"
    train("point_mass_pixels", out=out, **{**RUN, "frames": 40}, **TINY)
    with pytest.raises(RunFolderError, match=r"overrides\.batch_size: 8 → 16"):
        train("point_mass_pixels", out=out, resume=True, **RUN, **{**TINY, "batch_size": 16})
    with pytest.raises(RunFolderError, match="seed"):
        train("point_mass_pixels", out=out, resume=True, **{**RUN, "seed": 1}, **TINY)
    with pytest.raises(RunFolderError, match="already holds a run"):
        train("point_mass_pixels", out=out, **RUN, **TINY)
    history = train(
        "point_mass_pixels",
        out=out,
        resume=True,
        allow_config_change=True,
        **{**RUN, "frames": 80},
        **{**TINY, "batch_size": 16},
    )
    assert [h["frames"] for h in history] == [40, 80]
    config = json.loads((out / "config.json").read_text())
    assert config["overrides"]["batch_size"] == 16 and config["frames"] == 80
    assert config["changes"] == [
        {"agent_steps": 40, "frames": 40, "key": "overrides.batch_size", "old": 8, "new": 16}
    ]


def test_resume_without_a_checkpoint_is_an_error_unless_asked_to_start(tmp_path):
    with pytest.raises(RunFolderError, match="holds no checkpoint"):
        train("point_mass_pixels", out=tmp_path / "r", resume=True, **RUN, **TINY)
    assert not (tmp_path / "r" / "config.json").exists()


@pytest.mark.slow
def test_resume_if_exists_starts_a_new_run(tmp_path):
    history = train(
        "point_mass_pixels",
        out=tmp_path / "r",
        resume_if_exists=True,
        **{**RUN, "frames": 40},
        **TINY,
    )
    assert [h["frames"] for h in history] == [40]


@pytest.mark.parametrize("flag", ["resume", "resume_if_exists"])
def test_a_folder_rlrep_did_not_write_is_refused_and_left_as_it_was(tmp_path, flag):
    out = tmp_path / "theirs"
    (out / "logs").mkdir(parents=True)
    (out / "logs" / "notes.txt").write_text("a user's notes")
    (out / "checkpoints").mkdir()
    (out / "config.json").write_text('{"lr": 3}')
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(RunFolderError, match=r"checkpoints, config\.json, logs but no rlrep-run"):
        train("point_mass_pixels", out=out, **{flag: True}, **RUN, **TINY)
    assert {
        p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"
    } == before


def test_a_pretraining_run_is_not_resumed_as_training(tmp_path):
    out = tmp_path / "pre"
    out.mkdir()
    write_json(out / "config.json", {"method": "simclr"})
    write_marker(out, "pretrain")
    with pytest.raises(RunFolderError, match="'pretrain' run folder"):
        train("point_mass_pixels", out=out, resume_if_exists=True, **RUN, **TINY)
    assert read_json(out / "config.json") == {"method": "simclr"}


def test_a_second_writer_is_refused_and_a_stale_lock_is_not(tmp_path):
    out = tmp_path / "run"
    with run_lock(out), pytest.raises(RunFolderError, match="in use by a running process"):
        train("point_mass_pixels", out=out, **RUN, **TINY)
    # A killed run leaves its .lock file behind; the OS lock died with the process.
    stale = subprocess.run(
        [sys.executable, "-c", "import os, sys; from rlrep.runs import run_lock\n"
         "with run_lock(sys.argv[1]): os._exit(0)", str(out)],
        cwd=ROOT,
    )  # fmt: skip
    assert stale.returncode == 0 and (out / ".lock").exists()
    with run_lock(out):  # taken: the lock file now names this process
        assert (out / ".lock").read_text() == str(os.getpid())


@pytest.mark.slow
def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    train("point_mass_pixels", out=out, **{**RUN, "frames": 40}, **TINY)
    latest = (out / "checkpoints" / "latest").read_text()
    with pytest.raises(FloatingPointError) as err:
        train(
            "point_mass_pixels",
            out=out,
            resume=True,
            allow_config_change=True,
            **RUN,
            **{**TINY, "lr": 1e12},
        )
    message = str(err.value)
    assert "train/" in message or "parameter" in message
    assert "agent step" in message and f"{latest} (40 frames)" in message
    assert (out / "checkpoints" / "latest").read_text() == latest
    assert read_eval(out) == read_eval(out)[:1]


@pytest.mark.parametrize(
    ("agent", "kw"),
    [("curl-sac", TINY), ("ppo-aux", {**PPO_TINY, "learning_rate": 1e12}), ("drq", SHIFT_TINY),
     ("drqv2", SHIFT_TINY), ("atc-sac", ATC_TINY), ("spr-sac", SPR_TINY)],
)  # fmt: skip
def test_every_agent_stops_divergence_with_the_designed_message(tmp_path, agent, kw):
    # PPO's next minibatch builds a Normal from NaN outputs: torch's ValueError, mid-update.
    kw = kw if agent == "ppo-aux" else {**kw, "lr": 1e12}
    with pytest.raises(FloatingPointError, match=r"diverged at agent step \d+ .*Lower the lear"):
        train("point_mass_pixels", agent=agent, out=tmp_path / "run", **RUN, **kw)


def test_a_non_finite_auxiliary_metric_stops_the_run(tmp_path, monkeypatch):
    # ppo-aux logs the plug-in's aux/* keys; a NaN there (parameters still finite) stops it too.
    from rlrep.objective import AuxObjective

    pop = AuxObjective.pop_metrics
    monkeypatch.setattr(AuxObjective, "pop_metrics", lambda self: {**pop(self), "loss": math.nan})
    with pytest.raises(FloatingPointError, match=r"diverged at agent step \d+ .*aux/loss = nan"):
        train("point_mass_pixels", agent="ppo-aux", out=tmp_path / "run", **RUN, **PPO_TINY)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _wrong_shape(path):
    with np.load(path) as replay:
        arrays = dict(replay)
    arrays["frames"] = arrays["frames"][..., :-1]
    np.savez(path, **arrays)


def _another_agents(path):
    weights = torch.load(path, weights_only=True)
    weights["state_dicts"]["spr_optimizer"] = {}
    torch.save(weights, path)


def _as_directory(path):
    path.unlink()
    path.mkdir()


def _files(out):
    return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"}


DAMAGE = {
    "replay.npz truncated": ("replay.npz", _truncate),
    "arrays.npz truncated": ("arrays.npz", _truncate),
    "replay.npz missing": ("replay.npz", lambda p: p.unlink()),
    "replay of another shape": ("replay.npz", _wrong_shape),
    "weights.pt a directory": ("weights.pt", _as_directory),
    "weights.pt of another agent": ("weights.pt", _another_agents),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_checkpoint_set_is_refused_with_a_message(tmp_path, case, reference):
    out = tmp_path / "run"
    shutil.copytree(reference[0], out)
    name, damage = DAMAGE[case]
    damage(out / "checkpoints" / "000000120" / name)
    before = _files(out)
    with pytest.raises(ResumeError, match=r"000000120 is damaged or not this agent's .*new run"):
        train("point_mass_pixels", out=out, resume=True, **RUN, **TINY)
    assert _files(out) == before  # nothing written


def test_resume_to_fewer_frames_than_done_is_refused_and_changes_nothing(tmp_path, reference):
    out = tmp_path / "run"
    shutil.copytree(reference[0], out)
    before = _files(out)
    with pytest.raises(
        RunFolderError, match=r"is at 120 frames, past --steps 80; pass --steps 120"
    ):
        train("point_mass_pixels", out=out, resume=True, **{**RUN, "frames": 80}, **TINY)
    assert _files(out) == before


def test_ppo_frames_are_whole_rollouts_and_it_says_so(tmp_path, capsys):
    # A rollout is n_steps 16 x n_envs 2 = 32 frames here: 40 frames become 64.
    history = train("point_mass_pixels", agent="ppo-aux", out=tmp_path / "r",
                    **{**RUN, "frames": 40}, **PPO_TINY)  # fmt: skip
    assert "trains whole rollouts of 32 frames" in capsys.readouterr().err
    assert history[-1]["frames"] == 64 == read_json(tmp_path / "r" / "config.json")["frames"]


def test_a_full_disk_is_reported_and_the_run_resumes_exactly(
    tmp_path, capsys, monkeypatch, reference
):
    import errno

    from rlrep.agents.run_folder import RunFolder
    from rlrep.cli import main

    out = tmp_path / "run"
    argv = ["train", "--env", "point_mass_pixels", "--out", str(out), "--steps", "120",
            "--eval-every", "40", "--eval-episodes", "2", "--seed", "0", "--no-progress",
            "--set", *(f"{k}={v}" for k, v in TINY.items())]  # fmt: skip
    real_write, calls = RunFolder.write_checkpoint, []

    def disk_full_at_the_second(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.checkpoints))
        return real_write(self, *args)

    with monkeypatch.context() as patch:
        patch.setattr(RunFolder, "write_checkpoint", disk_full_at_the_second)
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "(No space left on device). Nothing was lost" in err
    assert "Free space, then rerun with --resume" in err
    assert main([*argv, "--resume"]) == 0
    assert read_eval(out) == reference[1]


def test_a_latest_pointer_outside_the_run_is_refused(tmp_path, reference):
    out = tmp_path / "run"
    shutil.copytree(reference[0], out)
    (out / "checkpoints" / "latest").write_text("../../elsewhere")
    with pytest.raises(ValueError, match=r"names '../../elsewhere', not a checkpoint"):
        train("point_mass_pixels", out=out, resume=True, **RUN, **TINY)


def test_a_crafted_checkpoint_runs_nothing(tmp_path):
    """weights.pt is read with weights_only=True: a pickle payload is refused, never run."""
    from rlrep.agents.run_state import ResumeError, load_run_state
    from rlrep.agents.train import build_agent

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "ckpt"
    folder.mkdir()
    with open(folder / "weights.pt", "wb") as f:
        pickle.dump({"state_dicts": Payload()}, f)
    model, _ = build_agent("curl-sac", "point_mass_pixels", 0, "cpu", TINY)
    with pytest.raises(ResumeError, match="does not fit"):
        load_run_state(model, folder, {})
    assert not marker.exists()


def test_bad_arguments_are_refused_before_anything_runs(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(ValueError, match="eval_episodes must be a positive integer"):
        train("point_mass_pixels", out=out, **{**RUN, "eval_episodes": 0}, **TINY)
    with pytest.raises(ValueError, match="batch_size must be a finite int, got 'abc'"):
        train("point_mass_pixels", out=out, **RUN, **{**TINY, "batch_size": "abc"})
    with pytest.raises(ValueError, match="batch_size 0 < 2"):
        train("point_mass_pixels", out=out, **RUN, **{**TINY, "batch_size": 0})
    with pytest.raises(ValueError, match="PPO-aux option n_steps must be a positive number"):
        train("point_mass_pixels", agent="ppo-aux", out=out, **RUN, n_steps=0)
    assert not (out / "config.json").exists()


@pytest.mark.slow
def test_evaluation_is_seeded(tmp_path):
    """The same model evaluated twice gives the same returns (the eval env is reseeded)."""
    from rlrep.agents.evaluation import Evaluation
    from rlrep.agents.run_folder import RunFolder
    from rlrep.agents.train import _Run, build_agent
    from rlrep.envs import make_env

    model, env_kwargs = build_agent("ppo-aux", "point_mass_pixels", 0, "cpu", PPO_TINY)
    evaluation = Evaluation(lambda d: make_env("point_mass_pixels", seed=7, **env_kwargs), (), 7, 3)
    run = _Run(RunFolder(tmp_path), 100, 1, 50, evaluation, False)
    model.set_logger(RunFolder(tmp_path).logger())
    first = run.evaluate_and_checkpoint(model)
    model.num_timesteps += 1  # a new checkpoint name
    second = run.evaluate_and_checkpoint(model)
    assert first["mean_return"] == second["mean_return"] and first["std_return"] > 0


@pytest.mark.parametrize(
    ("agent", "kw"), [("curl-sac", TINY), ("atc-sac", ATC_TINY), ("spr-sac", SPR_TINY)]
)
def test_an_agent_saves_each_tensor_once_and_loads_back(tmp_path, agent, kw):
    # The objective is registered on the policy (heads, targets saved) but its encoder is the
    # critic's: saved under the critic's name only, and filled back from it on load.
    from rlrep.agents.train import build_agent

    model, _ = build_agent(agent, "point_mass_pixels", 0, "cpu", kw)
    policy = model.get_parameters()["policy"]
    tensors = [t for t in _tensors(policy) if t.numel()]
    storages = {t.data_ptr(): t.numel() for t in tensors}
    assert sum(t.numel() for t in tensors) == sum(storages.values())
    assert not any(k.startswith("objective.method.encoder.") for k in policy)
    model.save(tmp_path / "model.zip")
    loaded = type(model).load(tmp_path / "model.zip", env=model.get_env())
    saved, back = model.policy.state_dict(), loaded.policy.state_dict()
    assert saved.keys() == back.keys()
    assert all(torch.equal(a, b) for a, b in zip(_tensors(saved), _tensors(back), strict=True))
    online, reloaded = model.objective.method.encoder, loaded.objective.method.encoder
    assert all(torch.equal(a, b) for a, b in zip(online.state_dict().values(),
                                                  reloaded.state_dict().values(), strict=True))  # fmt: skip


def _tensors(state):
    """Every tensor in a nested state (state dicts hold extra state as dicts)."""
    if torch.is_tensor(state):
        return [state]
    if isinstance(state, dict):
        return [t for value in state.values() for t in _tensors(value)]
    if isinstance(state, (list, tuple)):
        return [t for value in state for t in _tensors(value)]
    return []


def test_a_non_finite_parameter_is_never_checkpointed(tmp_path, monkeypatch):
    # After each step only the logged losses are read (reading ~10M parameters per step cost
    # the agents 40-50 ms on a CPU); every parameter is read before each checkpoint.
    from rlrep.agents import CURLSAC

    train_ = CURLSAC.train

    def poisoned(self, *args, **kwargs):
        train_(self, *args, **kwargs)  # losses logged finite, then a weight turns NaN
        if self.num_timesteps == 80:  # the last update before the evaluation at 80
            with torch.no_grad():
                next(self.critic.q_networks[0].parameters()).fill_(math.nan)  # not acting

    monkeypatch.setattr(CURLSAC, "train", poisoned)
    out = tmp_path / "run"
    with pytest.raises(FloatingPointError, match=r"parameter .* holds non-finite values"):
        train("point_mass_pixels", out=out, **{**RUN, "frames": 80}, **TINY)
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.is_dir()) == ["000000040"]
    assert read_eval(out)[-1][0] == 40
