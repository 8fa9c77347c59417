"""rl-zoo3 runs rlrep from the committed plain YAML files (``experiments/zoo/*.yml``): its own
``train`` and ``enjoy`` entry points, in fresh interpreters, with ``--gym-packages rlrep``; and
the policies of :mod:`rlrep.sb3.zoo` that take rlrep's options as plain ``policy_kwargs`` keys
build what ``rlrep.sb3.policy_kwargs(...)`` gives SB3's own policies."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("rl_zoo3")

from rl_zoo3.utils import ALGOS, get_class_by_name
from sb3_contrib import QRDQN, TQC
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.save_util import load_from_zip_file

from rlrep.pretrain import pretrain
from rlrep.sb3 import SharedEncoderSACPolicy, SharedEncoderTD3Policy, policy_kwargs
from rlrep.sb3 import zoo as plain
from tests.test_pretrain import TINY, env_frames
from tests.test_sb3 import SMALL, env

ROOT = Path(__file__).resolve().parents[1]
ENV = "rlrep/PointMassPixels-v0"


def zoo(entry_point, *args, cwd):
    run = subprocess.run(
        [sys.executable, "-m", f"rl_zoo3.{entry_point}", "--env", ENV, "--gym-packages", "rlrep",
         "--seed", "0", *args],
        capture_output=True, text=True, cwd=cwd, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout


@pytest.mark.slow
def test_zoo_trains_and_replays_sac_with_curl_from_the_yaml(tmp_path):
    out = zoo("train", "--algo", "sac", "-conf", str(ROOT / "experiments/zoo/sac.yml"),
              "-f", str(tmp_path), "-n", "200", "--eval-freq", "-1", cwd=tmp_path)  # fmt: skip
    assert "aux/" in out and "accuracy" in out  # metrics through SB3's logger, no callback
    (model,) = tmp_path.glob("sac/*_1/*.zip")
    out = zoo("enjoy", "--algo", "sac", "-f", str(tmp_path), "--exp-id", "1", "-n", "60",
              "--no-render", "--deterministic", cwd=tmp_path)  # fmt: skip
    assert f"Loading {model}" in out and "Mean reward" in out


@pytest.mark.slow
def test_zoo_keeps_a_pretrained_encoder_by_path(tmp_path):
    pretrain(method="curl", dataset=f"npz:{env_frames(tmp_path, n=60)}", augmentation="crop",
             augmentation_kwargs={"size": 20}, epochs=1, out=tmp_path / "p",
             **{**TINY, "batch_size": 16})  # fmt: skip
    checkpoint = tmp_path / "p" / "checkpoint.pt"
    (tmp_path / "ppo.yml").write_text(
        f"{ENV}:\n"
        "  n_timesteps: 64\n  n_envs: 2\n  n_steps: 32\n  batch_size: 32\n"
        "  policy: rlrep.sb3.zoo.ActorCriticPolicy\n"
        f"  policy_kwargs: {{method: curl, pretrained: '{checkpoint}', net_arch: [16]}}\n"
        "  env_kwargs:\n    image_size: 24\n"
    )
    out = zoo("train", "--algo", "ppo", "-conf", str(tmp_path / "ppo.yml"), "-f",
              str(tmp_path / "logs"), "--eval-freq", "-1", cwd=tmp_path)  # fmt: skip
    assert "tensor(" not in out  # the weights are not printed ...
    (config,) = (tmp_path / "logs").glob("ppo/*_1/*/config.yml")
    assert str(checkpoint) in config.read_text() and config.stat().st_size < 4000
    # ... nor kept in the policy kwargs SB3 saves with the model: those name the file (read
    # again at load); the weights are the model's own parameters.
    (model,) = (tmp_path / "logs").glob("ppo/*_1/*.zip")
    data, params, _ = load_from_zip_file(model)
    assert data["policy_kwargs"] == {"method": "curl", "pretrained": str(checkpoint),
                                     "net_arch": [16]}  # fmt: skip
    assert any(k.startswith("features_extractor.encoder.") for k in params["policy"])
    # The pretrained encoder's architecture (TINY: 16 features), not the default's (50).
    assert params["policy"]["features_extractor.encoder.head.fc.weight"].shape[0] == 16


def discrete(e):
    moves = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)
    return gym.wrappers.TransformAction(e, lambda a: moves[a], gym.spaces.Discrete(4))


OPTIONS = {"method": "curl", "augmentation": "shift", "aux_weight": 0.5, "decoupled": True,
           "encoder_kwargs": {"num_filters": 8, "num_layers": 2, "features_dim": 24}}  # fmt: skip


@pytest.mark.parametrize(
    ("algo", "ours", "stock"),
    [(SAC, plain.SACPolicy, "CnnPolicy"), (TD3, plain.TD3Policy, "CnnPolicy"),
     (DQN, plain.DQNPolicy, "CnnPolicy"), (PPO, plain.ActorCriticPolicy, "CnnPolicy"),
     (A2C, plain.ActorCriticPolicy, "CnnPolicy"), (SAC, plain.SharedEncoderSACPolicy,
     SharedEncoderSACPolicy), (TD3, plain.SharedEncoderTD3Policy, SharedEncoderTD3Policy),
     (TQC, plain.TQCPolicy, "CnnPolicy"), (QRDQN, plain.QRDQNPolicy, "CnnPolicy")],
)  # fmt: skip
def test_a_zoo_policy_builds_from_plain_keys_what_policy_kwargs_gives_sb3s_own(algo, ours, stock):
    make = (lambda: discrete(env())) if algo in (DQN, QRDQN) else env
    small = {"buffer_size": 100} if algo not in (PPO, A2C) else {}
    plain_kwargs = {**OPTIONS, "net_arch": [16]}  # as a YAML mapping gives them
    models = [
        algo(ours, make(), seed=0, policy_kwargs=plain_kwargs, **small),
        algo(stock, make(), seed=0, policy_kwargs=policy_kwargs(**plain_kwargs), **small),
        # policy_kwargs(...)'s own form (as a saved policy's parameters) passes through.
        algo(ours, make(), seed=0, policy_kwargs=policy_kwargs(**plain_kwargs), **small),
    ]
    built, sb3, passed = (m.policy for m in models)
    assert isinstance(built, type(sb3)) and type(built).__module__ == "rlrep.sb3.zoo"
    assert built.features_extractor_kwargs == sb3.features_extractor_kwargs
    for other in (sb3, passed):
        a, b = built.state_dict(), other.state_dict()
        assert a.keys() == b.keys() and all(
            torch.equal(a[k], b[k]) for k in a if torch.is_tensor(a[k])
        )
    assert (
        built.features_extractor_kwargs["decoupled"]
        and built.features_extractor_kwargs["method"] == "curl"
    )


def test_a_zoo_policy_model_saves_its_plain_keys_and_loads_from_them(tmp_path):
    model = PPO(plain.ActorCriticPolicy, env(), n_steps=32, batch_size=16, seed=0,
                policy_kwargs={"method": "simclr", "rl_view": "deterministic", **SMALL})  # fmt: skip
    model.learn(32)
    model.save(tmp_path / "model.zip")
    data, _, _ = load_from_zip_file(tmp_path / "model.zip")
    assert data["policy_kwargs"] == {"method": "simclr", "rl_view": "deterministic", **SMALL}
    loaded = PPO.load(tmp_path / "model.zip")
    assert type(loaded.policy) is plain.ActorCriticPolicy
    obs = np.stack([env().reset(seed=s)[0] for s in range(4)])
    assert np.array_equal(model.predict(obs, deterministic=True)[0],
                          loaded.predict(obs, deterministic=True)[0])  # fmt: skip


def test_plain_keys_errors():
    space = env().observation_space
    with pytest.raises(ValueError, match=r"unknown method 'curly'"):
        plain.plain_policy_kwargs({"method": "curly"})
    both = {"method": "curl", **policy_kwargs(method="curl")}
    with pytest.raises(ValueError, match=r"rlrep options \(method\) and features_extractor_class"):
        plain.plain_policy_kwargs(both)
    with pytest.raises(ValueError, match=r"features_extractor_kwargs without.*encoder_kwargs"):
        plain.plain_policy_kwargs({"features_extractor_kwargs": {"method": "curl"}})
    with pytest.raises(ValueError, match=r"needs RGB frames"):  # the extractor's own checks
        plain.SACPolicy(space, gym.spaces.Box(-1, 1, (2,)), lambda _: 1e-3, frame_channels=1,
                      augmentation="color_jitter")  # fmt: skip


@pytest.mark.parametrize("algo", ["sac", "ppo"])
def test_the_committed_yaml_is_plain_and_builds_its_model(algo):
    entry = yaml.safe_load((ROOT / f"experiments/zoo/{algo}.yml").read_text())[ENV]
    assert isinstance(entry["policy_kwargs"], dict)  # a mapping: no Python for zoo to eval
    kwargs = {"policy_kwargs": entry["policy_kwargs"]}
    if "replay_buffer_class" in entry:  # zoo eval()s it in a module where rlrep is no name
        kwargs["replay_buffer_class"] = eval(entry["replay_buffer_class"], {})
        kwargs["buffer_size"] = entry["buffer_size"]
    model = ALGOS[algo](get_class_by_name(entry["policy"]), env(), **kwargs)  # zoo's import
    assert type(model.policy).__module__ == "rlrep.sb3.zoo"
    assert model.policy.features_extractor_kwargs["method"] == entry["policy_kwargs"]["method"]
    assert model.policy.features_extractor_kwargs["encoder_kwargs"] == {"num_filters": 16,
                                                                         "num_layers": 2}  # fmt: skip
