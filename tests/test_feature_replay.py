"""Feature replay (rlrep.sb3.FrozenEncoderFeatures): the features the frozen extractor computes,
once per observation; the random-init baseline of ``rlrep probe``; clear refusals."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import SAC
from torch import nn

from rlrep import envs
from rlrep.checkpoint import load_checkpoint
from rlrep.pretrain import pretrain
from rlrep.probes import load_probe_encoder
from rlrep.sb3 import FrozenEncoderFeatures, policy_kwargs

CROP = {"augmentation": "crop", "augmentation_kwargs": {"size": 20}}


def pixel_env(**kwargs):
    return envs.PointMassPixels(**{"image_size": 24, "random_target": True, **kwargs})


def observations(n=12, seed=0):
    """``(n, 9, 24, 24)`` uint8 observations of the synthetic task under random actions."""
    env, rng = pixel_env(), np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    while len(out) < n:
        obs, *_ = env.step(rng.uniform(-1, 1, 2))
        out.append(obs)
    return np.stack(out)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny SimCLR checkpoint on 24-px frames of the synthetic task, center view 20×20."""
    folder = tmp_path_factory.mktemp("frozen")
    data = folder / "frames.npz"
    np.savez(data, images=observations(64), states=np.zeros((64, 2), np.float32))
    pretrain(method="simclr", dataset=f"npz:{data}", epochs=1, batch_size=32, out=folder / "p",
             encoder_kwargs={"num_filters": 8, "num_layers": 2, "features_dim": 16},
             progress=False, eval_every=0, seed=3, **CROP)  # fmt: skip
    return folder / "p" / "checkpoint.pt"


def extractor_features(model, obs, training=False):
    """The actor's features of ``obs`` through SB3's own preprocessing (uint8 → / 255)."""
    model.policy.set_training_mode(training)
    tensor, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        return model.actor.extract_features(tensor, model.actor.features_extractor).numpy()


def test_wrapper_features_are_the_frozen_extractors_on_the_same_observations(checkpoint):
    model = SAC("CnnPolicy", pixel_env(), buffer_size=10, seed=0,
                policy_kwargs=policy_kwargs(pretrained=checkpoint, freeze=True, **CROP))  # fmt: skip
    wrapped = FrozenEncoderFeatures(pixel_env(), pretrained=checkpoint)
    assert wrapped.observation_space.shape == (16,)
    assert wrapped.observation_space.dtype == np.float32
    obs = observations()
    expected = extractor_features(model, obs)
    np.testing.assert_allclose(wrapped.encode(obs), expected, rtol=1e-5, atol=1e-6)
    # Stepping: each observation the env emits, encoded alone (a twin env gives the pixels).
    twin, rng = pixel_env(), np.random.default_rng(1)
    feats, _ = wrapped.reset(seed=5)
    pixels, _ = twin.reset(seed=5)
    for _ in range(5):
        assert feats.dtype == np.float32 and feats.shape == (16,)
        np.testing.assert_allclose(
            feats, extractor_features(model, pixels[None])[0], rtol=1e-5, atol=1e-6
        )
        action = rng.uniform(-1, 1, 2)
        feats, *_ = wrapped.step(action)
        pixels, *_ = twin.step(action)
    # Training mode: the deterministic RL view is the same function; the augmented one is not
    # (a fresh random crop per update: the documented difference).
    model_det = SAC("CnnPolicy", pixel_env(), buffer_size=10, seed=0,
                    policy_kwargs=policy_kwargs(pretrained=checkpoint, freeze=True,
                                                rl_view="deterministic", **CROP))  # fmt: skip
    np.testing.assert_allclose(
        extractor_features(model_det, obs, training=True), expected, rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(extractor_features(model, obs, training=True), expected, atol=1e-3)


def test_sac_on_features_stores_features_in_its_buffer(checkpoint):
    model = SAC("MlpPolicy", FrozenEncoderFeatures(pixel_env(), pretrained=checkpoint),
                buffer_size=100, learning_starts=20, batch_size=8, seed=0,
                policy_kwargs={"net_arch": [16]})  # fmt: skip
    model.learn(30)
    stored = model.replay_buffer.observations[: model.replay_buffer.pos]
    assert stored.dtype == np.float32 and stored.shape[1:] == (1, 16)


def test_flow_appends_the_change_since_the_episodes_previous_observation(checkpoint):
    """[z_t, z_t − z_{t−1}] against features of a twin env's pixels; zero flow after a reset,
    also one in the middle of the last episode's steps."""
    wrapped = FrozenEncoderFeatures(pixel_env(), pretrained=checkpoint, flow=True)
    assert wrapped.observation_space.shape == (32,)
    twin, rng = pixel_env(), np.random.default_rng(2)
    for episode in range(2):
        got, _ = wrapped.reset(seed=7 + episode)
        pixels, _ = twin.reset(seed=7 + episode)
        previous = None
        for _ in range(4):
            z = wrapped.encode(pixels[None])[0]
            flow = np.zeros_like(z) if previous is None else z - previous
            np.testing.assert_allclose(got, np.concatenate([z, flow]), rtol=1e-5, atol=1e-6)
            previous, action = z, rng.uniform(-1, 1, 2)
            got, *_ = wrapped.step(action)
            pixels, *_ = twin.step(action)
        assert np.abs(got[16:]).max() > 0  # the synthetic dot moves: the flow is not zero


def test_random_init_is_rlrep_probes_and_leaves_the_global_rng(checkpoint):
    _, augment, probe_encoder = load_probe_encoder(checkpoint, random_init=True, device="cpu")
    torch.rand(3)  # away from the state the probe's seeding left
    state = torch.random.get_rng_state()
    wrapped = FrozenEncoderFeatures(pixel_env(), pretrained=checkpoint, random_init=True)
    assert torch.equal(torch.random.get_rng_state(), state)
    probe_weights = probe_encoder.state_dict()
    weights = wrapped.encoder.state_dict()
    assert weights.keys() == probe_weights.keys()
    assert all(torch.equal(weights[k], probe_weights[k]) for k in weights)
    trained = load_checkpoint(checkpoint)["encoder"]
    assert any(not torch.equal(weights[k], trained[k]) for k in weights)
    obs = observations()
    with torch.no_grad():
        expected = probe_encoder.eval()(augment.deterministic(torch.as_tensor(obs)).float() / 255)
    np.testing.assert_allclose(wrapped.encode(obs), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_a_module_encoder_runs_in_eval_mode_without_learning():
    encoder = nn.Sequential(nn.Conv2d(9, 4, 3, stride=2), nn.BatchNorm2d(4), nn.Flatten(),
                            nn.Linear(4 * 11 * 11, 6))  # fmt: skip
    with torch.no_grad():
        encoder[1].running_mean.fill_(0.3)
        encoder[1].running_var.fill_(2.0)
    encoder.train()  # the wrapper must not use batch statistics nor update the running ones
    wrapped = FrozenEncoderFeatures(pixel_env(), encoder=encoder)
    obs = observations(4)
    encoder.train()
    feats = wrapped.encode(obs)
    assert torch.equal(encoder[1].running_mean, torch.full((4,), 0.3))
    with torch.no_grad():
        expected = encoder.eval()(torch.as_tensor(obs).float() / 255).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-6, atol=1e-6)
    assert wrapped.observation_space.shape == (6,) and wrapped.config is None


class FloatPixels(gym.ObservationWrapper):
    """Pixels already scaled to float [0, 1]."""

    def __init__(self, env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0.0, 1.0, env.observation_space.shape, np.float32)

    def observation(self, obs):
        return obs.astype(np.float32) / 255


def test_clear_errors(checkpoint):
    with pytest.raises(ValueError, match=r"FrozenEncoderFeatures: rlrep.sb3 needs uint8 pixel"):
        FrozenEncoderFeatures(FloatPixels(pixel_env()), pretrained=checkpoint)
    with pytest.raises(ValueError, match=r"needs image observations \(a Box of shape \(C, H, W\)"):
        FrozenEncoderFeatures(pixel_env(from_pixels=False), pretrained=checkpoint)
    with pytest.raises(ValueError, match=r"give views of shape \(6, 20, 20\).*takes \(9, 20, 20\)"):
        FrozenEncoderFeatures(pixel_env(frame_stack=2), pretrained=checkpoint)
    with pytest.warns(UserWarning, match=r"images of shape \(9, 24, 24\); this env's are"):
        FrozenEncoderFeatures(pixel_env(image_size=32), pretrained=checkpoint)
    with pytest.raises(ValueError, match=r"one of pretrained=.* or encoder="):
        FrozenEncoderFeatures(pixel_env())
    with pytest.raises(ValueError, match=r"one of pretrained=.* or encoder="):
        FrozenEncoderFeatures(pixel_env(), pretrained=checkpoint, encoder=nn.Flatten())
    with pytest.raises(ValueError, match=r"random_init=True .* pass pretrained="):
        FrozenEncoderFeatures(pixel_env(), encoder=nn.Flatten(), random_init=True)
    with pytest.raises(ValueError, match="cannot encode views of shape"):
        FrozenEncoderFeatures(pixel_env(), encoder=nn.Linear(3, 2))
    with pytest.raises(ValueError, match="no checkpoint at"):
        FrozenEncoderFeatures(pixel_env(), pretrained=checkpoint.parent / "nope.pt")
