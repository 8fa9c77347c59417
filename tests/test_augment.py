"""Augmentations against independent computations: windows, pads, hand-worked colours."""

import numpy as np
import pytest
import torch

import rlrep.augment as A
from rlrep.augment.photometric import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
)

SINGLE = [n for n in A.AUGMENTATIONS if n != "simclr"]
KWARGS = {
    "crop": {"size": 16},
    "translate": {"size": 24},
    "cutout": {"min_size": 3, "max_size": 8},
    "resized_crop": {"size": 16},
    "simclr": {"size": 16},
    "flip": {"p": 0.5},
    "rotate": {"p": 0.7},
    "grayscale": {"p": 0.5},
}


def images(b=8, k=3, h=20, w=20, dtype=torch.uint8, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (b, 3 * k, h, w), generator=g, dtype=torch.uint8)
    x = x if dtype == torch.uint8 else x.to(dtype) / 255
    return x.to(device)


def test_crop_equals_a_window_of_its_input(device):
    x = images(b=16, device=device)
    out = A.RandomCrop(16, seed=1)(x)
    assert out.shape == (16, 9, 16, 16) and out.dtype == torch.uint8
    offsets = set()
    for i in range(16):
        hits = [
            (t, c)
            for t in range(5)
            for c in range(5)
            if torch.equal(out[i], x[i, :, t : t + 16, c : c + 16])
        ]
        assert len(hits) == 1, f"sample {i} is not a window of its input"
        offsets.add(hits[0])
    assert len(offsets) > 3, "offsets should vary across the batch"


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_crop_windows_matches_a_loop(dtype, device):
    x = images(b=6, dtype=dtype, device=device)
    top = torch.tensor([0, 4, 2, 1, 3, 0], device=device)
    left = torch.tensor([4, 0, 1, 3, 2, 0], device=device)
    out = A.crop_windows(x, top, left, (16, 13))
    expected = torch.stack(
        [x[i, :, top[i] : top[i] + 16, left[i] : left[i] + 13] for i in range(6)]
    )
    assert torch.equal(out, expected)


def test_crop_windows_large_batch_threaded_path_and_gradient():
    x = images(b=256, h=100, w=100)  # > 4 MiB of output: the two-thread CPU path
    top, left = torch.randint(0, 17, (256,)), torch.randint(0, 17, (256,))
    out = A.crop_windows(x, top, left, (84, 84))
    for i in (0, 127, 128, 255):
        assert torch.equal(out[i], x[i, :, top[i] : top[i] + 84, left[i] : left[i] + 84])
    xf = images(b=2, dtype=torch.float32).requires_grad_()
    A.crop_windows(xf, torch.tensor([1, 2]), torch.tensor([0, 3]), (16, 16)).sum().backward()
    assert xf.grad[0, :, 1:17, 0:16].eq(1).all() and xf.grad.sum() == 2 * 9 * 16 * 16


def test_shift_equals_replicate_pad_then_crop():
    x = images(b=8)
    out = A.RandomShift(pad=4, seed=3)(x)
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (4, 4), (4, 4)), mode="edge")
    for i in range(8):
        hits = [
            (t, c)
            for t in range(9)
            for c in range(9)
            if np.array_equal(out[i].numpy(), padded[i, :, t : t + 20, c : c + 20])
        ]
        assert hits, f"sample {i} is not a shift of its input"


def test_translate_pastes_the_image_on_a_zero_canvas():
    x = images(b=6) | 1  # no zero pixels, so the canvas border is unambiguous
    out = A.RandomTranslate(size=24, seed=0)(x)
    assert out.shape == (6, 9, 24, 24)
    for i in range(6):
        nz = out[i].sum(0).nonzero()
        top, left = nz.min(0).values.tolist()
        assert torch.equal(out[i, :, top : top + 20, left : left + 20], x[i])
        assert out[i].sum() == x[i].sum()
    center = A.RandomTranslate(size=24).eval()(x)
    assert torch.equal(center[:, :, 2:22, 2:22], x)


def test_flip_and_rotate_give_one_of_their_transforms():
    x = images(b=16)
    assert torch.equal(A.RandomFlip(p=1.0)(x), x.flip(3))
    assert torch.equal(A.RandomFlip(p=0.0)(x), x)
    out = A.RandomRotate(p=1.0, seed=0)(x)
    turns = []
    for i in range(16):
        ks = [k for k in (1, 2, 3) if torch.equal(out[i], x[i].rot90(k, (1, 2)))]
        assert len(ks) == 1
        turns.append(ks[0])
    assert len(set(turns)) > 1
    assert torch.equal(A.RandomRotate(p=0.0)(x), x)


def test_cutout_erases_one_box_of_allowed_size():
    x = images(b=8) | 1
    out = A.Cutout(min_size=3, max_size=8, seed=0)(x)
    for i in range(8):
        changed = (out[i] != x[i]).any(0)
        rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert 3 <= h <= 8 and 3 <= w <= 8
        assert changed.sum() == h * w  # a full rectangle
        assert out[i][:, changed].eq(0).all()


def test_grayscale_uses_itu_weights():
    x = images(b=4, dtype=torch.float64)
    out = A.RandomGrayscale(p=1.0)(x).view(4, 3, 3, 20, 20)
    r, g, b = x.view(4, 3, 3, 20, 20).unbind(2)
    gray = 0.299 * r + 0.587 * g + 0.114 * b
    for c in range(3):
        torch.testing.assert_close(out[:, :, c], gray, atol=1e-6, rtol=0)


def test_colour_functions_hand_worked():
    red = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    red[:, 0] = 1.0
    green = torch.zeros_like(red)
    green[:, 1] = 1.0
    torch.testing.assert_close(adjust_hue(red, torch.tensor([1 / 3])), green, atol=1e-6, rtol=0)
    torch.testing.assert_close(adjust_hue(red, torch.tensor([0.0])), red, atol=1e-6, rtol=0)
    # Saturation 0 is the gray image; contrast 0 is the mean gray everywhere.
    x = images(b=2, k=1, dtype=torch.float64)
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    torch.testing.assert_close(
        adjust_saturation(x, torch.zeros(2)), gray.expand_as(x), atol=1e-6, rtol=0
    )
    mean = gray.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)
    torch.testing.assert_close(adjust_contrast(x, torch.zeros(2)), mean, atol=1e-6, rtol=0)
    # Factors between: torchvision's blends f·x + (1 − f)·reference, clamped to [0, 1].
    f = torch.tensor([0.5, 1.8], dtype=torch.float64).view(2, 1, 1, 1)
    torch.testing.assert_close(adjust_contrast(x, f.view(2)), (f * x + (1 - f) * mean).clamp(0, 1))
    torch.testing.assert_close(
        adjust_saturation(x, f.view(2)), (f * x + (1 - f) * gray).clamp(0, 1)
    )
    torch.testing.assert_close(adjust_brightness(x, f.view(2)), (f * x).clamp(0, 1))


def test_brightness_jitter_scales_each_sample_by_one_factor():
    x = images(b=8, dtype=torch.float64) * 0.5 + 0.25  # no clamping at 0.4 jitter
    out = A.ColorJitter(brightness=0.4, contrast=0, saturation=0, hue=0, seed=0)(x)
    ratio = out / x
    per_sample = ratio.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-9)
    assert per_sample[:, 0].min() >= 0.6 and per_sample[:, 0].max() <= 1.4
    assert per_sample[:, 0].std() > 0.01


def test_solarize_and_identity_resized_crop_hand_worked():
    x = torch.tensor([0.1, 0.5, 0.9]).view(1, 3, 1, 1).expand(1, 3, 4, 4).contiguous()
    out = A.RandomSolarize(threshold=0.5, p=1.0)(x)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.1, 0.5, 0.1]))
    y = images(b=3, dtype=torch.float64)
    full = A.RandomResizedCrop(20, scale=(1.0, 1.0), ratio=(1.0, 1.0))(y)
    torch.testing.assert_close(full, y, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["blur", "solarize"])
def test_blur_and_solarize_change_exactly_the_chosen_samples(name):
    from kornia.filters import gaussian_blur2d

    x = images(b=64, dtype=torch.float32)
    out = A.make(name, p=0.5, seed=0, **({"kernel_size": 5} if name == "blur" else {}))(x)
    # The draws Sampler makes from the generator the seed gives: sigma (blur), then the choice.
    g = torch.Generator().manual_seed(0)
    sigma = torch.rand(64, generator=g) * 1.9 + 0.1 if name == "blur" else None
    chosen = torch.rand(64, generator=g) < 0.5
    if name == "blur":
        sigma2 = sigma.view(-1, 1).expand(64, 2).contiguous()
        expected = gaussian_blur2d(x, (5, 5), sigma2)  # all channels at once, every sample
    else:
        expected = torch.where(x >= 0.5, 1 - x, x)
    expected = torch.where(chosen.view(-1, 1, 1, 1), expected, x)
    assert 16 < chosen.sum() < 48
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(A.AUGMENTATIONS))
def test_frames_of_a_sample_share_parameters(name, device):
    frame = images(b=8, k=1, device=device)
    x = frame.repeat(1, 3, 1, 1)  # three identical frames per sample
    out = A.make(name, seed=0, **KWARGS.get(name, {}))(x)
    f0, f1, f2 = out.chunk(3, dim=1)
    assert torch.equal(f0, f1) and torch.equal(f1, f2), f"{name} treats frames differently"


@pytest.mark.parametrize("name", list(A.AUGMENTATIONS))
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_seeded_reproducible_dtype_kept_eval_deterministic(name, dtype, device):
    x = images(dtype=dtype, device=device)
    kw = KWARGS.get(name, {})
    a, b = A.make(name, seed=7, **kw), A.make(name, seed=7, **kw)
    out = a(x)
    assert out.dtype == dtype and out.device == x.device
    assert torch.equal(out, b(x))
    g1 = torch.Generator(device=device).manual_seed(3)
    g2 = torch.Generator(device=device).manual_seed(3)
    c = A.make(name, **kw)
    assert torch.equal(c(x, generator=g1), c(x, generator=g2))
    c.eval()
    assert torch.equal(c(x), c(x))
    if dtype == torch.float32:
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(
    "name",
    ["shift", "cutout", "color_jitter", "grayscale", "flip", "rotate", "conv", "blur", "solarize"],
)
def test_eval_view_is_identity_for_all_but_crops(name):
    x = images()
    assert torch.equal(A.make(name, **KWARGS.get(name, {})).eval()(x), x)


def test_eval_crop_is_the_center_crop():
    x = images(h=21, w=20)
    out = A.make("crop", size=16).eval()(x)
    assert torch.equal(out, x[:, :, 2:18, 2:18])


def test_different_seeds_differ_and_training_is_random():
    x = images()
    aug = A.make("crop+color_jitter", size=16)
    assert not torch.equal(aug(x), aug(x))
    assert not torch.equal(A.make("crop", size=16, seed=1)(x), A.make("crop", size=16, seed=2)(x))


def test_compose_applies_steps_in_order():
    x = images()
    out = A.make("crop+grayscale", size=16, p=1.0, seed=0)(x)
    assert out.shape == (8, 9, 16, 16)
    v = out.view(8, 3, 3, 16, 16)
    assert (v[:, :, 0] == v[:, :, 1]).all()


def test_cuda_crop_matches_cpu_with_the_same_offsets():
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    x = images(b=64, h=100, w=100)
    top, left = torch.randint(0, 17, (64,)), torch.randint(0, 17, (64,))
    cpu = A.crop_windows(x, top, left, (84, 84))
    gpu = A.crop_windows(x.cuda(), top.cuda(), left.cuda(), (84, 84))
    assert torch.equal(cpu, gpu.cpu())
    g = torch.Generator().manual_seed(0)  # a CPU generator can drive a CUDA batch
    out = A.RandomCrop(84)(x.cuda(), generator=g)
    assert out.is_cuda and out.shape == (64, 9, 84, 84)


@pytest.mark.parametrize(
    ("make", "shape", "message"),
    [
        (lambda: A.make("crop", size=16), (9, 20, 20), "add the batch dimension"),
        (lambda: A.make("crop", size=16), (2, 20, 20, 9), "channels-last"),
        (lambda: A.make("color_jitter"), (2, 4, 20, 20), "3·k channels"),
        (lambda: A.make("grayscale"), (2, 2, 20, 20), "3·k channels"),
        (lambda: A.make("conv"), (2, 5, 20, 20), "3·k channels"),
        (lambda: A.make("crop", size=84), (2, 9, 64, 64), "larger than the images"),
        (lambda: A.make("translate", size=16), (2, 9, 20, 20), "smaller than the images"),
        (lambda: A.make("rotate"), (2, 9, 20, 24), "square"),
    ],
)
def test_bad_input_raises_a_clear_error(make, shape, message):
    with pytest.raises(ValueError, match=message):
        make()(torch.zeros(shape, dtype=torch.uint8))


def test_bad_names_and_options_raise():
    with pytest.raises(ValueError, match="valid names: crop, shift"):
        A.make("crop+sharpen")
    with pytest.raises(ValueError, match="not accepted"):
        A.make("crop", pad=4)
    with pytest.raises(ValueError, match="uint8 pixels"):
        A.make("crop", size=4)(torch.zeros(1, 3, 8, 8, dtype=torch.int32))
    with pytest.raises(ValueError, match="hue"):
        A.ColorJitter(hue=0.7)
    assert torch.equal(A.make(None)(images()), images())


@pytest.mark.parametrize(
    "spec", ["color_jitter", "grayscale", "conv", "simclr", "crop+color_jitter"]
)
def test_colour_steps_refuse_grayscale_frames(spec):
    with pytest.raises(ValueError, match=r"needs RGB frames.*frame_channels=1.*crop, shift"):
        A.make(spec, frame_channels=1)
    A.make(spec)  # RGB frames: fine


def test_cutout_colour_is_one_value_per_frame_channel_repeated_over_frames():
    torch.manual_seed(0)
    x = torch.zeros(64, 4, 20, 20, dtype=torch.uint8)  # 4 stacked grayscale frames
    gray = A.make("cutout", frame_channels=1, fill="random", min_size=5, max_size=5)(x)
    box = gray.amax(dim=1) > 0  # where the (non-zero) fill went
    filled = gray.permute(0, 2, 3, 1)[box]  # (pixels, 4): every frame the same value
    assert (filled == filled[:, :1]).all() and filled[:, 0].unique().numel() > 16
    rgb = A.make("cutout", fill="random", min_size=5, max_size=5)(torch.zeros(64, 6, 20, 20))
    per_pixel = rgb.permute(0, 2, 3, 1)[rgb.amax(dim=1) > 0]  # (pixels, 6) = 2 RGB frames
    assert torch.equal(per_pixel[:, :3], per_pixel[:, 3:])
    assert (per_pixel[:, 0] != per_pixel[:, 1]).any()  # a colour, not a gray value
    with pytest.raises(ValueError, match="frame_channels must be 3"):
        A.make("crop", frame_channels=2)
