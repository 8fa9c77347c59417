"""The plug-in with sb3-contrib's TQC and QR-DQN (the ``contrib`` extra), as with SAC and DQN:
an auxiliary loss (temporal too) trains the encoder and logs ``aux/*``, and a saved model
loads with its objective and continues exactly. Their gradients: tests/test_sb3_gradients.py."""

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import configure

from rlrep import envs
from rlrep.sb3 import FrameStackReplayBuffer, policy_kwargs

contrib = pytest.importorskip("sb3_contrib")  # the whole module skips without the extra

SMALL = {"encoder_kwargs": {"num_filters": 8, "num_layers": 2}, "net_arch": [32], "n_quantiles": 5}
MOVES = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)


def make(name: str, method: str, seed: int = 0):
    env = envs.PointMassPixels(image_size=24, frame_stack=3)
    if name == "QRDQN":
        env = gym.wrappers.TransformAction(env, lambda a: MOVES[a], gym.spaces.Discrete(4))
    algo = getattr(contrib, name)
    return algo("CnnPolicy", env, buffer_size=300, learning_starts=40, batch_size=16, seed=seed,
                replay_buffer_class=FrameStackReplayBuffer,
                policy_kwargs=policy_kwargs(method=method, **SMALL))  # fmt: skip


@pytest.mark.parametrize(("name", "method"), [("TQC", "curl"), ("QRDQN", "atc")])
def test_an_aux_loss_trains_the_encoder_and_logs(name, method, tmp_path):
    model = make(name, method)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    extractor = (model.critic if name == "TQC" else model.policy.quantile_net).features_extractor
    optimizer = (model.critic if name == "TQC" else model.policy).optimizer
    encoder = extractor.encoder
    before = [p.detach().clone() for p in encoder.parameters()]
    model.learn(80, log_interval=1)
    assert extractor.binding.optimizer is optimizer
    assert any(not torch.equal(b, p) for b, p in zip(before, encoder.parameters(), strict=True))
    with open(tmp_path / "progress.csv") as f:
        losses = [float(r["aux/loss"]) for r in csv.DictReader(f) if r.get("aux/loss")]
    assert losses and all(np.isfinite(losses))


def test_tqc_saves_and_loads_its_objective_and_continues_exactly(tmp_path):
    model = make("TQC", "curl")
    model.learn(60)
    model.save(tmp_path / "model.zip")
    loaded = contrib.TQC.load(tmp_path / "model.zip", env=model.get_env())
    state = loaded.critic.features_extractor.get_extra_state()
    assert "method.W" in state["objective"] and state["optimizer"]["state"]
    loaded.replay_buffer = model.replay_buffer
    for m in (model, loaded):  # the same next updates: objective, heads' optimiser, RNG
        m.set_logger(configure(None, []))
        m.set_random_seed(3)
        m.train(gradient_steps=2, batch_size=16)
    for a, b in zip(model.critic.state_dict().values(), loaded.critic.state_dict().values(),
                    strict=True):  # fmt: skip
        if torch.is_tensor(a):
            assert torch.equal(a, b)
