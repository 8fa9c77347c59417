"""rl-zoo3 runs rlrep from the committed plain YAML files (``experiments/zoo/*.yml``): its own
``train`` and ``enjoy`` entry points, in fresh interpreters, with ``--gym-packages rlrep``."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rl_zoo3")

from stable_baselines3.common.save_util import load_from_zip_file

from rlrep.pretrain import pretrain
from tests.test_pretrain import TINY, env_frames

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
        "  n_timesteps: 64\n  n_envs: 2\n  n_steps: 32\n  batch_size: 32\n  policy: CnnPolicy\n"
        f"  policy_kwargs: \"__import__('rlrep.sb3').sb3.policy_kwargs(method='curl', "
        f"pretrained='{checkpoint}', net_arch=[16])\"\n"
        "  env_kwargs:\n    image_size: 24\n"
    )
    out = zoo("train", "--algo", "ppo", "-conf", str(tmp_path / "ppo.yml"), "-f",
              str(tmp_path / "logs"), "--eval-freq", "-1", cwd=tmp_path)  # fmt: skip
    assert "tensor(" not in out  # the weights are not printed ...
    (config,) = (tmp_path / "logs").glob("ppo/*_1/*/config.yml")
    assert str(checkpoint) in config.read_text() and config.stat().st_size < 4000
    # ... nor kept in the policy kwargs SB3 saves with the model: those name the file; the
    # weights are the model's own parameters.
    (model,) = (tmp_path / "logs").glob("ppo/*_1/*.zip")
    data, params, _ = load_from_zip_file(model)
    kept = data["policy_kwargs"]["features_extractor_kwargs"]["pretrained"]
    assert set(kept) == {"path", "config"} and kept["path"] == str(checkpoint)
    assert any(k.startswith("features_extractor.encoder.") for k in params["policy"])
