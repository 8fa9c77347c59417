"""Invariance of representations to visual distractions: paired clean/distracted renders of the
same states (``rlrep.envs.paired_observations``), the ``rlrep.probes.invariance`` numbers on
hand-made encoders, and ``rlrep probe --invariance``."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rlrep import envs
from rlrep.cli import main
from rlrep.pretrain import pretrain
from rlrep.probes import invariance, state_r2

ROOT = Path(__file__).resolve().parents[1]
# An episode is 1000 physics steps: 40 agent steps at action repeat 25, so 45 steps hold a reset.
PAIRED = {"steps": 45, "seed": 0, "image_size": 32, "frame_stack": 1, "action_repeat": 25}


# --- paired observations ---------------------------------------------------------------------


def clean_run(task: str, steps: int, seed: int, **options) -> dict[str, np.ndarray]:
    """A clean env stepped on its own under ``default_rng(seed)`` uniform float32 actions (as
    ``dmc:`` frames are collected), reset when an episode ends: the observations, states and the
    steps whose observation starts an episode."""
    env = envs.make_dmc(task, seed=seed, **options)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    images, states, starts = [obs], [info["state"]], [0]
    while len(images) < steps:
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            obs, info = env.reset()
            starts.append(len(images))
        images.append(obs)
        states.append(info["state"])
    env.close()
    return {"images": np.stack(images), "states": np.stack(states), "starts": np.array(starts)}


def test_paired_observations_are_the_clean_trajectory_rendered_twice():
    pairs = envs.paired_observations("cartpole-swingup", "color_hard", **PAIRED)
    n = PAIRED["steps"]
    assert pairs["clean"].shape == pairs["distracted"].shape == (n, 3, 32, 32)
    assert pairs["clean"].dtype == pairs["distracted"].dtype == np.uint8
    assert pairs["states"].shape == (n, 5) and pairs["states"].dtype == np.float32
    # Every pair is recoloured, the reset's included.
    assert (pairs["clean"] != pairs["distracted"]).any(axis=(1, 2, 3)).all()
    options = {k: PAIRED[k] for k in ("image_size", "frame_stack", "action_repeat")}
    expected = clean_run("cartpole-swingup", n, PAIRED["seed"], **options)
    np.testing.assert_array_equal(expected["starts"], [0, 40])  # one reset, kept as step 40
    np.testing.assert_array_equal(pairs["states"], expected["states"])
    np.testing.assert_array_equal(pairs["clean"], expected["images"])


def test_paired_observations_refuse_envs_whose_physics_diverge(monkeypatch):
    import rlrep.envs.paired as paired

    real = paired.make_dmc

    def distraction_changes(what: str):
        def make(task: str, distraction: str | None = None, **options):
            if distraction is not None and what == "dynamics":
                options["action_repeat"] = 1
            env = real(task, distraction=distraction, **options)
            if distraction is not None and what == "initial state":
                reset = env.reset
                env.reset = lambda seed=None, **kw: reset(seed=None if seed is None else seed + 1)
            return env

        return make

    monkeypatch.setattr(paired, "make_dmc", distraction_changes("initial state"))
    with pytest.raises(RuntimeError, match=r"color_easy env diverged \(states at step 0"):
        envs.paired_observations("cartpole-swingup", "color_easy", **PAIRED)
    monkeypatch.setattr(paired, "make_dmc", distraction_changes("dynamics"))
    with pytest.raises(RuntimeError, match=r"diverged \(rewards or episode ends at step 1"):
        envs.paired_observations("cartpole-swingup", "color_easy", **PAIRED)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        envs.paired_observations("cartpole-swingup", "color_easy", steps=0)


# --- the invariance numbers on hand-made encoders -----------------------------------------------


class Pixels(nn.Module):
    """A hand-made encoder: the values of the pixels ``index`` picks from ``(B, C, H, W)``."""

    def __init__(self, *index: int | slice) -> None:
        super().__init__()
        self.index = (slice(None), *index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.index].flatten(1).float()


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def fabricated(
    distract: Callable[[np.ndarray, np.random.Generator], None], n: int = 200, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` pairs of ``(3, 4, 4)`` images: row 0 of channel 0 shows the 2-d state (pixels 0
    and 1), rows 2-3 a random background unrelated to it; ``distract(images, rng)`` changes the
    copy that becomes the distracted render in place."""
    rng = np.random.default_rng(seed)
    states = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    clean = np.full((n, 3, 4, 4), 60, np.uint8)
    clean[:, 0, 0, :2] = np.round(128 + 100 * states)
    clean[:, :, 2:] = rng.integers(0, 256, (n, 3, 2, 4))
    distracted = clean.copy()
    distract(distracted, rng)
    return torch.from_numpy(clean), torch.from_numpy(distracted), torch.from_numpy(states)


def new_background(images: np.ndarray, rng: np.random.Generator) -> None:
    images[:, :, 2:] = rng.integers(0, 256, images[:, :, 2:].shape)


def inverted_state_pixels(images: np.ndarray, rng: np.random.Generator) -> None:
    images[:, 0, 0, :2] = 255 - images[:, 0, 0, :2]


def test_an_encoder_of_pixels_the_distraction_leaves_alone_is_invariant():
    clean, distracted, states = fabricated(new_background)
    assert not torch.equal(clean, distracted)
    result = invariance(Pixels(slice(None), slice(0, 2)), identity, clean, distracted, states,
                        device="cpu")  # fmt: skip
    assert result["state_r2"] > 0.99
    assert result["state_r2_distracted"] == result["state_r2"]  # same probe, same test pairs
    assert result["alignment"] == 0.0 and result["alignment_shuffled"] > 0.01
    assert result["invariance"] == 1.0


def test_an_encoder_of_the_distracted_pixels_knows_no_state_and_is_not_invariant():
    clean, distracted, states = fabricated(new_background)
    result = invariance(Pixels(slice(None), slice(2, 4)), identity, clean, distracted, states,
                        device="cpu")  # fmt: skip
    assert result["state_r2"] < 0.1 and result["state_r2_distracted"] < 0.1
    assert result["alignment"] > 0.01
    assert abs(result["invariance"]) < 0.1  # the distraction moves it as far as another state


def test_the_probe_is_fitted_on_clean_features_and_scored_on_both():
    # Inverted state pixels: the distracted features still hold the state linearly (a probe fit
    # on them would be exact) but the clean probe maps them to -state: R² ≈ 1 - 4 = -3.
    clean, distracted, states = fabricated(inverted_state_pixels)
    encoder = Pixels(0, 0, slice(0, 2))
    result = invariance(encoder, identity, clean, distracted, states, device="cpu")
    assert result["state_r2"] > 0.99
    assert result["state_r2_distracted"] < -2
    f_distracted = encoder(distracted)
    assert state_r2(f_distracted[:160], states[:160], f_distracted[160:], states[160:]) > 0.99
    # Another split (seed) is another test set: the scores move, the split is seeded.
    again = invariance(encoder, identity, clean, distracted, states, device="cpu")
    other = invariance(encoder, identity, clean, distracted, states, seed=1, device="cpu")
    assert again == result and other["state_r2"] != result["state_r2"]


def test_alignment_is_the_mean_squared_distance_of_normalised_pair_features():
    clean, distracted, states = fabricated(new_background)
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(48, 8))

    def view(x: torch.Tensor) -> torch.Tensor:
        return x.float() / 255

    result = invariance(encoder, view, clean, distracted, states, test_fraction=0.25)
    with torch.no_grad():
        f_clean, f_distracted = encoder(view(clean)).numpy(), encoder(view(distracted)).numpy()
    z_clean = f_clean / np.linalg.norm(f_clean, axis=1, keepdims=True)
    z_distracted = f_distracted / np.linalg.norm(f_distracted, axis=1, keepdims=True)
    expected = np.mean(np.sum((z_clean - z_distracted) ** 2, axis=1))
    assert result["alignment"] == pytest.approx(expected, rel=1e-5)
    distances = np.sum((z_clean[:, None] - z_distracted[None]) ** 2, axis=2)
    others = distances[~np.eye(len(distances), dtype=bool)]
    assert others.min() <= result["alignment_shuffled"] <= others.max()
    assert 0 < result["alignment"] < result["alignment_shuffled"] <= 4
    assert result["invariance"] == pytest.approx(
        1 - result["alignment"] / result["alignment_shuffled"]
    )


@pytest.mark.parametrize("n", [4, 5, 17, 64])
def test_shuffled_pairs_never_pair_a_sample_with_itself(n):
    # One-hot features: a pair with itself is 0 apart, with any other sample exactly 2.
    images = torch.zeros(n, 3, 1, n, dtype=torch.uint8)
    images[torch.arange(n), 0, 0, torch.arange(n)] = 255
    states = torch.arange(n, dtype=torch.float32)[:, None]
    for seed in range(20):
        result = invariance(Pixels(0, 0), identity, images, images.clone(), states,
                            test_fraction=0.5, seed=seed, device="cpu")  # fmt: skip
        assert result["alignment"] == 0.0
        assert result["alignment_shuffled"] == pytest.approx(2.0, abs=1e-12)
        assert result["invariance"] == 1.0


def test_invariance_of_constant_features_is_undefined_and_bad_inputs_raise():
    clean, distracted, states = fabricated(new_background, n=10)
    constant = invariance(Pixels(0, 1), identity, clean, distracted, states, device="cpu")
    assert constant["alignment"] == constant["alignment_shuffled"] == 0.0
    assert math.isnan(constant["invariance"])
    with pytest.raises(ValueError, match="the same N pairs"):
        invariance(Pixels(0, 1), identity, clean, distracted[:9], states, device="cpu")
    with pytest.raises(ValueError, match="each side needs at least 2"):
        invariance(Pixels(0, 1), identity, clean, distracted, states, test_fraction=0.1)


# --- rlrep probe --invariance ---------------------------------------------------------------


def table_rows(text: str) -> dict[str, list[float]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in envs.DISTRACTIONS:
            rows[cells[0]] = [float(c) for c in cells[1:]]
    return rows


@pytest.mark.slow
def test_cli_probe_invariance_prints_a_row_per_distraction(tmp_path, capsys):
    # A tiny encoder pretrained for an epoch on 256 noise images of the renders' shape: the
    # CLI, not the encoder, is under test.
    rng = np.random.default_rng(0)
    data = tmp_path / "frames.npz"
    np.savez(data, images=rng.integers(0, 256, (256, 9, 64, 64), dtype=np.uint8),
             states=rng.normal(size=(256, 5)).astype(np.float32))  # fmt: skip
    pretrain(
        dataset=f"npz:{data}",
        augmentation="crop",
        augmentation_kwargs={"size": 54},
        encoder_kwargs={"num_filters": 8, "num_layers": 2, "features_dim": 16},
        epochs=1,
        batch_size=64,
        out=tmp_path / "p",
        progress=False,
    )
    ckpt = str(tmp_path / "p" / "checkpoint.pt")
    probe = [sys.executable, "-m", "rlrep.cli", "probe", ckpt, "--device", "cpu"]
    result = subprocess.run([*probe, "--invariance", "color_hard", "--steps", "60"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(trained weights) on cartpole-swingup: 60 pairs of 64px renders, 3 stacked" in (
        result.stdout
    )
    header = "| distraction | state_r2 | state_r2_distracted | alignment | alignment_shuffled |"
    assert header + " invariance |" in result.stdout
    trained = table_rows(result.stdout)
    assert list(trained) == ["color_hard"] and len(trained["color_hard"]) == 5
    assert all(math.isfinite(x) for x in trained["color_hard"])
    assert 0 <= trained["color_hard"][2] <= 4 and 0 <= trained["color_hard"][3] <= 4
    # The untrained weights of the same run: other features of the same renders.
    assert main(["probe", ckpt, "--device", "cpu", "--random-init", "--invariance",
                 "color_hard", "--steps", "60"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "(initial (untrained) weights)" in out
    untrained = table_rows(out)
    assert list(untrained) == ["color_hard"] and untrained != trained
    assert main(["probe", ckpt, "--invariance", "color_hard", "sepia"]) == 2
    assert "unknown distraction sepia; valid: color_easy" in capsys.readouterr().err
