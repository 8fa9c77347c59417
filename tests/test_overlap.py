"""Overlapped collection (``rlrep train --overlap``): the env steps in a worker process while the
learner updates. The order is the official codes' (act → update → store), the number of updates
per step is SB3's, and a seed gives the same run every time, with the env in the worker or in
the learner's process, uninterrupted or resumed."""

import csv

import numpy as np
import pytest
import torch

from rlrep.agents import CURLSAC, DrQV2
from rlrep.agents.overlap import RunEnv, env_worker
from rlrep.agents.presets import config_for
from rlrep.agents.train import train
from rlrep.envs import make_env
from tests.test_train_resume import SHIFT_TINY, TINY

RUN = {"seed": 0, "eval_every": 40, "eval_episodes": 2, "progress": False, "overlap": True}
AGENTS = [("curl-sac", CURLSAC, TINY), ("drqv2", DrQV2, SHIFT_TINY)]


def read_eval(out):
    with open(out / "eval.csv") as f:
        return [(int(r["frames"]), float(r["mean_return"])) for r in csv.DictReader(f)]


def make(env_kwargs):
    return make_env("point_mass_pixels", seed=0, **env_kwargs)


def build(agent_class, agent, overrides, worker, overlap=True):
    cfg = config_for(agent, "point_mass_pixels", **overrides)
    env_kwargs = {"image_size": cfg.image_size, "frame_stack": cfg.frame_stack}
    env = env_worker(lambda: make(env_kwargs)) if worker else RunEnv(make(env_kwargs))
    return agent_class(env, cfg, seed=0, device="cpu", overlap=overlap)


def flat(tree, prefix=""):
    """Every tensor of nested state dicts, by path."""
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in flat(sub, f"{prefix}/{key}").items()}
    if isinstance(tree, (list, tuple)):
        return {k: v for i, sub in enumerate(tree) for k, v in flat(sub, f"{prefix}/{i}").items()}
    return {prefix: torch.tensor(tree)} if isinstance(tree, (int, float)) else {}


def record_updates(model):
    """Transitions stored when each ``train()`` call starts."""
    sizes = []
    train_ = model.train

    def counted(*args, **kwargs):
        sizes.append(model.replay_buffer.size())
        return train_(*args, **kwargs)

    model.train = counted
    return sizes


@pytest.mark.parametrize("agent,agent_class,overrides", AGENTS, ids=[a[0] for a in AGENTS])
def test_worker_gives_the_in_process_run(agent, agent_class, overrides):
    """The same weights and replay contents with the env in a worker process as in-process:
    the loop reads nothing whose value depends on timing."""
    runs = []
    for worker in (False, True):
        torch.manual_seed(0)
        model = build(agent_class, agent, overrides, worker)
        model.learn(90)
        model.get_env().close()
        state = model.replay_buffer.get_state()
        runs.append((flat(model.get_parameters()), state))  # the policy's and optimisers'
    (weights_a, replay_a), (weights_b, replay_b) = runs
    assert weights_a.keys() == weights_b.keys() and len(weights_a) > 20
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key
    for key in replay_a:
        np.testing.assert_array_equal(replay_a[key], replay_b[key], err_msg=key)


@pytest.mark.parametrize("agent,agent_class,overrides", AGENTS, ids=[a[0] for a in AGENTS])
def test_updates_overlap_the_step_they_follow(agent, agent_class, overrides):
    """Each update runs while its step's env step is in flight: it sees one transition fewer
    than SB3's update after the same step, and there are as many updates (the update-to-data
    ratio is unchanged)."""
    sizes = {}
    for overlap in (False, True):
        model = build(agent_class, agent, overrides, worker=False, overlap=overlap)
        sizes[overlap] = record_updates(model)
        model.learn(70)
    starts = overrides["initial_steps"]
    assert starts < sizes[False][0] <= starts + 2 and len(sizes[False]) > 3
    assert sizes[True] == [s - 1 for s in sizes[False]]


def test_overlapped_runs_repeat_and_resume(tmp_path):
    """``rlrep train --overlap``: the same seed gives the same eval.csv, and a run resumed from a
    checkpoint (the env's state read back from the worker) gives the uninterrupted run's."""
    whole = [tmp_path / "a", tmp_path / "b"]
    for out in whole:
        train("point_mass_pixels", out=out, frames=160, **RUN, **TINY)
    assert read_eval(whole[0]) == read_eval(whole[1])
    assert len(read_eval(whole[0])) == 4
    cut = tmp_path / "cut"
    train("point_mass_pixels", out=cut, frames=80, **RUN, **TINY)
    train("point_mass_pixels", out=cut, frames=160, resume=True, **RUN, **TINY)
    assert read_eval(cut) == read_eval(whole[0])


def test_overlap_is_refused_for_on_policy_agents(tmp_path):
    with pytest.raises(ValueError, match="collects whole rollouts"):
        train("point_mass_pixels", agent="ppo-aux", out=tmp_path / "run", frames=64, **RUN)
