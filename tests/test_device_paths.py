"""The device-resident data path of the agents: on a GPU, replay frames are stored there once
and batches are sampled, augmented and updated there, with no host copy of a frame batch; the
overlapped loop runs the same way. CUDA cases are skipped without a GPU (the GPU script,
``experiments/gpu_benchmarks.sh``, runs them); the CPU case checks the same code path."""

import pytest
import torch

from rlrep.agents.train import build_agent
from tests.conftest import DEVICES
from tests.test_train_resume import SHIFT_TINY, TINY

AGENTS = [("curl-sac", TINY), ("drqv2", SHIFT_TINY)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("agent,overrides", AGENTS, ids=[a[0] for a in AGENTS])
def test_frames_live_and_batches_are_sampled_on_the_training_device(agent, overrides, device):
    model, _ = build_agent(agent, "point_mass_pixels", 0, device, dict(overrides))
    buffer = model.replay_buffer
    assert buffer.frames.device.type == device  # stored once, where the updates run
    copies = []
    to = torch.Tensor.to

    def recording_to(tensor, *args, **kwargs):  # a frame batch crossing devices is a host copy
        out = to(tensor, *args, **kwargs)
        if tensor.dtype == torch.uint8 and tensor.dim() == 4 and out.device != tensor.device:
            copies.append((tensor.device, out.device))
        return out

    torch.Tensor.to = recording_to
    try:
        model.learn(overrides["initial_steps"] + 6)
    finally:
        torch.Tensor.to = to
        model.get_env().close()
    batch = buffer.sample(4)
    assert batch.observations.device.type == device and batch.observations.dtype == torch.uint8
    assert model._n_updates > 0 and copies == []
