"""The plug-in's ``decoupled=True`` means what ATC's (Stooke et al. 2021, ``stop_rl_conv_grad``)
and the ``atc-sac`` agent's means: the RL losses read the conv trunk's output detached, so they
train the encoder's head (fc + LayerNorm) and not the convs; the auxiliary loss trains both."""

import pytest
import torch
from stable_baselines3 import SAC

import rlrep.encoders as E
from rlrep import envs
from rlrep.sb3 import FrameStackReplayBuffer, policy_kwargs

SMALL = {"encoder_kwargs": {"num_filters": 4, "num_layers": 2}, "net_arch": [16, 16]}
ATC_KWARGS = {"latent_dim": 8, "hidden_dim": 16}


def env():
    return envs.PointMassPixels(image_size=24, frame_stack=3, episode_length=12)


def stock_sac(decoupled: bool) -> SAC:
    """SB3's own SAC ``CnnPolicy`` with ATC plugged in, its buffer filled and bound (one
    ``train()`` step, so that later forwards belong to a bound extractor)."""
    pk = policy_kwargs(method="atc", method_kwargs=ATC_KWARGS, decoupled=decoupled, **SMALL)
    m = SAC("CnnPolicy", env(), buffer_size=200, learning_starts=1000, batch_size=16, seed=0,
            replay_buffer_class=FrameStackReplayBuffer, policy_kwargs=pk)  # fmt: skip
    m.learn(40)  # random actions only: fills the buffer
    m.train(gradient_steps=1, batch_size=16)
    return m


@pytest.mark.parametrize("decoupled", [True, False])
def test_the_critic_loss_alone_trains_the_convs_only_when_coupled(decoupled):
    m = stock_sac(decoupled)
    encoder = m.critic.features_extractor.encoder
    convs, head = list(encoder.convs.parameters()), list(encoder.head.parameters())
    data = m.replay_buffer.sample(16)
    m.policy.set_training_mode(True)
    q1, q2 = m.critic(data.observations, data.actions)
    rl_loss = ((q1 - data.rewards) ** 2 + (q2 - data.rewards) ** 2).mean()  # no aux term
    grads = torch.autograd.grad(rl_loss, convs + head, allow_unused=True)
    conv_grads, head_grads = grads[: len(convs)], grads[len(convs) :]
    assert all(g is not None and g.abs().sum() > 0 for g in head_grads)  # fc + LayerNorm learn
    if decoupled:
        assert all(g is None for g in conv_grads)
    else:
        assert all(g is not None and g.abs().sum() > 0 for g in conv_grads)


def test_decoupled_the_aux_loss_trains_convs_and_head_once_per_step():
    m = stock_sac(decoupled=True)
    extractor = m.critic.features_extractor
    objective, encoder = extractor.objective, extractor.encoder
    calls = objective.calls
    m.policy.set_training_mode(True)
    data = m.replay_buffer.sample(16)
    m.critic(data.observations, data.actions)  # records the anchor, as in SAC's critic loss
    m.critic.optimizer.zero_grad()  # the binding's aux backward, before any RL backward
    assert objective.calls == calls + 1
    for module in (encoder.convs, encoder.head):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("name", list(E.ENCODERS))
def test_every_encoder_is_its_head_after_its_conv_trunk(name):
    shape = {"nature": (3, 36, 36), "resnet18": (3, 16, 16)}.get(name, (3, 24, 24))
    kwargs = {"resnet18": {"width": 2}, "impala": {"channels": (4, 4, 4)}}.get(name, {})
    encoder = E.make(name, shape, **kwargs)
    x = torch.rand(2, *shape)
    conv = encoder.forward_conv(x)
    assert conv.dim() == 2 and conv.shape[0] == 2
    torch.testing.assert_close(encoder.forward_head(conv), encoder(x))
