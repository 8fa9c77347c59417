"""DMC environments against bare dm_control: rewards, frames, truncation, seeding, rendering.

Rendering costs ~10–30 ms a frame on a CPU, so pixel tests use 32×32 frames and few steps;
long episodes run in state mode (no rendering).
"""

import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlrep import envs
from rlrep.envs import rendering


def actions(env, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, *env.action_space.shape)).astype(np.float32)


def test_pixel_observations_shape_dtype_and_frame_order():
    env = envs.make_dmc(
        "cartpole-swingup", image_size=32, frame_stack=3, seed=0, render_mode="rgb_array"
    )
    obs, info = env.reset()
    assert obs.shape == (9, 32, 32) and obs.dtype == np.uint8 and obs in env.observation_space
    assert np.array_equal(obs[:3], obs[6:])  # the first frame fills the stack
    prev = obs
    for a in actions(env, 3):
        obs, _, _, _, info = env.step(a)
        assert np.array_equal(obs[:6], prev[3:])  # older frames shift toward the front
        assert np.array_equal(obs[6:], env.render().transpose(2, 0, 1))  # newest frame last
        prev = obs
    assert info["env_steps"] == 8 and info["episode_env_steps"] == 24
    assert info["state"].shape == env.state_space.shape
    env.close()


def test_reward_summed_over_repeats_and_state_match_bare_dm_control():
    from dm_control import suite

    env = envs.make_dmc("cheetah-run", from_pixels=False, seed=3)
    bare = suite.load("cheetah", "run", task_kwargs={"random": 3})
    obs, _ = env.reset()
    ts = bare.reset()
    assert env.action_repeat == 4
    np.testing.assert_allclose(
        obs, np.concatenate([v.ravel() for v in ts.observation.values()]), rtol=1e-6
    )
    for a in actions(env, 5):
        obs, reward, *_ = env.step(a)
        expected = sum(bare.step(a.astype(np.float64)).reward for _ in range(4))
        assert reward == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(
        obs,
        np.concatenate([v.ravel() for v in bare._task.get_observation(bare.physics).values()]),
        rtol=1e-6,
    )
    env.close()


@pytest.mark.parametrize(("repeat", "agent_steps", "last_repeat"), [(8, 125, 8), (3, 334, 1)])
def test_episode_is_1000_env_steps_and_ends_by_truncation(repeat, agent_steps, last_repeat):
    env = envs.make_dmc("cartpole-swingup", from_pixels=False, action_repeat=repeat, seed=0)
    env.reset()
    a = np.zeros(env.action_space.shape, np.float32)
    for t in range(1, agent_steps + 1):
        _, _, terminated, truncated, info = env.step(a)
        assert not terminated
        assert truncated == (t == agent_steps)
    assert info["episode_env_steps"] == 1000 and info["env_steps"] == last_repeat


def test_same_seed_same_observations_and_reset_reseeds():
    a, b = (envs.make_dmc("reacher-easy", image_size=24, seed=7) for _ in range(2))
    oa, ob = a.reset()[0], b.reset()[0]
    assert np.array_equal(oa, ob)
    for act in actions(a, 3):
        assert np.array_equal(a.step(act)[0], b.step(act)[0])
    c = envs.make_dmc("reacher-easy", from_pixels=False, seed=8)
    d = envs.make_dmc("reacher-easy", from_pixels=False, seed=7)
    assert not np.array_equal(c.reset()[0], d.reset()[0])
    assert np.array_equal(c.reset(seed=11)[0], c.reset(seed=11)[0])
    for env in (a, b, c, d):
        env.close()


def test_actions_map_to_the_task_bounds():
    env = envs.make_dmc("quadruped-walk", from_pixels=False, seed=0)
    spec = env.unwrapped._env.action_spec()
    env.reset()
    env.step(-np.ones(env.action_space.shape, np.float32))
    np.testing.assert_allclose(env.unwrapped._env.physics.data.ctrl, spec.minimum)
    env.step(np.ones(env.action_space.shape, np.float32))
    np.testing.assert_allclose(env.unwrapped._env.physics.data.ctrl, spec.maximum)
    assert env.camera_id == 2  # quadruped's camera, as DrQ
    env.close()


def test_check_env_passes_for_pixels_and_state():
    for kwargs in ({"image_size": 16, "frame_stack": 2}, {"from_pixels": False}):
        env = envs.make_dmc("finger-spin", seed=0, **kwargs)
        check_env(env, skip_render_check=True)
        env.close()


def test_curl_default_action_repeats_and_task_list():
    from dm_control import suite

    assert {t: envs.default_action_repeat(t) for t in envs.CURL_TASKS} == {
        "finger-spin": 2,
        "cartpole-swingup": 8,
        "reacher-easy": 4,
        "cheetah-run": 4,
        "walker-walk": 2,
        "ball_in_cup-catch": 4,
    }
    assert set(envs.DMC_TASKS) == {f"{d}-{t}" for d, t in suite.ALL_TASKS}


def test_gymnasium_registration():
    env = gym.make("dmc/walker-walk-v0", from_pixels=False, seed=0)
    obs, _ = env.reset()
    assert obs.shape == (24,) and env.unwrapped.action_repeat == 2
    env.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "cartpole-swing"}, "unknown DMC task 'cartpole-swing'.*cartpole-swingup"),
        ({"task": "cartpole"}, "expected 'domain-task'"),
        ({"image_size": 0}, "image_size must be a positive integer"),
        ({"image_size": 84.5}, "image_size must be a positive integer"),
        ({"frame_stack": 0}, "frame_stack"),
        ({"action_repeat": -1}, "action_repeat"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    kwargs = {"task": "cartpole-swingup", "from_pixels": False, **kwargs}
    with pytest.raises(ValueError, match=message):
        envs.make_dmc(**kwargs)


def test_no_backend_gives_a_clear_error(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delitem(sys.modules, "mujoco", raising=False)
    monkeypatch.setattr(rendering, "_works", lambda backend: False)
    with pytest.raises(envs.RenderingUnavailableError, match="libosmesa6"):
        envs.ensure_rendering_backend()
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert envs.ensure_rendering_backend() == "osmesa"  # a user's choice is honoured


@pytest.mark.slow
@pytest.mark.parametrize("close", [True, False])
def test_backend_chosen_when_unset_and_clean_interpreter_exit(close):
    code = (
        "import os\nfrom rlrep import envs\n"
        "envs.make_dmc('cartpole-swingup', from_pixels=False)\n"  # a state env first: no GLFW
        "env = envs.make_dmc('cartpole-swingup', image_size=16, seed=0)\n"
        "env.reset(); env.step(env.action_space.sample())\n"
        f"{'env.close()' if close else ''}\n"
        "print(os.environ['MUJOCO_GL'])\n"
    )
    environ = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in rendering.BACKENDS
    assert result.stderr == "", result.stderr
