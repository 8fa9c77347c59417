"""Through each stock SB3 algorithm's own ``train()``, the auxiliary loss adds
``aux_weight × g_aux`` to the encoder's gradient: with plain SGD and everything else equal, the
encoder's step is affine in ``aux_weight`` with a non-zero slope. Checked end to end, whatever the
mechanism that attaches the loss (a loss forced off, a wrong weight or a zero gradient fails)."""

import io

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3

from rlrep import envs
from rlrep.sb3 import FrameStackReplayBuffer, SharedEncoderSACPolicy, policy_kwargs

LR = 0.05
MOVES = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)


def make_env(discrete: bool):
    env = envs.PointMassPixels(image_size=24, frame_stack=3)
    if discrete:  # DQN needs discrete actions: four moves
        env = gym.wrappers.TransformAction(env, lambda a: MOVES[a], gym.spaces.Discrete(4))
    return env


def kwargs_for(algo, method, aux_weight):
    pk = policy_kwargs(
        method=method, aux_weight=aux_weight, encoder_kwargs={"num_filters": 4, "num_layers": 2},
        net_arch=[16], optimizer_class=torch.optim.SGD, optimizer_kwargs={},
    )  # fmt: skip
    kw = {"seed": 0, "learning_rate": LR, "policy_kwargs": pk}
    if algo in (SAC, TD3, DQN):
        kw.update(buffer_size=100, learning_starts=40, batch_size=16,
                  replay_buffer_class=FrameStackReplayBuffer)  # fmt: skip
    if algo is DQN:
        kw.update(max_grad_norm=1e9)  # no clipping: the step stays linear in the gradient
    if algo is PPO:
        kw.update(n_steps=16, batch_size=16, n_epochs=1, max_grad_norm=1e9)
    if algo is A2C:
        kw.update(n_steps=16, max_grad_norm=1e9)
    return kw


def encoder_step(algo, method, aux_weight, saved, collected) -> torch.Tensor:
    """The change of the (critic's) encoder over one ``train()`` from the saved state."""
    saved.seek(0)
    model = algo.load(saved, env=make_env(algo is DQN), custom_objects={
        "policy_kwargs": kwargs_for(algo, method, aux_weight)["policy_kwargs"]})  # fmt: skip
    model.set_logger(collected.logger)
    if algo in (PPO, A2C):
        model.rollout_buffer = collected.rollout_buffer
    else:
        model.replay_buffer = collected.replay_buffer
    owner = {SAC: "critic", TD3: "critic", DQN: "q_net"}.get(algo)  # PPO/A2C: the policy's own
    encoder = (getattr(model.policy, owner) if owner else model.policy).features_extractor.encoder
    before = torch.cat([p.detach().flatten().clone() for p in encoder.parameters()])
    torch.manual_seed(7)  # the same views, noise and minibatches for every weight
    np.random.seed(7)
    if algo in (PPO, A2C):
        model.train()
    else:
        model.train(gradient_steps=1, batch_size=16)
    after = torch.cat([p.detach().flatten() for p in encoder.parameters()])
    return after - before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algo", "policy", "method"),
    [
        (SAC, "CnnPolicy", "curl"),
        (SAC, SharedEncoderSACPolicy, "byol"),
        (TD3, "CnnPolicy", "simclr"),
        (DQN, "CnnPolicy", "barlow_twins"),
        (PPO, "CnnPolicy", "simclr"),
        (A2C, "CnnPolicy", "vicreg"),
    ],
)
def test_the_aux_loss_adds_weight_times_its_gradient_to_the_encoder_step(algo, policy, method):
    model = algo(policy, make_env(algo is DQN), **kwargs_for(algo, method, 1.0))
    if algo in (PPO, A2C):  # one rollout, no update yet
        _, callback = model._setup_learn(16, callback=None)
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=16)
    else:
        model.learn(40)  # fills the buffer; learning starts after 40 steps
    saved = io.BytesIO()
    model.save(saved)
    steps = {w: encoder_step(algo, method, w, saved, model) for w in (1.0, 2.0, 3.0)}
    slope = (steps[3.0] - steps[1.0]) / 2
    assert slope.abs().max() > 1e-6  # the aux loss moves the encoder
    # float32 rounding grows with the step (Barlow Twins' DQN step reaches 19: 2e-5 here).
    scale = max(1.0, slope.abs().max().item())
    torch.testing.assert_close(steps[2.0] - steps[1.0], slope, atol=1e-6 * scale, rtol=1e-3)
