"""The agents step every network with PyTorch's fused Adam where it has one
(:mod:`rlrep.agents.optim`: ~5× faster than the per-tensor loop on a CPU). That the values are
Adam's is checked against the reference codes in float64 (tests/test_curl_sac_reference.py,
tests/test_drqv2_reference.py), which run these optimisers."""

import pytest

from rlrep.agents import ATCSAC, CURLSAC, SPRSAC, DrQ, DrQV2
from rlrep.agents.presets import config_for
from rlrep.envs import make_env
from tests.test_train_resume import ATC_TINY, SHIFT_TINY, SPR_TINY, TINY

AGENTS = [
    ("curl-sac", CURLSAC, TINY, {"actor", "critic", "encoder_optimizer", "curl_optimizer"}),
    ("drq", DrQ, SHIFT_TINY, {"actor", "critic"}),
    ("drqv2", DrQV2, SHIFT_TINY, {"actor", "critic"}),
    ("atc-sac", ATCSAC, ATC_TINY, {"actor", "critic", "atc_optimizer"}),
    ("spr-sac", SPRSAC, SPR_TINY, {"actor", "critic", "spr_optimizer"}),
]


@pytest.mark.parametrize(("agent", "cls", "overrides", "names"), AGENTS, ids=[a[0] for a in AGENTS])
def test_every_network_is_stepped_by_a_fused_adam(agent, cls, overrides, names):
    cfg = config_for(agent, "point_mass_pixels", **overrides)
    env = make_env(
        "point_mass_pixels", seed=0, image_size=cfg.image_size, frame_stack=cfg.frame_stack
    )
    model = cls(env, cfg, seed=0, device="cpu")
    optimizers = {"actor": model.actor.optimizer, "critic": model.critic.optimizer}
    optimizers |= {name: getattr(model, name) for name in getattr(model, "extra_optimizers", ())}
    assert set(optimizers) == names
    for name, optimizer in optimizers.items():
        assert all(group["fused"] for group in optimizer.param_groups), name
