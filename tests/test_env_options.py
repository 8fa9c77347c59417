"""Every env option an agent's config names reaches the env (train and evaluation alike):
``frame_stack``, ``image_size``, ``action_repeat`` through :func:`rlrep.envs.make_env`."""

import numpy as np
import pytest

from rlrep.agents.presets import CURLSACConfig, curl_sac_config
from rlrep.agents.train import build_agent, train
from rlrep.envs import SYNTHETIC_TASK, action_repeat_of, default_action_repeat, make_env

TINY = {"num_filters": 4, "num_layers": 2, "hidden_dim": 16, "batch_size": 8,
        "buffer_size": 200, "initial_steps": 20, "image_size": 36, "crop_size": 32}  # fmt: skip
PPO_TINY = {"n_steps": 16, "batch_size": 16, "n_envs": 2, "image_size": 36}


def test_make_env_builds_the_synthetic_task_with_its_options():
    env = make_env(SYNTHETIC_TASK, image_size=24, frame_stack=4, seed=3)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (12, 24, 24) and obs.dtype == np.uint8
    again, _ = make_env(SYNTHETIC_TASK, image_size=24, frame_stack=4, seed=3).reset(seed=3)
    np.testing.assert_array_equal(obs, again)


def test_the_synthetic_task_refuses_an_action_repeat():
    assert make_env(SYNTHETIC_TASK, action_repeat=1) is not None
    with pytest.raises(ValueError, match="point_mass_pixels has no action repeat"):
        make_env(SYNTHETIC_TASK, action_repeat=4)


def test_action_repeat_has_one_table():
    assert action_repeat_of(SYNTHETIC_TASK) == 1
    assert action_repeat_of("cartpole-swingup") == default_action_repeat("cartpole-swingup") == 8
    assert action_repeat_of("walker-walk", 3) == 3
    # The preset leaves the repeat to the env unless asked, and keeps Table 3's lr row.
    assert curl_sac_config("cartpole-swingup").action_repeat is None
    assert curl_sac_config("cheetah-run").lr == 2e-4
    with pytest.raises(ValueError, match="action_repeat must be an int or None"):
        CURLSACConfig(action_repeat=2.5)


@pytest.mark.parametrize("agent, overrides", [("curl-sac", TINY), ("ppo-aux", PPO_TINY)])
def test_frame_stack_and_image_size_reach_the_agent_env(agent, overrides):
    model, env_kwargs = build_agent(
        agent, SYNTHETIC_TASK, 0, "cpu", {**overrides, "frame_stack": 2}
    )
    assert model.observation_space.shape == (6, 36, 36)
    assert env_kwargs == {"image_size": 36, "frame_stack": 2, "action_repeat": None}


@pytest.mark.slow
def test_a_run_with_another_frame_stack_evaluates_on_the_same_observations(tmp_path):
    history = train(SYNTHETIC_TASK, frames=40, seed=0, out=tmp_path, eval_every=40,
                    eval_episodes=1, progress=False, frame_stack=4, **TINY)  # fmt: skip
    assert [h["frames"] for h in history] == [40]


def test_unknown_options_are_refused_with_the_valid_names():
    with pytest.raises(ValueError, match=r"unknown CURL-SAC options \['eval_episodes'\]; valid"):
        curl_sac_config("cartpole-swingup", eval_episodes=3)
    with pytest.raises(
        ValueError, match=r"unknown PPO-aux options \['hidden_dim'\]; valid: .*frame_stack"
    ):
        build_agent("ppo-aux", SYNTHETIC_TASK, 0, "cpu", {"hidden_dim": 3})
    with pytest.raises(ValueError, match="no action repeat"):
        build_agent("ppo-aux", SYNTHETIC_TASK, 0, "cpu", {**PPO_TINY, "action_repeat": 2})
