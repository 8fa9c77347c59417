"""kornia modules as rlrep augmentations: per stacked frame with shared parameters, dtype kept,
a deterministic eval view, reproducible, and usable through the SB3 plug-in."""

import kornia.augmentation as K
import pytest
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC

import rlrep.augment as A
from rlrep import envs
from rlrep.sb3 import policy_kwargs


def crop_and_jiggle():
    return K.AugmentationSequential(
        K.RandomCrop((24, 24), cropping_mode="resample"), K.ColorJiggle(0.4, 0.4, 0.4, 0.1)
    )


def test_one_frame_is_what_kornia_gives():
    module = crop_and_jiggle()
    x = torch.rand(6, 3, 32, 32)
    torch.manual_seed(0)
    ours = A.KorniaAugmentation(module, eval_view="center_crop").random(x)
    torch.manual_seed(0)
    torch.testing.assert_close(ours, module(x).clamp(0, 1))


def test_the_frames_of_a_sample_share_their_parameters():
    frame = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    x = frame.repeat(1, 3, 1, 1)  # three identical frames per sample
    y = A.make(crop_and_jiggle(), eval_view="center_crop", seed=0)(x)
    assert y.dtype == torch.uint8 and y.shape == (16, 9, 24, 24)
    assert torch.equal(y[:, :3], y[:, 3:6]) and torch.equal(y[:, :3], y[:, 6:])
    assert not torch.equal(y[0, :3], y[1, :3].roll(1, 0))  # samples get their own draws
    gray = A.make(K.RandomAffine(30.0), frame_channels=1, seed=0)(frame[:, :1].repeat(1, 4, 1, 1))
    assert all(torch.equal(gray[:, :1], gray[:, i : i + 1]) for i in range(1, 4))


def test_eval_views():
    x = torch.rand(2, 6, 32, 32)
    crop = A.make(crop_and_jiggle(), eval_view="center_crop").eval()
    torch.testing.assert_close(crop(x), x[..., 4:28, 4:28])
    resized = A.make(K.RandomResizedCrop((16, 16)), eval_view="resize").eval()
    expected = F.interpolate(x, (16, 16), mode="bilinear", antialias=True)
    torch.testing.assert_close(resized(x), expected)
    assert torch.equal(A.make(K.ColorJiggle(0.4, 0.4)).eval()(x), x)  # same size: identity
    with pytest.raises(ValueError, match="pass eval_view='center_crop'"):
        A.make(crop_and_jiggle()).eval()(x)


def test_a_seed_reproduces_the_views_and_leaves_the_global_rng_alone():
    x = torch.rand(4, 9, 32, 32)
    state = torch.get_rng_state()
    a = A.make(crop_and_jiggle(), eval_view="center_crop", seed=3)(x)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, A.make(crop_and_jiggle(), eval_view="center_crop", seed=3)(x))
    assert not torch.equal(a, A.make(crop_and_jiggle(), eval_view="center_crop", seed=4)(x))


def test_bad_modules_are_refused():
    with pytest.raises(TypeError, match=r"needs a kornia\.augmentation module"):
        A.KorniaAugmentation(torch.nn.Identity())
    with pytest.raises(ValueError, match="eval_view must be one of"):
        A.KorniaAugmentation(K.ColorJiggle(0.4), eval_view="middle")
    with pytest.raises(ValueError, match="not a whole number of 3-channel frames"):
        A.make(K.ColorJiggle(0.4))(torch.rand(2, 4, 8, 8))


def test_a_kornia_module_through_the_sb3_plug_in():
    env = envs.PointMassPixels(image_size=24, frame_stack=3)
    kwargs = policy_kwargs(
        method="curl", augmentation=K.RandomCrop((20, 20), cropping_mode="resample"),
        augmentation_kwargs={"eval_view": "center_crop"},
        encoder_kwargs={"num_filters": 8, "num_layers": 2}, net_arch=[16],
    )  # fmt: skip
    model = SAC("CnnPolicy", env, buffer_size=100, learning_starts=20, batch_size=8, seed=0,
                policy_kwargs=kwargs)  # fmt: skip
    extractor = model.critic.features_extractor
    assert extractor.view_shape == (9, 20, 20)
    model.learn(30)
    assert extractor.binding is not None  # the aux loss ran on kornia's crops


def test_a_colour_module_on_grayscale_frames_is_refused_with_rlreps_message():
    with pytest.raises(ValueError, match=r"kornia's ColorJiggle changes colours.*frame_channels=1"):
        A.make(K.ColorJiggle(0.4, 0.4, 0.4, 0.1), frame_channels=1)
    sequence = K.AugmentationSequential(K.RandomCrop((20, 20)), K.ColorJitter(0.2, 0.2, 0.2, 0.1))
    with pytest.raises(ValueError, match="AugmentationSequential changes colours"):
        A.make(sequence, frame_channels=1, eval_view="center_crop")
    A.make(K.RandomCrop((100, 100)), frame_channels=1, eval_view="center_crop")  # geometric
    # Brightness and contrast alone run on one channel: not refused.
    A.make(K.ColorJitter(0.2, 0.2), frame_channels=1)
