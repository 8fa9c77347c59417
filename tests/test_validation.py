"""Bad input fails loudly: a ``ValueError`` naming what was expected and the fix, for
augmentations, encoders, losses, methods and the SB3 plug-in."""

import math
import re

import numpy as np
import pytest
import torch

import rlrep.augment as A
import rlrep.encoders as E
import rlrep.losses as L
import rlrep.methods as M
from rlrep import envs
from rlrep.augment.base import PixelRangeError
from rlrep.sb3 import RepresentationExtractor, policy_kwargs

RANGE = r"float images in \[0, 1\], got float values in"
AUG_KWARGS = {  # 20×20 inputs, 9 channels
    "crop": {"size": 16},
    "translate": {"size": 24},
    "cutout": {"min_size": 3, "max_size": 8},
    "resized_crop": {"size": 16},
    "simclr": {"size": 16},
}
ENCODER_SHAPES = {"curl": (9, 20, 20), "nature": (9, 36, 36), "impala": (3, 16, 16)}
ENCODER_SHAPES["resnet18"] = (3, 16, 16)


def small_encoder(shape=(9, 16, 16)):
    return E.PixelEncoder(shape, features_dim=8, num_layers=2, num_filters=4)


def images(b=4, c=9, h=20, w=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, h, w, generator=g)


# --- pixel range -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(A.AUGMENTATIONS))
@pytest.mark.parametrize("entry", ["forward", "random", "deterministic", "eval_forward"])
def test_every_augmentation_rejects_float_pixels_outside_0_1(name, entry):
    aug = A.make(name, **AUG_KWARGS.get(name, {}))
    raw = images() * 255  # raw 0–255 floats: jitter would saturate, solarize give −254
    if entry == "eval_forward":
        aug.eval()
    call = aug if entry.endswith("forward") else getattr(aug, entry)
    with pytest.raises(PixelRangeError, match=RANGE + r" .*divide by 255 or pass uint8"):
        call(raw)
    negative = images()
    negative[0, 0, 0, 0] = -0.5
    with pytest.raises(ValueError, match=r"float values in \[-0\.5, "):
        call(negative)
    # a single step (not through make's Compose) checks too
    step = A.AUGMENTATIONS[name](**AUG_KWARGS.get(name, {}))
    with pytest.raises(ValueError, match=RANGE):
        step(raw)
    call(images())  # in range: fine
    call((images() * 255).to(torch.uint8))


def test_range_check_tolerance_nan_and_empty_identity():
    aug = A.make("shift")
    aug(images().clamp(0, 1) * (1 + 5e-4))  # within the 1e-3 tolerance
    with pytest.raises(ValueError, match=RANGE):
        aug(images() * 1.01)
    x = images()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"\[nan, nan\]"):
        aug(x)
    with pytest.raises(ValueError, match=RANGE):  # the identity checks too
        A.make(None)(images() * 255)


def test_compose_checks_the_range_once_for_all_steps(monkeypatch):
    calls = []
    aminmax = torch.aminmax
    monkeypatch.setattr(torch, "aminmax", lambda x: calls.append(1) or aminmax(x))
    aug = A.make("simclr", size=16)
    aug(images())
    assert len(calls) == 1, "one aminmax per call, not one per step"
    aug.eval()(images())
    assert len(calls) == 2
    A.make("crop", size=16)((images() * 255).to(torch.uint8))
    assert len(calls) == 2, "uint8 needs no check"


@pytest.mark.parametrize("name", list(E.ENCODERS))
def test_every_encoder_rejects_float_pixels_outside_0_1(name):
    shape = ENCODER_SHAPES[name]
    enc = E.make(name, shape).eval()
    with pytest.raises(PixelRangeError, match=RANGE + r" .*divide by 255 or pass uint8"):
        enc(images(2, *shape) * 255)
    enc(images(2, *shape))


# --- encoder input -----------------------------------------------------------------------------


def test_encoder_rejects_the_wrong_spatial_size_and_names_the_fix():
    enc = E.make("curl", (9, 84, 84))
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 9, 84, 84\)") as info:
        enc(torch.zeros(2, 9, 100, 100, dtype=torch.uint8))
    assert "crop or resize them to 84×84 first" in str(info.value)
    assert "observation_shape=(9, 100, 100)" in str(info.value)
    for name in ("nature", "impala"):
        with pytest.raises(ValueError, match="crop or resize"):
            E.make(name, (9, 64, 64))(torch.zeros(2, 9, 72, 72, dtype=torch.uint8))
    # ResNet-18 ends in a global average pool: any size works
    assert E.make("resnet18", (3, 16, 16)).eval()(torch.rand(2, 3, 24, 24)).shape == (2, 512)


def test_encoder_rejects_the_wrong_channels_rank_and_an_empty_batch():
    enc = small_encoder()
    with pytest.raises(ValueError, match=r"build the encoder with observation_shape=\(3, 16, 16\)"):
        enc(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        enc(torch.rand(9, 16, 16))
    with pytest.raises(ValueError, match=r"permute\(0, 3, 1, 2\)"):
        enc(torch.rand(2, 16, 16, 9))
    with pytest.raises(ValueError, match=r"empty batch.*at least one image"):
        enc(torch.rand(0, 9, 16, 16))


def test_encoder_dtypes_int_rejected_float64_cast():
    enc = small_encoder()
    x = torch.randint(0, 256, (2, 9, 16, 16))
    with pytest.raises(
        ValueError, match=r"got dtype torch.int64; convert with obs.to\(torch.uint8\)"
    ):
        enc(x)
    out = enc(x.double() / 255)  # numpy's default float64 is cast to the weights' dtype
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, enc(x.to(torch.uint8)))


# --- augmentation parameters and input ---------------------------------------------------------


@pytest.mark.parametrize("size", [0, -4, 84.5, "84", True, (84,), (16, 0)])
def test_crop_size_must_be_a_positive_integer(size):
    with pytest.raises(ValueError, match=r"RandomCrop: size must be an integer >= 1"):
        A.make("crop", size=size)


def test_crop_accepts_integral_sizes_and_rejects_crops_larger_than_the_image():
    assert A.RandomCrop(16.0).size == (16, 16) and A.RandomCrop(np.int64(16)).size == (16, 16)
    with pytest.raises(ValueError, match=r"larger than the images 20×20.*smaller size"):
        A.make("crop", size=24)(images())


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: A.make("translate", size=0), "RandomTranslate: size"),
        (lambda: A.make("resized_crop", size=-1), "RandomResizedCrop: size"),
        (lambda: A.make("simclr", size=32.5), "RandomResizedCrop: size"),
        (lambda: A.make("shift", pad=-1), "RandomShift: pad must be an integer >= 0"),
        (lambda: A.make("shift", pad=2.5), "RandomShift: pad must be an integer >= 0"),
        (lambda: A.make("cutout", min_size=0), "Cutout: min_size must be an integer >= 1"),
        (lambda: A.make("cutout", max_size=7.5), "Cutout: max_size must be an integer >= 1"),
        (lambda: A.make("blur", kernel_size=0), "GaussianBlur: kernel_size must be an integer"),
        (lambda: A.make("blur", kernel_size=4), "kernel_size must be odd.*pass e.g. 5"),
        (lambda: A.make("blur", sigma=(0.0, 1.0)), "GaussianBlur: need 0 < sigma"),
        (lambda: A.make("resized_crop", ratio=(0.0, 1.0)), "RandomResizedCrop: need 0 < ratio"),
        (lambda: A.make("flip", p=1.5), r"RandomFlip: p must be a probability in \[0, 1\]"),
        (lambda: A.make("rotate", p=-0.1), "RandomRotate: p must be a probability"),
        (lambda: A.make("grayscale", p=2), "RandomGrayscale: p must be a probability"),
        (lambda: A.make("solarize", p=math.nan), "RandomSolarize: p must be a probability"),
        (lambda: A.make("color_jitter", p=1.2), "ColorJitter: p must be a probability"),
    ],
)
def test_bad_augmentation_parameters_raise_at_construction(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_augmentation_input_empty_batch_and_bad_dtype():
    with pytest.raises(ValueError, match=r"empty batch.*at least one image"):
        A.make("conv")(torch.zeros(0, 9, 20, 20, dtype=torch.uint8))
    with pytest.raises(
        ValueError, match=r"got dtype torch.int64; convert with x.to\(torch.uint8\)"
    ):
        A.make("crop", size=16)(torch.zeros(2, 9, 20, 20, dtype=torch.int64))


def test_unknown_augmentation_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown augmentation 'sharpen'") as info:
        A.make("crop+sharpen")
    assert all(name in str(info.value) for name in A.AUGMENTATIONS)


# --- losses ------------------------------------------------------------------------------------

BAD_TEMPERATURES = [0.0, -0.5, math.nan, math.inf, None]


@pytest.mark.parametrize("temperature", BAD_TEMPERATURES)
@pytest.mark.parametrize(
    "loss",
    [
        lambda t: L.info_nce(torch.randn(4, 3), torch.randn(4, 3), temperature=t),
        lambda t: L.info_nce_logits(torch.randn(4, 3), torch.randn(4, 3), temperature=t),
        lambda t: L.nt_xent(torch.randn(4, 3), torch.randn(4, 3), temperature=t),
        lambda t: L.nt_xent_logits(torch.randn(4, 3), torch.randn(4, 3), temperature=t),
        lambda t: L.moco(torch.randn(4, 3), torch.randn(4, 3), torch.randn(6, 3), t),
        lambda t: L.moco_logits(torch.randn(4, 3), torch.randn(4, 3), torch.randn(6, 3), t),
    ],
)
def test_losses_reject_a_temperature_that_is_not_finite_and_positive(loss, temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        loss(temperature)


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        (lambda z1, z2: L.info_nce(z1, z2), "info_nce: needs a batch of at least 2"),
        (lambda z1, z2: L.info_nce(z1, z2, W=torch.eye(3)), "negatives"),
        (lambda z1, z2: L.nt_xent(z1, z2), "nt_xent: needs a batch of at least 2"),
        (lambda z1, z2: L.barlow_twins(z1, z2), "barlow_twins: needs a batch of at least 2"),
        (lambda z1, z2: L.vicreg(z1, z2), "vicreg: needs a batch of at least 2"),
    ],
)
def test_in_batch_losses_need_two_samples(loss, message):
    # With N = 1 these returned 0 (or NaN) and trained nothing.
    with pytest.raises(ValueError, match=message + r".*use a batch size >= 2"):
        loss(torch.randn(1, 3), torch.randn(1, 3))
    assert torch.isfinite(loss(torch.randn(2, 3), torch.randn(2, 3)))


def test_moco_loss_takes_one_sample_but_not_an_empty_queue_or_batch():
    assert torch.isfinite(L.moco(torch.randn(1, 3), torch.randn(1, 3), torch.randn(5, 3)))
    with pytest.raises(ValueError, match="queue is empty"):
        L.moco(torch.randn(2, 3), torch.randn(2, 3), torch.randn(0, 3))
    with pytest.raises(ValueError, match="at least 1 samples"):
        L.moco(torch.randn(0, 3), torch.randn(0, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="empty batch"):
        L.byol(torch.randn(0, 3), torch.randn(0, 3))


# --- methods -----------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", BAD_TEMPERATURES)
@pytest.mark.parametrize("name", ["simclr", "moco"])
def test_methods_reject_a_bad_temperature_at_construction(name, temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        M.make(name, small_encoder(), temperature=temperature)


@pytest.mark.parametrize("queue_size", [0, -8, 2.5, True, "4096"])
def test_moco_queue_size_must_be_a_positive_integer(queue_size):
    with pytest.raises(ValueError, match="MoCo: queue_size must be an integer >= 1"):
        M.MoCo(small_encoder(), queue_size=queue_size)


@pytest.mark.parametrize("name", ["curl", "moco", "byol"])
def test_momentum_is_checked_at_construction(name):
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
        M.make(name, small_encoder(), momentum=1.5)


@pytest.mark.parametrize("name", ["curl", "simclr", "barlow_twins", "vicreg"])
def test_in_batch_methods_need_two_samples(name):
    method = M.make(name, small_encoder())
    x = torch.rand(1, 9, 16, 16)
    with pytest.raises(ValueError, match="needs a batch of at least 2"):
        method(x, x)


def test_methods_check_the_pixel_range_of_their_views():
    method = M.make("curl", small_encoder())
    with pytest.raises(PixelRangeError, match=RANGE):
        method(torch.rand(4, 9, 16, 16) * 255, torch.rand(4, 9, 16, 16) * 255)


# --- SB3 plug-in -------------------------------------------------------------------------------


@pytest.mark.parametrize("aux_weight", [math.nan, math.inf, -1.0, "1", True, 1e38])
def test_aux_weight_must_be_finite_non_negative_and_not_absurd(aux_weight):
    with pytest.raises(ValueError, match=r"aux_weight must be a number in \[0, 1000\]"):
        policy_kwargs(method="curl", aux_weight=aux_weight)
    space = envs.PointMassPixels(image_size=24, frame_stack=3).observation_space
    with pytest.raises(ValueError, match=r"aux_weight must be a number in \[0, 1000\]"):
        RepresentationExtractor(space, method="curl", aux_weight=aux_weight)


def test_policy_kwargs_refuses_normalize_images_false():
    with pytest.raises(ValueError, match=r"normalize_images=False.*drop normalize_images"):
        policy_kwargs(method="curl", normalize_images=False)


def test_raw_pixels_through_sb3_name_normalize_images():
    from stable_baselines3 import PPO

    env = envs.PointMassPixels(image_size=24, frame_stack=3)
    kwargs = policy_kwargs(method="curl", encoder_kwargs={"num_filters": 4, "num_layers": 2})
    kwargs["normalize_images"] = False  # bypassing policy_kwargs' own check
    model = PPO("CnnPolicy", env, n_steps=16, batch_size=8, policy_kwargs=kwargs, seed=0)
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match=RANGE + r" .*normalize_images=True"):
        model.predict(obs, deterministic=True)
    extractor = model.policy.features_extractor
    extractor.train()
    raw = torch.as_tensor(np.stack([obs, obs])).float()
    with pytest.raises(ValueError, match="normalize_images"):
        extractor(raw)
    assert extractor(raw / 255).shape == (2, extractor.features_dim)


def test_extractor_checks_the_range_once_per_forward(monkeypatch):
    from stable_baselines3 import SAC

    from rlrep.sb3 import policy_kwargs
    from rlrep.sb3.binding import bind_policy

    model = SAC(
        "CnnPolicy", envs.PointMassPixels(image_size=24, frame_stack=3), buffer_size=100,
        policy_kwargs=policy_kwargs(method="curl", encoder_kwargs={"num_filters": 4, "num_layers": 2}),
    )  # fmt: skip
    bind_policy(model)  # as inside SB3's train()
    extractor = model.critic.features_extractor.train()
    calls = []
    aminmax = torch.aminmax
    monkeypatch.setattr(torch, "aminmax", lambda x: calls.append(1) or aminmax(x))
    features = extractor(torch.rand(4, 9, 24, 24))
    model.critic.optimizer.zero_grad()  # the aux loss: a second view, two more encoder passes
    features.sum().backward()
    assert len(calls) == 1  # one check for the batch, none for its views


# --- inputs checked before anything runs (issue 25, findings 8-10) ----------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "inf"], "cannot read 'inf' as a whole, finite number of frames"),
        (["--steps", "nan"], "cannot read 'nan' as a whole, finite number of frames"),
        (["--eval-every", "1e400"], "cannot read '1e400' as a whole, finite"),
        (["--steps", "100.5"], "cannot read '100.5' as a whole"),
        (["--device", "foo"], "unknown device 'foo'; expected auto, cpu, cuda or cuda:N"),
        (["--seed", "-1"], r"seed must be an integer in \[0, 2\*\*31\), got -1"),
        (["--agent", "ppo-aux", "--set", "n_envs=2.5"], "n_envs must be a whole number, got 2.5"),
    ],
)
def test_bad_train_flags_are_refused_before_anything_is_written(tmp_path, capsys, argv, message):
    from rlrep.cli import main

    out = tmp_path / "run"
    assert main(["train", "--env", "point_mass_pixels", "--out", str(out), *argv]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()  # not even a folder holding only the lock


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", ["train", "pretrain", "probe"])
def test_cuda_on_a_machine_without_it_is_refused(tmp_path, capsys, command):
    from rlrep.cli import main

    argv = {"train": ["train", "--env", "point_mass_pixels", "--out", str(tmp_path / "r")],
            "pretrain": ["pretrain", "--out", str(tmp_path / "r")],
            "probe": ["probe", str(tmp_path / "checkpoint.pt")]}[command]  # fmt: skip
    assert main([*argv, "--device", "cuda"]) == 2
    assert "this machine has 0 CUDA device(s)" in capsys.readouterr().err


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    from rlrep.cli import main

    (tmp_path / "f").write_text("a user's file")
    assert main(["train", "--env", "point_mass_pixels", "--out", str(tmp_path / "f")]) == 2
    assert "is a file, not a run folder" in capsys.readouterr().err
    assert (tmp_path / "f").read_text() == "a user's file"


def test_images_too_small_for_the_encoder_are_refused_before_rendering(tmp_path, monkeypatch):
    import rlrep.pretrain
    from rlrep.pretrain import pretrain

    def no_loading(*args, **kwargs):
        raise AssertionError("the dataset was loaded (rendered) before the size check")

    monkeypatch.setattr(rlrep.pretrain, "load_dataset", no_loading)
    with pytest.raises(ValueError, match=r"image_size 8 is too small .* at least 15×15"):
        pretrain(dataset="dmc:cartpole-swingup", image_size=8, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("agent", "overrides", "message"),
    [
        ("drqv2", {"pad": 100, "image_size": 40}, "pad 100 is half the 40-px image or more"),
        ("drq", {"buffer_size": 64, "batch_size": 128}, "buffer_size 64 < batch_size 128"),
        ("spr-sac", {"spr_weight": 1e38}, r"spr_weight 1e\+38 is outside \[0, 1000\]"),
    ],
)
def test_options_absurd_together_are_refused(agent, overrides, message):
    from rlrep.agents.presets import config_for

    with pytest.raises(ValueError, match=message):
        config_for(agent, "cartpole-swingup", **overrides)
